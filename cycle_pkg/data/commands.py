"""Each dataset as `cycle data <dataset>` obtains, prepares or checks it, with the summary that the
command prints and writes as its report (the workflow's data rules declare these reports as their
outputs). A function's parameters after the config are the command's options, by name. The readers
and downloaders are imported on use: each needs its own libraries."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..settings.config import Config

log = logging.getLogger(__name__)


def data_r2v2(
    config: Config, source: str | None, keep_archives: bool, recreate: bool, report: str | None
) -> dict[str, Any] | None:
    """Re-create R2V2 from its published id lists (``recreate``, or data.r2v2_source: recreate),
    returning the coverage report; or link a local copy or download a mirror's archives, then
    survey R2V2, the survey (with the missing frames' paths) going to ``report``."""
    if recreate or config.data.r2v2_source == "recreate":
        from .r2v2_recreate.job import recreate_r2v2

        if source:
            raise ConfigError("--from links a copy of R2V2; it does not go with re-creating one (--recreate)")
        return recreate_r2v2(config)
    from .r2v2_ingest import prepare_r2v2, write_report

    reports = prepare_r2v2(config.data, source, keep_archives=keep_archives)
    if report:
        write_report(reports, report)
    return None


def data_r2v2_shards(config: Config, jobs: int) -> dict[str, Any]:
    from .shards import shard_r2v2

    warn_unread_shards(config)
    return {"shards": str(shard_r2v2(config.data, jobs=jobs))}


def warn_unread_shards(config: Config) -> None:
    """Shards are read only where data.r2v2_format is shards: say so rather than ignore them silently."""
    if config.data.r2v2_format == "jpeg":
        log.warning(
            "data.r2v2_shards (%s) is not read by pretraining: data.r2v2_format is jpeg (set it to shards to train "
            "from the shards)",
            config.data.r2v2_shards,
        )


def data_ucf101(config: Config, keep_archives: bool) -> dict[str, Any]:
    from .ucf101 import prepare_ucf101, read_split

    data = config.data
    prepare_ucf101(
        data.ucf101_root,
        data.ucf101_url,
        data.ucf101_splits_url,
        Path(data.downloads) / "ucf101",
        retries=data.download_retries,
        timeout=data.download_timeout,
        keep_archives=keep_archives,
    )
    classes, train, test = read_split(data.ucf101_root, 1)
    return {"classes": len(classes), "train_videos": len(train), "test_videos": len(test)}


def data_otb(config: Config) -> dict[str, Any]:
    from .otb import download_otb, otb_sequences

    data = config.data
    download_otb(
        data.otb_root,
        data.otb_url,
        Path(data.downloads) / "otb",
        retries=data.download_retries,
        timeout=data.download_timeout,
    )
    sequences = otb_sequences(data.otb_root)
    return {"targets": len(sequences), "frames": sum(len(files) for _, files, _ in sequences)}


def data_got10k(config: Config, subset: list[str] | None) -> dict[str, Any]:
    from .got10k import GOT10K_SUBSETS, got10k_summary

    return got10k_summary(config.data.got10k_root, tuple(subset or GOT10K_SUBSETS))


def data_imagenet(config: Config) -> dict[str, Any]:
    from .imagenet import imagenet_summary

    return imagenet_summary(config.data.imagenet_root)


def data_imagenet_val(config: Config, labels: str, flat: str | None, out: str | None) -> dict[str, Any]:
    """Sort the flat ILSVRC2012 validation folder (default: ``<imagenet_root>/val``, replaced) into
    class folders."""
    from .imagenet import convert_flat_val

    val = Path(config.data.imagenet_root) / "val"
    counts = convert_flat_val(flat or val, labels, out or val)
    return {"images": sum(counts.values()), "classes": len(counts)}
