"""R2V2 in tar shards, in the webdataset convention: one sample is one video.

A shard ``<split>-000000.tar`` holds, for each video ``<id>``, the member ``<id>.json`` (id, split,
frame numbers, and the video's position in the sharded list) followed by one ``<id>.<frame:06d>.jpg``
per frame, re-encoded with the short side resized when a size is given. Videos are sharded in the
fixed hashed order of :func:`cycle_pkg.data.r2v2.subset_rank`, whole split or R2V2-S alike: the id
list's neighbours (often clips of one source) would otherwise share a shard and a shuffle buffer.

``index.json`` lists the shards with their video and frame counts, size, sha256 and the byte offset
of every sample, so that a reader can start in the middle of a shard. It is written last: a folder
without it is incomplete, and rerunning the command resumes at the first shard that is not finished.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import tarfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torchvision.io import decode_jpeg
from tqdm import tqdm

from ..errors import DatasetError
from ..jobs.atomic import atomic_file, write_json_atomic
from ..settings.sections import DataConfig
from .download import file_digest
from .layout import SHARD_INDEX, shard_dir, subset_videos
from .r2v2 import Video, frame_relpath, read_videos, subset_rank

log = logging.getLogger(__name__)
FORMAT = "cycle_pkg.r2v2-shards/2"  # /1 wrote the whole split in id-list order
PARTIAL = ".partial"
REBUILD = "delete the folder and run `cycle data r2v2-shards` again"


def shard_r2v2(data: DataConfig, jobs: int = 1) -> Path:
    """Shard the configured R2V2 copy (or its R2V2-S subset) as ``data`` says; returns the folder."""
    folder = shard_dir(data)
    write_shards(
        data.r2v2_root, folder, data.r2v2_split, subset_videos(data),
        data.shard_videos, data.shard_short_side, data.shard_quality, jobs=jobs,
    )  # fmt: skip
    return folder


def prepare_frame(data: bytes, short_side: int | None, quality: int) -> bytes | None:
    """The frame as stored in a shard (resized so its short side is at most ``short_side``, never
    enlarged), or None if it cannot be decoded."""
    try:
        if short_side is None:
            decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8))  # the decoder training uses
            return data
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        scale = short_side / min(width, height)
        if scale >= 1:
            image.load()
            return data
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image.draft("RGB", size)  # decode at a reduced JPEG scale when that still covers ``size``
        out = io.BytesIO()
        image.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(out, format="JPEG", quality=quality)
        return out.getvalue()
    except (OSError, ValueError, RuntimeError, Image.DecompressionBombError):
        return None


@dataclass(frozen=True)
class ShardTask:
    root: str
    split: str
    path: str
    videos: list[tuple[int, Video]]  # (position in the sharded list, video)
    short_side: int | None
    quality: int


def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o444
    return info, io.BytesIO(data)


def write_shard(task: ShardTask) -> dict[str, Any]:
    """Write one shard (temporary name, then rename); returns its index entry."""
    offsets, frames, skipped, dropped = [], 0, [], []
    with atomic_file(task.path) as handle, tarfile.open(fileobj=handle, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for position, video in task.videos:
            kept = []
            for number in video.frames:
                relpath = frame_relpath(task.split, video.video_id, number)
                try:
                    data = prepare_frame((Path(task.root) / relpath).read_bytes(), task.short_side, task.quality)
                except OSError:
                    data = None
                if data is None:
                    skipped.append(relpath)
                else:
                    kept.append((number, data))
            if not kept:
                dropped.append(video.video_id)
                continue
            offsets.append(tar.offset)
            meta = {"video": video.video_id, "split": task.split, "index": position, "frames": [n for n, _ in kept]}
            tar.addfile(*_member(f"{video.video_id}.json", json.dumps(meta).encode()))
            for number, data in kept:
                tar.addfile(*_member(f"{video.video_id}.{number:06d}.jpg", data))
            frames += len(kept)
    return {
        "name": Path(task.path).name,
        "videos": len(offsets),
        "frames": frames,
        "bytes": Path(task.path).stat().st_size,
        "sha256": file_digest(task.path),
        "offsets": offsets,
        "skipped_frames": skipped,
        "dropped_videos": dropped,
    }


def write_shards(
    root: str | Path,
    out: str | Path,
    split: str = "train",
    subset: int | None = None,
    videos_per_shard: int = 2000,
    short_side: int | None = 256,
    quality: int = 90,
    jobs: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Shard the videos of ``split`` (or of its R2V2-S subset) of the R2V2 copy at ``root`` into
    ``out``; returns the index. A complete folder with the same settings is kept as it is."""
    root, out = Path(root), Path(out)
    settings = {
        "format": FORMAT,
        "split": split,
        "subset_videos": subset,
        "videos_per_shard": videos_per_shard,
        "short_side": short_side,
        "quality": quality,
    }
    index_path, partial = out / SHARD_INDEX, out / PARTIAL
    if index_path.is_file():
        index = json.loads(index_path.read_text())
        if {k: index.get(k) for k in settings} == settings:
            log.info("%s is complete with these settings; nothing to do", out)
            return index
        raise DatasetError(f"{out} holds shards made with other settings ({index_path}); {REBUILD}")
    if (partial / "settings.json").is_file() and json.loads((partial / "settings.json").read_text()) != settings:
        log.warning("%s: discarding an unfinished sharding with other settings", out)
        shutil.rmtree(out)
    write_json_atomic(partial / "settings.json", settings)

    videos = sorted(read_videos(root, split, subset), key=lambda v: subset_rank(v.video_id))
    chunks = [list(enumerate(videos))[i : i + videos_per_shard] for i in range(0, len(videos), videos_per_shard)]
    names = [f"{split}-{number:06d}.tar" for number in range(len(chunks))]
    entries: dict[str, dict[str, Any]] = {}
    for name in names:
        done = partial / f"{name}.json"
        if done.is_file() and (out / name).is_file():
            entries[name] = json.loads(done.read_text())
    todo = [
        ShardTask(str(root), split, str(out / name), chunk, short_side, quality)
        for name, chunk in zip(names, chunks, strict=True)
        if name not in entries
    ]
    if entries:
        log.info("%s: %d of %d shards are already done; writing the rest", out, len(entries), len(names))
    parallel = jobs > 1 and len(todo) > 1
    with (
        tqdm(total=len(names), initial=len(entries), unit=" shards", desc=str(out), disable=not progress) as bar,
        ProcessPoolExecutor(jobs) if parallel else contextlib.nullcontext() as pool,
    ):
        for entry in pool.map(write_shard, todo) if parallel else map(write_shard, todo):
            write_json_atomic(partial / f"{entry['name']}.json", entry)
            entries[entry["name"]] = entry
            if entry["skipped_frames"] or entry["dropped_videos"]:
                log.warning(
                    "%s: %d unreadable frames left out (e.g. %s), %d videos without any readable frame",
                    entry["name"],
                    len(entry["skipped_frames"]),
                    (entry["skipped_frames"] or ["-"])[0],
                    len(entry["dropped_videos"]),
                )
            bar.update(1)

    shards = [entries[name] for name in names]
    index = {
        **settings,
        "source": str(root),
        "videos": sum(s["videos"] for s in shards),
        "frames": sum(s["frames"] for s in shards),
        "skipped_frames": sum(len(s["skipped_frames"]) for s in shards),
        "dropped_videos": sum(len(s["dropped_videos"]) for s in shards),
        "shards": shards,
    }
    write_json_atomic(index_path, index)
    shutil.rmtree(partial)
    log.info(
        "%s: %d videos, %d frames in %d shards (%d frames unreadable, %d videos dropped)",
        out,
        index["videos"],
        index["frames"],
        len(shards),
        index["skipped_frames"],
        index["dropped_videos"],
    )
    return index


@dataclass(frozen=True)
class Shard:
    path: Path
    videos: int
    offsets: tuple[int, ...]


@dataclass(frozen=True)
class ShardIndex:
    root: Path
    settings: dict[str, Any]
    shards: tuple[Shard, ...]

    @property
    def videos(self) -> int:
        return sum(s.videos for s in self.shards)


def read_index(folder: str | Path, split: str | None = None, subset: int | None = None) -> ShardIndex:
    """The index of a complete shard folder, checked against the files and, when given, the split
    and subset the caller expects."""
    folder = Path(folder)
    path = folder / SHARD_INDEX
    if not path.is_file():
        raise DatasetError(
            f"{path} not found: the shards are missing or unfinished. Run `cycle data r2v2-shards` "
            "(with the same --scale/--set options as the training job)"
        )
    index = json.loads(path.read_text())
    if index.get("format") != FORMAT:
        raise DatasetError(f"{path}: not a shard index of this package (format {FORMAT}); {REBUILD}")
    if split is not None and (index["split"], index["subset_videos"]) != (split, subset):
        raise DatasetError(
            f"{path} holds split {index['split']!r} with subset {index['subset_videos']}, but the settings ask "
            f"for {split!r} with subset {subset}; point data.r2v2_shards elsewhere or {REBUILD}"
        )
    shards = []
    for entry in index["shards"]:
        shard_path = folder / entry["name"]
        if not shard_path.is_file() or shard_path.stat().st_size != entry["bytes"]:
            raise DatasetError(f"{shard_path}: missing, or not of its indexed size {entry['bytes']}; {REBUILD}")
        shards.append(Shard(shard_path, entry["videos"], tuple(entry["offsets"])))
    return ShardIndex(folder, {k: v for k, v in index.items() if k != "shards"}, tuple(shards))


@dataclass(frozen=True)
class Frame:
    """One encoded frame of a sample; ``name`` says where it came from, for warnings."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Sample:
    key: str
    meta: dict[str, Any]
    frames: tuple[Frame, ...]


def read_samples(path: Path, offset: int, count: int) -> Iterator[Sample]:
    """``count`` consecutive samples of the shard at ``path``, from the sample at byte ``offset``."""
    where = f"{path} (sample at byte {offset})"
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            with tarfile.open(fileobj=handle, mode="r:") as tar:
                members = iter(tar)
                for _ in range(count):
                    head = next(members)
                    key, _, kind = head.name.partition(".")
                    if kind != "json":
                        raise DatasetError(f"{path}: expected {key}.json at byte {head.offset}, found {head.name}")
                    meta = json.loads(tar.extractfile(head).read())
                    frames = []
                    for _ in meta["frames"]:
                        member = next(members)
                        frames.append(Frame(f"{path.name}:{member.name}", tar.extractfile(member).read()))
                    where = f"{path} (after sample {key})"
                    yield Sample(key, meta, tuple(frames))
    except (tarfile.TarError, EOFError, StopIteration, KeyError, json.JSONDecodeError) as err:
        raise DatasetError(f"{where}: truncated or corrupt shard ({err!r}); {REBUILD}") from err
