"""benchmarks/pretrain_throughput.py's pipeline measurement: the world it reads (R2V2's frame size, in
a folder of its own, kept) and the training loop's own feed."""

import torch

from benchmarks import pretrain_throughput as bench
from cycle_pkg.data import synthetic
from cycle_pkg.data.pretrain_input import device_feed
from cycle_pkg.settings.config import load_config

from ..helpers import PARAMS


def test_the_pipeline_reads_frames_of_r2v2s_size_from_a_world_of_its_own():
    config = bench.at_frame_size(load_config(PARAMS, "demo"), *bench.R2V2_FRAME)
    assert (config.world.frame_height, config.world.frame_width) == (256, 456)
    assert config.world.root == "resources/synthetic-256x456"  # the demo's world is never rewritten
    assert config.data.r2v2_root == "resources/synthetic-256x456/r2v2"
    assert config.data.r2v2_shards == "data/shards/synthetic-256x456"


def test_an_existing_world_is_reused(world, tmp_path, monkeypatch):
    written = []
    monkeypatch.setattr(synthetic, "write_part", lambda part, settings: written.append(part))
    bench.r2v2_world(load_config(PARAMS, "test", [f"world.root={world}"]).world)  # the whole world, complete
    assert written == []
    fresh = load_config(PARAMS, "test", [f"world.root={tmp_path}"]).world
    bench.r2v2_world(fresh)
    assert written == ["r2v2"]  # its R2V2 videos only: all the pipeline reads
    bench.r2v2_world(fresh)
    assert written == ["r2v2"]


def test_the_training_loops_feed_puts_views_in_the_models_layout_on_cuda():
    """What the pipeline benchmark measures with: channels_last and prefetching on CUDA (built, not run)."""
    config = load_config(PARAMS, "paper")
    feed = device_feed(config, torch.device("cuda"), encoded=True)
    assert feed.memory_format == torch.channels_last and feed.prefetch and feed.image_size == 224
    on_cpu = device_feed(config, torch.device("cpu"), encoded=False)
    assert on_cpu.memory_format == torch.contiguous_format and not on_cpu.prefetch
