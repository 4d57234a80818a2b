"""The synthetic world's OTB-2015-format part: OTB-2015's 98 folders, with the structure of its
known quirks, so that the reader meets them as it would on the real data: David is annotated on
frames 300-770 only, Football1, Freeman3, Freeman4 and Diving have more frames than boxes, Jogging
and Skating2 hold two targets, Human4's first box file is empty, Board numbers its frames with five
digits, and the box files use commas, tabs or spaces.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...settings.sections import WorldConfig
from ..otb import otb_folders
from .scene import LatentClass
from .targets import sequence, write_frames

# OTB-2015 sequences whose frames outnumber their boxes: (frames, the annotated ones).
OTB_ANNOTATED = {
    "David": (770, slice(299, 770)),
    "Football1": (82, slice(0, 74)),
    "Freeman3": (468, slice(0, 460)),
    "Freeman4": (291, slice(0, 283)),
    "Diving": (223, slice(0, 215)),
}
OTB_TWO_TARGETS = ("Jogging", "Skating2")
OTB_EMPTY_FIRST_BOXES = ("Human4",)
OTB_FIVE_DIGIT_FRAMES = ("Board",)


def _box_lines(boxes: np.ndarray, delimiter: str) -> str:
    return "".join(delimiter.join(str(int(v)) for v in box) + "\n" for box in boxes)


def write_otb(root: Path, world: WorldConfig, classes: list[LatentClass]) -> None:
    """``<Sequence>/img/0001.jpg ...`` and ``groundtruth_rect[.n].txt`` for OTB-2015's 98 folders."""
    rng = np.random.default_rng([world.seed, 12])
    for number, name in enumerate(otb_folders()):
        frames, annotated = OTB_ANNOTATED.get(name, (world.otb_frames, slice(None)))
        targets = 2 if name in OTB_TWO_TARGETS else 1
        images, boxes, _, _ = sequence(
            rng, classes, frames, world.frame_height, world.frame_width, world.pattern_scale, targets
        )
        folder = root / name
        write_frames(folder / "img", images, digits=5 if name in OTB_FIVE_DIGIT_FRAMES else 4)
        delimiter = {1: "\t", 3: " "}.get(number % 5, ",")
        if targets == 2:
            for k, target_boxes in enumerate(boxes, start=1):
                (folder / f"groundtruth_rect.{k}.txt").write_text(_box_lines(target_boxes[annotated], delimiter))
        elif name in OTB_EMPTY_FIRST_BOXES:
            (folder / "groundtruth_rect.1.txt").write_text("")
            (folder / "groundtruth_rect.2.txt").write_text(_box_lines(boxes[0][annotated], delimiter))
        else:
            (folder / "groundtruth_rect.txt").write_text(_box_lines(boxes[0][annotated], delimiter))
