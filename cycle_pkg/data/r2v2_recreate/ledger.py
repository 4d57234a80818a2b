"""What a re-creation has done, kept beside the frames so that a rerun resumes where the last one
stopped (and a copy pulled from DVC knows it too).

Per split, ``<root>/.recreate/<split>.jsonl`` holds one JSON line per finished video: re-created
(with the frames written), gone (with the reason: never tried again) or failed (tried again by the
next run). The last line of a run that was killed may be cut short: it is ignored, and that video
is done again.

A video's frames are written into ``<root>/.recreate/staging/<split>/<id>/``, renamed into the
published layout, and only then is the video's line appended: that is its commit. A run killed
between the renames and the commit leaves the staging folder behind, and the next run first removes
that video's renamed frames with it (``recover``), so that every frame in the layout belongs to a
committed video, whose frames are all there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ...errors import DatasetError
from ...jobs.atomic import write_text_atomic
from ..r2v2 import Video, frame_relpath

log = logging.getLogger(__name__)
STATE = ".recreate"
Status = Literal["recreated", "gone", "failed"]


@dataclass(frozen=True)
class Record:
    video_id: str
    status: Status
    cause: str = ""  # a short label (e.g. "private"), for the coverage report's counts
    reason: str = ""  # the source's own words
    frames: tuple[int, ...] = ()  # written
    missing: tuple[int, ...] = ()  # listed, but past the end of the video
    bytes: int = 0  # of the JPEGs written
    downloaded: int = 0  # bytes of the source video, deleted once its frames were out
    attempts: int = 0

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in dataclasses.asdict(self).items() if v not in ("", (), 0)})

    @classmethod
    def from_json(cls, line: str) -> Record:
        data = json.loads(line)
        return cls(**{**data, "frames": tuple(data.get("frames", ())), "missing": tuple(data.get("missing", ()))})


@contextlib.contextmanager
def exclusive(root: Path) -> Iterator[None]:
    """One re-creation at a time per copy: a second one would commit the same videos twice."""
    state = root / STATE
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise DatasetError(f"{root}: another re-creation of R2V2 is running on this copy; wait for it") from err
        yield


class Ledger:
    """The finished videos of one split, and the commit that puts a video's frames in place."""

    def __init__(self, root: str | Path, split: str):
        self.root, self.split = Path(root), split
        self.path = self.root / STATE / f"{split}.jsonl"
        self.staging_root = self.root / STATE / "staging" / split
        self.records = self._load()

    def _load(self) -> dict[str, Record]:
        records: dict[str, Record] = {}
        if not self.path.is_file():
            return records
        lines = self.path.read_text().splitlines()
        for number, line in enumerate(lines, start=1):
            try:
                record = Record.from_json(line)
            except (json.JSONDecodeError, TypeError) as err:
                if number == len(lines):  # cut short by a kill: that video is done again
                    log.warning("%s: ignoring its unfinished last line", self.path)
                    break
                raise DatasetError(
                    f"{self.path}:{number}: not a re-creation record ({err}); fix or delete the line"
                ) from err
            records[record.video_id] = record  # the latest line of a video counts
        return records

    def staging(self, video_id: str) -> Path:
        return self.staging_root / video_id

    def recover(self) -> int:
        """Undo the videos a killed run had staged but not committed; returns how many."""
        undone = 0
        if not self.staging_root.is_dir():
            return undone
        for folder in sorted(self.staging_root.iterdir()):
            record = self.records.get(folder.name)
            if record is None or record.status != "recreated":
                self._remove_frames(folder.name)
                undone += 1
            shutil.rmtree(folder)
        if undone:
            log.info("%s/%s: removed the frames of %d videos a stopped run left", self.root, self.split, undone)
        return undone

    def _remove_frames(self, video_id: str) -> None:
        folder = (self.root / frame_relpath(self.split, video_id, 0)).parent
        pattern = re.compile(re.escape(video_id) + r"_\d{6}\.jpg")
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(folder):
                if pattern.fullmatch(name):
                    (folder / name).unlink()

    def commit(self, record: Record) -> None:
        """Rename a re-created video's staged frames into the layout, then record it."""
        staged = self.staging(record.video_id)
        if record.status == "recreated":
            for number in record.frames:
                dest = self.root / frame_relpath(self.split, record.video_id, number)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged / f"{number:06d}.jpg", dest)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            handle.write(record.to_json() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.records[record.video_id] = record
        shutil.rmtree(staged, ignore_errors=True)

    def compact(self) -> None:
        """One line per video (reruns append a line for each video they try again), and no empty
        staging folders."""
        if self.records:
            write_text_atomic(self.path, "".join(r.to_json() + "\n" for r in self.records.values()))
        for folder in (self.staging_root, self.staging_root.parent):
            with contextlib.suppress(OSError):  # not there, or still holding a video a stop left
                folder.rmdir()

    def recreated(self, listed: list[Video]) -> list[Video]:
        """The re-created videos of ``listed``, in its order, with the frames that were written."""
        done = (self.records.get(v.video_id) for v in listed)
        return [Video(r.video_id, r.frames) for r in done if r is not None and r.status == "recreated"]


def stage_frames(folder: Path, jpegs: dict[int, bytes]) -> int:
    """Write a video's frames into its staging folder (durably: they are committed by a rename);
    returns their bytes."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for number, data in jpegs.items():
        with open(folder / f"{number:06d}.jpg", "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return sum(len(d) for d in jpegs.values())
