"""The SiamFC network on a frozen backbone: stride-8 features, a separate 1x1 convolution on exemplar
and search features (the only trained weights), cross-correlation scaled by ``out_scale``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...data.augment import IMAGENET_MEAN, IMAGENET_STD
from ..features import FrozenBackbone
from ..track_settings import TrackEvalConfig

# The authors' head sizes and output scales per backbone.
HEAD_CHANNELS = {512: 512, 2048: 1024}
OUT_SCALE = {512: 1e-3, 2048: 1e-5}


class SiamFC(nn.Module):
    """Images in 0..255 -> response maps; only ``adjust_exemplar`` and ``adjust_search`` learn."""

    def __init__(self, backbone: FrozenBackbone, cfg: TrackEvalConfig):
        super().__init__()
        self.backbone = backbone  # deliberately not a submodule: its weights are not this model's
        width = backbone.width
        channels = cfg.head_channels or HEAD_CHANNELS.get(width, width)
        self.out_scale = cfg.out_scale if cfg.out_scale is not None else OUT_SCALE.get(width, 1e-3)
        self.adjust_exemplar = nn.Conv2d(width, channels, kernel_size=1)
        self.adjust_search = nn.Conv2d(width, channels, kernel_size=1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255)
        self.to(backbone.device)

    def _features(self, images: Tensor) -> Tensor:
        images = images.to(self.mean.device)
        return self.backbone.feature_map((images - self.mean) / self.std)

    def embed_exemplar(self, images: Tensor) -> Tensor:
        return self.adjust_exemplar(self._features(images))

    def embed_search(self, images: Tensor) -> Tensor:
        return self.adjust_search(self._features(images))

    def correlate(self, kernels: Tensor, search: Tensor) -> Tensor:
        """Each search map correlated with its kernel (one kernel may serve all): (B, 1, h', w')."""
        if len(kernels) == 1 and len(search) > 1:
            kernels = kernels.expand(len(search), -1, -1, -1)
        batch, channels, height, width = search.shape
        response = F.conv2d(search.reshape(1, batch * channels, height, width), kernels, groups=batch)
        return response.view(batch, 1, *response.shape[2:]) * self.out_scale

    def forward(self, exemplars: Tensor, searches: Tensor) -> Tensor:
        return self.correlate(self.embed_exemplar(exemplars), self.embed_search(searches))


def focal_loss(logits: Tensor, labels: Tensor, gamma: float = 2.0) -> Tensor:
    """The focal loss of the authors' SiamFC: binary cross-entropy weighted by (1 - p_t)^gamma, divided
    by the mean weight so that its scale does not shrink as the responses sharpen."""
    # 1 - p as sigmoid(-x): 1 - sigmoid(x) rounds to 0 for x > 17 in float32, and a map of confident
    # positives would then divide 0 by 0.
    positive_weight = torch.sigmoid(-logits) ** gamma
    negative_weight = torch.sigmoid(logits) ** gamma
    loss = -(labels * positive_weight * F.logsigmoid(logits) + (1 - labels) * negative_weight * F.logsigmoid(-logits))
    mean_weight = (labels * positive_weight + (1 - labels) * negative_weight).mean()
    return (loss / mean_weight.clamp_min(torch.finfo(mean_weight.dtype).tiny)).mean()
