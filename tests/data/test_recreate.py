"""R2V2 re-created from an id list, with the videos served from 127.0.0.1: coded videos (every frame
shows its own number, tests/helpers/coded_video.py) stand for YouTube's, yt-dlp fetches them through its
generic extractor, and each written JPEG must show the number its name says."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pytest
from PIL import Image

from cycle_pkg.data.r2v2 import read_id_list
from cycle_pkg.data.r2v2_recreate import Fetching, recreate
from cycle_pkg.data.r2v2_recreate.ledger import STATE, Ledger
from cycle_pkg.data.shards import read_index
from cycle_pkg.errors import DatasetError
from cycle_pkg.settings.sections import DataConfig

from ..helpers import PARAMS, ROOT, cycle_command, run_cycle
from ..helpers.coded_video import read_code, write_coded_video
from ..helpers.http_server import serve

FORMAT = DataConfig().r2v2_video_format


@dataclass(frozen=True)
class Source:
    """A served video: its id, listed frames, and how it was made (None: not on the server)."""

    video_id: str
    frames: tuple[int, ...]
    length: int | None = 200
    size: tuple[int, int] = (96, 64)
    border: tuple[int, int] = (0, 0)
    gop: int = 50

    @property
    def written_size(self) -> tuple[int, int]:
        """(width, height) of its JPEGs: the border cut away, the long side at most 480."""
        scale = min(1.0, 480 / max(self.size))
        return round(self.size[0] * scale), round(self.size[1] * scale)


SOURCES = [
    Source("--a0YwlG-GI", (1, 49, 99, 149)),
    Source("-_b1I4cgznV", (3, 53, 103, 153), border=(8, 16)),  # pillar- and letterboxed
    Source("Ac2CmOEb9My", (0, 50, 100, 199), gop=25),
    Source("Bd3EW0jiueH", (20, 70, 120, 170), border=(0, 12)),
    Source("Ce4IH0YmxBB", (1, 149, 299, 310), length=320, gop=300),  # one key frame for all four
    Source("Df5LE9VfUyy", (1, 50, 100, 150), length=160, size=(640, 272), border=(48, 0)),  # resized to 480
    Source("Eg6NulIyPiO", (10, 60, 110, 160), length=120),  # frame 160 is past its end
    Source("Fh7OtwvH4AR", (50, 100, 150, 200), length=40),  # ends before its first listed frame
    Source("Gi8P9uvBezU", (1, 149, 299, 449), length=None),  # removed: HTTP 404
    Source("Hj9PEz14tKR", (1, 149, 299, 449), length=None),
    Source("Ik0VSdqRNuF", (1, 49, 99, 149)),  # its transfers are always cut short
]
CUT = "Ik0VSdqRNuF"
RETRIES = 2


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    for s in SOURCES:
        if s.length is not None:
            write_coded_video(root / f"{s.video_id}.mp4", s.length, s.size, s.border, s.gop)
    listed = root / "r2v2_ids_train.txt"
    listed.write_text("".join(f"{s.video_id},{','.join(map(str, s.frames))}\n" for s in SOURCES))
    return root


def fetching(server, retries: int = RETRIES) -> Fetching:
    return Fetching(f"{server.url}/{{id}}.mp4", FORMAT, retries=retries, timeout=5, backoff=0.01)


def expected_frames() -> dict[str, tuple[int, ...]]:
    """The frames a complete re-creation writes, per video."""
    frames = {}
    for s in SOURCES:
        if s.length is not None and s.video_id != CUT:
            kept = tuple(f for f in s.frames if f < s.length)
            if kept:
                frames[s.video_id] = kept
    return frames


def written(root: Path) -> dict[str, tuple[int, ...]]:
    """The frames in the published layout, per video, each checked to show its own number."""
    frames: dict[str, list[int]] = {}
    sizes = {s.video_id: s.written_size for s in SOURCES}
    for path in sorted((root / "train").rglob("*")):
        if path.is_dir():
            continue
        match = re.fullmatch(r"(.{11})_(\d{6})\.jpg", path.name)
        assert match and path.parent.name == path.name[:2], path
        video_id, number = match.group(1), int(match.group(2))
        image = np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))
        assert read_code(image) == number, path
        assert image.shape[1::-1] == sizes[video_id], path
        frames.setdefault(video_id, []).append(number)
    return {k: tuple(v) for k, v in frames.items()}


def release_at(server, in_flight: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while server.in_flight < in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    server.released.set()


def test_a_run_re_creates_what_is_served_and_records_the_rest(served, tmp_path):
    root, downloads = tmp_path / "r2v2", tmp_path / "downloads"
    with serve(served) as server:
        server.broken[f"{CUT}.mp4"] = "cut"
        server.hold |= {f"{s.video_id}.mp4" for s in SOURCES}  # until three requests wait at once
        threading.Thread(target=release_at, args=(server, 3), daemon=True).start()
        report = recreate(root, {"train": str(served / "r2v2_ids_train.txt")}, fetching(server), downloads, jobs=3,
                          subset_videos=5, progress=False)  # fmt: skip
        assert server.max_in_flight == 3  # in parallel, and never more downloads than jobs
        cut_requests = server.count(f"{CUT}.mp4")
        assert cut_requests >= RETRIES * 2  # every attempt (and yt-dlp's own retries within one) was cut

    assert written(root) == expected_frames()
    recreated = {v.video_id: v.frames for v in read_id_list(root / "r2v2_ids_train.txt")}
    assert recreated == expected_frames()
    assert list(recreated) == [s.video_id for s in SOURCES if s.video_id in recreated]  # the published order
    assert not any(downloads.rglob("*.mp4*")) and not (root / STATE / "staging" / "train").exists()

    records = Ledger(root, "train").records
    assert {k for k, r in records.items() if r.status == "gone"} == {"Fh7OtwvH4AR", "Gi8P9uvBezU", "Hj9PEz14tKR"}
    assert records["Gi8P9uvBezU"].cause == "not found" and "404" in records["Gi8P9uvBezU"].reason
    assert records["Fh7OtwvH4AR"].cause == "too short"
    assert records[CUT].status == "failed" and records[CUT].attempts == RETRIES and records[CUT].cause == "download"
    assert records["Eg6NulIyPiO"].missing == (160,)

    (split,) = report["splits"]
    frames_written = sum(len(f) for f in expected_frames().values())
    assert {k: split[k] for k in ("listed", "recreated", "partial", "gone", "failed", "untried")} == {
        "listed": 11, "recreated": 7, "partial": 1, "gone": 3, "failed": 1, "untried": 0,
    }  # fmt: skip
    assert split["frames_written"] == frames_written and split["frames_listed"] == 44
    assert split["gone_causes"] == {"not found": 2, "too short": 1} and split["failed_causes"] == {"download": 1}
    assert split["bytes"] == sum(p.stat().st_size for p in (root / "train").rglob("*.jpg"))
    assert report["subset"] == {"requested": 5, "train_videos": 7}

    # A rerun asks again only for the failed video: the gone ones are not retried, the done ones kept.
    with serve(served) as server:
        recreate(root, {"train": str(served / "r2v2_ids_train.txt")}, fetching(server), downloads, progress=False)
        assert {name for name, _ in server.requests} == {f"{CUT}.mp4"}
    assert written(root) == {**expected_frames(), CUT: (1, 49, 99, 149)}
    assert Ledger(root, "train").records[CUT].status == "recreated"
    assert len((root / STATE / "train.jsonl").read_text().splitlines()) == len(SOURCES)  # compacted


def test_a_throttled_source_stops_the_run_with_what_to_do(served, tmp_path):
    with serve(served) as server:
        for s in SOURCES:
            server.broken[f"{s.video_id}.mp4"] = "429"
        with pytest.raises(DatasetError, match=r"refused the last 3 videos \(.*HTTP Error 429.*data.r2v2_cookies"):
            recreate(tmp_path / "r2v2", {"train": str(served / "r2v2_ids_train.txt")}, fetching(server, retries=1),
                     tmp_path / "dl", jobs=1, give_up_after=3, progress=False)  # fmt: skip
        assert len({name for name, _ in server.requests}) == 3  # it stopped there
    records = Ledger(tmp_path / "r2v2", "train").records
    assert [r.cause for r in records.values()] == ["too many requests"] * 3
    assert (tmp_path / "r2v2" / "r2v2_ids_train.txt").read_text() == ""


def scale_args(*overrides: str) -> list[str]:
    return ["--params", str(PARAMS), "--scale", "test", *(a for s in overrides for a in ("--set", s))]


def recreate_settings(server, served: Path, root: Path | str, downloads: Path | str) -> list[str]:
    """The settings that re-create the served list's train split at ``root``."""
    return [
        f"data.r2v2_root={root}", f"data.r2v2_ids_train={served / 'r2v2_ids_train.txt'}",
        "data.r2v2_recreate_splits=[train]", f"data.r2v2_video_url={server.url}/{{id}}.mp4",
        f"data.downloads={downloads}", f"data.download_retries={RETRIES}", "data.download_timeout=5",
    ]  # fmt: skip


def test_a_killed_run_resumes_without_duplicate_or_partial_output(served, tmp_path):
    root = tmp_path / "r2v2"
    with serve(served) as server:
        server.hold |= {f"{s.video_id}.mp4" for s in SOURCES[5:]}  # they stall: the run is surely mid-way when killed
        sets = recreate_settings(server, served, root, tmp_path / "downloads")
        args = [
            "data",
            "r2v2",
            "--recreate",
            *scale_args(*sets, "data.r2v2_downloads_in_flight=2", "mlflow.enabled=false"),
        ]
        job = subprocess.Popen(cycle_command(*args), cwd=tmp_path, stderr=subprocess.DEVNULL)
        ledger = root / STATE / "train.jsonl"
        deadline = time.monotonic() + 120
        while not (ledger.is_file() and len(ledger.read_text().splitlines()) >= 5):
            assert job.poll() is None and time.monotonic() < deadline, "the run ended or stalled early"
            time.sleep(0.05)
        job.send_signal(signal.SIGKILL)
        job.wait()
        server.released.set()

        committed = Ledger(root, "train").records
        assert 5 <= len(committed) < len(SOURCES)
        on_disk = written(root)  # every frame there shows its number, and belongs to a committed video
        assert on_disk == {k: r.frames for k, r in committed.items() if r.status == "recreated"}

        server.hold.clear()
        server.broken[f"{CUT}.mp4"] = "cut"
        before = len(server.requests)
        resumed = run_cycle(args, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        asked = {name.removesuffix(".mp4") for name, _ in server.requests[before:]}
    assert asked == {s.video_id for s in SOURCES} - set(committed)  # only what the killed run had not finished
    assert written(root) == expected_frames()
    lines = (root / "r2v2_ids_train.txt").read_text().splitlines()
    assert len(lines) == len(set(lines)) == len(expected_frames())
    assert not [p for p in (tmp_path / "downloads").rglob("*") if p.is_file()]
    assert not (root / STATE / "staging").exists()


def git(project: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=lab", "-c", "user.email=lab@example.invalid", *args], cwd=project,
                   check=True, capture_output=True)  # fmt: skip


def test_cli_takes_an_id_list_to_a_sharded_trained_and_dvc_shared_r2v2(served, tmp_path, mlflow_uri):
    """From a fresh clone: `cycle data r2v2 --recreate` (the project's own .gitignore and DVC set-up), then
    the shards and a short pretraining on what it re-created, `dvc push`, and `dvc pull` on another
    machine, where a rerun finds everything done but the failed video."""
    project, elsewhere = tmp_path / "lab", tmp_path / "elsewhere"
    project.mkdir()
    for name in (".gitignore", ".dvcignore"):
        shutil.copy(ROOT / name, project / name)
    git(project, "init", "-q")
    run_dvc(project, "init", "-q")
    run_dvc(project, "remote", "add", "-d", "lab", str(tmp_path / "dvc-remote"))
    with serve(served) as server:
        server.broken[f"{CUT}.mp4"] = "cut"
        sets = recreate_settings(server, served, "resources/r2v2", "resources/downloads")
        more = ["data.r2v2_shards=data/shards", "data.r2v2_subset=false", "data.shard_videos=4", "results=results"]
        args = scale_args(*sets, *more)
        done = run_cycle(["data", "r2v2", "--recreate", *args, "--report", "results/data/r2v2.json"], cwd=project)
    assert done.returncode == 0, done.stderr
    report = json.loads((project / "results" / "data" / "r2v2.json").read_text())
    assert json.loads(done.stdout) == report  # printed at the end too
    (train,) = report["splits"]
    assert (train["recreated"], train["gone"], train["failed"]) == (7, 3, 1)
    assert "R2V2-S: only 7 train videos were re-created, fewer than the 96 of data.r2v2_subset_videos" in done.stderr
    mlflow.set_tracking_uri(mlflow_uri)  # an earlier test in this process may have pointed MLflow elsewhere
    runs = mlflow.search_runs(experiment_names=["cycle-contrast"], filter_string="tags.mlflow.runName = 'data-r2v2'")
    assert runs["metrics.train.recreated"].tolist() == [7] and runs["metrics.train.frames_written"].tolist() == [
        train["frames_written"]
    ]
    assert (project / "resources" / "r2v2.dvc").is_file()

    sharded = run_cycle(["data", "r2v2-shards", *args, "--jobs", "1"], cwd=project)
    assert sharded.returncode == 0, sharded.stderr
    assert read_index(project / "data" / "shards" / "train", "train", None).videos == 7
    small = ["pretrain.batch_size=3", "model.key_bn_group=3", "model.intra_queue=6", "model.cycle_queue=6",
             "loss.neighbors=3", "pretrain.epochs=1", "data.r2v2_format=shards",
             "pretrain.monitor_every=0"]  # fmt: skip
    trained = run_cycle(["pretrain", *args, *(a for s in small for a in ("--set", s))], cwd=project)
    assert trained.returncode == 0, trained.stderr
    summary = next((project / "results" / "pretrain").glob("*/summary.json"))
    assert json.loads(summary.read_text())["steps"] == 2  # 7 videos, batches of 3, one epoch: 2 steps

    git(project, "add", ".gitignore", ".dvcignore", ".dvc/config", "resources/r2v2.dvc")
    git(project, "commit", "-qm", "R2V2 as re-created")
    run_dvc(project, "push", "-q")
    git(tmp_path, "clone", "-q", str(project), str(elsewhere))
    run_dvc(elsewhere, "pull", "-q")
    assert written(elsewhere / "resources" / "r2v2") == expected_frames()
    with serve(served) as server:
        args = scale_args(*recreate_settings(server, served, "resources/r2v2", "resources/downloads"), *more)
        rerun = run_cycle(["data", "r2v2", "--recreate", *args], cwd=elsewhere)
        assert rerun.returncode == 0, rerun.stderr
        assert {name for name, _ in server.requests} == {f"{CUT}.mp4"}  # everything else is known
    assert written(elsewhere / "resources" / "r2v2") == {**expected_frames(), CUT: (1, 49, 99, 149)}


def run_dvc(project: Path, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, capture_output=True, text=True,
                          env={**os.environ, "DVC_NO_ANALYTICS": "1"})  # fmt: skip
    assert done.returncode == 0, done.stderr
