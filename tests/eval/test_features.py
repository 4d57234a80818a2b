"""The frozen feature extractor (no gradients, eval-mode BatchNorm, the weights-unchanged check,
output stride 8 when dilated) and the on-disk feature cache's keys."""

import os

import pytest
import torch

from cycle_pkg.eval.features import FeatureCache, FrozenBackbone, files_digest, weights_digest
from cycle_pkg.model import build_backbone


def test_features_come_without_gradients_and_with_running_statistics(frozen):
    images = torch.randn(4, 3, 32, 32)
    features = frozen(images)
    assert features.shape == (4, 512) and not features.requires_grad
    frozen.net.train()  # even if someone flips the mode, BatchNorm keeps its running statistics
    assert torch.equal(frozen(images), features)
    frozen.check_unchanged()


def test_changed_weights_or_statistics_are_caught(frozen):
    with torch.no_grad():
        frozen.net.layer1[0].conv1.weight[0, 0, 0, 0] += 1e-3
    with pytest.raises(RuntimeError, match="weights or BatchNorm statistics changed"):
        frozen.check_unchanged()
    torch.manual_seed(0)
    net, width = build_backbone("resnet18")
    frozen = FrozenBackbone(net, width, torch.device("cpu"))
    net.train()
    net(torch.randn(2, 3, 32, 32))  # a forward pass in train mode updates the running statistics
    with pytest.raises(RuntimeError, match="changed during the evaluation"):
        frozen.check_unchanged()


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_dilated_backbone_has_output_stride_8_and_the_same_weights(arch):
    torch.manual_seed(0)
    net, width = build_backbone(arch)
    frozen = FrozenBackbone(net, width, torch.device("cpu"))
    maps = frozen.feature_map(torch.randn(1, 3, 64, 96))
    assert maps.shape == (1, width, 8, 12)
    assert weights_digest(frozen.dilated()) == frozen.digest
    layer4 = [m for m in frozen.dilated().layer4.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(m.stride == (1, 1) for m in layer4)
    assert {m.dilation for m in layer4 if m.kernel_size == (3, 3)} == {(4, 4)}
    original = [m for m in frozen.net.layer4.modules() if isinstance(m, torch.nn.Conv2d)]
    assert any(m.stride == (2, 2) for m in original)  # the pooled-feature network is untouched
    frozen.check_unchanged()


def test_cache_hits_and_what_changes_its_key(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    image = tmp_path / "a.jpg"
    image.write_bytes(b"x")
    calls = []

    def compute():
        calls.append(1)
        return torch.full((2, 3), float(len(calls)))

    def get(weights="w", transform="t"):
        return cache.get("linear-train", weights, lambda: files_digest([image], [0]), transform, compute)

    first = get()
    assert torch.equal(get(), first) and len(calls) == 1 and cache.hits == 1
    get(weights="other checkpoint")
    get(transform="Resize(128)")
    assert len(calls) == 3
    os.utime(image, ns=(1, 1))  # the same file name with other contents
    get()
    assert len(calls) == 4
    assert files_digest([image], [0]) != files_digest([image], [1])  # labels are part of the identity
    off = FeatureCache(None)
    off.get("x", "w", lambda: pytest.fail("the dataset's identity is not needed without a cache"), "t", compute)
    assert len(calls) == 5


def test_damaged_cache_file_is_recomputed(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.get("f", "w", lambda: "d", "t", lambda: torch.ones(1))
    (path,) = tmp_path.glob("f-*.pt")
    path.write_bytes(b"truncated")
    assert torch.equal(cache.get("f", "w", lambda: "d", "t", lambda: torch.zeros(1)), torch.zeros(1))
