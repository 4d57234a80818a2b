"""The device data path on CPU tensors: batched MoCo v2 against the CPU-worker path given the same
parameters, decoding, and the encoded items' batches (intra-image, k_++)."""

import dataclasses
import math

import pytest
import torch
from torch.utils.data import default_collate
from torchvision.transforms.v2 import functional as TF

from cycle_pkg.data import augment as cpu_augment
from cycle_pkg.data import jpeg
from cycle_pkg.data.augment import IMAGENET_STD, MocoV2
from cycle_pkg.data.batch_augment import augment_views, crop_and_resize, decode_and_augment, gaussian_blur
from cycle_pkg.data.jpeg import UnreadableWindow, decode_frames, jpeg_size, read_jpeg
from cycle_pkg.data.pairs import VideoPairs, read_rgb
from cycle_pkg.data.r2v2 import load_videos
from cycle_pkg.errors import DatasetError

CPU = torch.device("cpu")
GREY_LEVELS = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255  # normalised units -> grey levels


@pytest.fixture(scope="module")
def frames(world):
    """64 of the world's JPEG frames (48 x 64), undecoded and decoded."""
    paths = [path for video in load_videos(world / "r2v2", "train")[:16] for path in video]
    encoded = [read_jpeg(path) for path in paths]
    decoded, unreadable = decode_frames(
        [e.data for e in encoded], torch.tensor([[e.height, e.width] for e in encoded]), [e.name for e in encoded], CPU
    )
    assert unreadable == 0 and all(torch.equal(d, read_rgb(p)) for d, p in zip(decoded, paths, strict=True))
    return encoded, decoded


def both_paths(decoded, params, size):
    """The CPU path's views, one by one, and the device path's, as one batch, in grey levels."""
    augment = MocoV2(size)
    cpu = torch.stack([augment.apply(decoded[k], p) for k, p in params])
    batch = default_collate([{**p.tensors(), "frame": torch.tensor(k)} for k, p in params])
    return cpu * GREY_LEVELS, augment_views(decoded, batch, size) * GREY_LEVELS


def draw(augment, decoded, count, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [(v % len(decoded), augment.draw(*decoded[v % len(decoded)].shape[-2:], generator)) for v in range(count)]


def test_same_parameters_same_pixels_up_to_the_cpu_paths_rounding(frames):
    """Crops that need no interpolation (48 x 48 at 48 px): what is left is the uint8 rounding of the
    CPU path, where each jitter operation rounds (hue truncates) and grayscale means are floored.
    Measured on 512 views: max 5.8 grey levels, mean 1.26; without jitter, blur or grayscale 4e-5."""
    _, decoded = frames
    params = [(k, dataclasses.replace(p, crop=(0, 8, 48, 48))) for k, p in draw(MocoV2(48), decoded, 160)]
    cpu, device = both_paths(decoded, params, 48)
    difference = (device - cpu).abs()
    assert difference.max() < 7 and difference.mean() < 1.5
    plain = torch.tensor([p.jitter is None and not p.grayscale and p.sigma is None for _, p in params])
    assert plain.any() and difference[plain].max() < 1e-3
    # each jitter order is covered, and a view's result depends on its own order
    assert len({p.order for _, p in params if p.jitter is not None}) == 24


@pytest.mark.parametrize(("size", "mean", "p99"), [(64, 1.8, 6.0), (24, 2.3, 12.0)])
def test_random_crops_match_up_to_interpolation(frames, size, mean, p99):
    """Whole pipelines, random crops: 64 px upscales the 48 x 64 frames, 24 px mostly downscales. roi_align
    reads the pixels just outside a crop that torchvision's resize clamps away (the views' border) and
    averages where torchvision's antialiasing weighs with a triangle: measured mean 1.36 / 1.71 grey
    levels, 99th percentile 3.5 / 9.1."""
    _, decoded = frames
    cpu, device = both_paths(decoded, draw(MocoV2(size), decoded, 96, seed=1), size)
    difference = (device - cpu).abs()
    assert difference.mean() < mean and difference.flatten().quantile(0.99) < p99


def test_upscaling_crop_is_bilinear_inside_the_crop():
    image = torch.rand(3, 40, 50, generator=torch.Generator().manual_seed(0)) * 255
    crops = torch.tensor([[3, 5, 20, 25], [0, 0, 40, 50], [10, 17, 13, 11]])
    out = crop_and_resize([image], torch.zeros(3, dtype=torch.int64), crops, 60)
    for view, (top, left, height, width) in zip(out, crops.tolist(), strict=True):
        expected = TF.resized_crop(image, top, left, height, width, [60, 60], antialias=False)
        inside = slice(m := 1 + math.ceil(60 / min(height, width) / 2), -m)  # half a source pixel from the edge
        assert torch.allclose(view[:, inside, inside] * 255, expected[:, inside, inside], atol=1e-3)
        assert not torch.allclose(view * 255, expected, atol=1e-3) or (height, width) == (40, 50)  # the border


def test_per_view_blur_is_the_cpu_paths_blur():
    images = torch.rand(4, 3, 30, 30, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.0, 0.3, 1.1, 2.0])
    blurred = gaussian_blur(images.clone(), sigma)
    assert torch.equal(blurred[0], images[0])
    for k in range(1, 4):
        assert torch.allclose(blurred[k], cpu_augment.gaussian_blur(images[k], float(sigma[k])), atol=1e-5)


def test_views_are_grouped_by_frame_size():
    """Frames of several sizes in one batch (loose JPEGs of different videos): one roi_align call each,
    each view as if its frame had been alone."""
    frames = [torch.rand(3, 20, 30) * 255, torch.rand(3, 36, 24) * 255, torch.rand(3, 20, 30) * 255]
    frame = torch.tensor([1, 0, 2, 1])
    crops = torch.tensor([[0, 0, 36, 24], [0, 0, 20, 30], [4, 2, 10, 10], [5, 1, 30, 20]])
    out = crop_and_resize(frames, frame, crops, 16)
    for view, k, crop in zip(out, frame.tolist(), crops, strict=True):
        assert torch.equal(view, crop_and_resize([frames[k]], torch.tensor([0]), crop[None], 16)[0])


def encoded_pairs(world, **options):
    videos = load_videos(world / "r2v2", "train")
    return VideoPairs(videos, MocoV2(32), reader=read_jpeg, encoded=True, seed=5, **options)


def test_encoded_items_draw_what_the_cpu_path_draws(world):
    cpu = VideoPairs(load_videos(world / "r2v2", "train"), MocoV2(32), seed=5)
    encoded = encoded_pairs(world)
    batch = encoded.collate([encoded[(2, index)] for index in range(6)])
    views, unreadable = decode_and_augment(batch, CPU, 32)
    assert unreadable == 0 and set(views) == {"query", "positive"}
    expected = default_collate([cpu[(2, index)] for index in range(6)])
    for name in ("query", "positive"):
        assert views[name].shape == (6, 3, 32, 32)
        difference = ((views[name] - expected[name]) * GREY_LEVELS).abs()
        assert difference.mean() < 2.5  # the same frames and parameters; interpolation and rounding apart


def test_intra_image_and_kpp_on_the_device_path(world):
    pairs = encoded_pairs(world, same_frame=True, query_view=True)
    items = [pairs[(0, index)] for index in range(4)]
    assert all(len(item["jpeg"]) == 1 for item in items)  # one frame, decoded once, three views of it
    batch = pairs.collate(items)
    assert len(batch["frame_names"]) == 4 and len(batch["jpeg_offsets"]) == 5
    for name in ("query", "positive", "query_view"):
        assert batch[name]["frame"].tolist() == [0, 1, 2, 3]
    views, _ = decode_and_augment(batch, CPU, 32)
    assert set(views) == {"query", "positive", "query_view"}
    assert not torch.equal(views["query"], views["query_view"])  # two draws of one frame
    intra_video = encoded_pairs(world).collate([encoded_pairs(world)[(0, index)] for index in range(4)])
    assert len(intra_video["frame_names"]) >= 6  # mostly two frames per video


def test_corrupt_jpegs_are_caught_in_the_worker_or_decoded_grey(world, tmp_path, caplog):
    good = next((world / "r2v2" / "train").rglob("*.jpg")).read_bytes()
    assert jpeg_size(good) == (48, 64)
    assert jpeg_size(good[: len(good) // 2]) is None  # truncated: no end marker
    assert jpeg_size(good[:200]) is None
    assert jpeg_size(b"\xff\xd8" + bytes(len(good) - 2)) is None  # zeroed after the start marker
    assert jpeg_size(b"not a jpeg at all") is None
    assert read_jpeg(tmp_path / "missing.jpg") is None
    # a complete header and end marker around damaged image data: the batch decodes the rest
    data = [torch.frombuffer(bytearray(good), dtype=torch.uint8), damaged_copy(good)]
    frames, unreadable = decode_frames(data, torch.tensor([[48, 64], [48, 64]]), ["good.jpg", "damaged.jpg"], CPU)
    assert unreadable == 1 and (frames[1] == 128).all() and frames[0].float().std() > 1
    assert "damaged.jpg" in caplog.text


def damaged_copy(good: bytes) -> torch.Tensor:
    """``good`` with its image data overwritten: a complete header and end marker that do not decode."""
    damaged = bytearray(good)
    start = good.index(b"\xff\xda")  # start of scan
    damaged[start + 2 : start + 40] = b"\xff" * 38
    return torch.frombuffer(damaged, dtype=torch.uint8)


def test_a_batch_none_of_whose_frames_decodes_stops_the_run(world):
    good = next((world / "r2v2" / "train").rglob("*.jpg")).read_bytes()
    data = [damaged_copy(good) for _ in range(3)]
    with pytest.raises(DatasetError, match=r"none of the 3 frames of a batch decodes on cpu \(a.jpg, \.\.\.: "):
        decode_frames(data, torch.tensor([[48, 64]] * 3), ["a.jpg", "b.jpg", "c.jpg"], CPU)


def test_running_out_of_memory_while_decoding_is_not_a_grey_frame(world, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(jpeg, "decode_jpeg", out_of_memory)
    good = torch.frombuffer(bytearray(next((world / "r2v2" / "train").rglob("*.jpg")).read_bytes()), dtype=torch.uint8)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        decode_frames([good, good], torch.tensor([[48, 64]] * 2), ["a.jpg", "b.jpg"], CPU)


def test_more_unreadable_frames_than_the_window_allows_stop_the_run():
    window = UnreadableWindow(share=0.1, window=100)
    for _ in range(10):
        window.add(50, 4)  # 8% of the last 100 frames: odd frames, grey
    window.add(50, 6)  # 10 of the last 100: still allowed
    with pytest.raises(DatasetError, match=r"11 of the last 100 frames do not decode \(more than 10 of 100"):
        window.add(50, 5)


def test_the_feed_stream_is_synchronised_before_nvjpeg_decodes(monkeypatch):
    """nvJPEG decodes on a stream of its own: the caller's queued kernels must be done first."""
    calls = []

    class Stream:
        def synchronize(self):
            calls.append("synchronize")

    def decode(data, mode, device):
        calls.append("decode")
        return [torch.zeros(3, 48, 64, dtype=torch.uint8) for _ in data]

    monkeypatch.setattr(jpeg.torch.cuda, "current_stream", lambda device: Stream())
    monkeypatch.setattr(jpeg, "decode_jpeg", decode)
    data = [torch.zeros(10, dtype=torch.uint8)] * 2
    frames, unreadable = decode_frames(data, torch.tensor([[48, 64]] * 2), ["a.jpg", "b.jpg"], torch.device("cuda"))
    assert calls == ["synchronize", "decode"] and unreadable == 0 and len(frames) == 2
