"""The representation monitor inside pretraining: a weighted kNN classifier (k = 200, T = 0.07) on
the query backbone's pooled features of a fixed labelled set, every few steps and at the end, and
the cycle's mechanism replayed on a fixed set of frames (:mod:`cycle_pkg.pretrain.mechanism`).

The labelled set is the first images of each class folder of an ImageNet copy (ImageNet-100's
classes at the paper's scale, the synthetic world's ImageNet at the small scales): a bank from
``train`` whose labels vote, queries from ``val`` that are classified. Its images are decoded,
resized and centre-cropped once, when training starts, and kept as uint8; each look at the model
then costs one forward pass per image in eval mode without gradients. Looking changes nothing: the
modules go back to the mode they were in, BatchNorm reads its running statistics and updates none,
and every random number generator is forked around the call (``tests/pretrain/test_monitor.py`` checks it).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from ..data.augment import IMAGENET_MEAN, IMAGENET_STD
from ..data.imagenet import imagefolder_samples, imagenet100_wnids
from ..data.r2v2 import frame_relpath, read_latent_classes, read_videos
from ..errors import DatasetError
from ..eval.features import ImageFiles, eval_mode
from ..eval.knn import knn_accuracy
from ..jobs.atomic import write_bytes_atomic
from ..losses import forward_temperature
from ..settings.config import Config
from .mechanism import NO_CLASS, FrameSet, cycle_steps, nearest_frames

log = logging.getLogger(__name__)
Samples = Sequence[tuple[Path, int]]
MECHANISM = (  # the mechanism's metrics, where measurable: on the embedding the cycle uses, and the backbone's
    "cycle_back_video",
    "cycle_back_self",
    "cycle_nn_same_class",
    "cycle_nn_class_weight",
    "cycle_same_class_chance",
    "backbone_nn_same_class",
    "backbone_nn_own_video",
)
FEATURES = "monitor_features.pt"  # the labelled set's features at the end of a run, for its embedding
PICTURES = {"curve": "monitor_knn.png", "embedding": "monitor_embedding.png"}  # in the run folder and MLflow


def first_per_class(samples: Samples, per_class: int) -> list[tuple[Path, int]]:
    """The first ``per_class`` samples of each label, in the given (file name) order: a fixed subset."""
    taken: dict[int, int] = {}
    subset = []
    for path, label in samples:
        if taken.get(label, 0) < per_class:
            taken[label] = taken.get(label, 0) + 1
            subset.append((path, label))
    return subset


def labelled_samples(
    root: str | Path, dataset: str, bank_per_class: int, queries_per_class: int
) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]], list[str]]:
    """(bank, queries, classes): the first images of each class of ``<root>/train`` and ``<root>/val``
    (``dataset`` imagenet100: ImageNet-100's classes only)."""
    wnids = imagenet100_wnids() if dataset == "imagenet100" else None
    train, classes = imagefolder_samples(root, "train", wnids)
    val, val_classes = imagefolder_samples(root, "val", wnids)
    if val_classes != classes:
        extra = sorted(set(val_classes) ^ set(classes))[:5]
        raise DatasetError(f"{root}: train and val hold different classes (e.g. {extra}); the monitor needs both")
    return first_per_class(train, bank_per_class), first_per_class(val, queries_per_class), classes


@dataclass
class LabelledSet:
    images: Tensor  # uint8 (N, 3, S, S), resized and centre-cropped
    labels: Tensor  # (N,)
    bank: Tensor  # bool (N,): True for the voting bank (train), False for the queries (val)
    classes: list[str]


def crop_size_resize(size: int) -> int:
    """The evaluation protocols' resize before a centre crop: 256 for 224, in proportion."""
    return round(size * 256 / 224)


def load_labelled_set(
    root: str | Path, dataset: str, bank_per_class: int, queries_per_class: int, size: int, workers: int
) -> LabelledSet:
    """Decode the labelled set once: Resize(size * 256/224) + CenterCrop(size), kept as uint8."""
    bank, queries, classes = labelled_samples(root, dataset, bank_per_class, queries_per_class)
    images = decode_once([*bank, *queries], size, workers)
    labels = torch.tensor([label for _, label in [*bank, *queries]])
    is_bank = torch.arange(len(labels)) < len(bank)
    return LabelledSet(images, labels, is_bank, classes)


def decode_once(samples: Samples, size: int, workers: int) -> Tensor:
    """The samples' images, Resize(size * 256/224) + CenterCrop(size), as uint8 (N, 3, size, size)."""
    transform = v2.Compose([v2.Resize(crop_size_resize(size), antialias=True), v2.CenterCrop(size)])
    # A generator of its own: the loader's seed draw must not move the global RNG of the training.
    loader = DataLoader(ImageFiles(samples, transform), batch_size=64, num_workers=workers, generator=torch.Generator())
    return torch.cat([batch for batch, _ in loader])


def load_frame_set(root: str | Path, videos: int, size: int, workers: int) -> FrameSet:
    """The first ``videos`` videos of R2V2's val split under ``root``, every frame decoded as the
    labelled set's, with the latent class of each video where the synthetic world wrote it."""
    chosen = read_videos(root, "val")[:videos]
    if len(chosen) < 4:
        raise DatasetError(
            f"{root}: the mechanism needs 4 or more val videos, found {len(chosen)}; lower pretrain.monitor.videos "
            "or set it to 0 (the labelled set)"
        )
    known = read_latent_classes(root, "val") or {}
    samples = [
        (Path(root) / frame_relpath("val", video.video_id, frame), index)
        for index, video in enumerate(chosen)
        for frame in video.frames
    ]
    videos_of = torch.tensor([index for _, index in samples])
    classes = torch.tensor([known.get(chosen[index].video_id, NO_CLASS) for _, index in samples])
    return FrameSet(decode_once(samples, size, workers), videos_of, classes)


def is_due(step: int, every: int, total_steps: int) -> bool:
    """Look at step 0 (the initialisation), every ``every`` steps and at the last; never when off (0)."""
    return every > 0 and (step % every == 0 or step == total_steps)


@dataclass
class Monitor:
    """kNN accuracy of a backbone on the labelled set; keeps the run's curve (``history``) and the
    seconds spent, both saved in checkpoints so that a resumed run continues them."""

    labelled: LabelledSet
    k: int = 200
    temperature: float = 0.07
    batch_size: int = 256
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    memory_format: torch.memory_format = torch.contiguous_format
    amp: bool = False  # bf16 autocast (on GPU, as the training step)
    frames: FrameSet | None = None  # the mechanism's frames; None: the labelled set, each image its own video
    nn_temperature: float = 0.07  # of the cycle's soft nearest neighbour
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    features: Tensor | None = None  # of the latest look, on the CPU

    def __post_init__(self) -> None:
        self.normalize = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])

    @property
    def classes(self) -> int:
        return len(self.labelled.classes)

    def extract(self, backbone: nn.Module, images: Tensor | None = None) -> Tensor:
        """Pooled features of the labelled set (or of ``images``), without a trace on the backbone or
        on any RNG."""
        cuda = self.device.type == "cuda"
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cuda and self.amp)
        with torch.random.fork_rng(devices=[self.device] if cuda else []), eval_mode(backbone), autocast:
            parts = []
            for chunk in (self.labelled.images if images is None else images).split(self.batch_size):
                batch = self.normalize(chunk.to(self.device, non_blocking=True))
                parts.append(backbone(batch.contiguous(memory_format=self.memory_format)).float())
        return torch.cat(parts)

    def look(self, backbone: nn.Module, step: int, head: nn.Module | None = None) -> dict[str, float]:
        """kNN top-1 / top-5 (%) of the queries against the bank at ``step`` and, given the embedding
        ``head`` the cycle uses, the mechanism's metrics (:data:`MECHANISM`); appended to the history."""
        started = time.perf_counter()
        features = self.extract(backbone)
        bank, labels = self.labelled.bank.to(features.device), self.labelled.labels.to(features.device)
        accuracy = knn_accuracy(
            features[~bank], labels[~bank], features[bank], labels[bank], self.classes, self.k, self.temperature
        )
        self.features = features.cpu()
        metrics = {"knn_top1": accuracy[1], "knn_top5": accuracy[5]}
        if head is not None:
            metrics.update(self.mechanism(backbone, head, features))
        self.seconds += time.perf_counter() - started
        self.history.append({"step": step, **metrics})
        return metrics

    def mechanism(self, backbone: nn.Module, head: nn.Module, labelled_features: Tensor) -> dict[str, float]:
        """The cycle's steps on the head's embedding and the nearest frames in the backbone's features."""
        if self.frames is None:
            features, labels = labelled_features, self.labelled.labels.to(labelled_features.device)
            videos = torch.arange(len(labels), device=labels.device)
        else:
            features = self.extract(backbone, self.frames.images)
            videos, labels = self.frames.videos.to(features.device), self.frames.classes.to(features.device)
        with eval_mode(head):
            embeddings = head(features)
        steps = cycle_steps(embeddings, videos, labels, self.nn_temperature)
        nearest = nearest_frames(features, videos, labels)
        return {**{f"cycle_{k}": v for k, v in steps.items()}, **{f"backbone_{k}": v for k, v in nearest.items()}}

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "seconds": self.seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history, self.seconds = list(state["history"]), float(state["seconds"])

    def summary(self) -> dict[str, Any]:
        """What a run's summary keeps of the monitor: its curve, its set and its cost."""
        return {
            "steps": [h["step"] for h in self.history],
            "knn_top1": [h["knn_top1"] for h in self.history],
            "knn_top5": [h["knn_top5"] for h in self.history],
            **{k: [h.get(k) for h in self.history] for k in MECHANISM if any(k in h for h in self.history)},
            "bank_images": int(self.labelled.bank.sum()),
            "query_images": int((~self.labelled.bank).sum()),
            "classes": self.classes,
            "k": min(self.k, int(self.labelled.bank.sum())),
            "temperature": self.temperature,
            "seconds": self.seconds,
        }

    def saved_features(self) -> dict[str, Any]:
        """The latest look's features with their labels and classes (the embedding's input)."""
        set_ = self.labelled
        return {"features": self.features, "labels": set_.labels, "bank": set_.bank, "classes": set_.classes}

    def save_features(self, path: str | Path, backbone: nn.Module) -> None:
        """:meth:`saved_features` to ``path``; those of ``backbone`` now if this session has not
        looked (a run resumed at its last step)."""
        if self.features is None:
            self.features = self.extract(backbone).cpu()
        buffer = io.BytesIO()
        torch.save(self.saved_features(), buffer)
        write_bytes_atomic(path, buffer.getvalue())


def load_features(path: str | Path) -> dict[str, Any]:
    """A run's saved monitor features (see :meth:`Monitor.save_features`)."""
    if not Path(path).is_file():
        raise DatasetError(f"{path}: monitor features missing; the pretraining run writes them at its end")
    return torch.load(path, map_location="cpu", weights_only=True)


def build_monitor(config: Config, device: torch.device, memory_format: torch.memory_format) -> Monitor | None:
    """The monitor of a pretraining run (None when pretrain.monitor_every is 0), its labelled set
    decoded by the run's loader processes."""
    p, m = config.pretrain, config.pretrain.monitor
    if p.monitor_every == 0:
        return None
    size = m.image_size or p.image_size
    root = config.data.imagenet_root
    labelled = load_labelled_set(root, m.dataset, m.bank_per_class, m.queries_per_class, size, p.workers)
    log.info(
        "monitor: kNN (k=%d, T=%g) of %d queries against %d labelled images of %d classes at %d px, every %d steps",
        m.k,
        m.temperature,
        int((~labelled.bank).sum()),
        int(labelled.bank.sum()),
        len(labelled.classes),
        size,
        p.monitor_every,
    )
    frames = load_frame_set(config.data.r2v2_root, m.videos, size, p.workers) if m.videos else None
    log.info(
        "monitor: the cycle's mechanism on %s",
        "the labelled set" if frames is None else f"{len(frames.videos)} frames of {m.videos} val videos",
    )
    nn_temperature = forward_temperature(config.loss.temperature, config.loss.nn_temperature)
    return Monitor(
        labelled,
        m.k,
        m.temperature,
        config.eval.batch_size,
        device,
        memory_format,
        amp=p.amp,
        frames=frames,
        nn_temperature=nn_temperature,
    )
