"""Augmentations, as torchvision transforms v2 on uint8 image tensors."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class GaussianBlur:
    """Gaussian blur with sigma drawn uniformly from a range, as two 1-D passes.

    torchvision's blur convolves with the full 2-D kernel (23 x 23 at 224 px for MoCo v2's ~10%
    kernel): 40 ms per image on one core, the slowest step of the pipeline. Separable passes over
    +-3 sigma give the same image (to rounding) ten times faster.
    """

    def __init__(self, sigma: tuple[float, float] = (0.1, 2.0)):
        self.sigma = sigma

    def __call__(self, image: Tensor) -> Tensor:
        sigma = float(torch.empty(1).uniform_(*self.sigma))
        radius = max(1, math.ceil(3 * sigma))
        offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
        kernel /= kernel.sum()
        channels = image.shape[-3]
        blurred = image.float().reshape(-1, channels, *image.shape[-2:])
        blurred = F.conv2d(
            F.pad(blurred, (radius, radius, 0, 0), mode="reflect"),
            kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1),
            groups=channels,
        )
        blurred = F.conv2d(
            F.pad(blurred, (0, 0, radius, radius), mode="reflect"),
            kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1),
            groups=channels,
        )
        blurred = blurred.reshape(image.shape)
        if image.dtype == torch.uint8:
            return blurred.round_().clamp_(0, 255).to(torch.uint8)
        return blurred.to(image.dtype)


MOCO_SIZE = 224  # the resolution MoCo v2's blur range (sigma 0.1-2.0 pixels) was chosen for


def moco_v2(size: int) -> v2.Compose:
    """MoCo v2's "aug-plus" at a configurable resolution; the blur's sigma scales with the output
    size, so that a 64-pixel view is as blurred as a 224-pixel one (the same sigma in pixels would
    wipe out a small image's textures)."""
    scale = size / MOCO_SIZE
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            v2.RandomApply([GaussianBlur((0.1 * scale, 2.0 * scale))], p=0.5),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
