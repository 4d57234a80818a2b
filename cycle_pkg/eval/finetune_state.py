"""What a fine-tuning run (:mod:`.finetune`) keeps in its state file to resume: how far it got
(:class:`Progress`), the model's weights and the optimizer's state, under a fingerprint of the run's
settings, backbone and data. A state file of another run is set aside, never resumed."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..jobs.atomic import write_bytes_atomic
from .features import files_digest, weights_digest
from .finetune_settings import FinetuneEvalConfig
from .video import Video

log = logging.getLogger(__name__)
FORMAT = "cycle_pkg.finetune/1"
STATE = "checkpoint.pt"


@dataclass
class Progress:
    """How far a run got: epochs of the schedule finished, steps into the next one (with its running
    sums), the loss of the very first step (at the initial weights), each finished epoch's mean
    training loss and clip accuracy, and the training time."""

    epoch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    first_loss: float = math.nan
    losses: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    train_seconds: float = 0.0


def fingerprint(cfg: FinetuneEvalConfig, net: nn.Module, train: Sequence[Video], classes: int) -> str:
    """What a state file must have been written for: the settings, the backbone's weights, the training
    videos with their labels and the number of classes."""
    settings = json.dumps(dataclasses.asdict(cfg), sort_keys=True)
    identity = f"{settings}\n{weights_digest(net)}\n{files_digest([p for p, _ in train], [c for _, c in train])}"
    return hashlib.blake2b(f"{identity}\n{classes}".encode(), digest_size=16).hexdigest()


def restore(path: Path, run: str, model: nn.Module) -> tuple[Progress, dict[str, Any] | None]:
    """The progress and optimizer state saved at ``path`` for the run of fingerprint ``run``, its weights
    loaded into ``model``; a state file of other settings, another backbone or other data is set aside
    and the run starts afresh."""
    if not path.is_file():
        return Progress(), None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != FORMAT or state.get("fingerprint") != run:
        aside = path.with_name(f"{path.stem}.replaced-{time.strftime('%Y%m%d-%H%M%S')}.pt")
        log.warning("%s holds another fine-tuning (settings, backbone or data); moved to %s", path, aside)
        path.rename(aside)
        return Progress(), None
    model.load_state_dict(state["model"])
    progress = Progress(**state["progress"])
    log.info("resuming the fine-tuning from epoch %d, step %d (%s)", progress.epoch + 1, progress.step, path)
    return progress, state["optimizer"]


def save(path: Path, run: str, progress: Progress, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
    """The run's state, written atomically (``optimizer`` None: nothing left to resume it for)."""
    state = {
        "format": FORMAT,
        "fingerprint": run,
        "progress": dataclasses.asdict(progress),
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes_atomic(path, buffer.getvalue())
