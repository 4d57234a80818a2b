import pytest
import torch
from torchvision.transforms import v2

from cycle_pkg.data.augment import GaussianBlur, moco_v2


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.0])
def test_separable_blur_matches_torchvisions_2d_blur(sigma):
    image = torch.randint(0, 256, (3, 40, 56), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    radius = max(1, -(-3 * sigma // 1))
    size = int(2 * radius + 1)
    reference = v2.functional.gaussian_blur(image, [size, size], [sigma, sigma])
    ours = GaussianBlur((sigma, sigma))(image)
    assert ours.dtype == torch.uint8 and ours.shape == image.shape
    assert (ours.int() - reference.int()).abs().max() <= 1


def test_blur_keeps_float_images_and_smooths():
    image = torch.zeros(3, 21, 21)
    image[:, 10, 10] = 1.0
    blurred = GaussianBlur((1.0, 1.0))(image)
    assert blurred.dtype == torch.float32
    assert blurred.sum().item() == pytest.approx(3.0, rel=1e-5)  # mass kept away from the borders
    assert blurred[0, 10, 10] < 0.2 and blurred[0, 10, 11] > 0.05


def test_moco_v2_output():
    image = torch.randint(0, 256, (3, 48, 64), dtype=torch.uint8)
    torch.manual_seed(0)
    out = moco_v2(32)(image)
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    assert -3 < out.mean() < 3
    torch.manual_seed(0)
    assert torch.equal(moco_v2(32)(image), out)  # all randomness from the torch RNG


@pytest.mark.parametrize(("size", "sigma"), [(224, (0.1, 2.0)), (56, (0.025, 0.5))])
def test_moco_v2_blur_scales_with_the_view_size(size, sigma):
    blur = next(
        t.transforms[0]
        for t in moco_v2(size).transforms
        if isinstance(t, v2.RandomApply) and isinstance(t.transforms[0], GaussianBlur)
    )
    assert blur.sigma == pytest.approx(sigma)
