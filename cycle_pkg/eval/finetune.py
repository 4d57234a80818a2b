"""UCF101 fine-tuning of the whole network (Table 9), as the authors ran it (AVID-CMA-CycleContrast,
``configs/benchmark/ucf/32at16-fold1-*-drop09.yaml``).

The 2D ResNet runs on every frame of a 32-frame clip (2 s at 16 fps); its pooled features are averaged
over the clip, which is average pooling over time and space; dropout (0.9) and one linear layer
classify the clip. Training draws 5 clips per video and epoch at random times, shuffles all of them
and steps on batches of 32 (the last partial batch is dropped); each clip has one RandomResizedCrop
(min area 0.08), flip and colour jitter (0.4, 0.4, 0.4, 0.2) for all its frames. BatchNorm is in train
mode throughout and normalises groups of ``bn_clips`` clips: the authors' DataParallel split each
batch of 32 over 4 GPUs, 8 clips each; here the groups' gradients are accumulated into one step.
Adam (lr 1e-4, weight decay 0) first trains the classifier alone for 5 warm-up epochs at a constant
lr (the backbone's BN statistics follow the data meanwhile, as in train mode there), then a fresh
Adam trains everything for 16 epochs, lr x0.3 at epochs 6, 10 and 14. The final model is tested
on 25 clips per test video at random times, each scored on its own (clip top-1/5), and on 10 clips
spread evenly over each video with their softmax averaged (video top-1/5, the number Table 9
reports); test clips are Resize(256) + CenterCrop(224). The authors' per-epoch test on 5 clips only
monitors their run (the final model is the last one) and is left out.

Every random draw comes from (seed, epoch, position in the epoch): the run checkpoints every epoch
and on SIGTERM / SIGUSR1 / SIGINT after the current step (:mod:`.finetune_state`), and a resumed run
computes what an uninterrupted one does. Colour jitter and normalisation run on the training device
(on a GPU, jittering 32 frames at 224 px costs a loader process half a second per clip, more than
decoding).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.ucf101 import read_split, read_video
from ..errors import ConfigError, Preempted
from ..jobs.attempts import attempts_log
from ..jobs.layout import job_folder
from ..jobs.mlflow_job import MlflowRun
from ..jobs.preemption import WITH_INTERRUPT, PreemptionFlag, ignore_in_worker
from ..settings.config import Config
from . import finetune_state
from .action import (
    COLOUR,
    Epoch,
    TestClips,
    TrainClips,
    clip_accuracy,
    colour_transform,
    crop_transform,
    normalize,
    schedule,
    seed_of,
    test_crop,
    video_accuracy,
)
from .checkpoints import Backbone
from .divergence import LossHistory, divergence_flags
from .features import eval_device
from .finetune_settings import FinetuneEvalConfig
from .finetune_state import STATE
from .registry import Evaluate
from .video import Video, VideoClips, VideoReader

log = logging.getLogger(__name__)
DROPOUT = COLOUR + 1  # the purpose key of a step's dropout draws, after action's clip draws


class ClipClassifier(nn.Module):
    """The per-frame 2D ResNet (``fc`` = Identity: frames -> pooled features), its features averaged
    over each clip's frames (every frame's map has the same size, so this is average pooling over time
    and space), then dropout and one linear layer."""

    def __init__(self, backbone: nn.Module, width: int, classes: int, dropout: float):
        super().__init__()
        self.backbone, self.dropout, self.fc = backbone, nn.Dropout(dropout), nn.Linear(width, classes)
        self.memory_format = torch.contiguous_format

    def forward(self, clips: Tensor) -> Tensor:
        """(clips, frames, 3, H, W) -> logits (clips, classes)."""
        pooled = self.backbone(clips.flatten(0, 1).contiguous(memory_format=self.memory_format))
        return self.fc(self.dropout(pooled.unflatten(0, clips.shape[:2]).mean(dim=1)))


def steps_per_epoch(cfg: FinetuneEvalConfig, videos: int) -> int:
    steps = videos * cfg.train_clips // cfg.batch_size
    if steps < 1:
        raise ConfigError(
            f"eval.finetune: {videos} training videos x train_clips={cfg.train_clips} fill no batch of "
            f"batch_size={cfg.batch_size} clips; lower eval.finetune.batch_size"
        )
    return steps


def apply_seeded(transform: Callable[[Tensor], Tensor], clip: Tensor, seed: int) -> Tensor:
    """``transform(clip)`` with torch's global generator, which the v2 transforms draw from, at ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return transform(clip)


class Finetuning:
    """One fine-tuning run: the model on its device, its progress and state file, and its steps."""

    def __init__(
        self,
        net: nn.Module,
        width: int,
        train: Sequence[Video],
        classes: int,
        read_video: VideoReader,
        cfg: FinetuneEvalConfig,
        workers: int,
        state_dir: str | Path,
        device: torch.device,
    ):
        self.train, self.read_video, self.cfg, self.workers, self.device = train, read_video, cfg, workers, device
        self.cuda = device.type == "cuda"
        self.plan = schedule(cfg)
        self.steps = steps_per_epoch(cfg, len(train))
        self.fingerprint = finetune_state.fingerprint(cfg, net, train, classes)
        torch.manual_seed(cfg.seed)  # the classifier's initialisation
        self.model = ClipClassifier(net, width, classes, cfg.dropout).to(device)
        if self.cuda:
            self.model.memory_format = torch.channels_last
            self.model.to(memory_format=torch.channels_last)
            torch.backends.cudnn.benchmark = True
        self.colour, self.normalize = colour_transform(cfg), normalize()
        self.path = Path(state_dir) / STATE
        self.progress, self.saved_optimizer = finetune_state.restore(self.path, self.fingerprint, self.model)
        self.optimizer: torch.optim.Optimizer | None = None
        self.flag = PreemptionFlag(WITH_INTERRUPT)
        self.session_start = time.perf_counter()

    def autocast(self) -> torch.autocast:
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda and self.cfg.amp)

    def save(self) -> None:
        """The state file, with this session's training time added (no optimizer once the run is done)."""
        now = time.perf_counter()
        self.progress.train_seconds += now - self.session_start
        self.session_start = now
        done = self.progress.epoch == len(self.plan)
        finetune_state.save(self.path, self.fingerprint, self.progress, self.model, None if done else self.optimizer)

    def optimizer_for(self, epoch: Epoch) -> torch.optim.Optimizer:
        """Each phase starts with a fresh Adam: over the classifier in the warm-up, over everything then;
        a resumed run continues with the saved one."""
        start_of_phase = epoch.number == 0 and self.progress.step == 0
        if self.optimizer is not None and not start_of_phase:
            return self.optimizer
        warmup = epoch.phase == "warm-up"
        self.model.backbone.requires_grad_(not warmup)
        parameters = self.model.fc.parameters() if warmup else self.model.parameters()
        optimizer = torch.optim.Adam(parameters, lr=epoch.lr, weight_decay=0.0)
        if self.saved_optimizer is not None and not start_of_phase:
            optimizer.load_state_dict(self.saved_optimizer)
        self.saved_optimizer = None
        return optimizer

    def epoch_loader(self, index: int) -> DataLoader:
        """This epoch's clips from the current step on: position p of the epoch is a clip of video
        order[p] mod N (AVID-CMA's index of a video's k-th clip), its draws keyed by (seed, epoch, p)."""
        cfg, videos = self.cfg, len(self.train)
        generator = torch.Generator().manual_seed(seed_of(cfg.seed, index))
        order = torch.randperm(videos * cfg.train_clips, generator=generator).tolist()
        items = [self.train[i % videos] for i in order]
        clips = VideoClips(items, self.read_video, TrainClips(cfg, index, count=1, transform=crop_transform(cfg)))
        positions = range(self.progress.step * cfg.batch_size, self.steps * cfg.batch_size)
        return DataLoader(clips, batch_size=cfg.batch_size, sampler=positions, **self.loader_options())

    def loader_options(self) -> dict[str, Any]:
        return dict(
            num_workers=self.workers,
            pin_memory=self.cuda,
            worker_init_fn=ignore_in_worker if self.workers else None,
        )

    def train_epoch(self, index: int) -> None:
        epoch, progress = self.plan[index], self.progress
        self.optimizer = self.optimizer_for(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = epoch.lr
        self.model.train()
        desc = f"fine-tuning, {epoch.phase} epoch {epoch.number + 1}"
        with tqdm(total=self.steps, initial=progress.step, desc=desc, dynamic_ncols=True) as bar:
            for step, (clips, labels) in enumerate(self.epoch_loader(index), start=progress.step):
                self.train_step(index, step, clips, labels)
                bar.update(1)
                bar.set_postfix(loss=f"{progress.loss_sum / progress.seen:.3f}")
                if self.flag.requested:
                    self.save()
                    raise Preempted(f"fine-tuning saved at epoch {index + 1}, step {step + 1}; rerun to resume")
        progress.losses.append(progress.loss_sum / progress.seen)
        progress.accuracies.append(100.0 * progress.correct / progress.seen)
        progress.epoch, progress.step, progress.loss_sum, progress.correct, progress.seen = index + 1, 0, 0.0, 0, 0
        self.save()
        log.info(
            "%s epoch %d: lr %.3g, loss %.4f, clip top-1 %.1f",
            epoch.phase,
            epoch.number + 1,
            epoch.lr,
            progress.losses[-1],
            progress.accuracies[-1],
        )

    def train_step(self, index: int, step: int, clips: Tensor, labels: Tensor) -> None:
        """One optimiser step on a batch of uint8 clips (batch, 1, frames, 3, H, W): colour on the device,
        then the batch in groups of ``bn_clips`` clips, their gradients summed."""
        cfg, progress, optimizer = self.cfg, self.progress, self.optimizer
        clips, labels = clips[:, 0].to(self.device, non_blocking=True), labels.to(self.device)
        first = step * cfg.batch_size
        clips = torch.stack(
            [apply_seeded(self.colour, c, seed_of(cfg.seed, index, first + i, COLOUR)) for i, c in enumerate(clips)]
        )
        torch.manual_seed(seed_of(cfg.seed, index, step, DROPOUT))
        optimizer.zero_grad(set_to_none=True)
        loss, correct = torch.zeros((), device=self.device), torch.zeros((), device=self.device)
        for group, group_labels in zip(clips.split(cfg.bn_clips), labels.split(cfg.bn_clips), strict=True):
            with self.autocast():
                logits = self.model(group).float()
            # the mean over the whole batch, as one forward pass over all of it would give
            group_loss = F.cross_entropy(logits, group_labels, reduction="sum") / len(clips)
            group_loss.backward()
            loss += group_loss.detach()
            correct += (logits.argmax(dim=1) == group_labels).sum()
        optimizer.step()
        if index == step == 0:
            progress.first_loss = float(loss)
        progress.loss_sum += float(loss) * len(clips)
        progress.correct += int(correct)
        progress.seen += len(clips)
        progress.step = step + 1

    @torch.no_grad()
    def predict(self, videos: Sequence[Video], sampler: TestClips, desc: str) -> Tensor:
        """(videos, clips, classes): the softmax of every clip ``sampler`` draws, BN on its statistics."""
        self.model.eval()
        loader = DataLoader(VideoClips(videos, self.read_video, sampler), batch_size=None, **self.loader_options())
        probabilities = []
        for clips, _ in tqdm(loader, total=len(videos), desc=desc, dynamic_ncols=True):
            clips = self.normalize(clips.to(self.device, non_blocking=True))
            with self.autocast():
                parts = [self.model(part).float().softmax(dim=1) for part in clips.split(self.cfg.batch_size)]
            probabilities.append(torch.cat(parts).cpu())
            if self.flag.requested:
                raise Preempted("fine-tuning interrupted while testing; the trained model is saved: rerun to test it")
        return torch.stack(probabilities)


def finetune(
    net: nn.Module,
    width: int,
    train: Sequence[Video],
    test: Sequence[Video],
    classes: int,
    read_video: VideoReader,
    cfg: FinetuneEvalConfig,
    workers: int,
    state_dir: str | Path,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    device: torch.device | None = None,
) -> dict[str, Any]:
    """Fine-tune ``net`` (a torchvision ResNet, ``fc`` = Identity, trained in place) on ``train`` and
    test it on ``test``; resumes from ``state_dir``. Video top-1/5 and clip top-1/5 in percent."""
    started = time.perf_counter()
    run = Finetuning(net, width, train, classes, read_video, cfg, workers, state_dir, device or eval_device())
    try:
        for index in range(run.progress.epoch, len(run.plan)):
            run.train_epoch(index)
            if on_epoch is not None:
                metrics = {"train_loss": run.progress.losses[-1], "train_top1": run.progress.accuracies[-1]}
                on_epoch(index + 1, {**metrics, "lr": run.plan[index].lr})
        labels = torch.tensor([label for _, label in test])
        crop = test_crop(cfg)
        scored = run.predict(test, TestClips(cfg, cfg.clip_test_clips, random=True, transform=crop), "test clips")
        dense = run.predict(test, TestClips(cfg, transform=crop), "dense test")
    finally:
        run.flag.restore()
    clip, video = clip_accuracy(scored, labels), video_accuracy(dense, labels)
    progress = run.progress
    return {
        "top1": video[1],
        "top5": video[5],
        "clip_top1": clip[1],
        "clip_top5": clip[5],
        "train_loss": progress.losses[-1],
        "train_top1": progress.accuracies[-1],
        **divergence_flags("fine-tuning", LossHistory(progress.first_loss, progress.losses)),
        "epoch_losses": progress.losses,  # warm-up epochs first, then the main phase's
        "train_videos": len(train),
        "test_videos": len(test),
        "classes": classes,
        "train_seconds": progress.train_seconds,
        "seconds": time.perf_counter() - started,
    }


def finetune_evaluation(config: Config, output: Path) -> Evaluate:
    """Fine-tuning on UCF101's split ``eval.finetune.split``, its state in the job's folder beside
    ``output`` (a rerun resumes from it)."""
    cfg = config.eval.finetune
    classes, train, test = read_split(config.data.ucf101_root, cfg.split)

    def evaluate(backbone: Backbone, mlflow_run: MlflowRun) -> dict[str, Any]:
        with attempts_log(job_folder(output)):
            return finetune(
                backbone.net,
                backbone.width,
                train,
                test,
                len(classes),
                read_video,
                cfg,
                config.eval.workers,
                job_folder(output),
                mlflow_run.log_epoch,
            )

    return evaluate
