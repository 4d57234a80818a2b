"""The SiamFC tracker with the got10k toolkit's interface: ``init(image, box)`` on the first frame,
``update(image) -> box`` on every later one (boxes 1-based [x, y, w, h]).

Each update searches three scales around the last position; the responses are upsampled (bicubic),
the off-centre scales damped by the scale penalty, the best scale's response mixed with a Hann
(cosine) window, and the size follows the best scale with learning rate ``scale_lr``.

The peak's offset from the upsampled map's centre, divided by its upsampling factor and multiplied
by the stride, is the target's displacement in the search crop. The authors' tracker (the one
behind the paper's OTB numbers) upsamples to 16 x 17 = 272 px whatever the map's real side and reads
displacements at that size: with the stride-8 ResNet the map of a 255 px search and a 120 px
exemplar has 18 cells, so its displacements come out 17/18 of the true ones. ``exact`` upsamples
16 x the real side instead (see :func:`upsampled_size`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from got10k.trackers import Tracker
from PIL import Image

from ..track_settings import SIAMFC_STRIDE, TrackEvalConfig
from .crops import box_to_center, center_to_box, context_size, crop_and_resize
from .sequences import image_tensor
from .siamfc import SiamFC


class SiamFCTracker(Tracker):
    def __init__(self, net: SiamFC, cfg: TrackEvalConfig, name: str = "SiamFC"):
        super().__init__(name=name, is_deterministic=True)
        self.net, self.cfg = net, cfg
        half = cfg.scale_num // 2
        self.scale_factors = cfg.scale_step ** np.linspace(-half, half, cfg.scale_num)

    @torch.no_grad()
    def init(self, image: Image.Image | np.ndarray, box: np.ndarray) -> None:
        cfg = self.cfg
        self.net.eval()
        frame = image_tensor(image)
        self.center, self.target_size = box_to_center(box)
        exemplar_side = context_size(self.target_size, cfg.context)
        self.search_side = exemplar_side * cfg.instance_size / cfg.exemplar_size
        self.fill = frame.mean(dim=(1, 2))
        exemplar = crop_and_resize(frame, self.center, exemplar_side, cfg.exemplar_size, self.fill)
        self.kernel = self.net.embed_exemplar(exemplar[None])

    @torch.no_grad()
    def update(self, image: Image.Image | np.ndarray) -> np.ndarray:
        cfg = self.cfg
        self.net.eval()
        frame = image_tensor(image)
        searches = torch.stack(
            [
                crop_and_resize(frame, self.center, self.search_side * f, cfg.instance_size, self.fill)
                for f in self.scale_factors
            ]
        )
        responses = self.net.correlate(self.kernel, self.net.embed_search(searches))
        upscaled = upsampled_size(responses.shape[-1], cfg)
        responses = F.interpolate(responses, size=(upscaled, upscaled), mode="bicubic", align_corners=False)
        responses = responses[:, 0].cpu().numpy()
        half = cfg.scale_num // 2
        responses[:half] *= cfg.scale_penalty
        responses[half + 1 :] *= cfg.scale_penalty
        best = int(np.argmax(responses.max(axis=(1, 2))))

        response = responses[best] - responses[best].min()
        response /= response.sum() + 1e-16
        window = np.outer(np.hanning(upscaled), np.hanning(upscaled))
        response = (1 - cfg.window_influence) * response + cfg.window_influence * window / window.sum()
        peak = np.array(np.unravel_index(response.argmax(), response.shape), dtype=np.float64)

        displacement = (peak - (upscaled - 1) / 2) * SIAMFC_STRIDE / cfg.response_up
        self.center = self.center + displacement * self.search_side * self.scale_factors[best] / cfg.instance_size
        scale = (1 - cfg.scale_lr) + cfg.scale_lr * self.scale_factors[best]
        self.target_size = self.target_size * scale
        self.search_side *= scale
        return center_to_box(self.center, self.target_size)


def upsampled_size(real: int, cfg: TrackEvalConfig) -> int:
    """The side a response map of ``real`` cells is upsampled to: response_up x response_size (the
    authors' 272 px) whatever ``real`` is, or response_up x ``real`` (``exact``)."""
    return cfg.response_up * (cfg.response_size if cfg.response_geometry == "authors" else real)
