"""Re-creating R2V2 from its published id lists: every listed video fetched, its listed frames
written in the published layout, the video deleted, many at once.

At most ``jobs`` videos are in flight (downloading or decoding), each in its own folder that is
removed as soon as its frames are out, so the disk holds at most ``jobs`` source videos. A
transient failure is retried with exponential backoff; a video that is gone is recorded once; the
ledger (``ledger.py``) makes an interrupted run resume where it stopped. At the end each split gets
its id list of what was re-created, ``<root>/r2v2_ids_<split>.txt`` (frames past a video's end left
out), which the readers, the shards and R2V2-S then read as they read any copy of R2V2.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ...errors import ConfigError, DatasetError
from ...jobs.atomic import write_text_atomic
from ..download import download, file_digest, parse_source
from ..r2v2 import Video, id_list_path, read_id_list
from .fetch import FetchError, fetch_video
from .frames import VideoError, frame_jpegs, read_frames
from .ledger import STATE, Ledger, Record, exclusive, stage_frames

log = logging.getLogger(__name__)
THROTTLED = {"too many requests", "bot check", "rate limited"}  # fetch.CAUSES' throttled causes


@dataclass(frozen=True)
class Fetching:
    """How the source videos are fetched (the data.r2v2_* settings)."""

    url_template: str  # "{id}" stands for the video's id
    video_format: str  # a yt-dlp format selector
    cookies: str | None = None
    retries: int = 5
    timeout: float = 60.0
    backoff: float = 1.0  # seconds before the second attempt; doubled for each further one

    def __post_init__(self) -> None:  # wrong settings are an error before the first download, not after
        self.url("x" * 11)
        if self.cookies and not Path(self.cookies).is_file():
            raise ConfigError(f"data.r2v2_cookies: {self.cookies}: no such file (a Netscape-format cookies.txt)")

    def url(self, video_id: str) -> str:
        try:
            return self.url_template.format(id=video_id)
        except (KeyError, IndexError, ValueError) as err:
            raise ConfigError(
                f"data.r2v2_video_url {self.url_template!r}: expected a URL with {{id}} for the video id ({err!r})"
            ) from err


def published_list(source: str, root: Path, split: str, setting: str) -> Path:
    """The split's published id list (a path or URL, ``#sha256=`` pinned or not), kept in the
    copy's state folder; fetched again when the configured source changes."""
    dest = root / STATE / f"published_{split}.txt"
    known = root / STATE / f"published_{split}.source"
    if dest.is_file() and (not known.is_file() or known.read_text() != source):
        dest.unlink()
    download(parse_source(source, setting), dest, setting=setting, progress=False)
    write_text_atomic(known, source)
    return dest


def recreate_video(video: Video, ledger: Ledger, fetching: Fetching, downloads: Path) -> Record:
    """Fetch one video, stage its listed frames, delete it; the outcome as the ledger records it."""
    last = FetchError("transient", "download", "not attempted")
    for attempt in range(1, fetching.retries + 1):
        folder = downloads / video.video_id
        shutil.rmtree(folder, ignore_errors=True)
        try:
            path = fetch_video(
                fetching.url(video.video_id), folder, video.video_id, video_format=fetching.video_format,
                cookies=fetching.cookies, timeout=fetching.timeout, retries=fetching.retries,
            )  # fmt: skip
            downloaded = path.stat().st_size
            decoded = read_frames(path, video.frames)
        except FetchError as err:
            if err.kind == "gone":
                return Record(video.video_id, "gone", err.cause, err.reason, attempts=attempt)
            if err.kind == "refused":
                return Record(video.video_id, "failed", err.cause, err.reason, attempts=attempt)
            last = err
        except VideoError as err:
            last = FetchError("transient", "undecodable", str(err))
        else:
            if not decoded.frames:
                reason = f"the video ends before its first listed frame, {min(video.frames)}"
                return Record(video.video_id, "gone", "too short", reason, downloaded=downloaded, attempts=attempt)
            written = stage_frames(ledger.staging(video.video_id), frame_jpegs(decoded))
            frames = tuple(n for n in dict.fromkeys(video.frames) if n in decoded.frames)
            return Record(
                video.video_id, "recreated", frames=frames, missing=decoded.missing, bytes=written,
                downloaded=downloaded, attempts=attempt,
            )  # fmt: skip
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # the source video goes at once, whatever happened
        if attempt < fetching.retries:
            delay = min(fetching.backoff * 2 ** (attempt - 1), 300.0)
            log.info("%s: %s; trying again in %.0f s", video.video_id, last.reason, delay)
            time.sleep(delay)
    return Record(video.video_id, "failed", last.cause, last.reason, attempts=fetching.retries)


def recreate_split(
    root: Path,
    split: str,
    listed: list[Video],
    fetching: Fetching,
    downloads: Path,
    id_list: Path,
    *,
    jobs: int = 8,
    give_up_after: int = 50,
    progress: bool = True,
) -> Ledger:
    """Re-create the videos of ``listed`` that are neither done nor gone, ``jobs`` at a time, and
    write the id list of the re-created ones to ``id_list`` (also when interrupted). Stops
    (DatasetError) once ``give_up_after`` videos in a row were throttled: the source refuses this
    session, and trying the rest would only record them all as failed."""
    ledger = Ledger(root, split)
    ledger.recover()
    shutil.rmtree(downloads, ignore_errors=True)  # videos a killed run had in flight
    todo = [v for v in listed if (r := ledger.records.get(v.video_id)) is None or r.status == "failed"]
    counts = Counter(r.status for v in listed if (r := ledger.records.get(v.video_id)) and r.status != "failed")
    if len(todo) < len(listed):
        log.info("%s/%s: %d of %d videos done before; trying the other %d", root, split, len(listed) - len(todo),
                 len(listed), len(todo))  # fmt: skip
    queue, in_flight = iter(todo), set[Future]()
    throttled_in_a_row, last_throttle = 0, ""
    with (
        ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="r2v2") as pool,
        tqdm(total=len(listed), initial=len(listed) - len(todo), unit=" videos", desc=f"R2V2 {split}",
             disable=not progress) as bar,
    ):  # fmt: skip
        try:
            while True:
                while len(in_flight) < jobs and throttled_in_a_row < give_up_after:
                    video = next(queue, None)
                    if video is None:
                        break
                    in_flight.add(pool.submit(recreate_video, video, ledger, fetching, downloads))
                if not in_flight:
                    break
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    record = future.result()
                    ledger.commit(record)
                    counts[record.status] += 1
                    if record.status == "failed" and record.cause in THROTTLED:
                        throttled_in_a_row, last_throttle = throttled_in_a_row + 1, record.reason
                    else:
                        throttled_in_a_row = 0
                    bar.set_postfix(counts, refresh=False)
                    bar.update(1)
        except BaseException:
            for future in in_flight:
                future.cancel()
            raise
        finally:
            ledger.compact()
            write_id_list(id_list, ledger.recreated(listed))
    if throttled_in_a_row >= give_up_after:
        raise DatasetError(
            f"R2V2 {split}: the video source refused the last {throttled_in_a_row} videos ({last_throttle}). Wait "
            "a while, or give a signed-in cookies file in data.r2v2_cookies, then run again: it resumes"
        )
    return ledger


def coverage(split: str, listed: list[Video], ledger: Ledger, id_list: Path, published: Path) -> dict[str, Any]:
    """How much of a split's list was re-created, and why the rest was not."""
    records = [r for v in listed if (r := ledger.records.get(v.video_id)) is not None]
    status = Counter(r.status for r in records)
    recreated = [r for r in records if r.status == "recreated"]
    return {
        "split": split,
        "listed": len(listed),
        "recreated": status["recreated"],
        "partial": sum(1 for r in recreated if r.missing),  # some listed frames past the video's end
        "gone": status["gone"],
        "failed": status["failed"],
        "untried": len(listed) - len(records),
        "frames_listed": sum(len(set(v.frames)) for v in listed),
        "frames_written": sum(len(r.frames) for r in recreated),
        "bytes": sum(r.bytes for r in recreated),
        "downloaded_bytes": sum(r.downloaded for r in records),
        "gone_causes": dict(Counter(r.cause for r in records if r.status == "gone").most_common()),
        "failed_causes": dict(Counter(r.cause for r in records if r.status == "failed").most_common()),
        "id_list": str(id_list),
        "published_list_sha256": file_digest(published),
    }


def recreate(
    root: str | Path,
    lists: Mapping[str, str],
    fetching: Fetching,
    downloads: str | Path,
    *,
    jobs: int = 8,
    subset_videos: int | None = None,
    give_up_after: int = 50,
    progress: bool = True,
) -> dict[str, Any]:
    """Re-create the splits of ``lists`` (split -> id list path or URL) into ``root``; returns the
    coverage report, with R2V2-S's size when ``subset_videos`` is given."""
    root, downloads = Path(root), Path(downloads)
    if any(id_list_path(root, split).is_file() for split in lists) and not (root / STATE).is_dir():
        raise DatasetError(
            f"{root} holds a copy of R2V2 that was not re-created here; point data.r2v2_root at another folder to "
            "re-create R2V2 there"
        )
    splits = []
    with exclusive(root):
        for split, source in lists.items():
            published = published_list(source, root, split, f"data.r2v2_ids_{split}")
            listed = read_id_list(published)
            id_list = id_list_path(root, split)
            ledger = recreate_split(
                root, split, listed, fetching, downloads / split, id_list, jobs=jobs, give_up_after=give_up_after,
                progress=progress,
            )  # fmt: skip
            splits.append(coverage(split, listed, ledger, id_list, published))
            _log_coverage(root, splits[-1])
    report: dict[str, Any] = {"source": "recreate", "root": str(root), "splits": splits}
    train = next((s for s in splits if s["split"] == "train"), None)
    if subset_videos is not None and train is not None:
        report["subset"] = {"requested": subset_videos, "train_videos": train["recreated"]}
        if train["recreated"] < subset_videos:
            log.warning(
                "R2V2-S: only %d train videos were re-created, fewer than the %d of data.r2v2_subset_videos; "
                "lower it to at most %d to train on a smaller R2V2-S (the same hash ranking picks it)",
                train["recreated"], subset_videos, train["recreated"],
            )  # fmt: skip
    return report


def _log_coverage(root: Path, split: dict[str, Any]) -> None:
    share = split["recreated"] / split["listed"]
    log.info(
        "%s/%s: %d of %d videos re-created (%.1f%%, %d with frames past their end), %d gone, %d failed; "
        "%d of %d frames, %.1f MB",
        root, split["split"], split["recreated"], split["listed"], 100 * share, split["partial"], split["gone"],
        split["failed"], split["frames_written"], split["frames_listed"], split["bytes"] / 1e6,
    )  # fmt: skip


def write_id_list(path: Path, videos: list[Video]) -> None:
    """An id list in the published format, ``id,f1,f2,...`` per line."""
    write_text_atomic(path, "".join(f"{v.video_id},{','.join(map(str, v.frames))}\n" for v in videos))
