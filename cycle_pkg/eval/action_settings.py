"""UCF101 action recognition's settings (the section ``eval.action``): their defaults, ranges and
checks, and the protocol they describe in words (the tables' headers). Free of torch: the Snakefile
reads the settings, and a table job the words, without importing the evaluation (:mod:`.action`).
Table 9's fine-tuning extends them (:mod:`.finetune_settings`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigError
from ..settings.typed_yaml import AT_LEAST_0, AT_LEAST_1, POSITIVE, Range
from .linear_settings import check_milestones

SPLIT = Range(1, 3)  # UCF101's three official splits


@dataclass
class ActionEvalConfig:
    """UCF101 action recognition on frozen per-frame features (Table 10): AVID-CMA's linear setting."""

    split: int = 1
    clip_frames: int = 8  # 0.5 s at 16 fps
    clip_fps: float = 16.0
    train_clips: int = 10  # random clips per video and epoch
    test_clips: int = 10  # uniformly spaced clips per test video, softmax averaged
    image_size: int = 224
    resize: int = 256  # test: Resize(resize) + CenterCrop(image_size)
    min_area: float = 0.08  # train: RandomResizedCrop scale
    color_jitter: list[float] = field(default_factory=lambda: [0.4, 0.4, 0.4, 0.2])
    dropout: float = 0.5
    warmup_epochs: int = 5  # the classifier alone at the base lr first
    epochs: int = 16
    batch_size: int = 64
    lr: float = 1e-4  # Adam
    lr_decay: float = 0.3
    milestones: list[int] = field(default_factory=lambda: [6, 10, 14])
    # The weights stay frozen either way. train: the authors' (AVID-CMA puts the model in train mode): each
    # batch of batch_size clips is normalised with its own statistics while the classifier trains, the running
    # statistics follow UCF101 and are used at test; eval: the pretraining statistics throughout
    batch_norm: Literal["train", "eval"] = "train"
    seed: int = 0

    def check(self, key: str) -> None:
        """Raise a ConfigError for settings that do not fit together (``key``: this section's)."""
        check_milestones(self.milestones, key)
        if len(self.color_jitter) != 4:
            raise ConfigError(f"{key}.color_jitter: expected [brightness, contrast, saturation, hue]")
        if self.warmup_epochs + self.epochs < 1:
            raise ConfigError(f"{key}: warmup_epochs + epochs must be at least 1")


RANGES: dict[type, dict[str, Range]] = {
    ActionEvalConfig: {
        "split": SPLIT,
        "clip_frames": AT_LEAST_1,
        "clip_fps": POSITIVE,
        "train_clips": AT_LEAST_1,
        "test_clips": AT_LEAST_1,
        "image_size": Range(16),
        "resize": Range(16),
        "min_area": Range(0, 1, low_open=True),
        "color_jitter": AT_LEAST_0,
        "dropout": Range(0, 1, high_open=True),
        "warmup_epochs": AT_LEAST_0,
        "epochs": AT_LEAST_0,  # with warmup_epochs, at least one (ActionEvalConfig.check)
        "batch_size": AT_LEAST_1,
        "lr": POSITIVE,
        "lr_decay": POSITIVE,
        "milestones": AT_LEAST_1,
        "seed": AT_LEAST_0,
    },
}


def describe(settings: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The action-recognition protocol behind a metrics file, in words (for the tables)."""
    s = settings
    # metrics files written before the setting existed kept the pretraining statistics
    if s.get("batch_norm", "eval") == "train":
        batch_norm = (
            f"BatchNorm in train mode as the authors' (groups of {s['batch_size']} clips, running statistics "
            "re-estimated on UCF101 and used at test)"
        )
    else:
        batch_norm = "BatchNorm with the pretraining statistics, not the authors' train mode"
    return (
        f"AVID-CMA's linear setting on the frozen backbone: {s['clip_frames']}-frame clips at {s['clip_fps']:g} fps, "
        f"features averaged over time, dropout {s['dropout']:g}, one linear layer; {batch_norm}; Adam lr {s['lr']:g}, "
        f"{s['warmup_epochs']} + {s['epochs']} epochs; {s['test_clips']} test clips per video averaged"
    )
