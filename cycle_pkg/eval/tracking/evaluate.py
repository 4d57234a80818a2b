"""The whole tracking evaluation: train SiamFC's head on the training sequences, track the OTB
sequences, and report the toolkit's precision (at 20 px) and success (AUC), in percent."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...data.got10k import got10k_meta, got10k_sequences
from ...data.otb import otb_sequences
from ...jobs.atomic import atomic_dir
from ...jobs.layout import OTB_REPORTS, OTB_RESULTS, OTB_TRACKER, job_folder
from ...jobs.mlflow_job import MlflowRun
from ...settings.config import Config
from ..features import FrozenBackbone
from ..registry import Evaluate
from ..track_settings import TrackEvalConfig
from .otb import OTBExperiment
from .sequences import TrackingSequence, check_sequences
from .siamfc import SiamFC
from .tracker import SiamFCTracker
from .train import train_siamfc

log = logging.getLogger(__name__)


def evaluate_tracking(
    backbone: FrozenBackbone,
    train: Sequence[TrackingSequence],
    test: Sequence[TrackingSequence],
    cfg: TrackEvalConfig,
    workers: int,
    folder: str | Path,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    covers: Mapping[str, np.ndarray] | None = None,
) -> tuple[dict[str, Any], list[Path]]:
    """Metrics, and the plot files; ``folder`` receives the toolkit's result files (``results/``) and
    report (``reports/``: performance.json, success_plots.png, precision_plots.png) as a whole.
    ``covers`` are the training sequences' per-frame visibility labels (GOT-10k's cover.label)."""
    started = time.perf_counter()
    train = check_sequences(train, "tracking training set")
    test = check_sequences(test, "tracking test set")
    test = test[: cfg.max_sequences]
    if cfg.max_frames is not None:
        test = [(name, frames[: cfg.max_frames], boxes[: cfg.max_frames]) for name, frames, boxes in test]
    torch.manual_seed(cfg.seed)  # the head's initialisation
    net = SiamFC(backbone, cfg)
    training = train_siamfc(net, train, cfg, workers, on_epoch, covers)
    tracker = SiamFCTracker(net, cfg, name=OTB_TRACKER)
    folder = Path(folder)
    with atomic_dir(folder) as staging:
        experiment = OTBExperiment(test, staging / OTB_RESULTS, staging / OTB_REPORTS)
        experiment.run(tracker)
        overall = experiment.performance(tracker.name)["overall"]
        plots = [folder / p.relative_to(staging) for p in experiment.plot_files(tracker.name)]
    backbone.check_unchanged()
    metrics = {
        "precision": float(100 * overall["precision_score"]),
        "success": float(100 * overall["success_score"]),
        "success_rate": float(100 * overall["success_rate"]),
        "speed_fps": float(overall["speed_fps"]),
        "test_sequences": len(test),
        "test_frames": sum(len(frames) for _, frames, _ in test),
        **training,
        "seconds": time.perf_counter() - started,
    }
    return metrics, plots


def track_evaluation(config: Config, output: Path) -> Evaluate:
    """SiamFC trained on GOT-10k's train subset (with its visibility labels) and tested on OTB-2015;
    the toolkit's result files and plots go into the job's folder beside ``output``."""
    train = got10k_sequences(config.data.got10k_root, "train")
    covers = {
        name: np.atleast_1d(meta["cover"]) for name, meta in got10k_meta(config.data.got10k_root, "train").items()
    }
    test = otb_sequences(config.data.otb_root)

    def evaluate(frozen: FrozenBackbone, mlflow_run: MlflowRun) -> dict[str, Any]:
        folder = job_folder(output)
        metrics, plots = evaluate_tracking(
            frozen, train, test, config.eval.track, config.eval.workers, folder, mlflow_run.log_epoch, covers
        )
        for plot in plots:
            mlflow_run.log_artifact(str(plot))
        return metrics

    return evaluate
