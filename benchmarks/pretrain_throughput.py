"""Pretraining throughput (pairs/s), peak memory, and the cost of the cycle loss.

Two measurements, each in one process so that ratios compare like with like:
- ``--pipeline``: the real loop's pieces (R2V2 reader, MoCo v2 augmentations, DataLoader, the
  training loop's own feed, model step) on the synthetic world's R2V2 videos at R2V2's frame size
  (``--frame-size``; decoding costs grow with it), as `cycle pretrain` runs them at the chosen scale,
  for each data path of ``--augment-on`` (cpu: augmented in the loader workers; device: decoded and
  augmented in batches on the training device) with pairs/s, CPU cores used and data_wait_fraction.
  The videos (and their shards) are written once, in folders named after the frame size, and kept;
- the model step alone on random images, for ``intra_video`` and ``intra_video+cycle`` in
  alternating rounds: the ratio of their step times is the extra cost of L_cycle (its neighbour
  sampling, soft nearest neighbour and backward classification over the cycle queue).

Examples:
    python -m benchmarks.pretrain_throughput --scale demo --pipeline --augment-on cpu device
    python -m benchmarks.pretrain_throughput --scale paper --device cuda --batch 256 \\
        --out benchmarks/results/pretrain_throughput_paper_resnet18_cuda.json
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import resource
import statistics
import time
from pathlib import Path

import torch

from benchmarks.record import ROOT, arguments, device_name, write_result
from cycle_pkg.model import CycleContrast
from cycle_pkg.settings.config import Config, load_config

R2V2_FRAME = (256, 456)  # R2V2's frames: a short side of 256 px, from 16:9 videos


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(
    config: Config, components: str, device: torch.device, compiled: bool = False
) -> tuple[CycleContrast, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = CycleContrast(config.model, dataclasses.replace(config.loss, components=components)).to(device)
    if device.type == "cuda" and config.pretrain.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compiled:  # the encoders only: the rest of the step (queues, shuffles, losses) stays eager
        model.encoder_q, model.encoder_k = torch.compile(model.encoder_q), torch.compile(model.encoder_k)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=1e-4)
    return model, optimizer


def train_step(model, optimizer, query, positive, device, amp: bool) -> None:
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and amp):
        losses = model(query, positive)
    optimizer.zero_grad(set_to_none=True)
    losses["total"].backward()
    optimizer.step()


def model_step_times(
    config: Config, device: torch.device, batch: int, steps: int, rounds: int, compiled: bool = False
) -> dict:
    """Median seconds per step for intra-video alone and with the cycle loss, interleaved; with
    ``compiled``, also with the cycle loss and ``torch.compile``-d encoders."""
    size = config.pretrain.image_size
    fmt = torch.channels_last if device.type == "cuda" and config.pretrain.channels_last else torch.contiguous_format
    query = torch.randn(batch, 3, size, size, device=device).to(memory_format=fmt)
    positive = torch.randn(batch, 3, size, size, device=device).to(memory_format=fmt)
    variants = {name: build(config, name, device) for name in ("intra_video", "intra_video+cycle")}
    if compiled:
        variants["intra_video+cycle compiled"] = build(config, "intra_video+cycle", device, compiled=True)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for model, optimizer in variants.values():  # warm-up: cudnn autotuning, allocator
        for _ in range(3):
            train_step(model, optimizer, query, positive, device, config.pretrain.amp)
    sync(device)
    for _ in range(rounds):
        for name, (model, optimizer) in variants.items():
            start = time.perf_counter()
            for _ in range(steps):
                train_step(model, optimizer, query, positive, device, config.pretrain.amp)
            sync(device)
            times[name].append((time.perf_counter() - start) / steps)
    seconds = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "seconds_per_step": seconds,
        "pairs_per_second": {name: batch / value for name, value in seconds.items()},
        "cycle_cost_ratio": seconds["intra_video+cycle"] / seconds["intra_video"],
        "peak_memory_mb": peak_memory_mb(device),
    }
    if compiled:  # eager over compiled step time: above 1, compiling pays
        result["compile_speedup"] = seconds["intra_video+cycle"] / seconds["intra_video+cycle compiled"]
    return result


def process_cpu_seconds() -> float | None:
    """CPU seconds of this process and its live children (the loader workers); None without psutil."""
    try:
        import psutil
    except ImportError:
        return None
    me = psutil.Process()
    total = 0.0
    for process in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def at_frame_size(config: Config, height: int, width: int) -> Config:
    """The settings with the world's frames of ``height`` x ``width``, the world and its shards in
    folders named after the size (an existing world of another size is never rewritten)."""
    size = f"{height}x{width}"
    world = dataclasses.replace(
        config.world, frame_height=height, frame_width=width, root=f"{config.world.root.rstrip('/')}-{size}"
    )
    data = dataclasses.replace(
        config.data, r2v2_root=f"{world.root}/r2v2", r2v2_shards=f"{config.data.r2v2_shards.rstrip('/')}-{size}"
    )
    return dataclasses.replace(config, world=world, data=data)


def r2v2_world(world) -> None:
    """The world's R2V2 videos (all that the pipeline reads), written unless they exist with these settings."""
    from cycle_pkg.data.layout import WORLD_STAMP
    from cycle_pkg.data.synthetic import GENERATOR_VERSION, write_part

    root = Path(world.root)
    settings = json.dumps({"generator": GENERATOR_VERSION, **dataclasses.asdict(world)}, sort_keys=True)
    if any((root / name).is_file() and (root / name).read_text() == settings for name in (WORLD_STAMP, "r2v2.json")):
        return
    root.mkdir(parents=True, exist_ok=True)
    write_part("r2v2", world)
    (root / "r2v2.json").write_text(settings)


def pipeline_throughput(config: Config, device: torch.device, steps: int, augment_on: str) -> dict:
    """End-to-end pairs/s of data loading + augmentation + model step, with the loader and the feed of
    `cycle pretrain` (shards or loose JPEGs, as data.r2v2_format says; augmentation in the loader
    workers or on ``device``, as ``augment_on`` says); the CPU cores it keeps busy, and the share of
    the time the step waited for its batch (data_wait_fraction)."""
    from cycle_pkg.data.pretrain_input import pretrain_input
    from cycle_pkg.data.shards import shard_r2v2
    from cycle_pkg.pretrain.loader import build_loader
    from cycle_pkg.pretrain.runtime import Runtime

    config = dataclasses.replace(config, pretrain=dataclasses.replace(config.pretrain, augment_on=augment_on))
    r2v2_world(config.world)
    if config.data.r2v2_format == "shards":
        shard_r2v2(config.data)  # complete shards are kept as they are
    p = config.pretrain
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    runtime = Runtime(0, 1, device)
    data = pretrain_input(config, device)
    loader = build_loader(data.dataset, config, runtime, 0, steps + 5)
    feed = data.feed.views(loader)
    model, optimizer = build(config, config.loss.components, device)
    waited, batches = 0.0, iter(feed)
    for index in range(steps + 5):
        if index == 5:  # after warm-up
            sync(device)
            start, waited, cpu_start = time.perf_counter(), 0.0, process_cpu_seconds()
        asked = time.perf_counter()
        views, _ = next(batches)
        waited += time.perf_counter() - asked
        train_step(model, optimizer, views["query"], views["positive"], device, p.amp)
        if index == steps + 4:  # the workers are still alive to be measured
            sync(device)
            elapsed, cpu_end = time.perf_counter() - start, process_cpu_seconds()
    batches.close()
    return {
        "augment_on": augment_on,
        "workers": p.workers,
        "pairs_per_second": steps * p.batch_size / elapsed,
        "data_wait_fraction": waited / elapsed,
        "cpu_cores_used": None if cpu_start is None else (cpu_end - cpu_start) / elapsed,
        "peak_memory_mb": peak_memory_mb(device),
    }


def main() -> None:
    began = time.time()
    parser = arguments(__doc__)
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, help="batch size (default: the scale's)")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--steps", type=int, default=5, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pipeline", action="store_true", help="also time the data pipeline + model end to end")
    parser.add_argument("--compile", action="store_true", help="also time the model step with torch.compile-d encoders")
    parser.add_argument("--pipeline-steps", type=int, default=30)
    parser.add_argument(
        "--frame-size", nargs=2, type=int, default=R2V2_FRAME, metavar=("HEIGHT", "WIDTH"),
        help="the pipeline world's frame size (default: R2V2's)",
    )  # fmt: skip
    parser.add_argument(
        "--augment-on", nargs="+", default=["cpu"], choices=["cpu", "device"],
        help="the pipeline's data paths, each measured in this run (cpu: loader workers; device: the training device)",
    )  # fmt: skip
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    overrides = [f"model.backbone={args.backbone}", "mlflow.enabled=false", *args.overrides]
    if args.batch:
        overrides.append(f"pretrain.batch_size={args.batch}")
    config = load_config(ROOT / "params.yaml", args.scale, overrides)
    batch = config.pretrain.batch_size
    result = {
        "device": device_name(device),
        "scale": args.scale,
        "backbone": args.backbone,
        "batch": batch,
        "image_size": config.pretrain.image_size,
        "queues": [config.model.intra_queue, config.model.cycle_queue],
        "neighbors": config.loss.neighbors,
        "bf16_autocast": device.type == "cuda" and config.pretrain.amp,
        "model_step": model_step_times(config, device, batch, args.steps, args.rounds, args.compile),
    }
    if args.pipeline:
        sized = at_frame_size(config, *args.frame_size)
        result["frame_size"] = list(args.frame_size)
        result["pipeline"] = {
            path: pipeline_throughput(sized, device, args.pipeline_steps, path) for path in args.augment_on
        }
        if len(args.augment_on) == 2:
            rates = {path: r["pairs_per_second"] for path, r in result["pipeline"].items()}
            result["pipeline"]["device_over_cpu"] = rates["device"] / rates["cpu"]
    write_result(result, args.out, began)


if __name__ == "__main__":
    main()
