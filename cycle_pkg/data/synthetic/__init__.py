"""The synthetic world: a seeded generator that writes every dataset the pipeline reads, in the
real on-disk formats, so that the same readers run on it and on the real data.

Every image shows objects of latent classes (see ``scene``) over a cluttered background: R2V2-format
videos of four frames, an ImageNet-format labelled set, UCF101-format action videos (class = latent
class x motion), and GOT-10k- and OTB-2015-format tracking sequences. Because the classes are shared
across all of them, cross-video cycle-consistency has something to find, and the downstream tasks
something to measure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ...jobs.atomic import atomic_dir, write_text_atomic
from ...settings.sections import WorldConfig
from ..layout import world_stamp
from .got10k import write_got10k
from .images import class_wnids, write_imagefolder, write_r2v2
from .scene import latent_classes, new_instance, render, video_frames

log = logging.getLogger(__name__)
GENERATOR_VERSION = 4  # bump when the drawing changes, so that existing worlds are rewritten
PARTS = ("r2v2", "ucf101", "otb", "imagenet", "got10k")  # the longest first

__all__ = [
    "GENERATOR_VERSION",
    "class_wnids",
    "generate_world",
    "latent_classes",
    "new_instance",
    "render",
    "video_frames",
]


def write_part(part: str, world: WorldConfig) -> str:
    """Write one dataset of the world into ``<root>/<part>``; each part draws from its own seeds."""
    classes = latent_classes(world.classes, world.seed)
    with atomic_dir(Path(world.root) / part) as folder:
        if part == "r2v2":
            write_r2v2(folder, "train", world.videos, world, classes)
            write_r2v2(folder, "val", world.val_videos, world, classes)
        elif part == "imagenet":
            write_imagefolder(folder, world, classes)
        elif part == "ucf101":
            from .action import write_ucf101  # PyAV, needed by this part only

            write_ucf101(folder, world, classes)
        elif part == "got10k":
            write_got10k(folder, world, classes)
        else:
            from .otb import write_otb  # the got10k toolkit (OTB-2015's folder list), needed by this part only

            write_otb(folder, world, classes)
    return part


def generate_world(world: WorldConfig, force: bool = False, jobs: int = 1) -> Path:
    """Write the synthetic world under ``world.root`` (one folder per dataset, see PARTS), with
    ``jobs`` processes; a complete world with the same settings is kept as it is."""
    root = Path(world.root)
    stamp = world_stamp(root)
    settings = json.dumps({"generator": GENERATOR_VERSION, **dataclasses.asdict(world)}, sort_keys=True)
    if not force and stamp.is_file() and stamp.read_text() == settings:
        return root
    worlds = [world] * len(PARTS)
    with ProcessPoolExecutor(jobs) if jobs > 1 else contextlib.nullcontext() as pool:
        for part in (pool.map if pool else map)(write_part, PARTS, worlds):
            log.info("synthetic world: %s written", part)
    write_text_atomic(stamp, settings)
    return root
