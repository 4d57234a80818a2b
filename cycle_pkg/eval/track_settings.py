"""SiamFC tracking's settings (the section ``eval.track``) and the constants of its geometry: their
defaults, ranges and checks, and the protocol they describe in words (the tables' headers). Free of
torch: the Snakefile reads the settings, and a table job the words, without importing the evaluation
(:mod:`.tracking`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigError
from ..settings.typed_yaml import AT_LEAST_0, AT_LEAST_1, FRACTION, POSITIVE, Range

SIAMFC_STRIDE = 8  # the dilated backbone's output stride in SiamFC
SIAMFC_SEARCH_MARGIN = 16  # training crops the search image to instance_size - 16 (a random shift of up to 4 px)


@dataclass
class TrackEvalConfig:
    """SiamFC on the frozen backbone at output stride 8, trained on GOT-10k, tested on OTB-2015 (Tables
    1-2); the authors' settings (mmaction2-CycleContrast, projects/siamfc-pytorch)."""

    head_channels: int | None = None  # the 1x1 convs' output; None = 512 (R18) / 1024 (R50)
    out_scale: float | None = None  # None = 1e-3 (R18) / 1e-5 (R50)
    exemplar_size: int = 120
    instance_size: int = 255
    context: float = 0.5
    scale_num: int = 3
    scale_step: float = 1.0375
    scale_lr: float = 0.59
    scale_penalty: float = 0.9745
    window_influence: float = 0.176
    response_up: int = 16
    # authors: the response is upsampled to response_up x response_size (272 px) whatever its real size, and
    # displacements are read at that size; exact: it is upsampled to response_up x its real size
    response_geometry: Literal["authors", "exact"] = "authors"
    response_size: int = 17  # the authors' response side (their upsampling assumes it)
    r_pos: float = 16.0  # pixels of the instance crop labelled positive around its centre
    epochs: int = 50
    batch_size: int = 8
    lr: float = 1e-3  # Adam, decayed exponentially to final_lr over the epochs
    final_lr: float = 1e-5
    focal_gamma: float = 2.0
    max_frame_gap: int = 100  # a training pair's frames are fewer than this apart
    min_box_side: float = 20.0  # training frames whose box is smaller or larger (pixels) are skipped
    max_box_side: float = 500.0
    max_frames: int | None = None  # track only the first frames of each test sequence (CPU scales); None = all
    max_sequences: int | None = None  # track only the first OTB-2015 targets, in the toolkit's order (CPU scales)
    seed: int = 0

    def training_response_size(self) -> int:
        """The side of the response map in training (features are ceil(side / stride))."""
        search, exemplar = (
            math.ceil(side / SIAMFC_STRIDE) for side in (self.instance_size - SIAMFC_SEARCH_MARGIN, self.exemplar_size)
        )
        return search - exemplar + 1

    def check(self, key: str) -> None:
        """Raise a ConfigError for settings that do not fit together (``key``: this section's)."""
        if self.instance_size <= self.exemplar_size or self.scale_num % 2 == 0:
            raise ConfigError(
                f"{key}: instance_size must exceed exemplar_size, and scale_num must be odd (a centre scale)"
            )
        # The training response map must reach beyond the positive radius, or the loss has no negatives.
        response = self.training_response_size()
        if response <= 2 * int(self.r_pos // SIAMFC_STRIDE) + 1:
            raise ConfigError(
                f"{key}: the training response map ({response}x{response} cells of {SIAMFC_STRIDE} px) lies within "
                f"r_pos={self.r_pos} px of its centre, so every cell is a positive: raise {key}.instance_size "
                "(the paper scale has exemplar_size 120, instance_size 255) or lower r_pos"
            )


RANGES: dict[type, dict[str, Range]] = {
    TrackEvalConfig: {
        "head_channels": AT_LEAST_1,
        "out_scale": POSITIVE,
        "exemplar_size": Range(16),
        "instance_size": Range(16),
        "context": AT_LEAST_0,
        "scale_num": AT_LEAST_1,
        "scale_step": Range(1),
        "scale_lr": FRACTION,
        "scale_penalty": Range(0, 1, low_open=True),
        "window_influence": FRACTION,
        "response_up": AT_LEAST_1,
        "response_size": AT_LEAST_1,
        "r_pos": POSITIVE,
        "epochs": AT_LEAST_1,
        "batch_size": AT_LEAST_1,
        "lr": POSITIVE,
        "final_lr": POSITIVE,
        "focal_gamma": AT_LEAST_0,
        "max_frame_gap": AT_LEAST_1,
        "min_box_side": AT_LEAST_0,
        "max_box_side": POSITIVE,
        "max_frames": Range(2),  # a sequence needs two frames to track
        "max_sequences": AT_LEAST_1,
        "seed": AT_LEAST_0,
    },
}


def describe(settings: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The tracking protocol behind a metrics file, in words (for the tables)."""
    s = settings
    geometry = (
        f"the authors' response geometry (upsampled to {s['response_up']} x {s['response_size']} px whatever its size)"
        if s["response_geometry"] == "authors"
        else f"the exact response geometry (upsampled to {s['response_up']} x its size)"
    )
    subset = [f"its first {s['max_sequences']} targets"] if s.get("max_sequences") is not None else []
    subset += [f"their first {s['max_frames']} frames"] if s["max_frames"] is not None else []
    frames = f" ({', '.join(subset)})" if subset else ""
    return (
        f"SiamFC on the frozen stride-8 backbone, its head trained {s['epochs']} epochs on GOT-10k pairs of frames "
        f"that pass the authors' size, aspect and visibility filters, tracking OTB-2015{frames} with {geometry}"
    )
