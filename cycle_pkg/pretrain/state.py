"""Pretraining checkpoints: written atomically and read back before they replace the last good one,
found again on restart (the newest readable one), checked against the config; the backbone-only
export a finished run leaves for its evaluations.

A run folder holds ``checkpoint.pt`` (the newest full training state: both encoders, queues,
optimizer) and, while the run trains, ``checkpoint.previous.pt`` (the one before it), so that a
newest file damaged after its write (a power loss, a full disk, a copy cut short) costs at most
``pretrain.checkpoint_every`` steps. A finished run keeps ``backbone.pt`` and, unless
``pretrain.keep_training_state`` is off, ``checkpoint.pt`` to continue training from.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..jobs.atomic import atomic_file, write_bytes_atomic
from ..jobs.layout import BACKBONE
from ..settings.config import Config

log = logging.getLogger(__name__)
FORMAT = "cycle_pkg.pretrain/1"
BACKBONE_FORMAT = "cycle_pkg.backbone/1"
CHECKPOINT = "checkpoint.pt"
PREVIOUS = "checkpoint.previous.pt"
QUERY_BACKBONE = "encoder_q.backbone."  # the trunk the evaluations read, in the model's state dict


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to a temporary file, read it back, then make it ``path``; the checkpoint it
    replaces becomes the previous one. A write that does not read back leaves both as they were."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)

    def verified(written: Path) -> None:
        try:
            step = load_checkpoint(written)["step"]
        except Exception as err:  # torch's errors on a damaged file vary in type
            raise CheckpointError(f"{path}: the checkpoint just written does not read back ({_reason(err)})") from err
        if step != state["step"]:
            raise CheckpointError(f"{path}: the checkpoint just written reads back step {step}, not {state['step']}")
        if path.is_file():
            os.replace(path, path.with_name(PREVIOUS))

    with atomic_file(path, before_replace=verified) as handle:
        handle.write(buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a pretraining checkpoint of this package (format {FORMAT})")
    return state


def _reason(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0][:200]}" if str(err) else type(err).__name__


def newest_readable(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint of ``run_dir`` that reads, and its state; None for a run not started.
    Each unreadable one is logged with its reason; none readable is an error that says what to do."""
    unreadable = []
    for path in (run_dir / CHECKPOINT, run_dir / PREVIOUS):
        if not path.is_file():
            continue
        try:
            return path, load_checkpoint(path)
        except Exception as err:  # an empty file, a cut zip archive, another format
            log.warning("skipping %s: unreadable (%s)", path, _reason(err))
            unreadable.append(f"{path}: unreadable ({_reason(err)})")
    if unreadable:
        raise CheckpointError(
            f"{'; '.join(unreadable)}. Delete the run folder to train the run from the start, or put a readable "
            f"copy of {CHECKPOINT} back to resume it"
        )
    return None


def make_current(path: Path) -> None:
    """Make the previous checkpoint the current one once it has been resumed from (the damaged newest one
    goes): the next save then keeps it as the previous one, never the damaged file."""
    if path.name != CHECKPOINT:
        os.replace(path, path.with_name(CHECKPOINT))


def export_backbone(run_dir: Path, run: str, config: Config, model_state: dict[str, Any], step: int) -> Path:
    """The query backbone alone (a torchvision ResNet's state dict without ``fc``), what evaluations read:
    a third of the full state for a ResNet-18 at the paper's scale."""
    weights = {k.removeprefix(QUERY_BACKBONE): v for k, v in model_state.items() if k.startswith(QUERY_BACKBONE)}
    buffer = io.BytesIO()
    torch.save(
        {"format": BACKBONE_FORMAT, "run": run, "step": step, "config": config.to_dict(), "backbone": weights}, buffer
    )
    write_bytes_atomic(run_dir / BACKBONE, buffer.getvalue())
    return run_dir / BACKBONE


def finish_folder(run_dir: Path, keep_training_state: bool) -> None:
    """A finished run keeps one full state (or none, without ``keep_training_state``) beside its backbone."""
    drop = [run_dir / PREVIOUS] + ([] if keep_training_state else [run_dir / CHECKPOINT])
    for path in drop:
        if path.is_file():
            path.unlink()
            log.info("removed %s: the run is finished (%s keeps its backbone)", path, BACKBONE)
