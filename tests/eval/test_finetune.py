"""UCF101 fine-tuning (Table 9): the schedule, the clip model, BN groups, the warm-up, the
aggregation of predictions against hand-computed values, and a run stopped by a signal that resumes
to the uninterrupted run's result. Videos are drawn with the synthetic world's renderer."""

import os
import signal

import pytest
import torch
from torch import nn

from cycle_pkg.errors import Preempted
from cycle_pkg.eval.action import clip_accuracy, schedule, video_accuracy
from cycle_pkg.eval.checkpoints import load_backbone
from cycle_pkg.eval.finetune import STATE, ClipClassifier, FinetuneEvalConfig, Finetuning, finetune

CLASSES = 3
# The `videos` fixture's (tests/eval/conftest.py): two training videos and one test video per class,
# whose files exist (runs are identified by them).
TRAINING_VIDEOS = 2
VIDEO_FILES = True
# CPU sizes: 2-frame clips at 32 px, one warm-up and two main epochs.
CPU_SIZES = dict(
    clip_frames=2,
    train_clips=2,
    test_clips=2,
    clip_test_clips=3,
    image_size=32,
    resize=37,
    warmup_epochs=1,
    epochs=2,
    milestones=[1],
    batch_size=4,
    bn_clips=2,
)


@pytest.fixture(scope="module")
def cfg():
    return FinetuneEvalConfig(**CPU_SIZES)


def fresh_backbone():
    backbone = load_backbone("random", arch="resnet18", seed=0)
    return backbone.net, backbone.width


def test_schedule_is_the_authors():
    lrs = [epoch.lr for epoch in schedule(FinetuneEvalConfig())]
    assert lrs == pytest.approx([1e-4] * 5 + [1e-4] * 6 + [3e-5] * 4 + [9e-6] * 4 + [2.7e-6] * 2)
    phases = [epoch.phase for epoch in schedule(FinetuneEvalConfig())]
    assert phases == ["warm-up"] * 5 + ["main"] * 16


def test_paper_settings_are_the_authors_32at16_drop09():
    cfg = FinetuneEvalConfig()
    assert (cfg.clip_frames, cfg.clip_fps, cfg.image_size, cfg.min_area) == (32, 16.0, 224, 0.08)
    assert (cfg.train_clips, cfg.clip_test_clips, cfg.test_clips) == (5, 25, 10)
    assert (cfg.dropout, cfg.batch_size, cfg.bn_clips, cfg.lr) == (0.9, 32, 8, 1e-4)
    assert cfg.color_jitter == [0.4, 0.4, 0.4, 0.2]


def test_clip_and_video_accuracy_by_hand():
    # two videos of three clips over three classes; video 0 is class 0, video 1 class 2
    probabilities = torch.tensor(
        [
            [[0.6, 0.3, 0.1], [0.1, 0.7, 0.2], [0.5, 0.1, 0.4]],  # clips say 0, 1, 0; mean (0.4, 0.37, 0.23): 0
            [[0.1, 0.5, 0.4], [0.3, 0.3, 0.4], [0.2, 0.5, 0.3]],  # clips say 1, 2, 1; mean (0.2, 0.43, 0.37): 1, then 2
        ]
    )
    labels = torch.tensor([0, 2])
    clip = clip_accuracy(probabilities, labels, ks=(1, 2))
    assert clip[1] == pytest.approx(100 * 3 / 6)  # clips 0 and 2 of video 0, clip 1 of video 1
    assert clip[2] == pytest.approx(100 * 5 / 6)  # all but video 0's clip 1 (classes 1 and 2 ahead of 0)
    video = video_accuracy(probabilities, labels, ks=(1, 2))
    assert video[1] == pytest.approx(50.0) and video[2] == pytest.approx(100.0)


def test_clip_model_pools_over_time_and_space_as_the_authors_do():
    """Per-frame pooled features averaged over frames equal AdaptiveAvgPool3d over (time, h, w) of
    the frames' feature maps (the authors' VideoR2DTorch), before dropout and the linear layer."""
    net, width = fresh_backbone()
    model = ClipClassifier(net, width, CLASSES, dropout=0.9).eval()
    clips = torch.randn(2, 3, 3, 32, 32)
    frames = clips.flatten(0, 1)
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4)
    maps = stem(frames)  # (clips x frames, C, h, w)
    volume = maps.unflatten(0, (2, 3)).transpose(1, 2)  # (clips, C, frames, h, w)
    pooled = nn.AdaptiveAvgPool3d(1)(volume).flatten(1)
    with torch.no_grad():
        assert torch.allclose(model(clips), model.fc(pooled), atol=1e-5)


def batch_norm_inputs(model):
    sizes = []
    model.backbone.bn1.register_forward_hook(lambda module, inputs, output: sizes.append(inputs[0].shape[0]))
    return sizes


def test_warmup_trains_the_classifier_alone_with_bn_in_train_mode_then_everything(tmp_path, cfg, videos):
    train, _, read = videos
    net, width = fresh_backbone()
    run = Finetuning(net, width, train, CLASSES, read, cfg, 0, tmp_path, torch.device("cpu"))
    conv, mean = net.conv1.weight.clone(), net.bn1.running_mean.clone()
    fc = run.model.fc.weight.clone()
    sizes = batch_norm_inputs(run.model)
    run.train_epoch(0)  # the warm-up
    assert torch.equal(net.conv1.weight, conv)  # the backbone's weights stay ...
    assert not torch.equal(net.bn1.running_mean, mean)  # ... its BN statistics follow the data
    assert not torch.equal(run.model.fc.weight, fc)
    # 6 videos x 2 clips in batches of 4: 3 steps, each normalised in groups of 2 clips of 4 frames
    assert sizes == [cfg.bn_clips * cfg.clip_frames] * 6 and run.progress.epoch == 1
    run.train_epoch(1)
    assert not torch.equal(net.conv1.weight, conv)
    assert len(run.progress.losses) == 2 and all(0 <= a <= 100 for a in run.progress.accuracies)
    run.flag.restore()


def test_a_signal_saves_and_the_rerun_ends_as_an_uninterrupted_run(tmp_path, cfg, videos):
    train, test, read = videos
    net, width = fresh_backbone()
    epochs = []
    uninterrupted = finetune(
        net, width, train, test, CLASSES, read, cfg, 0, tmp_path / "a", on_epoch=lambda e, m: epochs.append(m)
    )
    assert [m["lr"] for m in epochs] == pytest.approx([cfg.lr, cfg.lr, cfg.lr * cfg.lr_decay])
    assert uninterrupted["epoch_losses"] == pytest.approx([m["train_loss"] for m in epochs])
    assert 0 <= uninterrupted["top1"] <= uninterrupted["top5"] <= 100
    assert 0 <= uninterrupted["clip_top1"] <= uninterrupted["clip_top5"] <= 100
    assert (uninterrupted["train_videos"], uninterrupted["test_videos"]) == (6, 3)

    calls = []

    def read_then_signal(path):
        calls.append(path)
        if len(calls) == 12 + 5:  # in the second step of the main phase's first epoch
            os.kill(os.getpid(), signal.SIGUSR1)
        return read(path)

    net, width = fresh_backbone()
    with pytest.raises(Preempted, match="epoch 2, step 2"):
        finetune(net, width, train, test, CLASSES, read_then_signal, cfg, 0, tmp_path / "b")
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL  # the handlers are put back
    saved = torch.load(tmp_path / "b" / STATE, weights_only=True)["progress"]
    assert (saved["epoch"], saved["step"]) == (1, 2)
    net, width = fresh_backbone()
    resumed = finetune(net, width, train, test, CLASSES, read, cfg, 0, tmp_path / "b")
    for key in ("top1", "top5", "clip_top1", "clip_top5"):
        assert resumed[key] == uninterrupted[key]
    assert resumed["epoch_losses"] == pytest.approx(uninterrupted["epoch_losses"], rel=1e-6)
    assert (uninterrupted["diverged"], resumed["diverged"]) == (False, False)


def test_a_state_of_other_settings_is_set_aside(tmp_path, cfg, videos):
    train, _, read = videos
    net, width = fresh_backbone()
    run = Finetuning(net, width, train, CLASSES, read, cfg, 0, tmp_path, torch.device("cpu"))
    run.train_epoch(0)
    run.flag.restore()
    other = FinetuneEvalConfig(**{**CPU_SIZES, "lr": 1e-3})
    run = Finetuning(*fresh_backbone(), train, CLASSES, read, other, 0, tmp_path, torch.device("cpu"))
    run.flag.restore()
    assert run.progress.epoch == 0 and len(list(tmp_path.glob("checkpoint.replaced-*.pt"))) == 1


def test_a_diverged_fine_tuning_is_flagged(tmp_path, videos):
    train, test, read = videos
    cfg = FinetuneEvalConfig(**{**CPU_SIZES, "lr": 10.0, "epochs": 1, "milestones": [], "test_clips": 1})
    metrics = finetune(*fresh_backbone(), train, test, CLASSES, read, cfg, 0, tmp_path)
    # Adam at lr 10 throws the classifier far out within the warm-up: losses in the thousands, not ~ln 3
    assert metrics["diverged"] and "the last epoch's loss" in metrics["divergence"]
    assert metrics["train_loss"] > 100 and len(metrics["epoch_losses"]) == 2
