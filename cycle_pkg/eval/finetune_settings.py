"""UCF101 fine-tuning's settings (the section ``eval.finetune``): action recognition's
(:mod:`.action_settings`) with the authors' fine-tuning values, their ranges and checks, and the
protocol they describe in words (Table 9's header). Free of torch: the Snakefile reads the settings,
and a table job the words, without importing the evaluation (:mod:`.finetune`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigError
from ..settings.typed_yaml import AT_LEAST_1, Range
from .action_settings import ActionEvalConfig


@dataclass
class FinetuneEvalConfig(ActionEvalConfig):
    """UCF101 fine-tuning of the whole network (Table 9): the authors' AVID-CMA setting 32at16 drop09."""

    clip_frames: int = 32  # 2 s at 16 fps
    train_clips: int = 5  # clips at random times per video and epoch, shuffled together
    test_clips: int = 10  # dense test: clips spread evenly over each video, softmax averaged (video top-1)
    clip_test_clips: int = 25  # clips at random times per test video, each scored on its own (clip top-1)
    dropout: float = 0.9
    batch_size: int = 32  # clips per optimiser step
    bn_clips: int = 8  # clips normalised together in a forward pass (the authors' 32 over 4 GPUs)
    batch_norm: Literal["train"] = "train"  # the whole network trains, BatchNorm included
    amp: bool = True  # bf16 autocast on GPU

    def check(self, key: str) -> None:
        """Raise a ConfigError for settings that do not fit together (``key``: this section's)."""
        super().check(key)
        if self.bn_clips > self.batch_size:
            raise ConfigError(f"{key}.bn_clips ({self.bn_clips}) must lie in [1, batch_size={self.batch_size}]")


# Those of ActionEvalConfig apply too (a subclass inherits its bases' ranges).
RANGES: dict[type, dict[str, Range]] = {FinetuneEvalConfig: {"clip_test_clips": AT_LEAST_1, "bn_clips": AT_LEAST_1}}


def describe(settings: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The fine-tuning protocol behind a metrics file, in words (for Table 9's header)."""
    s = settings
    return (
        f"AVID-CMA's fine-tuning of the whole network: {s['clip_frames']}-frame clips at {s['clip_fps']:g} fps, "
        f"BatchNorm in train mode over groups of {s['bn_clips']} clips, dropout {s['dropout']:g}; Adam lr {s['lr']:g}, "
        f"{s['warmup_epochs']} classifier-only + {s['epochs']} epochs (x{s['lr_decay']:g} at {s['milestones']}); "
        f"video top-k on {s['test_clips']} averaged clips, clip top-k on {s['clip_test_clips']}"
    )
