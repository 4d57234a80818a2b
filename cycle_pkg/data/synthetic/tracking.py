"""The tracking parts of the synthetic world: GOT-10k-format and OTB-2015-format sequences whose
targets are instances of the world's latent classes, with their ground-truth boxes.

The OTB part has OTB-2015's 98 folders, and the structure of its known quirks, so that the reader
meets them as it would on the real data: David is annotated on frames 300-770 only, Football1,
Freeman3, Freeman4 and Diving have more frames than boxes, Jogging and Skating2 hold two targets,
Human4's first box file is empty, Board numbers its frames with five digits, and the box files use
commas, tabs or spaces. Boxes are the targets' pixel extents (x, y, w, h), 0-based.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...config import WorldConfig
from ..tracking import otb_folders
from .motion import mask_box, wander_path
from .scene import LatentClass, background, jpeg_bytes, new_instance, render_in_window

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


def sequence(
    rng: np.random.Generator, classes: list[LatentClass], frames: int, height: int, width: int, targets: int = 1
) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """Frames (uint8), each target's boxes (frames, 4) and each target's latent class."""
    room = width // 4
    scene = background(rng, height, width + room)
    labels = [int(rng.integers(len(classes))) for _ in range(targets)]
    instances = [new_instance(classes[label], rng) for label in labels]
    paths = [wander_path(rng, frames, height, width, room) for _ in range(targets)]
    images, boxes = [], [np.zeros((frames, 4)) for _ in range(targets)]
    for t in range(frames):
        pan = paths[0][t].pan  # one camera for all targets
        view = scene[:, pan : pan + width]
        for k, (instance, path) in enumerate(zip(instances, paths, strict=True)):
            pose = path[t]
            light = pose.light if k == targets - 1 else np.ones(3)  # the scene is lit once, at the end
            image, coverage = render_in_window(instance, view, pose.center, pose.radius, pose.angle, light)
            view = image / 255.0
            box = mask_box(coverage)
            boxes[k][t] = box if box is not None else boxes[k][max(t - 1, 0)]
        images.append(image)
    return images, boxes, labels


def _write_frames(folder: Path, images: list[np.ndarray], digits: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for number, image in enumerate(images, start=1):
        (folder / f"{number:0{digits}d}.jpg").write_bytes(jpeg_bytes(image))


def write_got10k(root: Path, world: WorldConfig, classes: list[LatentClass]) -> None:
    """``<subset>/list.txt`` and ``<subset>/GOT-10k_<Subset>_<nnnnnn>/`` with frames, groundtruth.txt
    and, outside the test subset, meta_info.ini and the per-frame labels."""
    rng = np.random.default_rng([world.seed, 11])
    for subset, count in zip(("train", "val", "test"), world.got10k_sequences, strict=True):
        names = [f"GOT-10k_{subset.title()}_{number:06d}" for number in range(1, count + 1)]
        for name in names:
            folder = root / subset / name
            images, (boxes,), (label,) = sequence(
                rng, classes, world.got10k_frames, world.frame_height, world.frame_width
            )
            _write_frames(folder, images, digits=8)
            lines = boxes if subset != "test" else boxes[:1]
            (folder / "groundtruth.txt").write_text("".join(",".join(f"{v:.4f}" for v in box) + "\n" for box in lines))
            if subset == "test":
                continue
            latent = classes[label]
            (folder / "meta_info.ini").write_text(
                "[METAINFO]\n"
                f"url: synthetic://world-{world.seed}/{subset}/{name}\n"
                f"begin: 00:00:00\nend: 00:00:{len(images) // 10:02d}\nanno_fps: 10Hz\n"
                f"object_class: {latent.pattern} {latent.shape}\nmotion_class: wandering\n"
                f"major_class: {latent.shape}\nroot_class: object\nmotion_adverb: smoothly\n"
                f"resolution: ({world.frame_width}, {world.frame_height})\n"
            )
            # The targets stay whole inside the frame: present, fully visible (8 of 8), never cut.
            for label_file, value in (("absence.label", 0), ("cover.label", 8), ("cut_by_image.label", 0)):
                (folder / label_file).write_text(f"{value}\n" * len(images))
        (root / subset).mkdir(parents=True, exist_ok=True)
        (root / subset / "list.txt").write_text("\n".join(names) + "\n")


def _box_lines(boxes: np.ndarray, delimiter: str) -> str:
    return "".join(delimiter.join(str(int(v)) for v in box) + "\n" for box in boxes)


def write_otb(root: Path, world: WorldConfig, classes: list[LatentClass]) -> None:
    """``<Sequence>/img/0001.jpg ...`` and ``groundtruth_rect[.n].txt`` for OTB-2015's 98 folders."""
    rng = np.random.default_rng([world.seed, 12])
    for number, name in enumerate(otb_folders()):
        frames, annotated = OTB_ANNOTATED.get(name, (world.otb_frames, slice(None)))
        targets = 2 if name in OTB_TWO_TARGETS else 1
        images, boxes, _ = sequence(rng, classes, frames, world.frame_height, world.frame_width, targets)
        folder = root / name
        _write_frames(folder / "img", images, digits=5 if name in OTB_FIVE_DIGIT_FRAMES else 4)
        delimiter = {1: "\t", 3: " "}.get(number % 5, ",")
        if targets == 2:
            for k, target_boxes in enumerate(boxes, start=1):
                (folder / f"groundtruth_rect.{k}.txt").write_text(_box_lines(target_boxes[annotated], delimiter))
        elif name in OTB_EMPTY_FIRST_BOXES:
            (folder / "groundtruth_rect.1.txt").write_text("")
            (folder / "groundtruth_rect.2.txt").write_text(_box_lines(boxes[0][annotated], delimiter))
        else:
            (folder / "groundtruth_rect.txt").write_text(_box_lines(boxes[0][annotated], delimiter))
