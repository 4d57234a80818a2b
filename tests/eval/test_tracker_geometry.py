"""The tracker's response geometry, the authors' and the exact one, on a two-frame sequence whose
target moves by a known displacement.

The network is a stand-in with the SiamFC geometry of the paper's stride-8 ResNet: its features
average the brightness of 8 x 8 px cells (ceil mode: a 255 px search gives 32 cells, a 120 px
exemplar 15, an 18-cell response) and the response is their cross-correlation. One scale and no
cosine window, so that the response's peak alone moves the target.
"""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cycle_pkg.eval.tracking.tracker import SiamFCTracker, upsampled_size
from cycle_pkg.settings.config import load_config

from ..helpers import PARAMS

START = np.array([200.5, 200.5])  # the target's centre in frame 0 (0-based y, x)
MOTION = np.array([40.0, 56.0])  # its displacement in frame 1, px
# An upsampled response pixel is 0.5 px of the crop, and bicubic interpolation of the 18 cells moves
# the peak by less than one pixel: the displacements below are read to within 0.6 px, while the two
# geometries differ by 2-3 px at this displacement.
TOLERANCE = 0.6


class PooledCorrelation:
    def eval(self) -> "PooledCorrelation":
        return self

    def embed_exemplar(self, images: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(images.mean(dim=1, keepdim=True), 8, ceil_mode=True)

    embed_search = embed_exemplar

    def correlate(self, kernels: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        return F.conv2d(search, kernels)


def blob(center: np.ndarray, size: int = 400, sigma: float = 12.0) -> np.ndarray:
    """A grey frame, black but for a Gaussian spot of light at ``center``."""
    yy, xx = np.mgrid[0:size, 0:size]
    spot = np.exp(-((yy - center[0]) ** 2 + (xx - center[1]) ** 2) / (2 * sigma**2))
    return np.repeat((255 * spot)[..., None], 3, axis=2).astype(np.uint8)


def track_one_step(geometry: str) -> np.ndarray:
    cfg = dataclasses.replace(
        load_config(PARAMS, "paper").eval.track, response_geometry=geometry, scale_num=1, window_influence=0.0
    )
    tracker = SiamFCTracker(PooledCorrelation(), cfg)  # type: ignore[arg-type]
    # A 60 x 60 box centred on the spot: exemplar side sqrt(120 x 120) = 120 px, search side 255 px, so
    # the crops are the image at scale 1.
    tracker.init(blob(START), np.array([172.0, 172.0, 60.0, 60.0]))
    assert tracker.search_side == pytest.approx(255.0)
    tracker.update(blob(START + MOTION))
    return tracker.center - START


def test_paper_crops_give_an_18_cell_response_which_the_authors_read_as_17():
    cfg = load_config(PARAMS, "paper").eval.track
    net = PooledCorrelation()
    response = net.correlate(
        net.embed_exemplar(torch.zeros(1, 3, 120, 120)), net.embed_search(torch.zeros(1, 3, 255, 255))
    )
    assert response.shape[-1] == 18
    assert cfg.response_geometry == "authors" and upsampled_size(18, cfg) == 272
    assert upsampled_size(18, dataclasses.replace(cfg, response_geometry="exact")) == 288


def test_exact_geometry_finds_the_displacement():
    # The exemplar crop starts at round(200.5 - 59.5) = 141, the search crop at round(200.5 - 127) = 74:
    # response cell r lines the search up with the exemplar moved by 8r - 67 px, so the response peaks
    # at r* = (d + 67) / 8, read as (r* - 8.5) x 8 = d - 1 px (the crops' half-pixel grid).
    assert track_one_step("exact") == pytest.approx(MOTION - 1, abs=TOLERANCE)


def test_authors_geometry_reads_17_18_of_the_displacement():
    # Upsampled to 272 px instead of 16 x 18 = 288, the same peak reads (r* - 8.5) x 8 x 17/18.
    assert track_one_step("authors") == pytest.approx((MOTION - 1) * 17 / 18, abs=TOLERANCE)
