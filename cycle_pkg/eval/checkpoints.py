"""Backbones from the checkpoints a user brings: ours, MoCo / CycleContrast and SimSiam releases and
torchvision's ImageNet-supervised weights (the paper's "MoCo", "SimSiam" and "Supervised" rows), or a
random initialisation.

Every format ends as the state dict of a torchvision ResNet without its classifier; a projection
head or classifier in the file is dropped, anything else that does not fit is an error.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ..errors import CheckpointError
from ..jobs.layout import MLFLOW_RUN_ID, SUMMARY
from ..model import build_backbone
from ..pretrain.state import BACKBONE_FORMAT, QUERY_BACKBONE
from ..pretrain.state import FORMAT as PRETRAIN_FORMAT

ARCHITECTURES = ("resnet18", "resnet50")
Format = Literal["auto", "cycle", "moco", "simsiam", "torchvision"]
RANDOM = "random"
# The releases keep the ResNet under these prefixes of their 'state_dict' (its projector in the ResNet's
# fc; SimSiam's predictor beside it). MoCo, CycleContrast and SimSiam save DistributedDataParallel-wrapped
# models; a single-process save has no "module." in front.
RELEASE_PREFIXES = {
    "moco": ("module.encoder_q.", "encoder_q."),
    "simsiam": ("module.encoder.", "encoder."),
}
ZIP_MAGIC, PICKLE_PROTOCOL = b"PK\x03\x04", b"\x80"  # the first bytes of torch.save's two file formats
AGAIN = "download or copy it again, or give another file"


@dataclass
class Backbone:
    """A loaded backbone and where it came from."""

    net: nn.Module  # torchvision ResNet, fc = Identity: images -> pooled features
    arch: str
    width: int
    source: str  # the checkpoint path, or "random"
    format: str  # cycle | moco | simsiam | torchvision | random
    pretrain_run: str | None = None  # our checkpoints: the pretraining run's name ...
    pretrain_run_id: str | None = None  # ... and its MLflow run id, when known


@functools.cache
def _trunk_shapes(arch: str) -> dict[str, torch.Size]:
    net, _ = build_backbone(arch)
    return {k: v.shape for k, v in net.state_dict().items()}


def _read(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    with path.open("rb") as file:
        head = file.read(len(ZIP_MAGIC))
    if not head:
        raise CheckpointError(f"{path}: cannot be read as a PyTorch checkpoint (the file is empty); {AGAIN}")
    if not head.startswith((ZIP_MAGIC, PICKLE_PROTOCOL)):
        raise CheckpointError(
            f"{path}: cannot be read as a PyTorch checkpoint (neither a zip archive nor a pickle); {AGAIN}"
        )
    try:
        # weights_only: a checkpoint from elsewhere must not run code while it is read.
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # the unpickler's errors on foreign or damaged files vary in type
        raise CheckpointError(
            f"{path}: cannot be read as a PyTorch checkpoint of tensors ({_load_failure(err)}); {AGAIN}"
        ) from err


def _load_failure(err: Exception) -> str:
    """torch.load's reason in one line: the unpickler's own line when it names one (e.g. a class that is
    not a tensor), else the error's type and first line (a damaged file's messages can be empty)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("WeightsUnpickler error:"):
            return line[:200]
    return f"{type(err).__name__}: {lines[0]}"[:200] if lines else type(err).__name__


def detect_format(state: Any) -> str:
    """cycle | moco | simsiam | torchvision, or "" when the contents match none of them."""
    if not isinstance(state, dict):
        return ""
    if state.get("format") in (PRETRAIN_FORMAT, BACKBONE_FORMAT):  # a run's full state, or its backbone export
        return "cycle"
    inner = state.get("state_dict")
    for fmt, prefixes in RELEASE_PREFIXES.items():
        if isinstance(inner, dict) and any(str(k).startswith(prefixes) for k in inner):
            return fmt
    weights = inner if isinstance(inner, dict) else state
    if "conv1.weight" in weights and "layer1.0.conv1.weight" in weights:
        return "torchvision"
    return ""


def _strip(weights: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}


def backbone_weights(path: Path, state: Any, fmt: str) -> dict[str, Tensor]:
    """The ResNet trunk's weights of a checkpoint in format ``fmt``, heads and classifier dropped."""
    if fmt == "cycle":
        weights = state["backbone"] if state["format"] == BACKBONE_FORMAT else _strip(state["model"], QUERY_BACKBONE)
    elif fmt in RELEASE_PREFIXES:
        inner = state["state_dict"]
        prefix = next(p for p in RELEASE_PREFIXES[fmt] if any(k.startswith(p) for k in inner))
        weights = _strip(inner, prefix)
    else:
        weights = state["state_dict"] if isinstance(state.get("state_dict"), dict) else state
    weights = {k: v for k, v in weights.items() if not k.startswith("fc")}  # projection head / classifier
    if not weights:
        raise CheckpointError(f"{path}: no backbone weights found in this {fmt}-format checkpoint")
    return weights


def infer_arch(path: Path, weights: dict[str, Tensor]) -> str:
    """The supported architecture whose parameter names and shapes the weights match exactly."""
    for arch in ARCHITECTURES:
        shapes = _trunk_shapes(arch)
        if set(weights) == set(shapes) and all(weights[k].shape == shapes[k] for k in shapes):
            return arch
    closest = min(ARCHITECTURES, key=lambda a: len(set(weights) ^ set(_trunk_shapes(a))))
    shapes = _trunk_shapes(closest)
    missing = sorted(set(shapes) - set(weights))
    unexpected = sorted(set(weights) - set(shapes))
    wrong = sorted(k for k in set(shapes) & set(weights) if weights[k].shape != shapes[k])
    details = "; ".join(
        f"{what}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''} ({len(keys)})"
        for what, keys in (("missing", missing), ("unexpected", unexpected), ("other shape", wrong))
        if keys
    )
    raise CheckpointError(
        f"{path}: the backbone is not one of {', '.join(ARCHITECTURES)} (closest: {closest}; {details})"
    )


def _pretrain_link(path: Path, state: dict[str, Any]) -> tuple[str | None, str | None]:
    """Our checkpoint's run name and the MLflow run id its run folder recorded."""
    run_id = None
    summary, id_file = path.parent / SUMMARY, path.parent / MLFLOW_RUN_ID
    if summary.is_file():
        run_id = json.loads(summary.read_text()).get("mlflow_run_id")
    elif id_file.is_file():
        run_id = id_file.read_text().strip() or None
    return state.get("run"), run_id


def load_backbone(checkpoint: str | Path, fmt: Format = "auto", arch: str | None = None, seed: int = 0) -> Backbone:
    """Load ``checkpoint`` (or a seeded random initialisation for ``"random"``) as a frozen-evaluation
    backbone. ``arch``, when given, must match the checkpoint's architecture."""
    if str(checkpoint) == RANDOM:
        if arch not in ARCHITECTURES:
            raise CheckpointError(f"a random backbone needs an architecture: one of {', '.join(ARCHITECTURES)}")
        torch.manual_seed(seed)
        net, width = build_backbone(arch)
        return Backbone(net.eval(), arch, width, RANDOM, RANDOM)

    path = Path(checkpoint)
    state = _read(path)
    found = detect_format(state)
    if not found:
        keys = list(state)[:6] if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{path}: unknown checkpoint format (top level: {keys}). Expected a pretraining checkpoint of this "
            "package, a MoCo / CycleContrast release ('state_dict' with 'module.encoder_q.*'), a SimSiam release "
            "('state_dict' with 'module.encoder.*') or a torchvision ResNet state dict"
        )
    if fmt != "auto" and fmt != found:
        raise CheckpointError(f"{path}: this is a {found}-format checkpoint, not {fmt} as requested")
    weights = backbone_weights(path, state, found)
    found_arch = infer_arch(path, weights)
    if found == "cycle":
        configured = state["config"]["model"]["backbone"]
        if configured != found_arch:
            raise CheckpointError(f"{path}: its config names {configured} but its weights are a {found_arch}")
    if arch is not None and arch != found_arch:
        raise CheckpointError(f"{path}: holds a {found_arch} backbone, but {arch} was asked for")
    net, width = build_backbone(found_arch)
    net.load_state_dict(weights)
    run, run_id = _pretrain_link(path, state) if found == "cycle" else (None, None)
    return Backbone(net.eval(), found_arch, width, str(path), found, run, run_id)
