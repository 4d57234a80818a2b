"""Occluders for the world's GOT-10k-format sequences, and the per-frame visibility they leave.

GOT-10k labels every training frame with ``cover``, the visible part of the target in nine levels:
0 (hidden), 1 (under 15%), 2 (15-30%), 3 (30-45%), 4 (45-60%), 5 (60-75%), 6 (75-90%), 7 (90% up to
whole) and 8 (whole). SiamFC's training keeps frames above max(1, 0.3 x the sequence's largest
cover). So that the world exercises that filter, a grey bar passes in front of the target of some
sequences (``sweep``: a band of a third of the frame's width crossing it once, leaving frames at
every level) and hides it in others from the second frame on (``curtain``: a sequence with a
single usable frame). The boxes stay the target's whole extent, as if it were in view.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Occlusion = Literal["none", "sweep", "curtain"]
OCCLUDER = np.array([112, 112, 112], dtype=np.uint8)  # a flat grey, unlike any object's pattern
SWEEP_WIDTH = 1 / 3  # of the frame's width
COVER_LEVELS = (0.15, 0.3, 0.45, 0.6, 0.75, 0.9)  # where levels 2-7 start, as visible fractions


def occlusion_of(number: int) -> Occlusion:
    """The occlusion of a subset's ``number``-th sequence (0-based): of every six, two are swept
    and one curtained."""
    return {1: "sweep", 4: "sweep", 5: "curtain"}.get(number % 6, "none")


def occluded_columns(occlusion: Occlusion, frame: int, frames: int, width: int) -> tuple[int, int]:
    """The columns [start, stop) the occluder covers in ``frame`` of ``frames``."""
    if occlusion == "curtain":
        return (0, width) if frame >= 1 else (0, 0)
    if occlusion == "sweep":
        band = round(SWEEP_WIDTH * width)
        left = round(-band + (width + band) * frame / max(frames - 1, 1))  # from beyond the left edge to the right
        return max(0, left), max(0, min(width, left + band))
    return 0, 0


def cover_level(visible: float) -> int:
    """GOT-10k's cover level of a target of which this fraction is in view."""
    if visible <= 0:
        return 0
    if visible >= 1:
        return 8
    return 1 + sum(visible >= start for start in COVER_LEVELS)


def occlude(image: np.ndarray, coverage: np.ndarray, columns: tuple[int, int]) -> tuple[np.ndarray, int]:
    """The frame with the occluder over ``columns``, and the target's cover level in it (``coverage``:
    the target's share of each pixel, from the renderer)."""
    start, stop = columns
    if start >= stop:
        return image, cover_level(1.0)
    total = float(coverage.sum())
    hidden = float(coverage[:, start:stop].sum())
    image = image.copy()
    image[:, start:stop] = OCCLUDER
    return image, cover_level(1.0 - hidden / total if total > 0 else 0.0)
