"""The UCF101-format part of the synthetic world: action videos as .avi files with the official
split files.

An action class is a latent class doing one motion (e.g. ``StripesRingLeft``). As in UCF101, the
clips of a class come in groups that share their scene and their object (UCF101's groups share
actor and setting), and split 1 tests on the first 7 of every 25 groups.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ...settings.sections import WorldConfig
from .motion import MOTIONS, action_path, draw
from .scene import LatentClass, background, new_instance

FPS = 25
SPLIT_FILES_NEWLINE = "\r\n"  # the official split files end their lines this way


def action_class_name(latent: LatentClass, motion: str) -> str:
    return f"{latent.pattern.title()}{latent.shape.title()}{motion}"


def write_avi(path: Path, frames: list[np.ndarray], fps: int = FPS) -> None:
    """MPEG-4 part 2 in AVI with the XVID tag, as UCF101's videos are; one encoder thread, so that
    the bytes depend on the frames alone."""
    height, width = frames[0].shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = width * height * fps  # about one bit per pixel
        stream.codec_context.thread_count = 1
        stream.codec_context.codec_tag = "XVID"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def write_ucf101(root: Path, world: WorldConfig, classes: list[LatentClass]) -> None:
    """``UCF-101/<Class>/v_<Class>_g<gg>_c<cc>.avi`` and ``ucfTrainTestlist/{classInd,trainlist01,
    testlist01}.txt``."""
    if not 1 <= world.ucf101_motions <= len(MOTIONS):
        raise ValueError(f"world.ucf101_motions={world.ucf101_motions}: between 1 and {len(MOTIONS)}")
    if world.frame_height % 2 or world.frame_width % 2:
        raise ValueError("world.frame_height and frame_width must be even for the action videos")
    rng = np.random.default_rng([world.seed, 10])
    actions = sorted(
        (action_class_name(latent, motion), latent, motion)
        for latent in classes
        for motion in MOTIONS[: world.ucf101_motions]
    )
    test_groups = math.ceil(world.ucf101_groups * 7 / 25)
    height, width, room = world.frame_height, world.frame_width, world.frame_width // 4
    train, test = [], []
    for label, (name, latent, motion) in enumerate(actions, start=1):
        for group in range(1, world.ucf101_groups + 1):
            instance = new_instance(latent, rng, world.pattern_scale)
            scene = background(rng, height, width + room)
            for clip in range(1, world.ucf101_clips + 1):
                relpath = f"{name}/v_{name}_g{group:02d}_c{clip:02d}.avi"
                poses = action_path(motion, rng, world.ucf101_frames, height, width, room)
                write_avi(root / "UCF-101" / relpath, [draw(instance, scene, pose, width)[0] for pose in poses])
                (test if group <= test_groups else train).append((relpath, label))
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    newline = SPLIT_FILES_NEWLINE
    (lists / "classInd.txt").write_text("".join(f"{i} {name}{newline}" for i, (name, _, _) in enumerate(actions, 1)))
    (lists / "trainlist01.txt").write_text("".join(f"{path} {label}{newline}" for path, label in train))
    (lists / "testlist01.txt").write_text("".join(f"{path}{newline}" for path, _ in test))
