"""Smooth motion over many frames, for the world's action videos and tracking sequences.

A path is a list of poses, one per frame: where the object is, its size and turn, the light, and
how far the camera has panned over a scene wider than the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scene import Instance, render_with_mask

# The action classes' motions; a UCF101-format class is a latent class doing one of them.
MOTIONS = ("Left", "Right", "Up", "Down", "Grow", "Shrink", "Spin", "Bounce")


@dataclass(frozen=True)
class Pose:
    center: tuple[float, float]
    radius: float
    angle: float
    light: np.ndarray
    pan: int


def _pans(rng: np.random.Generator, frames: int, room: int) -> list[int]:
    """A camera that drifts slowly over the scene and turns back at its edges."""
    position, speed, pans = rng.uniform(0, room), rng.normal(0, 0.4), []
    for _ in range(frames):
        position += speed
        if not 0 <= position <= room:
            speed, position = -speed, float(np.clip(position, 0, room))
        pans.append(int(round(position)))
    return pans


def _lights(rng: np.random.Generator, frames: int) -> list[np.ndarray]:
    start = rng.uniform(0.85, 1.15) * rng.uniform(0.9, 1.1, size=3)
    end = rng.uniform(0.85, 1.15) * rng.uniform(0.9, 1.1, size=3)
    return [start + (end - start) * t / max(frames - 1, 1) for t in range(frames)]


def action_path(motion: str, rng: np.random.Generator, frames: int, height: int, width: int, room: int) -> list[Pose]:
    """One clip of ``motion``: the object crosses part of the frame, changes size, turns or bounces."""
    side = min(height, width)
    radius0 = rng.uniform(0.24, 0.34) * side
    travel = rng.uniform(0.3, 0.45)
    angle0, drift = rng.uniform(0, 2 * np.pi), rng.normal(0, 0.01)
    center0 = np.array([rng.uniform(0.4, 0.6) * width, rng.uniform(0.4, 0.6) * height])
    pans, lights = _pans(rng, frames, room), _lights(rng, frames)
    poses = []
    for t in range(frames):
        s = t / max(frames - 1, 1) - 0.5  # -0.5 .. 0.5 over the clip
        offset, scale, angle = np.zeros(2), 1.0, angle0 + drift * t
        if motion == "Left":
            offset[0] = -travel * width * s
        elif motion == "Right":
            offset[0] = travel * width * s
        elif motion == "Up":
            offset[1] = -travel * height * s
        elif motion == "Down":
            offset[1] = travel * height * s
        elif motion == "Grow":
            scale = 1 + 0.6 * s
        elif motion == "Shrink":
            scale = 1 - 0.6 * s
        elif motion == "Spin":
            angle += 0.3 * t
        elif motion == "Bounce":
            offset[1] = height * (0.15 - 0.3 * abs(np.sin(2 * np.pi * (s + 0.5))))
        else:
            raise ValueError(f"unknown motion {motion!r}")
        radius = radius0 * scale
        center = center0 + offset + rng.normal(0, 0.005 * side, size=2)
        center = np.clip(center, radius * 0.6, [width - radius * 0.6, height - radius * 0.6])
        poses.append(Pose((float(center[0]), float(center[1])), radius, angle, lights[t], pans[t]))
    return poses


def wander_path(rng: np.random.Generator, frames: int, height: int, width: int, room: int) -> list[Pose]:
    """A tracking target: a small object that wanders with inertia, changes size and turns, and stays
    whole inside the frame."""
    side = min(height, width)
    radius0 = rng.uniform(0.09, 0.15) * side
    position = np.array([rng.uniform(0.35, 0.65) * width, rng.uniform(0.35, 0.65) * height])
    velocity = rng.normal(0, 0.02 * side, size=2)
    log_scale, angle, spin = 0.0, rng.uniform(0, 2 * np.pi), rng.normal(0, 0.05)
    pans, lights = _pans(rng, frames, room), _lights(rng, frames)
    poses = []
    for t in range(frames):
        velocity = 0.9 * velocity + rng.normal(0, 0.008 * side, size=2)
        log_scale = float(np.clip(log_scale + rng.normal(0, 0.03), np.log(0.7), np.log(1.4)))
        radius = radius0 * np.exp(log_scale)
        margin = 1.3 * radius
        low, high = np.array([margin, margin]), np.array([width - margin, height - margin])
        position = position + velocity
        bounced = (position < low) | (position > high)
        velocity[bounced] *= -1
        position = np.clip(position, low, high)
        angle += spin
        poses.append(Pose((float(position[0]), float(position[1])), radius, angle, lights[t], pans[t]))
    return poses


def draw(instance: Instance, scene: np.ndarray, pose: Pose, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The frame of ``pose`` (uint8) and the object's coverage of each pixel."""
    view = scene[:, pose.pan : pose.pan + width]
    return render_with_mask(instance, view, pose.center, pose.radius, pose.angle, pose.light)


def mask_box(coverage: np.ndarray) -> np.ndarray | None:
    """The object's box (x, y, w, h) in pixels: the extent of the pixels it covers by half or more."""
    rows, cols = np.flatnonzero((coverage >= 0.5).any(axis=1)), np.flatnonzero((coverage >= 0.5).any(axis=0))
    if not len(rows):
        return None
    return np.array([cols[0], rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1], dtype=np.float64)
