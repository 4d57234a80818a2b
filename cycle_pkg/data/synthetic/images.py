"""The still-image parts of the synthetic world: R2V2-format videos of four frames and an
ImageNet-format labelled image set of the same latent classes."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np

from ...jobs.atomic import write_text_atomic
from ...settings.sections import WorldConfig
from ..imagenet import imagenet100_wnids
from ..r2v2 import frame_relpath, latent_classes_path
from .scene import LatentClass, jpeg_bytes, new_instance, video_frames

YOUTUBE_ALPHABET = string.ascii_letters + string.digits + "-_"
FRAME_GAP = 150  # R2V2 frames are usually 150 apart


def class_wnids(classes: int) -> list[str]:
    """WordNet ids for the latent classes: every other class is one of ImageNet-100's, so that
    selecting the ImageNet-100 subset of the synthetic ImageNet keeps half of the classes."""
    in100 = imagenet100_wnids()
    return [in100[i // 2] if i % 2 == 0 else f"n9{i:07d}" for i in range(classes)]


def youtube_like_id(rng: np.random.Generator) -> str:
    return "".join(YOUTUBE_ALPHABET[i] for i in rng.integers(0, len(YOUTUBE_ALPHABET), size=11))


def write_r2v2(root: Path, split: str, videos: int, world: WorldConfig, classes: list[LatentClass]) -> None:
    """Write ``videos`` R2V2-format videos: ``<split>/<id[:2]>/<id>_<frame:06d>.jpg`` and
    ``r2v2_ids_<split>.txt`` (``id,f1,f2,f3,f4``), plus ``latent_classes_<split>.csv`` (id,class),
    which the real dataset does not have and which only the world's own analyses read."""
    rng = np.random.default_rng([world.seed, 1 if split == "train" else 2])
    id_lines, label_lines, seen = [], ["video,class"], set()
    for _ in range(videos):
        vid = youtube_like_id(rng)
        while vid in seen:
            vid = youtube_like_id(rng)
        seen.add(vid)
        label = int(rng.integers(len(classes)))
        first = int(rng.integers(0, 3000))
        numbers = [first + FRAME_GAP * t for t in range(4)]
        instance = new_instance(classes[label], rng, world.pattern_scale)
        frames = video_frames(instance, rng, world.frame_height, world.frame_width)
        for number, image in zip(numbers, frames, strict=True):
            path = root / frame_relpath(split, vid, number)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(jpeg_bytes(image))
        id_lines.append(",".join([vid, *map(str, numbers)]))
        label_lines.append(f"{vid},{label}")
    (root / f"r2v2_ids_{split}.txt").write_text("\n".join(id_lines) + "\n")
    latent_classes_path(root, split).write_text("\n".join(label_lines) + "\n")


def write_imagefolder(root: Path, world: WorldConfig, classes: list[LatentClass]) -> None:
    """An ImageNet-format labelled set of the same latent classes, new instances:
    ``train/<wnid>/<wnid>_<n>.JPEG`` and ``val/<wnid>/ILSVRC2012_val_<n>.JPEG``."""
    wnids = class_wnids(len(classes))
    counter = 0
    for split, per_class, stream in (("train", world.images_per_class, 3), ("val", world.val_images_per_class, 4)):
        rng = np.random.default_rng([world.seed, stream])
        for wnid, latent in zip(wnids, classes, strict=True):
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(per_class):
                instance = new_instance(latent, rng, world.pattern_scale)
                image = video_frames(instance, rng, world.frame_height, world.frame_width)[int(rng.integers(4))]
                counter += 1
                name = f"{wnid}_{n}.JPEG" if split == "train" else f"ILSVRC2012_val_{counter:08d}.JPEG"
                (folder / name).write_bytes(jpeg_bytes(image))
    write_text_atomic(
        root / "classes.txt", "".join(f"{w} {c.shape}-{c.pattern}\n" for w, c in zip(wnids, classes, strict=True))
    )
