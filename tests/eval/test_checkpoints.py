"""Loading backbones from our checkpoints, MoCo / CycleContrast and SimSiam releases and torchvision
weights, and the clear errors for the wrong architecture, an unknown format or a file that is no
checkpoint."""

import random
import re

import pytest
import torch
import torchvision

from cycle_pkg.errors import CheckpointError
from cycle_pkg.eval.checkpoints import AGAIN, load_backbone
from cycle_pkg.model import build_backbone

from ..helpers.eval_inputs import moco_state, write_our_checkpoint


def same_weights(net, weights):
    state = net.state_dict()
    return set(state) == set(weights) and all(torch.equal(state[k], weights[k]) for k in state)


def test_our_checkpoint_gives_the_query_backbone_and_its_run(tmp_path):
    path = write_our_checkpoint(tmp_path / "r18-lambda0.3", mlflow_run_id="run-42")
    saved = torch.load(path, weights_only=False)["model"]
    backbone = load_backbone(path)
    expected = {k[len("encoder_q.backbone.") :]: v for k, v in saved.items() if k.startswith("encoder_q.backbone.")}
    assert same_weights(backbone.net, expected)
    assert (backbone.arch, backbone.width, backbone.format) == ("resnet18", 512, "cycle")
    assert (backbone.pretrain_run, backbone.pretrain_run_id) == ("r18-lambda0.3", "run-42")
    assert not backbone.net.training


def test_moco_release_drops_the_projection_head(tmp_path):
    state = moco_state("resnet18")
    torch.save(state, tmp_path / "moco_v2_200ep_pretrain.pth.tar")
    backbone = load_backbone(tmp_path / "moco_v2_200ep_pretrain.pth.tar")
    expected = {
        k[len("module.encoder_q.") :]: v
        for k, v in state["state_dict"].items()
        if k.startswith("module.encoder_q.") and ".fc." not in k
    }
    assert same_weights(backbone.net, expected)
    assert (backbone.format, backbone.arch, backbone.pretrain_run_id) == ("moco", "resnet18", None)


def simsiam_state(width: int = 512, dim: int = 2048, predictor: int = 512) -> dict:
    """The official SimSiam release's layout (facebookresearch/simsiam, main_simsiam.py): a DDP-wrapped
    ``encoder`` (a torchvision ResNet whose fc is the 3-layer projector, BatchNorm after each Linear, the
    last without affine) and the 2-layer ``predictor`` beside it; the optimiser's state at the top level."""
    torch.manual_seed(2)
    net, _ = build_backbone("resnet18")
    weights = {f"module.encoder.{k}": v for k, v in net.state_dict().items()}

    def batch_norm(prefix: str, channels: int, affine: bool = True) -> dict:
        stats = {"running_mean": torch.randn(channels), "running_var": torch.rand(channels), "num_batches_tracked": 9}
        params = {"weight": torch.rand(channels), "bias": torch.randn(channels)} if affine else {}
        return {f"{prefix}.{k}": torch.as_tensor(v) for k, v in {**params, **stats}.items()}

    fc, head = "module.encoder.fc", "module.predictor"
    weights.update({f"{fc}.0.weight": torch.randn(width, width), **batch_norm(f"{fc}.1", width)})
    weights.update({f"{fc}.3.weight": torch.randn(width, width), **batch_norm(f"{fc}.4", width)})
    weights.update({f"{fc}.6.weight": torch.randn(dim, width), f"{fc}.6.bias": torch.zeros(dim)})
    weights.update(batch_norm(f"{fc}.7", dim, affine=False))
    weights.update({f"{head}.0.weight": torch.randn(predictor, dim), **batch_norm(f"{head}.1", predictor)})
    weights.update({f"{head}.3.weight": torch.randn(dim, predictor), f"{head}.3.bias": torch.zeros(dim)})
    return {"epoch": 100, "arch": "resnet18", "state_dict": weights, "optimizer": {"state": {}, "param_groups": []}}


def test_simsiam_release_drops_the_projector_and_the_predictor(tmp_path):
    state = simsiam_state()
    torch.save(state, tmp_path / "checkpoint_0099.pth.tar")
    backbone = load_backbone(tmp_path / "checkpoint_0099.pth.tar")
    expected = {
        k[len("module.encoder.") :]: v
        for k, v in state["state_dict"].items()
        if k.startswith("module.encoder.") and not k.startswith("module.encoder.fc.")
    }
    assert len(expected) == len(build_backbone("resnet18")[0].state_dict())
    assert same_weights(backbone.net, expected)
    assert (backbone.format, backbone.arch, backbone.width) == ("simsiam", "resnet18", 512)
    with pytest.raises(CheckpointError, match="a simsiam-format checkpoint, not moco as requested"):
        load_backbone(tmp_path / "checkpoint_0099.pth.tar", fmt="moco")


def test_torchvision_weights_drop_the_classifier(tmp_path):
    torch.manual_seed(3)
    net = torchvision.models.resnet50()
    torch.save(net.state_dict(), tmp_path / "resnet50-supervised.pth")
    backbone = load_backbone(tmp_path / "resnet50-supervised.pth")
    assert (backbone.format, backbone.arch, backbone.width) == ("torchvision", "resnet50", 2048)
    assert torch.equal(backbone.net.layer4[2].conv3.weight, net.layer4[2].conv3.weight)


def test_random_backbone_is_seeded():
    first, second = load_backbone("random", arch="resnet18", seed=5), load_backbone("random", arch="resnet18", seed=5)
    assert torch.equal(first.net.conv1.weight, second.net.conv1.weight)
    assert not torch.equal(first.net.conv1.weight, load_backbone("random", arch="resnet18", seed=6).net.conv1.weight)
    with pytest.raises(CheckpointError, match="needs an architecture"):
        load_backbone("random")


def test_wrong_architecture_is_named(tmp_path):
    path = write_our_checkpoint(tmp_path / "r18")
    with pytest.raises(CheckpointError, match="holds a resnet18 backbone, but resnet50 was asked for"):
        load_backbone(path, arch="resnet50")
    resnet34 = torchvision.models.resnet34().state_dict()
    torch.save(resnet34, tmp_path / "r34.pth")
    with pytest.raises(CheckpointError, match=r"r34.pth: the backbone is not one of resnet18, resnet50 .*unexpected"):
        load_backbone(tmp_path / "r34.pth")


def test_truncated_or_reshaped_weights_are_named(tmp_path):
    net, _ = build_backbone("resnet18")
    weights = net.state_dict()
    del weights["layer2.0.bn1.running_var"]
    torch.save(weights, tmp_path / "cut.pth")
    with pytest.raises(CheckpointError, match=r"closest: resnet18; missing: layer2.0.bn1.running_var"):
        load_backbone(tmp_path / "cut.pth")
    weights = net.state_dict()
    weights["conv1.weight"] = torch.zeros(64, 1, 7, 7)  # a grey-scale stem
    torch.save(weights, tmp_path / "grey.pth")
    with pytest.raises(CheckpointError, match="other shape: conv1.weight"):
        load_backbone(tmp_path / "grey.pth")


def test_unknown_format_and_unreadable_files(tmp_path):
    torch.save({"weights": {"a": torch.zeros(1)}}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match=r"odd.pt: unknown checkpoint format \(top level: \['weights'\]\)"):
        load_backbone(tmp_path / "odd.pt")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(
        CheckpointError,
        match=r"notes.txt: cannot be read as a PyTorch checkpoint \(neither a zip archive nor a pickle\)",
    ):
        load_backbone(tmp_path / "notes.txt")
    with pytest.raises(CheckpointError, match="missing.pt: checkpoint not found"):
        load_backbone(tmp_path / "missing.pt")
    torch.save(moco_state(), tmp_path / "moco.pth")
    with pytest.raises(CheckpointError, match="a moco-format checkpoint, not torchvision as requested"):
        load_backbone(tmp_path / "moco.pth", fmt="torchvision")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_empty_random_and_cut_files_are_named_with_what_to_do(tmp_path):
    """An interrupted download leaves an empty or a cut file; torch.load's own errors on them are an empty
    EOFError, or whatever the unpickler met ("list index out of range" on these random bytes)."""
    (tmp_path / "empty.pth").touch()
    # random bytes that start as a pickle does, so that they reach the unpickler
    (tmp_path / "noise.pth").write_bytes(b"\x80" + random.Random(29).randbytes(4095))
    torch.save(moco_state(), tmp_path / "whole.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "whole.pth").read_bytes()[:100_000])
    for name, reason in (
        ("empty.pth", r"\(the file is empty\)"),
        ("noise.pth", r"of tensors \(IndexError: list index out of range\)"),
        ("cut.pth", r"of tensors \(RuntimeError: PytorchStreamReader failed .*\)"),
    ):
        with pytest.raises(CheckpointError) as error:
            load_backbone(tmp_path / name)
        path = re.escape(str(tmp_path / name))
        assert re.fullmatch(f"{path}: cannot be read as a PyTorch checkpoint {reason}; {AGAIN}", str(error.value))
