"""UCF101 retrieval's settings (the section ``eval.retrieval``): their defaults, ranges and checks,
and the protocol they describe in words (the tables' headers). Free of torch: the Snakefile reads the
settings, and a table job the words, without importing the evaluation (:mod:`.retrieval`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..settings.typed_yaml import AT_LEAST_1, Range
from .action_settings import SPLIT


@dataclass
class RetrievalEvalConfig:
    """UCF101 nearest-neighbour retrieval (Table 11): test videos query train videos by cosine."""

    split: int = 1
    frames_per_video: int = 10  # frame retrieval: at linspace(0, len - 1, n)
    frame_resize: int = 256  # Resize((256, 256)) + CenterCrop(224)
    frame_crop: int = 224
    clips_per_video: int = 10  # clip retrieval: centred at linspace(len/2 of a clip, len - that, n)
    clip_length: int = 16
    clip_resize: list[int] = field(default_factory=lambda: [128, 171])  # Resize((128, 171)) + CenterCrop(112)
    clip_crop: int = 112
    topk: list[int] = field(default_factory=lambda: [1, 5, 10, 20, 50])

    def check(self, key: str) -> None:
        """Raise a ConfigError for settings that do not fit together (``key``: this section's)."""
        if len(self.clip_resize) != 2:
            raise ConfigError(f"{key}.clip_resize: expected [height, width]")
        if not self.topk:
            raise ConfigError(f"{key}.topk: expected a list of positive integers")


RANGES: dict[type, dict[str, Range]] = {
    RetrievalEvalConfig: {
        "split": SPLIT,
        **dict.fromkeys(
            (
                "frames_per_video",
                "frame_resize",
                "frame_crop",
                "clips_per_video",
                "clip_length",
                "clip_resize",
                "clip_crop",
                "topk",
            ),
            AT_LEAST_1,
        ),
    },
}


def describe(settings: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The retrieval protocol behind a metrics file, in words (for the tables)."""
    s = settings
    return (
        f"nearest neighbours by cosine similarity on the frozen backbone, test videos querying train videos: "
        f"{s['frames_per_video']} frames per video, or {s['clips_per_video']} clips of {s['clip_length']} frames, "
        "their features averaged per video"
    )
