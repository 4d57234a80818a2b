"""MoCo v2's augmentations, as "draw the parameters, then apply them".

``MocoV2.draw`` draws one view's parameters from a generator, with the distributions and in the
order of torchvision's v2 pipeline (RandomResizedCrop, ColorJitter under RandomApply, RandomGrayscale,
a Gaussian blur under RandomApply, RandomHorizontalFlip): the same seed gives the same parameters
as that pipeline under ``torch.manual_seed``. ``MocoV2.apply`` applies them to one uint8 image with
torchvision's functional ops (the CPU-worker path); ``batch_augment.augment_views`` applies them to a
batch on any device (the device path). Both paths share the draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MOCO_SIZE = 224  # the resolution MoCo v2's blur range (sigma 0.1-2.0 pixels) was chosen for
IDENTITY_JITTER = (1.0, 1.0, 1.0, 0.0)  # brightness, contrast, saturation, hue factors that change nothing


@dataclass(frozen=True)
class ViewParams:
    """One view's draw: the crop in source pixels, the colour jitter's factors (None: not applied) and
    the order of its four operations (0 brightness, 1 contrast, 2 saturation, 3 hue), grayscale, the
    blur's sigma in output pixels (None: no blur) and the flip."""

    crop: tuple[int, int, int, int]  # top, left, height, width
    jitter: tuple[float, float, float, float] | None
    order: tuple[int, int, int, int]
    grayscale: bool
    sigma: float | None
    flip: bool

    def tensors(self) -> dict[str, Tensor]:
        """The parameters as tensors, for a batch to carry them to the device (``default_collate`` stacks them)."""
        return {
            "crop": torch.tensor(self.crop, dtype=torch.int64),
            "jitter_on": torch.tensor(self.jitter is not None),
            "jitter": torch.tensor(self.jitter or IDENTITY_JITTER, dtype=torch.float32),
            "order": torch.tensor(self.order, dtype=torch.int64),
            "grayscale": torch.tensor(self.grayscale),
            "sigma": torch.tensor(self.sigma or 0.0, dtype=torch.float32),
            "flip": torch.tensor(self.flip),
        }


def uniform(low: float, high: float, generator: torch.Generator) -> float:
    return float(torch.empty(1).uniform_(low, high, generator=generator).item())


def coin(p: float, generator: torch.Generator) -> bool:
    """True with probability p, drawn as torchvision's RandomApply and _RandomApplyTransform draw it."""
    return not bool(torch.rand(1, generator=generator) >= p)


class MocoV2:
    """MoCo v2's "aug-plus" at a configurable resolution. The blur's sigma scales with the output size,
    so that a 64-pixel view is as blurred as a 224-pixel one (the same sigma in pixels would wipe out a
    small image's textures)."""

    scale = (0.2, 1.0)
    ratio = (3 / 4, 4 / 3)
    jitter = (0.4, 0.4, 0.4, 0.1)  # ColorJitter(brightness, contrast, saturation, hue)
    p_jitter, p_grayscale, p_blur, p_flip = 0.8, 0.2, 0.5, 0.5

    def __init__(self, size: int):
        self.size = size
        self.sigma = (0.1 * size / MOCO_SIZE, 2.0 * size / MOCO_SIZE)
        # torchvision keeps the log-ratio bounds as float32: the same numbers, so the same draws
        self.log_ratio = tuple(float(v) for v in torch.log(torch.tensor(self.ratio)))
        b, c, s, h = self.jitter
        self.jitter_ranges = ((max(0.0, 1 - b), 1 + b), (max(0.0, 1 - c), 1 + c), (max(0.0, 1 - s), 1 + s), (-h, h))

    def draw_crop(self, height: int, width: int, generator: torch.Generator) -> tuple[int, int, int, int]:
        """RandomResizedCrop's algorithm: ten tries of area and log-uniform aspect, then a centre crop
        clipped to the aspect range."""
        area = height * width
        for _ in range(10):
            target_area = area * uniform(*self.scale, generator)
            aspect = math.exp(uniform(*self.log_ratio, generator))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
                left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
                return top, left, h, w
        in_ratio = width / height
        if in_ratio < min(self.ratio):
            w, h = width, int(round(width / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            w, h = int(round(height * max(self.ratio))), height
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def draw(self, height: int, width: int, generator: torch.Generator) -> ViewParams:
        """One view's parameters for a ``height`` x ``width`` frame, in torchvision's order of draws."""
        crop = self.draw_crop(height, width, generator)
        jitter, order = None, (0, 1, 2, 3)
        if coin(self.p_jitter, generator):
            order = tuple(torch.randperm(4, generator=generator).tolist())
            jitter = tuple(uniform(low, high, generator) for low, high in self.jitter_ranges)
        grayscale = coin(self.p_grayscale, generator)
        sigma = uniform(*self.sigma, generator) if coin(self.p_blur, generator) else None
        flip = coin(self.p_flip, generator)
        return ViewParams(crop, jitter, order, grayscale, sigma, flip)

    def apply(self, image: Tensor, params: ViewParams) -> Tensor:
        """The view of a uint8 (3, H, W) image, as float (3, size, size) normalised with ImageNet's
        statistics; every step is the torchvision v2 kernel its transform calls."""
        view = TF.resized_crop(image, *params.crop, [self.size, self.size], antialias=True)
        if params.jitter is not None:
            adjust = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
            for k in params.order:
                view = adjust[k](view, params.jitter[k])
        if params.grayscale:
            view = TF.rgb_to_grayscale(view, num_output_channels=3)
        if params.sigma is not None:
            view = gaussian_blur(view, params.sigma)
        if params.flip:
            view = TF.horizontal_flip(view)
        return TF.normalize(TF.to_dtype(view, torch.float32, scale=True), IMAGENET_MEAN, IMAGENET_STD)


def moco_v2(size: int) -> MocoV2:
    return MocoV2(size)


def blur_radius(sigma: float) -> int:
    """The kernel reaches +-3 sigma (at least one pixel)."""
    return max(1, math.ceil(3 * sigma))


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of one image as two 1-D passes with reflected borders.

    torchvision's blur convolves with the full 2-D kernel (23 x 23 at 224 px for MoCo v2's ~10%
    kernel): 40 ms per image on one core, the slowest step of the pipeline. Separable passes over
    +-3 sigma give the same image (to rounding) ten times faster.
    """
    radius = blur_radius(sigma)
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
