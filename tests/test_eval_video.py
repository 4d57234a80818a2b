"""UCF101 protocols on decoded videos: action recognition's training clips and schedule, and
retrieval, on videos drawn with the synthetic world's renderer (any ``read_video`` works: here one
that serves them from memory). The frame and clip indices are data.ucf101's, tested with it."""

import pytest
import torch

from cycle_pkg.config import load_config
from cycle_pkg.errors import DatasetError
from cycle_pkg.eval.action import TrainClips, action_recognition, learning_rate
from cycle_pkg.eval.features import FeatureCache
from cycle_pkg.eval.retrieval import RetrievalClips, RetrievalFrames, retrieval
from cycle_pkg.eval.video import VideoClips

from .conftest import PARAMS
from .eval_helpers import draw_video

CLASSES = 6


@pytest.fixture(scope="module")
def videos():
    """Three training and one test video per class, and a reader serving them by name."""
    train = [(f"v_{label}_g{g}.avi", label) for label in range(CLASSES) for g in range(3)]
    test = [(f"v_{label}_g9.avi", label) for label in range(CLASSES)]
    store = {name: draw_video(label, seed=n) for n, (name, label) in enumerate(train + test)}
    return train, test, store.__getitem__


def test_samplers_give_the_protocols_shapes(config, videos):
    _, _, read = videos
    frames, fps = read("v_0_g0.avi")
    frames = frames.permute(0, 3, 1, 2)
    cfg = config.eval.retrieval
    assert RetrievalFrames(cfg)(frames, fps, 0).shape == (cfg.frames_per_video, 1, 3, cfg.frame_crop, cfg.frame_crop)
    assert RetrievalClips(cfg)(frames, fps, 0).shape == (cfg.clips_per_video, cfg.clip_length, 3, 28, 28)
    action = config.eval.action
    assert TrainClips(action, epoch=0)(frames, fps, 0).shape == (action.train_clips, action.clip_frames, 3, 32, 32)


def test_training_clips_are_seeded_and_share_one_augmentation(config):
    still = torch.randint(0, 255, (1, 3, 48, 64), dtype=torch.uint8).expand(30, -1, -1, -1)
    sampler = TrainClips(config.eval.action, epoch=3)
    clips = sampler(still, 25.0, index=7)
    assert torch.equal(clips, sampler(still, 25.0, index=7))
    assert not torch.equal(clips, TrainClips(config.eval.action, epoch=4)(still, 25.0, index=7))
    # A still video: one crop, flip and jitter per clip makes all of a clip's frames equal.
    assert all(torch.equal(clip[0], frame) for clip in clips for frame in clip)
    assert not torch.equal(clips[0], clips[1])  # each clip draws its own


def test_action_schedule_is_avid_cmas():
    paper = load_config(PARAMS, "paper").eval.action
    assert [learning_rate(paper, e) for e in (0, 5, 6, 10, 14, 15)] == pytest.approx(
        [1e-4, 1e-4, 3e-5, 9e-6, 2.7e-6, 2.7e-6]
    )


def test_action_recognition_runs_the_protocol(tmp_path, config, frozen, videos):
    train, test, read = videos
    cache = FeatureCache(tmp_path / "cache")
    steps = []
    for name, _ in train + test:  # the cache identifies videos by their files
        (tmp_path / name).write_bytes(b"")
    on_disk = [(tmp_path / name, label) for name, label in train], [(tmp_path / name, label) for name, label in test]

    def read_from_disk(path):
        return read(path.name)

    metrics = action_recognition(
        frozen, *on_disk, CLASSES, read_from_disk, config.eval.action, config.eval, cache, lambda s, m: steps.append(m)
    )
    cfg = config.eval.action
    assert len(steps) == cfg.warmup_epochs + cfg.epochs
    assert [m["lr"] for m in steps] == pytest.approx([cfg.lr, cfg.lr, cfg.lr * cfg.lr_decay])
    assert (metrics["train_videos"], metrics["test_videos"], metrics["classes"]) == (18, 6, CLASSES)
    assert 0 <= metrics["top1"] <= metrics["top5"] <= 100
    again = action_recognition(frozen, *on_disk, CLASSES, read_from_disk, cfg, config.eval, cache)
    assert cache.hits == 1  # the test clips' features were reused
    assert again["top1"] == metrics["top1"] and again["train_loss"] == pytest.approx(metrics["train_loss"])
    frozen.check_unchanged()


def test_retrieval_finds_a_copy_of_each_query(config, frozen, videos):
    train, _, read = videos
    queries = train[::3]  # one training video per class, queried against all of them
    metrics = retrieval(frozen, train, queries, read, config.eval.retrieval, config.eval, FeatureCache(None))
    assert metrics["frame_top1"] == 100.0 and metrics["clip_top1"] == 100.0  # each finds itself first
    assert set(metrics) >= {f"{m}_top{k}" for m in ("frame", "clip") for k in (1, 5, 10, 20, 50)}
    assert metrics["frame_top50"] == 100.0
    # a random ranking's: 3 of 18 gallery videos hold a query's class; 5 drawn miss them C(15, 5) / C(18, 5)
    assert metrics["chance_top1"] == pytest.approx(100 * 3 / 18)
    assert metrics["chance_top5"] == pytest.approx(100 * (1 - 3003 / 8568))


def test_a_video_that_does_not_decode_to_frames_is_named():
    clips = VideoClips([("broken.avi", 0)], lambda path: (torch.zeros(0, 4, 4, 3, dtype=torch.uint8), 25.0), None)
    with pytest.raises(DatasetError, match=r"broken.avi: expected decoded frames of shape \(T, H, W, 3\)"):
        clips[0]
