import io
import json
import shutil
import tarfile
from collections import Counter

import pytest
import torch
import webdataset
from PIL import Image

from cycle_pkg.data import shards as shards_module
from cycle_pkg.data.pretrain_input import pretrain_input
from cycle_pkg.data.r2v2 import read_id_list, select_subset, subset_rank
from cycle_pkg.data.shards import read_index, read_samples, shard_dir, write_shards
from cycle_pkg.errors import ConfigError, DatasetError
from cycle_pkg.pretrain.loader import build_loader
from cycle_pkg.pretrain.loop import pretrain
from cycle_pkg.pretrain.runtime import Runtime
from cycle_pkg.settings.config import load_config

from ..helpers import PARAMS
from ..helpers.crash import crash_at_step

PER_SHARD = 20  # the test scale's data.shard_videos
VIDEOS = load_config(PARAMS, "test").world.videos  # the test world's train split


@pytest.fixture(autouse=True)
def one_thread():
    """Items are made in this process here (no loader workers); on a busy machine intra-op threads on
    such small images cost far more than they bring, as they would in a loader worker."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def shard_config(world, shards, *overrides):
    sets = [f"data.r2v2_root={world / 'r2v2'}", f"data.r2v2_shards={shards}", "data.r2v2_format=shards"]
    sets.append(f"data.imagenet_root={world / 'imagenet'}")  # the monitor's labelled set
    sets.append("data.r2v2_subset=false")  # the whole split, unless a test asks for R2V2-S
    return load_config(PARAMS, "test", [*sets, "mlflow.enabled=false", *overrides])


@pytest.fixture(scope="module")
def sharded(world, tmp_path_factory):
    """The test world's train split in shards of at most 20 videos, as the CLI would write them."""
    config = shard_config(world, tmp_path_factory.mktemp("shards"))
    data = config.data
    write_shards(data.r2v2_root, shard_dir(data), "train", None, data.shard_videos, None, progress=False)
    return config


def test_shards_follow_the_webdataset_convention(world, sharded):
    folder = shard_dir(sharded.data)
    index = json.loads((folder / "index.json").read_text())
    videos = read_id_list(world / "r2v2" / "r2v2_ids_train.txt")
    assert index["videos"] == len(videos) and index["frames"] == 4 * len(videos)
    full, rest = divmod(VIDEOS, PER_SHARD)
    assert [s["videos"] for s in index["shards"]] == [PER_SHARD] * full + ([rest] if rest else [])
    urls = [str(folder / s["name"]) for s in index["shards"]]
    samples = list(webdataset.WebDataset(urls, shardshuffle=False, empty_check=False))
    ranked = sorted(videos, key=lambda v: subset_rank(v.video_id))  # R2V2-S's fixed hashed order
    assert [s["__key__"] for s in samples] == [v.video_id for v in ranked]
    assert [s["__key__"] for s in samples] != [v.video_id for v in videos]  # not the id list's order
    first, video = samples[0], ranked[0]
    assert set(first) - {"__key__", "__url__", "__local_path__"} == {"json", *(f"{n:06d}.jpg" for n in video.frames)}
    frame = f"{video.frames[0]:06d}.jpg"
    source = world / "r2v2" / "train" / video.video_id[:2] / f"{video.video_id}_{frame[:-4]}.jpg"
    assert first[frame] == source.read_bytes()  # no resize asked: the original bytes
    assert json.loads(first["json"]) == {
        "video": video.video_id,
        "split": "train",
        "index": 0,
        "frames": list(video.frames),
    }


def test_shards_do_not_depend_on_the_id_lists_order(world, sharded, tmp_path):
    """A copy of R2V2 whose id list is reversed shards into the same bytes."""
    copy = tmp_path / "r2v2"
    copy.mkdir()
    (copy / "train").symlink_to(world / "r2v2" / "train")
    lines = (world / "r2v2" / "r2v2_ids_train.txt").read_text().splitlines()
    (copy / "r2v2_ids_train.txt").write_text("\n".join(reversed(lines)) + "\n")
    index = write_shards(copy, tmp_path / "shards", "train", None, PER_SHARD, None, progress=False)
    expected = json.loads((shard_dir(sharded.data) / "index.json").read_text())
    assert [s["sha256"] for s in index["shards"]] == [s["sha256"] for s in expected["shards"]]


def test_samples_can_be_read_from_the_middle_of_a_shard(sharded):
    index = read_index(shard_dir(sharded.data))
    shard = index.shards[1]
    samples = list(read_samples(shard.path, shard.offsets[5], 3))
    assert [s.meta["index"] for s in samples] == [PER_SHARD + 5, PER_SHARD + 6, PER_SHARD + 7]
    assert all(len(s.frames) == 4 and s.frames[0].data[:2] == b"\xff\xd8" for s in samples)


def test_r2v2_s_is_a_fixed_hash_ranked_subset(world):
    videos = read_id_list(world / "r2v2" / "r2v2_ids_train.txt")
    subset = select_subset(videos, 10)
    assert [v.video_id for v in subset] == sorted((v.video_id for v in videos), key=subset_rank)[:10]
    assert select_subset(list(reversed(videos)), 10) == subset  # the list's order does not matter
    assert select_subset(videos, 20)[:10] == subset  # a larger subset contains the smaller one
    with pytest.raises(DatasetError, match=rf"data.r2v2_subset_videos \(1000\) exceeds the {VIDEOS} videos"):
        select_subset(videos, 1000)


def test_subset_shards_resized_and_resumed_after_an_interruption(world, tmp_path, monkeypatch):
    config = shard_config(world, tmp_path, "data.r2v2_subset=true", "data.shard_short_side=32", "data.shard_videos=10")
    data = config.data
    out = shard_dir(data)
    assert out.name == f"train-s{data.r2v2_subset_videos}"
    written = []
    original = shards_module.write_shard

    def fail_on_third(task):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(task.path)
        return original(task)

    monkeypatch.setattr(shards_module, "write_shard", fail_on_third)
    arguments = (data.r2v2_root, out, "train", data.r2v2_subset_videos, 10, 32, 90)
    with pytest.raises(KeyboardInterrupt):
        write_shards(*arguments, progress=False)
    assert not (out / "index.json").exists() and len(list(out.glob("*.tar"))) == 2
    monkeypatch.setattr(shards_module, "write_shard", lambda task: written.append(task.path) or original(task))
    index = write_shards(*arguments, progress=False)
    shards = -(-data.r2v2_subset_videos // 10)
    assert len(written) == shards and len(set(written)) == shards  # the two finished ones were not rewritten
    assert index["videos"] == data.r2v2_subset_videos and index["subset_videos"] == data.r2v2_subset_videos
    sample = next(read_samples(out / "train-000000.tar", 0, 1))
    assert min(Image.open(io.BytesIO(sample.frames[0].data)).size) == 32
    with pytest.raises(DatasetError, match="other settings.*cycle data r2v2-shards"):
        write_shards(data.r2v2_root, out, "train", data.r2v2_subset_videos, 10, None, 90, progress=False)


def test_unreadable_source_frames_are_left_out_and_counted(world, tmp_path):
    root = tmp_path / "r2v2"
    shutil.copytree(world / "r2v2", root)
    videos = sorted(read_id_list(root / "r2v2_ids_train.txt"), key=lambda v: subset_rank(v.video_id))
    damaged, lost = videos[0], videos[1]  # the first two in sharded order
    frame = root / "train" / damaged.video_id[:2] / f"{damaged.video_id}_{damaged.frames[1]:06d}.jpg"
    frame.write_bytes(frame.read_bytes()[:200])
    for number in lost.frames:
        (root / "train" / lost.video_id[:2] / f"{lost.video_id}_{number:06d}.jpg").unlink()
    index = write_shards(root, tmp_path / "out", "train", None, 50, None, progress=False)
    assert index["skipped_frames"] == 5 and index["dropped_videos"] == 1 and index["videos"] == len(videos) - 1
    assert index["shards"][0]["dropped_videos"] == [lost.video_id]
    first = next(read_samples(tmp_path / "out" / "train-000000.tar", 0, 1))
    assert first.meta["frames"] == [damaged.frames[0], *damaged.frames[2:]]


def test_damaged_shards_are_named(sharded, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(shard_dir(sharded.data), folder)
    with pytest.raises(DatasetError, match="holds split 'train' with subset None.*subset 48"):
        read_index(folder, "train", 48)
    shard = folder / "train-000002.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="train-000002.tar: missing, or not of its indexed size"):
        read_index(folder)
    with pytest.raises(DatasetError, match="train-000002.tar .*truncated or corrupt shard.*r2v2-shards"):
        list(read_samples(shard, 0, PER_SHARD))
    with pytest.raises(DatasetError, match="index.json not found.*cycle data r2v2-shards"):
        read_index(tmp_path / "nowhere")


def batches(config, start, total, rank=0, world=1):
    dataset = pretrain_input(config, torch.device("cpu")).dataset
    loader = build_loader(dataset, config, Runtime(rank, world, torch.device("cpu")), start, total)
    return dict(zip(range(start, total), loader, strict=True))


def again(world, sharded, *overrides):
    return shard_config(world, sharded.data.r2v2_shards, *overrides)


def test_an_epoch_reads_every_video_once_across_ranks(world, sharded):
    config = again(world, sharded, "pretrain.batch_size=32")
    per_epoch = VIDEOS // 32  # no video is left out
    ranks = [batches(config, 0, 2 * per_epoch, rank, 2) for rank in range(2)]
    for epoch in range(2):
        steps = range(epoch * per_epoch, (epoch + 1) * per_epoch)
        seen = Counter(i for rank in ranks for s in steps for i in rank[s]["index"].tolist())
        assert len(seen) == VIDEOS and set(seen.values()) == {1}
        assert all(rank[s]["query"].shape == (16, 3, 32, 32) for rank in ranks for s in steps)
    order = [ranks[0][s]["index"].tolist() for s in range(2 * per_epoch)]
    assert order[:per_epoch] != order[per_epoch:]  # another order each epoch


def test_a_partial_last_batch_of_an_epoch_sits_out(world, sharded, caplog):
    caplog.set_level("INFO")
    run = batches(sharded, 0, VIDEOS // 16)  # batches of 16: nothing left over
    assert sum(len(b["index"]) for b in run.values()) == VIDEOS
    queues = ("model.intra_queue=160", "model.cycle_queue=320")
    config = again(world, sharded, "pretrain.batch_size=80", *queues)
    per_epoch, left = divmod(VIDEOS, 80)
    run = batches(config, 0, 2 * per_epoch)
    first, second = (
        {i for step in range(e * per_epoch, (e + 1) * per_epoch) for i in run[step]["index"].tolist()} for e in (0, 1)
    )
    assert len(first) == len(second) == VIDEOS - left and first != second  # not always the same videos sit out
    assert f"each epoch uses {VIDEOS - left} of the {VIDEOS} videos" in caplog.text
    assert f"{left} (less than a batch) sit out" in caplog.text


def test_resumed_streams_repeat_the_uninterrupted_steps_with_any_worker_count(world, sharded):
    two_workers = again(world, sharded, "pretrain.workers=2")
    full = batches(two_workers, 0, 12)
    resumed = batches(two_workers, 7, 12)  # mid-epoch 1 (6 steps per epoch)
    in_process = batches(sharded, 7, 12)  # and with no worker processes
    for step in range(7, 12):
        for run in (resumed, in_process):
            assert run[step]["index"].tolist() == full[step]["index"].tolist()
            assert torch.equal(run[step]["query"], full[step]["query"])
            assert torch.equal(run[step]["positive"], full[step]["positive"])


def test_streams_must_split_over_the_workers(world, sharded):
    with pytest.raises(ConfigError, match=r"data.shard_streams \(2\) must be a multiple of pretrain.workers \(3\)"):
        again(world, sharded, "pretrain.workers=3")


def test_a_corrupt_frame_inside_a_shard_is_skipped_and_counted(world, sharded, tmp_path, caplog):
    shards = tmp_path / "shards"
    shutil.copytree(sharded.data.r2v2_shards, shards)
    folder = shards / "train"
    with tarfile.open(folder / "train-000000.tar") as tar:
        members = [m for m in tar.getmembers() if m.name.endswith(".jpg")]
    raw = bytearray((folder / "train-000000.tar").read_bytes())
    for member in members:  # every frame of the shard's first 20 videos: wrong bytes, the tar intact
        raw[member.offset_data + 2 : member.offset_data + member.size] = b"\x00" * (member.size - 2)
    (folder / "train-000000.tar").write_bytes(bytes(raw))
    config = shard_config(world, shards)
    run = batches(config, 0, 6)
    assert sum(int(b["skipped"].sum()) for b in run.values()) >= 4 * PER_SHARD  # each unreadable video: 4
    assert all(torch.isfinite(b["query"]).all() for b in run.values())  # and replaced by a readable one
    assert "skipping unreadable frame train-000000.tar:" in caplog.text


@pytest.mark.parametrize("augment_on", ["cpu", "device"])
def test_pretraining_on_shards_resumes_to_the_same_weights(
    world, sharded, tmp_path, monkeypatch, mlflow_uri, augment_on
):
    config = again(
        world, sharded, "pretrain.epochs=1", "pretrain.max_steps=6", "pretrain.checkpoint_every=4",
        f"pretrain.augment_on={augment_on}",
    )  # fmt: skip
    whole = pretrain(config, "whole", tmp_path / "whole")
    assert whole["steps"] == 6 and whole["skipped_frames"] == 0

    with crash_at_step(monkeypatch, 5):
        pretrain(config, "resumed", tmp_path / "resumed")  # a checkpoint is written at step 4
    resumed = pretrain(config, "resumed", tmp_path / "resumed")
    assert resumed["steps"] == 6
    weights = [
        torch.load(tmp_path / run / "checkpoint.pt", weights_only=False)["model"] for run in ("whole", "resumed")
    ]
    assert same(*weights)


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b
