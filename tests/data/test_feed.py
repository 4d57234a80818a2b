"""The device path end to end on the CPU: shard streams handing over JPEG bytes and parameters, the
feed decoding and augmenting them, resumed streams repeating the uninterrupted steps."""

import pytest
import torch
from torch.utils.data import DataLoader

from cycle_pkg.data.augment import MocoV2
from cycle_pkg.data.feed import DeviceFeed
from cycle_pkg.data.pairs import PairMaker
from cycle_pkg.data.shards import read_index, write_shards
from cycle_pkg.data.stream import ShardPairs, decode_frame, encode_frame

CPU = torch.device("cpu")
BATCH = 16


@pytest.fixture(scope="module")
def index(world, tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    write_shards(world / "r2v2", root, "train", None, 20, None, progress=False)
    return read_index(root)


def stream(index, encoded, start, total, workers=0, **views):
    reader = encode_frame if encoded else decode_frame
    maker = PairMaker(MocoV2(32), reader=reader, encoded=encoded, seed=3, **views)
    pairs = ShardPairs(index, maker, streams=2, buffer=16, seed=3)
    pairs.schedule(BATCH, 0, 1, start, total, workers)
    return DataLoader(pairs, batch_size=None, num_workers=workers)


def steps(loader, start, prefetch=False, encoded=True):
    feed = DeviceFeed(CPU, 32, encoded=encoded, prefetch=prefetch)
    return {start + k: views for k, (views, _) in enumerate(feed.views(loader))}


def test_resumed_device_path_repeats_the_uninterrupted_steps(index):
    full = steps(stream(index, True, 0, 6), 0)
    resumed = steps(stream(index, True, 4, 6, workers=2), 4, prefetch=True)  # mid-epoch 1 (3 steps per epoch)
    for step in (4, 5):
        for name in ("query", "positive"):
            assert torch.equal(resumed[step][name], full[step][name])
    assert not torch.equal(full[4]["query"], full[5]["query"])


def test_device_and_cpu_paths_draw_the_same_views(index):
    cpu = steps(stream(index, False, 0, 3), 0, encoded=False)
    device = steps(stream(index, True, 0, 3), 0)
    for step in range(3):
        assert device[step]["query"].shape == (BATCH, 3, 32, 32)
        difference = (device[step]["query"] - cpu[step]["query"]).abs().mean()
        assert difference < 0.05  # the same frames and parameters (about 2.5 grey levels); another step: ~1
        assert (device[step]["query"] - cpu[(step + 1) % 3]["query"]).abs().mean() > 5 * difference


def test_feed_prefetch_gives_the_same_views_and_stops_cleanly(index):
    loader = stream(index, True, 0, 3, query_view=True, same_frame=True)
    plain, ahead = steps(loader, 0), steps(loader, 0, prefetch=True)
    assert plain.keys() == ahead.keys() == {0, 1, 2}
    for step in plain:
        assert set(ahead[step]) == {"query", "positive", "query_view"}
        assert all(torch.equal(plain[step][k], ahead[step][k]) for k in plain[step])
    for _ in DeviceFeed(CPU, 32, encoded=True, prefetch=True).views(loader):
        break  # the feed's thread ends with the loop


def test_feed_raises_the_loaders_error():
    def broken():
        yield from ()
        raise RuntimeError("shard went away")

    with pytest.raises(RuntimeError, match="shard went away"):
        list(DeviceFeed(CPU, 32, encoded=True, prefetch=True).views(broken()))


def test_the_feed_stops_once_too_many_frames_of_its_window_do_not_decode(monkeypatch):
    """The odd unreadable frame is a grey one; more than the window allows is damaged data."""
    from cycle_pkg.data import feed as feed_module
    from cycle_pkg.errors import DatasetError

    monkeypatch.setattr(feed_module, "decode_and_augment", lambda batch, device, size: ({}, 10))
    batch = {"jpeg": torch.zeros(1), "frame_names": [f"{k}.jpg" for k in range(100)], "skipped": torch.zeros(1)}
    with pytest.raises(DatasetError, match="frames do not decode"):
        list(DeviceFeed(CPU, 32, encoded=True).views([batch] * 30))  # 10% of the frames, above the 5% allowed
    one = DeviceFeed(CPU, 32, encoded=True).views([batch])
    assert [skipped for _, skipped in one] == [10]  # one batch: within the window
