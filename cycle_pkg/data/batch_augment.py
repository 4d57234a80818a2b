"""MoCo v2 on a whole batch, with each view's own parameters (``augment.ViewParams``), on any device:
the device data path's augmentations. The same functions run on CPU tensors in the tests and on CUDA
tensors in training.

Crop-and-resize is ``torchvision.ops.roi_align`` (one call per frame size in the batch): its boxes
name their frame, so several views share one decoded frame, and its adaptive sampling averages the
source pixels an output pixel covers, which antialiases a downscale (kornia's ``crop_and_resize`` is
a bilinear warp without that). The colour operations are kornia's per-sample ones that follow
torchvision's definitions; kornia's ColorJitter draws one order of the four for the whole batch, so
the per-sample order is applied here: at each of the four positions, each operation runs on the
views that have it there. Every index is computed on the host from the host's parameters, so that
nothing here waits for the device.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from typing import Any

import torch
from kornia.color import rgb_to_grayscale
from kornia.enhance import (
    adjust_brightness_accumulative,
    adjust_contrast_with_mean_subtraction,
    adjust_hue,
    adjust_saturation_with_gray_subtraction,
)
from kornia.filters import gaussian_blur2d
from torch import Tensor
from torchvision.ops import roi_align
from torchvision.transforms.v2 import functional as TF

from .augment import IMAGENET_MEAN, IMAGENET_STD, blur_radius
from .jpeg import decode_frames
from .pairs import VIEWS


def to_device(tensor: Tensor, device: torch.device) -> Tensor:
    """Copy host data without making the host wait (through pinned memory on CUDA)."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def crop_and_resize(frames: list[Tensor], frame: Tensor, crop: Tensor, size: int) -> Tensor:
    """Float (V, 3, size, size) in [0, 1]: view v is the crop ``crop[v]`` (top, left, height, width) of
    ``frames[frame[v]]`` resized, sampled at pixel centres as torchvision's resize samples them."""
    device = frames[0].device
    out = torch.empty(len(frame), 3, size, size, device=device)
    by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for k, image in enumerate(frames):
        by_shape[tuple(image.shape)].append(k)
    for members in by_shape.values():
        position = {k: i for i, k in enumerate(members)}
        rows = [v for v, k in enumerate(frame.tolist()) if k in position]
        if not rows:
            continue
        top, left, height, width = crop[rows].double().unbind(1)
        slot = torch.tensor([position[k] for k in frame[rows].tolist()], dtype=torch.float64)
        boxes = torch.stack([slot, left, top, left + width, top + height], 1).float()
        stack = torch.stack([frames[k] for k in members]).float().div_(255)
        resized = roi_align(stack, to_device(boxes, device), size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
        out[to_device(torch.tensor(rows), device)] = resized
    return out


def brightness(x: Tensor, factor: Tensor) -> Tensor:
    return adjust_brightness_accumulative(x, factor)  # torchvision's brightness multiplies


def hue(x: Tensor, factor: Tensor) -> Tensor:
    return adjust_hue(x, factor * (2 * math.pi))  # torchvision's factor is in turns, kornia's in radians


JITTER = (brightness, adjust_contrast_with_mean_subtraction, adjust_saturation_with_gray_subtraction, hue)


def color_jitter(x: Tensor, on: Tensor, factors: Tensor, order: Tensor) -> Tensor:
    """Each view's four factors in each view's own order (``order[v, i]``: the i-th operation)."""
    for position in range(4):
        for op, adjust in enumerate(JITTER):
            rows = torch.nonzero(on & (order[:, position] == op)).flatten()
            if len(rows):
                index = to_device(rows, x.device)
                x[index] = adjust(x[index], to_device(factors[rows, op], x.device))
    return x


def gaussian_blur(x: Tensor, sigma: Tensor) -> Tensor:
    """Blur the views with sigma > 0, each with its own sigma, as two 1-D passes over +-3 sigma with
    reflected borders (as ``augment.gaussian_blur``): one call per kernel size."""
    rows = torch.nonzero(sigma > 0).flatten()
    radii = torch.tensor([blur_radius(s) for s in sigma[rows].tolist()], dtype=torch.int64)
    for radius in radii.unique().tolist():
        group = rows[radii == radius]
        index = to_device(group, x.device)
        sigmas = sigma[group].view(-1, 1).expand(-1, 2).contiguous()
        x[index] = gaussian_blur2d(x[index], 2 * radius + 1, sigmas, border_type="reflect", separable=True)
    return x


def select(x: Tensor, mask: Tensor, change) -> Tensor:
    rows = torch.nonzero(mask).flatten()
    if len(rows):
        index = to_device(rows, x.device)
        x[index] = change(x[index])
    return x


def augment_views(frames: list[Tensor], params: dict[str, Tensor], size: int) -> Tensor:
    """MoCo v2 views (V, 3, size, size), float, normalised with ImageNet's statistics, from uint8
    frames (3, H, W) on one device and the host tensors of ``ViewParams.tensors()`` stacked over the
    V views, plus ``frame``: which frame each view is cut from."""
    x = crop_and_resize(frames, params["frame"], params["crop"], size)
    x = color_jitter(x, params["jitter_on"], params["jitter"], params["order"])
    x = select(x, params["grayscale"], lambda v: rgb_to_grayscale(v).expand(-1, 3, -1, -1))
    x = gaussian_blur(x, params["sigma"])
    x = select(x, params["flip"], lambda v: v.flip(-1))
    return TF.normalize(x, IMAGENET_MEAN, IMAGENET_STD)


def decode_and_augment(batch: dict[str, Any], device: torch.device, size: int) -> tuple[dict[str, Tensor], int]:
    """The views of a batch of encoded items (``pairs.collate_encoded``), decoded and augmented on
    ``device`` in one pass over all views; and how many frames could not be decoded."""
    offsets = batch["jpeg_offsets"].tolist()
    data = [batch["jpeg"][start:end] for start, end in itertools.pairwise(offsets)]
    frames, unreadable = decode_frames(data, batch["frame_sizes"], batch["frame_names"], device)
    names = [name for name in VIEWS if name in batch]
    params = {key: torch.cat([batch[name][key] for name in names]) for key in batch[names[0]]}
    views = augment_views(frames, params, size).split([len(batch[name]["frame"]) for name in names])
    return dict(zip(names, views, strict=True)), unreadable
