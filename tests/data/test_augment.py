import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torchvision.transforms import v2

from cycle_pkg.data.augment import IMAGENET_MEAN, IMAGENET_STD, MocoV2, gaussian_blur, moco_v2


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.0])
def test_separable_blur_matches_torchvisions_2d_blur(sigma):
    image = torch.randint(0, 256, (3, 40, 56), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    radius = max(1, -(-3 * sigma // 1))
    size = int(2 * radius + 1)
    reference = v2.functional.gaussian_blur(image, [size, size], [sigma, sigma])
    ours = gaussian_blur(image, sigma)
    assert ours.dtype == torch.uint8 and ours.shape == image.shape
    assert (ours.int() - reference.int()).abs().max() <= 1


def test_blur_keeps_float_images_and_smooths():
    image = torch.zeros(3, 21, 21)
    image[:, 10, 10] = 1.0
    blurred = gaussian_blur(image, 1.0)
    assert blurred.dtype == torch.float32
    assert blurred.sum().item() == pytest.approx(3.0, rel=1e-5)  # mass kept away from the borders
    assert blurred[0, 10, 10] < 0.2 and blurred[0, 10, 11] > 0.05


class RandomSigmaBlur:
    """The blur as a torchvision-pipeline step, drawing its sigma from the global RNG."""

    def __init__(self, sigma):
        self.sigma = sigma

    def __call__(self, image):
        return gaussian_blur(image, float(torch.empty(1).uniform_(*self.sigma)))


def torchvision_moco_v2(size: int) -> v2.Compose:
    """MoCo v2's aug-plus as a torchvision v2 pipeline drawing from the global RNG: the reference."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            v2.RandomApply([RandomSigmaBlur(MocoV2(size).sigma)], p=0.5),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


@pytest.mark.parametrize(("height", "width"), [(48, 80), (90, 20)])  # (90, 20): the crop falls back to the centre
def test_draw_then_apply_is_torchvisions_pipeline_seed_for_seed(height, width):
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    ours, reference = moco_v2(32), torchvision_moco_v2(32)
    crops = set()
    for seed in range(60):
        torch.manual_seed(seed)
        expected = reference(image)
        params = ours.draw(height, width, torch.Generator().manual_seed(seed))
        assert torch.equal(ours.apply(image, params), expected), seed
        crops.add(params.crop)
    centre = ((height - 27) // 2, 0, 27, 20)  # 20 wide at the widest aspect 3:4 allowed
    assert (centre in crops) == (width == 20)


def test_moco_v2_output():
    image = torch.randint(0, 256, (3, 48, 64), dtype=torch.uint8)
    augment = moco_v2(32)
    params = augment.draw(48, 64, torch.Generator().manual_seed(0))
    out = augment.apply(image, params)
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    assert -3 < out.mean() < 3
    assert params == augment.draw(48, 64, torch.Generator().manual_seed(0))  # all randomness from the generator


@pytest.mark.parametrize(("size", "sigma"), [(224, (0.1, 2.0)), (56, (0.025, 0.5))])
def test_moco_v2_blur_scales_with_the_view_size(size, sigma):
    assert moco_v2(size).sigma == pytest.approx(sigma)


DRAWS = 4000
HEIGHT, WIDTH = 256, 341  # a shard frame of a 4:3 video at the paper's short side


@pytest.fixture(scope="module")
def draws():
    generator = torch.Generator().manual_seed(0)
    augment = MocoV2(224)
    return [augment.draw(HEIGHT, WIDTH, generator) for _ in range(DRAWS)]


def test_crop_area_and_aspect_follow_random_resized_crop(draws):
    """Against draws of torchvision's own RandomResizedCrop (two-sample KS tests)."""
    torch.manual_seed(1)
    crop = v2.RandomResizedCrop(224, scale=(0.2, 1.0))
    reference = [crop.make_params([torch.empty(3, HEIGHT, WIDTH)]) for _ in range(DRAWS)]
    ours = np.array([p.crop for p in draws], dtype=float)
    theirs = np.array([[r["top"], r["left"], r["height"], r["width"]] for r in reference], dtype=float)
    for values in (lambda c: c[:, 2] * c[:, 3] / (HEIGHT * WIDTH), lambda c: np.log(c[:, 3] / c[:, 2])):
        assert stats.ks_2samp(values(ours), values(theirs)).pvalue > 1e-3
    area = ours[:, 2] * ours[:, 3] / (HEIGHT * WIDTH)
    aspect = ours[:, 3] / ours[:, 2]
    assert 0.19 < area.min() and area.max() <= 1.0 and 0.74 < aspect.min() and aspect.max() < 1.35
    assert (ours[:, 0] + ours[:, 2] <= HEIGHT).all() and (ours[:, 1] + ours[:, 3] <= WIDTH).all()


def test_jitter_factors_and_order_follow_color_jitter(draws):
    jittered = [p for p in draws if p.jitter is not None]
    factors = np.array([p.jitter for p in jittered])
    for k, (low, high) in enumerate([(0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.1, 0.1)]):
        assert stats.kstest(factors[:, k], stats.uniform(low, high - low).cdf).pvalue > 1e-3
    orders = [p.order for p in jittered]
    counts = [orders.count(order) for order in itertools.permutations(range(4))]
    assert stats.chisquare(counts).pvalue > 1e-3  # all 24 orders equally likely


@pytest.mark.parametrize(
    ("name", "rate"),
    [
        ("jitter", 0.8),
        ("grayscale", 0.2),
        ("blur", 0.5),
        ("flip", 0.5),
    ],
)
def test_rates_are_moco_v2s(draws, name, rate):
    applied = {
        "jitter": lambda p: p.jitter is not None,
        "grayscale": lambda p: p.grayscale,
        "blur": lambda p: p.sigma is not None,
        "flip": lambda p: p.flip,
    }[name]
    hits = sum(applied(p) for p in draws)
    assert stats.binomtest(hits, DRAWS, rate).pvalue > 1e-3


def test_blur_sigma_is_uniform_over_the_scaled_range(draws):
    sigmas = np.array([p.sigma for p in draws if p.sigma is not None])
    assert stats.kstest(sigmas, stats.uniform(0.1, 1.9).cdf).pvalue > 1e-3
    assert math.isclose(MocoV2(64).sigma[1], 2.0 * 64 / 224)
