"""The ``cycle data r2v2 --recreate`` job: the data.r2v2_* settings in; the coverage report out,
logged to MLflow as the run ``data-r2v2``, with the re-created copy put under DVC."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ...jobs.mlflow_job import MlflowRun
from ...settings.config import Config
from .recreate import Fetching, recreate
from .sharing import track_with_dvc

log = logging.getLogger(__name__)
SETTINGS = ("r2v2_root", "r2v2_recreate_splits", "r2v2_video_url", "r2v2_video_format", "r2v2_downloads_in_flight",
            "download_retries", "download_timeout")  # fmt: skip


def recreate_r2v2(config: Config) -> dict[str, Any]:
    """Re-create R2V2 at data.r2v2_root as the settings say; returns the coverage report."""
    data = config.data
    fetching = Fetching(
        data.r2v2_video_url, data.r2v2_video_format, cookies=data.r2v2_cookies, retries=data.download_retries,
        timeout=data.download_timeout,
    )  # fmt: skip
    lists = {split: getattr(data, f"r2v2_ids_{split}") for split in data.r2v2_recreate_splits}
    mlflow_run = MlflowRun(config.mlflow)
    params = {"data": {name: getattr(data, name) for name in (*SETTINGS, *(f"r2v2_ids_{s}" for s in lists))}}
    mlflow_run.start("data-r2v2", None, params, {"cycle.job": "data-r2v2", "cycle.scale": config.scale})
    try:
        report = recreate(
            data.r2v2_root, lists, fetching, Path(data.downloads) / "r2v2-videos", jobs=data.r2v2_downloads_in_flight,
            subset_videos=data.r2v2_subset_videos,
        )  # fmt: skip
    except BaseException:
        mlflow_run.end("FAILED")
        raise
    dvc_file = track_with_dvc(data.r2v2_root)
    report["dvc_file"] = str(dvc_file) if dvc_file else None
    counts = ("listed", "recreated", "partial", "gone", "failed", "frames_written", "bytes", "downloaded_bytes")
    mlflow_run.log_metrics({f"{s['split']}.{key}": s[key] for s in report["splits"] for key in counts})
    mlflow_run.end("FINISHED")
    return report
