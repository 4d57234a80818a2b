"""Tracking targets for the synthetic world's GOT-10k- and OTB-2015-format parts: instances of the
latent classes that wander over a panned scene, rendered frame by frame with their ground-truth
boxes (the targets' pixel extents, x, y, w, h, 0-based)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .motion import mask_box, wander_path
from .occlusion import Occlusion, occlude, occluded_columns
from .scene import LatentClass, background, jpeg_bytes, new_instance, render_in_window


def sequence(
    rng: np.random.Generator,
    classes: list[LatentClass],
    frames: int,
    height: int,
    width: int,
    pattern_scale: list[float],
    targets: int = 1,
    occlusion: Occlusion = "none",
) -> tuple[list[np.ndarray], list[np.ndarray], list[int], np.ndarray]:
    """Frames (uint8), each target's boxes (frames, 4), each target's latent class, and the GOT-10k
    cover level (0-8) of a single target in each frame, behind ``occlusion``'s occluder."""
    if occlusion != "none" and targets != 1:
        raise ValueError("occluders are drawn over single-target sequences only")
    room = width // 4
    scene = background(rng, height, width + room)
    labels = [int(rng.integers(len(classes))) for _ in range(targets)]
    instances = [new_instance(classes[label], rng, pattern_scale) for label in labels]
    paths = [wander_path(rng, frames, height, width, room) for _ in range(targets)]
    images, boxes, covers = [], [np.zeros((frames, 4)) for _ in range(targets)], np.zeros(frames, dtype=int)
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
        image, covers[t] = occlude(image, coverage, occluded_columns(occlusion, t, frames, width))
        images.append(image)
    return images, boxes, labels, covers


def write_frames(folder: Path, images: list[np.ndarray], digits: int) -> None:
    """``<folder>/0001.jpg ...``, numbered with ``digits`` digits."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, image in enumerate(images, start=1):
        (folder / f"{number:0{digits}d}.jpg").write_bytes(jpeg_bytes(image))
