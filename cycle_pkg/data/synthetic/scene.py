"""Drawing the synthetic world: latent classes, object instances and how they are rendered.

A class is a shape with a surface pattern (e.g. a striped ring, a checkered star); an instance adds
its own two colours, proportions and pattern scale. Every image shows instances over a cluttered,
muted background.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

SHAPES = ("disk", "square", "triangle", "ring", "cross", "diamond", "star", "crescent")
PATTERNS = ("solid", "stripes", "checker", "dots", "rings", "diagonal")


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


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
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


def new_instance(latent: LatentClass, rng: np.random.Generator, pattern_scale: list[float]) -> Instance:
    """An instance of ``latent`` whose pattern repeats a number of times drawn from ``pattern_scale``
    (``[low, high]``, the world's setting)."""
    colors = rng.uniform(0, 1, size=(2, 3))
    colors[1] = 1 - colors[0] * rng.uniform(0.5, 1.0)  # keep the pattern visible
    return Instance(latent, colors, rng.uniform(0.8, 1.25), rng.uniform(*pattern_scale), rng.uniform(0, 2 * np.pi))


def render_with_mask(
    instance: Instance,
    background: np.ndarray,
    center: tuple[float, float],
    radius: float,
    angle: float,
    light: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Composite the instance (anti-aliased edge) over the background under a coloured light
    (per-channel gains); returns uint8 (H, W, 3) and the object's coverage of each pixel in [0, 1]."""
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
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), inside[..., 0]


def render_in_window(
    instance: Instance,
    background: np.ndarray,
    center: tuple[float, float],
    radius: float,
    angle: float,
    light: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``render_with_mask``, computed only in a window around the object (every shape lies within
    its unit square in object coordinates), which is much faster for small objects."""
    height, width = background.shape[:2]
    reach = radius * np.hypot(max(instance.aspect, 1.0), 1.0) + 2
    x0, x1 = max(0, int(center[0] - reach)), min(width, int(np.ceil(center[0] + reach)))
    y0, y1 = max(0, int(center[1] - reach)), min(height, int(np.ceil(center[1] + reach)))
    image = (np.clip(background * light, 0, 1) * 255 + 0.5).astype(np.uint8)
    coverage = np.zeros((height, width), dtype=np.float64)
    if x0 < x1 and y0 < y1:
        local = (center[0] - x0, center[1] - y0)
        window = background[y0:y1, x0:x1]
        image[y0:y1, x0:x1], coverage[y0:y1, x0:x1] = render_with_mask(instance, window, local, radius, angle, light)
    return image, coverage


def render(
    instance: Instance,
    background: np.ndarray,
    center: tuple[float, float],
    radius: float,
    angle: float,
    light: np.ndarray,
) -> np.ndarray:
    """The image of ``render_with_mask``."""
    return render_with_mask(instance, background, center, radius, angle, light)[0]


def jpeg_bytes(image: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def video_frames(instance: Instance, rng: np.random.Generator, height: int, width: int) -> list[np.ndarray]:
    """Four frames of one instance, seconds apart: the camera pans over the scene, the object
    moves, scales and turns, and the light changes colour and strength."""
    pan_room = width // 2
    scene = background(rng, height, width + pan_room)
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
