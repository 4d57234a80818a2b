import hashlib
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from cycle_pkg.data.imagenet import imagenet100_wnids
from cycle_pkg.data.pairs import StepSampler, VideoPairs, read_rgb
from cycle_pkg.data.r2v2 import id_list_path, load_videos, read_id_list
from cycle_pkg.data.synthetic import class_wnids, generate_world, latent_classes, new_instance
from cycle_pkg.data.synthetic.scene import LatentClass, render_with_mask
from cycle_pkg.errors import ConfigError, DatasetError
from cycle_pkg.settings.config import load_config

from ..helpers import PARAMS


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "world.json"):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_world_is_in_r2v2_layout(world):
    config = load_config(PARAMS, "test")
    videos = read_id_list(id_list_path(world / "r2v2", "train"))
    assert len(videos) == config.world.videos
    for video in videos:
        assert re.fullmatch(r"[A-Za-z0-9_-]{11}", video.video_id)
        assert len(video.frames) == 4 and all(
            b - a == 150 for a, b in zip(video.frames[:-1], video.frames[1:], strict=True)
        )
        for frame in video.frames:
            path = world / "r2v2" / "train" / video.video_id[:2] / f"{video.video_id}_{frame:06d}.jpg"
            image = read_rgb(path)
            assert image is not None and image.shape == (3, config.world.frame_height, config.world.frame_width)
    assert len(read_id_list(id_list_path(world / "r2v2", "val"))) == config.world.val_videos


def test_world_imagefolder_shares_the_classes(world):
    config = load_config(PARAMS, "test")
    wnids = sorted(p.name for p in (world / "imagenet" / "train").iterdir())
    assert wnids == sorted(class_wnids(config.world.classes))
    assert all(re.fullmatch(r"n\d{8}", w) for w in wnids)
    in100 = set(imagenet100_wnids())
    assert 0 < len(in100 & set(wnids)) < len(wnids)  # the ImageNet-100 subset keeps some classes
    for wnid in wnids:
        assert len(list((world / "imagenet" / "train" / wnid).glob("*.JPEG"))) == config.world.images_per_class
        assert len(list((world / "imagenet" / "val" / wnid).glob("*.JPEG"))) == config.world.val_images_per_class
    labels = Counter(
        line.split(",")[1] for line in (world / "r2v2" / "latent_classes_train.csv").read_text().split()[1:]
    )
    assert len(labels) == config.world.classes  # every class appears in the videos


def test_world_is_seeded_and_kept(tmp_path, world):
    config = load_config(PARAMS, "test", [f"world.root={tmp_path / 'again'}"])
    generate_world(config.world)
    assert tree_digest(tmp_path / "again") == tree_digest(world)
    stamp = (tmp_path / "again" / "world.json").stat().st_mtime_ns
    generate_world(config.world)  # identical settings: nothing rewritten
    assert (tmp_path / "again" / "world.json").stat().st_mtime_ns == stamp
    other = load_config(PARAMS, "test", [f"world.root={tmp_path / 'other'}", "world.seed=1"])
    generate_world(other.world)
    assert tree_digest(tmp_path / "other") != tree_digest(world)


@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_pattern_scale_is_the_patterns_repeats_across_the_object(scale):
    """A striped square seen head-on (angle 0, aspect 1, one radius = 32 px): along its vertical axis
    the two colours alternate ``scale`` times, i.e. 2 x scale colour changes inside the object."""
    rng = np.random.default_rng(0)
    instance = new_instance(LatentClass("square", "stripes"), rng, [scale, scale])
    assert instance.pattern_scale == scale
    instance.aspect, instance.pattern_phase = 1.0, 0.3
    grey = np.full((96, 96, 3), 0.5)
    image, inside = render_with_mask(instance, grey, (48.0, 48.0), 32.0, 0.0, np.ones(3))
    column = image[:, 48].astype(float) @ np.abs(instance.colors[0] - instance.colors[1])
    rows = np.flatnonzero(inside[:, 48] == 1)  # the square's inside spans v in [-0.8, 0.8]: 80% of the axis
    side = column[rows] > (column[rows].min() + column[rows].max()) / 2
    changes = int(np.count_nonzero(side[1:] != side[:-1]))
    assert abs(changes - 2 * scale * 0.8) <= 1


def test_a_worlds_instances_draw_their_pattern_scale_from_its_setting():
    config = load_config(PARAMS, "test", ["world.pattern_scale=[1.0,2.0]"])
    rng = np.random.default_rng(0)
    scales = [new_instance(c, rng, config.world.pattern_scale).pattern_scale for c in latent_classes(12, 0)]
    assert min(scales) >= 1.0 and max(scales) <= 2.0 and max(scales) - min(scales) > 0.3
    with pytest.raises(ConfigError, match=r"world.pattern_scale"):
        load_config(PARAMS, "test", ["world.pattern_scale=[2.0,1.0]"])


def test_id_list_errors_name_the_line(tmp_path):
    path = tmp_path / "r2v2_ids_train.txt"
    path.write_text("abcdefghijk,1,151,301,451\nbroken line\n")
    with pytest.raises(DatasetError, match=r"r2v2_ids_train.txt:2: expected 'id,frame"):
        read_id_list(path)
    path.write_text("\n")
    with pytest.raises(DatasetError, match="id list is empty"):
        read_id_list(path)


def test_missing_or_empty_data_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="R2V2 folder not found.*data.r2v2_root"):
        load_videos(tmp_path / "nowhere", "train")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no frames here"):
        load_videos(tmp_path / "empty", "train")


def frame_reader(bad: set[str]):
    """Frames are constant images whose value encodes (video, frame); names in ``bad`` fail."""

    def read(path):
        if path in bad:
            return None
        video, frame = path.split("/")
        return torch.full((3, 4, 4), 10 * int(video) + int(frame), dtype=torch.uint8)

    return read


VIDEOS = [[f"{v}/{f}" for f in range(4)] for v in range(6)]


class Unchanged:
    """An augmentation that hands the frame over as float; ``noise`` adds the view's random draw."""

    def __init__(self, noise: bool = False):
        self.noise = noise

    def draw(self, height, width, generator):
        return float(torch.rand((), generator=generator))

    def apply(self, image, params):
        return image.float() + params if self.noise else image.float()


def test_pairs_are_a_function_of_seed_epoch_and_index():
    pairs = VideoPairs(VIDEOS, Unchanged(), reader=frame_reader(set()), seed=3)
    first, again = pairs[(0, 2)], pairs[(0, 2)]
    assert torch.equal(first["query"], again["query"]) and torch.equal(first["positive"], again["positive"])
    assert int(first["query"][0, 0, 0]) // 10 == 2 and int(first["positive"][0, 0, 0]) // 10 == 2  # same video
    frames = {(int(pairs[(e, 2)]["query"][0, 0, 0]), int(pairs[(e, 2)]["positive"][0, 0, 0])) for e in range(30)}
    assert len(frames) > 4  # other epochs draw other frames
    assert any(q != p for q, p in frames)  # intra-video: usually another frame


def test_intra_image_uses_the_same_frame_and_kpp_adds_a_view():
    pairs = VideoPairs(VIDEOS, Unchanged(), same_frame=True, query_view=True, reader=frame_reader(set()))
    for epoch in range(10):
        item = pairs[(epoch, 1)]
        assert torch.equal(item["query"], item["positive"]) and torch.equal(item["query"], item["query_view"])


def test_augmentations_are_drawn_per_item_without_touching_the_global_rng():
    pairs = VideoPairs(VIDEOS, Unchanged(noise=True), reader=frame_reader(set()))
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    a = pairs[(0, 0)]
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(a["query"], pairs[(0, 0)]["query"])
    assert not torch.equal(a["query"] - a["query"].floor(), a["positive"] - a["positive"].floor())


def test_unreadable_frames_are_skipped_and_counted():
    bad = {"0/0", "0/1", "0/2"} | {f"1/{f}" for f in range(4)}
    pairs = VideoPairs(VIDEOS, Unchanged(), reader=frame_reader(bad))
    item = pairs[(0, 0)]
    assert int(item["query"][0, 0, 0]) == 3 and int(item["positive"][0, 0, 0]) == 3  # the only good frame
    assert 1 <= item["skipped"] <= 3
    item = pairs[(0, 1)]  # no readable frame: another video instead
    assert int(item["query"][0, 0, 0]) // 10 != 1 and item["skipped"] >= 4


def test_corrupt_and_truncated_jpegs_read_as_none(tmp_path, world, caplog):
    good = next((world / "r2v2" / "train").rglob("*.jpg")).read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "garbage.jpg").write_bytes(b"not a jpeg at all")
    assert read_rgb(tmp_path / "truncated.jpg") is None
    assert read_rgb(tmp_path / "garbage.jpg") is None
    assert read_rgb(tmp_path / "missing.jpg") is None
    assert "truncated.jpg" in caplog.text


def collect(sampler):
    return list(sampler)


def test_step_sampler_splits_each_global_batch_across_ranks():
    size, batch, world = 50, 8, 2
    ranks = [collect(StepSampler(size, batch, r, world, 0, 0, 12)) for r in range(world)]
    steps_per_epoch = size // batch  # 6; 2 videos per epoch are dropped
    for epoch in range(2):
        seen = [i for r in ranks for e, i in r if e == epoch]
        assert len(seen) == len(set(seen)) == steps_per_epoch * batch
    # rank r holds the r-th half of every global batch
    assert ranks[0][:4] != ranks[1][:4] and len(ranks[0]) == len(ranks[1]) == 12 * 4


def test_step_sampler_resumes_exactly():
    full = collect(StepSampler(40, 8, 0, 1, 5, 0, 15))
    assert collect(StepSampler(40, 8, 0, 1, 5, 7, 15)) == full[7 * 8 :]
    assert len(StepSampler(40, 8, 0, 1, 5, 7, 15)) == 8 * 8


def test_step_sampler_rejects_too_small_data_and_bad_splits():
    with pytest.raises(DatasetError, match="fewer than one batch"):
        StepSampler(5, 8, 0, 1, 0, 0, 1)
    with pytest.raises(ValueError, match="divisible by the 3 processes"):
        StepSampler(50, 8, 0, 3, 0, 0, 1)
