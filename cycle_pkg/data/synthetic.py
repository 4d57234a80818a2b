"""The synthetic world: a seeded generator that writes datasets in the real on-disk formats.

Every image shows one object of a latent class over a cluttered background. A class is a shape
with a surface pattern (e.g. a striped ring, a checkered star); an instance adds its own two
colours, proportions and pattern scale. A video follows one instance for four frames while it
moves, scales, turns and is re-lit, like an R2V2 video. Because the classes are shared across
videos and with the labelled image set, cross-video cycle-consistency has something to find.
"""

from __future__ import annotations

import dataclasses
import io
import json
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import WorldConfig
from ..io_utils import atomic_dir, write_text_atomic
from .r2v2 import frame_relpath

SHAPES = ("disk", "square", "triangle", "ring", "cross", "diamond", "star", "crescent")
PATTERNS = ("solid", "stripes", "checker", "dots", "rings", "diagonal")
YOUTUBE_ALPHABET = string.ascii_letters + string.digits + "-_"
FRAME_GAP = 150  # R2V2 frames are usually 150 apart
GENERATOR_VERSION = 3  # bump when the drawing changes, so that existing worlds are rewritten


def imagenet100_wnids() -> list[str]:
    text = resources.files("cycle_pkg.data").joinpath("imagenet100.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def class_wnids(classes: int) -> list[str]:
    """WordNet ids for the latent classes: every other class is one of ImageNet-100's, so that
    selecting the ImageNet-100 subset of the synthetic ImageNet keeps half of the classes."""
    in100 = imagenet100_wnids()
    return [in100[i // 2] if i % 2 == 0 else f"n9{i:07d}" for i in range(classes)]


@dataclass(frozen=True)
class LatentClass:
    shape: str
    pattern: str


def latent_classes(count: int, seed: int) -> list[LatentClass]:
    pairs = [LatentClass(s, p) for s in SHAPES for p in PATTERNS]
    if count > len(pairs):
        raise ValueError(f"world.classes={count}: at most {len(pairs)} distinct classes can be drawn")
    order = np.random.default_rng([seed, 7]).permutation(len(pairs))
    return [pairs[i] for i in order[:count]]


@dataclass
class Instance:
    """One object: its class and the properties that stay fixed across a video."""

    latent: LatentClass
    colors: np.ndarray  # (2, 3) in [0, 1]
    aspect: float
    pattern_scale: float
    pattern_phase: float


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed inside-ness in object coordinates (u, v in about [-1, 1]); > 0 inside."""
    r = np.hypot(u, v)
    theta = np.arctan2(v, u)
    if shape == "disk":
        return 1 - r
    if shape == "square":
        return 0.8 - np.maximum(abs(u), abs(v))
    if shape == "triangle":
        return np.minimum(v + 0.7, np.minimum(0.9 - v - 1.7 * u, 0.9 - v + 1.7 * u) / 2)
    if shape == "ring":
        return 0.25 - abs(r - 0.7)
    if shape == "cross":
        return np.maximum(np.minimum(0.3 - abs(u), 0.95 - abs(v)), np.minimum(0.3 - abs(v), 0.95 - abs(u)))
    if shape == "diamond":
        return 1 - abs(u) - abs(v)
    if shape == "star":
        return 0.62 + 0.33 * np.cos(5 * theta) - r
    if shape == "crescent":
        return np.minimum(1 - r, np.hypot(u - 0.45, v) - 0.7)
    raise ValueError(shape)


def _pattern(pattern: str, u: np.ndarray, v: np.ndarray, scale: float, phase: float) -> np.ndarray:
    """Which of the instance's two colours (0..1) each pixel takes."""
    k = np.pi * scale
    if pattern == "solid":
        return np.zeros_like(u)
    if pattern == "stripes":
        wave = np.sin(k * v + phase)
    elif pattern == "checker":
        wave = np.sin(k * u + phase) * np.sin(k * v + phase)
    elif pattern == "dots":
        wave = np.cos(k * u + phase) * np.cos(k * v + phase) - 0.3
    elif pattern == "rings":
        wave = np.sin(k * np.hypot(u, v) + phase)
    elif pattern == "diagonal":
        wave = np.sin(k * (u + v) * 0.7 + phase)
    else:
        raise ValueError(pattern)
    return np.clip(wave * 4 + 0.5, 0, 1)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Muted clutter: a low-resolution random field upsampled, a few soft blobs, mostly grey so
    that the object, not the scene, is what a video's frames share most."""
    coarse = rng.uniform(0.2, 0.8, size=(4, 5, 3))
    image = (
        np.asarray(
            Image.fromarray((coarse * 255).astype(np.uint8)).resize((width, height), Image.BICUBIC), dtype=np.float32
        )
        / 255
    )
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for _ in range(rng.integers(2, 5)):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        radius = rng.uniform(0.08, 0.2) * min(height, width)
        alpha = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))[..., None] * 0.6
        image = image * (1 - alpha) + rng.uniform(0, 1, size=3) * alpha
    grey = image.mean(axis=2, keepdims=True)
    return grey + 0.3 * (image - grey)


def new_instance(latent: LatentClass, rng: np.random.Generator) -> Instance:
    colors = rng.uniform(0, 1, size=(2, 3))
    colors[1] = 1 - colors[0] * rng.uniform(0.5, 1.0)  # keep the pattern visible
    return Instance(latent, colors, rng.uniform(0.8, 1.25), rng.uniform(2.5, 4.5), rng.uniform(0, 2 * np.pi))


def render(
    instance: Instance,
    background: np.ndarray,
    center: tuple[float, float],
    radius: float,
    angle: float,
    light: np.ndarray,
) -> np.ndarray:
    """Composite the instance (anti-aliased edge) over the background under a coloured light
    (per-channel gains); returns uint8 (H, W, 3)."""
    height, width = background.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    dx, dy = (xx - center[0]) / radius, (yy - center[1]) / radius
    cos, sin = np.cos(angle), np.sin(angle)
    u = (cos * dx + sin * dy) / instance.aspect
    v = -sin * dx + cos * dy
    inside = np.clip(_shape_mask(instance.latent.shape, u, v) * radius / 1.5, 0, 1)[..., None]
    mix = _pattern(instance.latent.pattern, u, v, instance.pattern_scale, instance.pattern_phase)[..., None]
    surface = (instance.colors[0] * (1 - mix) + instance.colors[1] * mix) * (1 - 0.25 * np.clip(v, -1, 1)[..., None])
    image = (background * (1 - inside) + surface * inside) * light
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def _jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def video_frames(instance: Instance, rng: np.random.Generator, height: int, width: int) -> list[np.ndarray]:
    """Four frames of one instance, seconds apart: the camera pans over the scene, the object
    moves, scales and turns, and the light changes colour and strength."""
    pan_room = width // 2
    scene = _background(rng, height, width + pan_room)
    side = min(height, width)
    start = np.array([rng.uniform(0.35, 0.65) * width, rng.uniform(0.35, 0.65) * height])
    velocity = rng.normal(0, 0.06 * side, size=2)
    radius0, growth = rng.uniform(0.36, 0.5) * side, rng.uniform(0.85, 1.15)
    angle0, spin = rng.uniform(0, 2 * np.pi), rng.normal(0, 0.3)
    frames = []
    for t in range(4):
        offset = int(rng.integers(0, pan_room + 1))
        center = start + velocity * t + rng.normal(0, 0.02 * side, size=2)
        radius = radius0 * growth**t
        center = np.clip(center, radius * 0.6, [width - radius * 0.6, height - radius * 0.6])
        light = rng.uniform(0.75, 1.25) * rng.uniform(0.8, 1.2, size=3)
        frames.append(
            render(instance, scene[:, offset : offset + width], tuple(center), radius, angle0 + spin * t, light)
        )
    return frames


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
        instance = new_instance(classes[label], rng)
        frames = video_frames(instance, rng, world.frame_height, world.frame_width)
        for number, image in zip(numbers, frames, strict=True):
            path = root / frame_relpath(split, vid, number)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_jpeg(image))
        id_lines.append(",".join([vid, *map(str, numbers)]))
        label_lines.append(f"{vid},{label}")
    (root / f"r2v2_ids_{split}.txt").write_text("\n".join(id_lines) + "\n")
    (root / f"latent_classes_{split}.csv").write_text("\n".join(label_lines) + "\n")


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
                instance = new_instance(latent, rng)
                image = video_frames(instance, rng, world.frame_height, world.frame_width)[int(rng.integers(4))]
                counter += 1
                name = f"{wnid}_{n}.JPEG" if split == "train" else f"ILSVRC2012_val_{counter:08d}.JPEG"
                (folder / name).write_bytes(_jpeg(image))
    write_text_atomic(
        root / "classes.txt", "".join(f"{w} {c.shape}-{c.pattern}\n" for w, c in zip(wnids, classes, strict=True))
    )


def generate_world(world: WorldConfig, force: bool = False) -> Path:
    """Write the synthetic world under ``world.root`` (r2v2/ and imagenet/); a complete world
    with the same settings is kept as it is."""
    root = Path(world.root)
    stamp = root / "world.json"
    settings = json.dumps({"generator": GENERATOR_VERSION, **dataclasses.asdict(world)}, sort_keys=True)
    if not force and stamp.is_file() and stamp.read_text() == settings:
        return root
    classes = latent_classes(world.classes, world.seed)
    with atomic_dir(root / "r2v2") as r2v2:
        write_r2v2(r2v2, "train", world.videos, world, classes)
        write_r2v2(r2v2, "val", world.val_videos, world, classes)
    with atomic_dir(root / "imagenet") as imagenet:
        write_imagefolder(imagenet, world, classes)
    write_text_atomic(stamp, settings)
    return root
