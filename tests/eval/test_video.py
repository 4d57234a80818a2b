"""UCF101 protocols on decoded videos: action recognition's training clips and schedule, and
retrieval, on videos drawn with the synthetic world's renderer (any ``read_video`` works: here one
that serves them from memory). The frame and clip indices are data.ucf101's, tested with it."""

import copy
import dataclasses

import pytest
import torch

from cycle_pkg.errors import ConfigError, DatasetError
from cycle_pkg.eval.action import TrainClips, action_recognition, adapting_clip_features, learning_rate
from cycle_pkg.eval.features import FeatureCache
from cycle_pkg.eval.retrieval import RetrievalClips, RetrievalFrames, retrieval
from cycle_pkg.eval.video import VideoClips
from cycle_pkg.settings.config import load_config

from ..helpers import PARAMS

CLASSES = 6
TRAINING_VIDEOS = 3  # a class, and one test video: the `videos` fixture's (tests/eval/conftest.py)


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


def test_the_frozen_probe_adapts_batch_norm_as_the_authors_and_fine_tuning_trains_it():
    assert load_config(PARAMS, "paper").eval.action.batch_norm == "train"
    with pytest.raises(ConfigError, match="eval.finetune.batch_norm: 'eval' is not one of"):
        load_config(PARAMS, "paper", ["eval.finetune.batch_norm=eval"])


def test_adapting_batch_norm_moves_its_statistics_and_no_weight(config, frozen, videos):
    """AVID-CMA's frozen probe in train mode: batches of clips of distinct videos normalised with their own
    statistics, the running statistics updated by every pass, the weights untouched."""
    train, _, read = videos
    cfg = config.eval.action
    net, reference = copy.deepcopy(frozen.net), copy.deepcopy(frozen.net)
    clips = VideoClips(train, read, TrainClips(cfg, epoch=0))
    features = adapting_clip_features(net, clips, 4, torch.Generator().manual_seed(5), 0, torch.device("cpu"))
    assert features.shape == (len(train), cfg.train_clips, frozen.width)
    weights = dict(frozen.net.named_parameters())
    assert all(torch.equal(p, weights[name]) for name, p in net.named_parameters())
    statistics = dict(frozen.net.named_buffers())
    moved = [n for n, b in net.named_buffers() if n.endswith("running_mean") and not torch.equal(b, statistics[n])]
    assert len(moved) == sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # every BatchNorm's
    passes = -(-len(train) // 4) * cfg.train_clips  # 5 groups of videos (the last of 2), a pass per clip index
    assert int(net.bn1.num_batches_tracked) == int(frozen.net.bn1.num_batches_tracked) + passes
    # The first pass: the first clips of the first 4 videos of the order, normalised together.
    first = torch.randperm(len(train), generator=torch.Generator().manual_seed(5))[:4]
    batch = torch.stack([clips[int(i)][0][0] for i in first])  # (4, t, 3, h, w)
    with torch.no_grad():
        expected = reference.train()(batch.flatten(0, 1)).view(4, cfg.clip_frames, -1).mean(dim=1)
    assert torch.allclose(features[first, 0], expected, atol=1e-5)
    assert not torch.allclose(features[first, 0], frozen(batch.flatten(0, 1)).view(4, cfg.clip_frames, -1).mean(1))


@pytest.mark.parametrize("batch_norm", ["train", "eval"])
def test_action_recognition_runs_the_protocol(tmp_path, config, frozen, videos, batch_norm):
    train, test, read = videos
    cache = FeatureCache(tmp_path / "cache")
    steps = []
    for name, _ in train + test:  # the cache identifies videos by their files
        (tmp_path / name).write_bytes(b"")
    on_disk = [(tmp_path / name, label) for name, label in train], [(tmp_path / name, label) for name, label in test]

    def read_from_disk(path):
        return read(path.name)

    cfg = dataclasses.replace(config.eval.action, batch_norm=batch_norm)
    metrics = action_recognition(
        frozen, *on_disk, CLASSES, read_from_disk, cfg, config.eval, cache, lambda s, m: steps.append(m)
    )
    assert len(steps) == cfg.warmup_epochs + cfg.epochs
    assert [m["lr"] for m in steps] == pytest.approx([cfg.lr, cfg.lr, cfg.lr * cfg.lr_decay])
    assert (metrics["train_videos"], metrics["test_videos"], metrics["classes"]) == (18, 6, CLASSES)
    assert 0 <= metrics["top1"] <= metrics["top5"] <= 100
    again = action_recognition(frozen, *on_disk, CLASSES, read_from_disk, cfg, config.eval, cache)
    assert cache.hits == 1  # the test clips' features were reused
    assert again["top1"] == metrics["top1"] and again["train_loss"] == pytest.approx(metrics["train_loss"])
    frozen.check_unchanged()  # adapting works on a copy
    # the test clips were seen with the checkpoint's statistics in eval mode, with the adapted ones in train mode
    (cached,) = (tmp_path / "cache").glob("action-test-*.pt")
    assert (torch.load(cached, weights_only=True)["meta"]["weights"] == frozen.digest) == (batch_norm == "eval")


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
