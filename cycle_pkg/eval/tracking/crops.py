"""SiamFC's crops: square patches around a target with context, padded with the image's mean colour,
and the training-time jitter of the reference implementation (huanglianghua/siamfc-pytorch)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..track_settings import SIAMFC_SEARCH_MARGIN


def box_to_center(box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 1-based [x, y, w, h] box (OTB, GOT-10k) -> 0-based centre (y, x) and size (h, w)."""
    x, y, w, h = (float(v) for v in box)
    return np.array([y - 1 + (h - 1) / 2, x - 1 + (w - 1) / 2]), np.array([h, w])


def center_to_box(center: np.ndarray, size: np.ndarray) -> np.ndarray:
    """The inverse of :func:`box_to_center`: a 1-based [x, y, w, h] box."""
    return np.array([center[1] + 1 - (size[1] - 1) / 2, center[0] + 1 - (size[0] - 1) / 2, size[1], size[0]])


def context_size(target_size: np.ndarray, context: float) -> float:
    """The side of the exemplar's square: sqrt((w + p)(h + p)) with p = context * (w + h)."""
    pad = context * float(np.sum(target_size))
    return math.sqrt(float(np.prod(target_size + pad)))


def crop_and_resize(image: Tensor, center: np.ndarray, size: float, out_size: int, fill: Tensor) -> Tensor:
    """The square of side ``size`` centred at ``center`` (y, x) of a (3, H, W) image, resized to
    ``out_size``; where it leaves the image it is filled with ``fill`` (3,)."""
    size = max(1, round(size))
    top, left = (round(c - (size - 1) / 2) for c in center)
    height, width = image.shape[1:]
    pad = max(0, -top, -left, top + size - height, left + size - width)
    if pad:
        canvas = fill.view(3, 1, 1).expand(3, height + 2 * pad, width + 2 * pad).clone()
        canvas[:, pad : pad + height, pad : pad + width] = image
        image, top, left = canvas, top + pad, left + pad
    patch = image[:, top : top + size, left : left + size]
    return F.interpolate(patch[None], size=(out_size, out_size), mode="bilinear", align_corners=False)[0]


def center_crop(image: Tensor, size: int) -> Tensor:
    """The central ``size`` square, padded with the mean colour where the image is smaller."""
    height, width = image.shape[1:]
    top, left = round((height - size) / 2), round((width - size) / 2)
    pad = max(0, -top, -left)
    if pad:
        fill = image.mean(dim=(1, 2))
        canvas = fill.view(3, 1, 1).expand(3, height + 2 * pad, width + 2 * pad).clone()
        canvas[:, pad : pad + height, pad : pad + width] = image
        image, top, left = canvas, top + pad, left + pad
    return image[:, top : top + size, left : left + size]


def random_crop(image: Tensor, size: int, rng: np.random.Generator) -> Tensor:
    height, width = image.shape[1:]
    top, left = int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))
    return image[:, top : top + size, left : left + size]


def random_stretch(image: Tensor, rng: np.random.Generator, max_stretch: float = 0.05) -> Tensor:
    scale = 1.0 + rng.uniform(-max_stretch, max_stretch)
    height, width = image.shape[1:]
    size = (round(height * scale), round(width * scale))
    return F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]


def training_pair(
    z_image: Tensor,
    z_box: np.ndarray,
    x_image: Tensor,
    x_box: np.ndarray,
    exemplar_size: int,
    instance_size: int,
    context: float,
    rng: np.random.Generator,
) -> tuple[Tensor, Tensor]:
    """An (exemplar, search) training pair: both frames cropped at the search scale around their
    target, stretched by up to 5%, shifted by up to 4 px (a random (instance - 16) crop of the central
    (instance - 8)), and the exemplar cut from the centre, as siamfc-pytorch's SiamFCTransforms."""
    patches = []
    for image, box in ((z_image, z_box), (x_image, x_box)):
        center, target = box_to_center(box)
        side = context_size(target, context) * instance_size / exemplar_size
        patch = crop_and_resize(image, center, side, instance_size, image.mean(dim=(1, 2)))
        patch = center_crop(random_stretch(patch, rng), instance_size - 8)
        patches.append(random_crop(patch, instance_size - SIAMFC_SEARCH_MARGIN, rng))
    return center_crop(patches[0], exemplar_size), patches[1]


def logistic_labels(height: int, width: int, radius: float) -> Tensor:
    """1 within L1 distance ``radius`` (response cells) of the response's centre, else 0."""
    y = torch.arange(height, dtype=torch.float32) - (height - 1) / 2
    x = torch.arange(width, dtype=torch.float32) - (width - 1) / 2
    distance = y.abs()[:, None] + x.abs()[None, :]
    return (distance <= radius).float()
