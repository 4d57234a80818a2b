"""The synthetic world served as the real datasets' archives from 127.0.0.1, then downloaded,
verified, unpacked and sharded by the `cycle data` commands."""

import hashlib
import json
import shutil
import tarfile
import zipfile

import pytest

from cycle_pkg.data.otb import download_otb, otb_sequences
from cycle_pkg.data.r2v2_ingest import prepare_r2v2
from cycle_pkg.data.shards import read_index
from cycle_pkg.data.ucf101 import prepare_ucf101, read_split
from cycle_pkg.errors import DatasetError
from cycle_pkg.settings.config import load_config

from ..helpers import PARAMS, run_cycle
from ..helpers.http_server import serve
from ..helpers.rar4 import write_stored_rar


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def mirror(world, tmp_path_factory):
    """The world's datasets as their publishers ship them: R2V2 as two tar parts under one top folder
    (a lab mirror), UCF101 as UCF101.rar + the split files' zip, OTB-2015 as one zip per sequence."""
    root = tmp_path_factory.mktemp("mirror")
    r2v2 = world / "r2v2"
    for part, split in (("r2v2_part1.tar.gz", "train"), ("r2v2_part2.tar", "val")):
        with tarfile.open(root / part, "w:gz" if part.endswith("gz") else "w") as archive:
            archive.add(r2v2 / split, arcname=f"r2v2/{split}")
            archive.add(r2v2 / f"r2v2_ids_{split}.txt", arcname=f"r2v2/r2v2_ids_{split}.txt")
    ucf = world / "ucf101"
    videos = sorted((ucf / "UCF-101").rglob("*.avi"))
    write_stored_rar(root / "UCF101.rar", [(p.relative_to(ucf).as_posix(), p.read_bytes()) for p in videos])
    with zipfile.ZipFile(root / "UCF101TrainTestSplits-RecognitionTask.zip", "w") as archive:
        for path in sorted((ucf / "ucfTrainTestlist").iterdir()):
            archive.write(path, f"ucfTrainTestlist/{path.name}")
    (root / "otb").mkdir()
    for name in ("Basketball", "Jogging"):
        with zipfile.ZipFile(root / "otb" / f"{name}.zip", "w") as archive:
            for path in sorted((world / "otb" / name).rglob("*")):
                archive.write(path, path.relative_to(world / "otb").as_posix())
    return root


def data_config(tmp_path, *overrides):
    sets = [f"data.downloads={tmp_path / 'downloads'}", "data.download_retries=2", "data.download_timeout=5"]
    return load_config(PARAMS, "test", [*sets, *overrides])


def r2v2_sources(server, mirror):
    parts = ("r2v2_part1.tar.gz", "r2v2_part2.tar")
    return json.dumps([f"{server.url}/{p}#sha256={sha256(mirror / p)}" for p in parts])


def test_cli_ingests_a_mirror_of_r2v2_and_shards_it(world, mirror, tmp_path):
    root, shards = tmp_path / "r2v2", tmp_path / "shards"
    with serve(mirror) as server:
        sets = [
            f"data.r2v2_archives={r2v2_sources(server, mirror)}",
            f"data.r2v2_root={root}",
            f"data.r2v2_shards={shards}",
            f"data.downloads={tmp_path / 'downloads'}",
        ]
        args = ["--params", str(PARAMS), "--scale", "test", *(a for s in sets for a in ("--set", s))]
        done = run_cycle(["data", "r2v2", *args, "--report", str(tmp_path / "report.json")], cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        again = run_cycle(["data", "r2v2", *args], cwd=tmp_path)
        assert again.returncode == 0 and "R2V2 is present; nothing to download" in again.stderr
        assert server.count("r2v2_part1.tar.gz") == server.count("r2v2_part2.tar") == 1
    expected = {k: v for k, v in tree(world / "r2v2").items() if not k.startswith("latent_classes")}
    assert {k: v for k, v in tree(root).items() if k != ".sources.json"} == expected
    assert not list((tmp_path / "downloads").rglob("*.tar*"))  # archives go once the copy is in place
    report = {r["split"]: r for r in json.loads((tmp_path / "report.json").read_text())}
    test_scale = load_config(PARAMS, "test")
    videos, subset = test_scale.world.videos, test_scale.data.r2v2_subset_videos
    assert report["train"]["videos"] == videos and report["train"]["missing_frames"] == 0
    sharded = run_cycle(["data", "r2v2-shards", *args, "--set", "data.r2v2_subset=true", "--jobs", "2"], cwd=tmp_path)
    assert sharded.returncode == 0, sharded.stderr
    index = read_index(shards / f"train-s{subset}", "train", subset)
    assert index.videos == subset and len(index.shards) == -(-subset // test_scale.data.shard_videos)


def test_a_wrong_checksum_or_a_broken_archive_leaves_no_dataset_behind(mirror, tmp_path):
    root = tmp_path / "r2v2"
    with serve(mirror) as server:
        wrong = json.dumps([f"{server.url}/r2v2_part1.tar.gz#sha256={'1' * 64}"])
        config = data_config(tmp_path, f"data.r2v2_archives={wrong}", f"data.r2v2_root={root}")
        with pytest.raises(DatasetError, match=r"r2v2_part1.tar.gz: sha256 checksum mismatch.*data.r2v2_archives\[0\]"):
            prepare_r2v2(config.data)
    assert not root.exists()
    broken = tmp_path / "broken"
    broken.mkdir()
    data = (mirror / "r2v2_part1.tar.gz").read_bytes()
    (broken / "r2v2_part1.tar.gz").write_bytes(data[: len(data) // 3])  # the mirror's copy itself is cut
    with serve(broken) as server:
        config = data_config(
            tmp_path, f"data.r2v2_archives=['{server.url}/r2v2_part1.tar.gz']", f"data.r2v2_root={root}"
        )
        with pytest.raises(DatasetError, match=r"r2v2_part1.tar.gz: truncated or corrupt tar archive"):
            prepare_r2v2(config.data)
    assert not root.exists() and not list(tmp_path.glob(".r2v2*"))


def test_no_r2v2_and_no_source_says_where_to_get_one(tmp_path):
    config = data_config(tmp_path, f"data.r2v2_root={tmp_path / 'none'}")
    with pytest.raises(DatasetError, match="no longer served.*--from.*data.r2v2_archives"):
        prepare_r2v2(config.data)


def test_a_local_copy_is_checked_and_linked(world, tmp_path):
    config = data_config(tmp_path, f"data.r2v2_root={tmp_path / 'linked'}")
    reports = prepare_r2v2(config.data, local_copy=world / "r2v2")
    assert (tmp_path / "linked").resolve() == (world / "r2v2").resolve()
    assert [r["split"] for r in reports] == ["train", "val"] and reports[1]["videos"] == 24
    with pytest.raises(DatasetError, match="not an R2V2 copy"):
        prepare_r2v2(config.data, local_copy=tmp_path)


def test_a_copy_with_missing_frames_is_surveyed(world, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(world / "r2v2", copy)
    lost = sorted((copy / "train").rglob("*.jpg"))[:3]
    for frame in lost:
        frame.unlink()
    config = data_config(tmp_path, f"data.r2v2_root={copy}")
    train = prepare_r2v2(config.data)[0]
    assert train["missing_frames"] == 3 and train["complete_videos"] <= load_config(PARAMS, "test").world.videos - 1
    assert sorted(train["missing"]) == sorted(p.relative_to(copy).as_posix() for p in lost)


def test_cli_downloads_ucf101_as_published_and_reads_it(world, mirror, tmp_path):
    root = tmp_path / "ucf101"
    with serve(mirror) as server:
        videos = f"{server.url}/UCF101.rar#sha256={sha256(mirror / 'UCF101.rar')}"
        splits = f"{server.url}/UCF101TrainTestSplits-RecognitionTask.zip"
        sets = [f"data.ucf101_root={root}", f"data.ucf101_url={videos}", f"data.ucf101_splits_url={splits}"]
        args = ["--params", str(PARAMS), "--scale", "test", *(a for s in sets for a in ("--set", s))]
        done = run_cycle(["data", "ucf101", *args, "--set", f"data.downloads={tmp_path / 'dl'}"], cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "no checksum configured" in done.stderr  # the splits zip was not pinned: its sha256 is logged
        prepare_ucf101(root, videos, splits, tmp_path / "dl2")  # present: nothing fetched
        assert server.count("UCF101.rar") == 1
    classes, train, test = read_split(root)
    world_classes, world_train, world_test = read_split(world / "ucf101")
    assert classes == world_classes and len(train) == len(world_train) and len(test) == len(world_test)
    assert tree(root) == tree(world / "ucf101")


def test_otb_downloads_only_the_missing_sequences(world, mirror, tmp_path):
    root = tmp_path / "otb"
    shutil.copytree(world / "otb", root)
    for name in ("Basketball", "Jogging"):
        shutil.rmtree(root / name)
    with serve(mirror) as server:
        url = f"{server.url}/otb/{{name}}.zip"
        assert sorted(download_otb(root, url, tmp_path / "dl", retries=2, timeout=5)) == ["Basketball", "Jogging"]
        assert download_otb(root, url, tmp_path / "dl", retries=2, timeout=5) == []
        assert sorted(name for name, _ in server.requests) == ["otb/Basketball.zip", "otb/Jogging.zip"]
    assert tree(root / "Jogging") == tree(world / "otb" / "Jogging")
    assert len(otb_sequences(root)) == 100


def test_otb_missing_and_unreachable_is_a_quick_clear_error(world, tmp_path):
    root = tmp_path / "otb"
    shutil.copytree(world / "otb", root)
    shutil.rmtree(root / "Basketball")
    sets = [f"data.otb_root={root}", "data.otb_url=http://127.0.0.1:9/{name}.zip", "data.download_retries=2"]
    args = ["--params", str(PARAMS), "--scale", "test", *(a for s in sets for a in ("--set", s))]
    done = run_cycle(["data", "otb", *args, "--set", f"data.downloads={tmp_path / 'dl'}"], cwd=tmp_path)
    assert done.returncode == 2
    assert "cycle: data error: could not download http://127.0.0.1:9/Basketball.zip after 2 attempts" in done.stderr
