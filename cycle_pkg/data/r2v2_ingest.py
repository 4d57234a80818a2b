"""Getting R2V2 in place under ``data.r2v2_root``.

The tarballs R2V2 was published as are no longer served; its authors point to re-creating it from
the id lists. A lab therefore has its own copy, which comes in one of two ways:

- a local copy in the published layout (``cycle data r2v2 --from DIR``): checked, then linked;
- tar archives on a mirror (``data.r2v2_archives``, each ``URL#sha256=<hex>``), which unpack to the
  published layout, possibly under one top folder: downloaded, verified and unpacked.

Either way the frames the id lists name are counted, and the missing ones reported (a re-created
copy lacks the videos that left YouTube); readers skip them.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..errors import DatasetError
from ..jobs.atomic import atomic_dir, write_json_atomic
from ..settings.sections import DataConfig
from .archives import extract_archive
from .download import download, parse_source
from .r2v2 import frame_relpath, id_list_path, read_id_list

log = logging.getLogger(__name__)
SPLITS = ("train", "val")
SOURCES = ".sources.json"  # written into an unpacked copy: which archives it came from
NOT_SERVED = (
    "The public R2V2 tarballs are no longer served. Point data.r2v2_root at a copy in the R2V2 layout, run "
    "`cycle data r2v2 --from <copy>`, or list a mirror's tar archives in data.r2v2_archives (URL#sha256=<hex>)"
)


def r2v2_splits(root: str | Path) -> list[str]:
    """The splits whose id list and frame folder are both under ``root``."""
    root = Path(root)
    return [s for s in SPLITS if id_list_path(root, s).is_file() and (root / s).is_dir()]


def survey(root: str | Path, split: str) -> dict[str, Any]:
    """How many of the frames that the split's id list names are on disk (one directory listing per
    prefix folder, not one stat per frame)."""
    root = Path(root)
    videos = read_id_list(id_list_path(root, split))
    by_folder: dict[str, list[str]] = defaultdict(list)
    for video in videos:
        for number in video.frames:
            folder, name = frame_relpath(split, video.video_id, number).rsplit("/", 1)
            by_folder[folder].append(name)
    missing, frames = [], 0
    for folder, names in tqdm(sorted(by_folder.items()), unit=" folders", desc=f"checking {root / split}"):
        frames += len(names)
        try:
            present = set(os.listdir(root / folder))
        except FileNotFoundError:
            present = set()
        missing.extend(f"{folder}/{name}" for name in names if name not in present)
    absent = set(missing)
    complete = sum(all(frame_relpath(split, v.video_id, n) not in absent for n in v.frames) for v in videos)
    return {
        "split": split,
        "videos": len(videos),
        "frames": frames,
        "missing_frames": len(missing),
        "complete_videos": complete,
        "missing": missing,
    }


def link_local_copy(source: str | Path, root: str | Path) -> None:
    """Make ``root`` a symbolic link to the R2V2 copy at ``source`` (checked first)."""
    source, root = Path(source).resolve(), Path(root)
    if not r2v2_splits(source):
        raise DatasetError(
            f"{source}: not an R2V2 copy: expected r2v2_ids_train.txt (or _val) beside a train/ (or val/) folder"
        )
    if root.is_symlink() or not root.exists():
        link = root.with_name(f".{root.name}.link")
        link.unlink(missing_ok=True)
        root.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(source, target_is_directory=True)
        os.replace(link, root)
        log.info("%s -> %s", root, source)
    elif root.resolve() != source:
        raise DatasetError(f"{root} exists and is not {source}; move it away, or set data.r2v2_root to {source}")


def _dataset_folder(staging: Path) -> Path:
    """Where the archives put the layout: ``staging`` itself or its one top folder."""
    if r2v2_splits(staging):
        return staging
    children = [p for p in staging.iterdir() if p.is_dir()]
    if len(children) == 1 and r2v2_splits(children[0]):
        return children[0]
    found = ", ".join(sorted(p.name for p in staging.iterdir())) or "nothing"
    raise DatasetError(
        f"the R2V2 archives unpacked to {found}: no r2v2_ids_<split>.txt beside a <split>/ folder, at the top or "
        "under one top folder"
    )


def ingest_archives(
    archives: list[str],
    root: str | Path,
    downloads: str | Path,
    *,
    retries: int = 5,
    timeout: float = 60.0,
    keep_archives: bool = False,
) -> None:
    """Download, verify and unpack a mirror's R2V2 tar archives into ``root`` (as a whole, at the end)."""
    root, downloads = Path(root), Path(downloads)
    sources = [parse_source(text, f"data.r2v2_archives[{i}]") for i, text in enumerate(archives)]
    paths = [
        download(s, downloads / s.filename, setting=f"data.r2v2_archives[{i}]", retries=retries, timeout=timeout)
        for i, s in enumerate(sources)
    ]
    with atomic_dir(root) as staging:
        for path in paths:
            extract_archive(path, staging)
        folder = _dataset_folder(staging)
        if folder != staging:
            for child in list(folder.iterdir()):
                child.rename(staging / child.name)
            folder.rmdir()
        write_json_atomic(staging / SOURCES, [s.url for s in sources])
    if not keep_archives:
        for path in paths:
            path.unlink()


def prepare_r2v2(
    data: DataConfig, local_copy: str | Path | None = None, keep_archives: bool = False
) -> list[dict[str, Any]]:
    """Put R2V2 in place at ``data.r2v2_root`` (a link to ``local_copy``, or the archives of
    ``data.r2v2_archives`` unless it is there already) and survey each split."""
    root = Path(data.r2v2_root)
    if local_copy is not None:
        link_local_copy(local_copy, root)
    elif r2v2_splits(root):
        log.info("%s: R2V2 is present; nothing to download", root)
    elif data.r2v2_archives:
        ingest_archives(
            data.r2v2_archives,
            root,
            Path(data.downloads) / "r2v2",
            retries=data.download_retries,
            timeout=data.download_timeout,
            keep_archives=keep_archives,
        )
    else:
        raise DatasetError(f"{root}: no R2V2 here. {NOT_SERVED}")
    reports = [survey(root, split) for split in r2v2_splits(root)]
    for report in reports:
        level = logging.WARNING if report["missing_frames"] else logging.INFO
        log.log(
            level,
            "%s/%s: %d videos (%d complete), %d of %d listed frames missing",
            root,
            report["split"],
            report["videos"],
            report["complete_videos"],
            report["missing_frames"],
            report["frames"],
        )
    return reports


def write_report(reports: list[dict[str, Any]], path: str | Path) -> None:
    write_json_atomic(path, reports)
    log.info("R2V2 report (with the missing frames' paths) in %s", path)
