"""The representation monitor's cost against the training it watches, at a scale's settings.

In one process, on one device: the median seconds (CPU seconds on a CPU) of a training step (the model step of
`cycle pretrain` on random images at the scale's size and batch) and of one look of the monitor
(its labelled set's forward passes in eval mode and the kNN). A run of T steps looks
``sum(is_due(s) for s in 0..T)`` times, so the monitor's share of training time is
``looks * look / (T * step)``. The labelled set is the real one where its ImageNet copy exists (the
synthetic world at the small scales); otherwise random images of its size and count, of which
``--look-images`` are timed and the rest extrapolated (the forward pass is linear in the images).
The pictures that come after a run (t-SNE embedding, kNN curve) are timed once, imports included.

Examples:
    python -m benchmarks.monitor_cost --scale demo --out benchmarks/results/monitor_cost_demo_cpu.json
    python -m benchmarks.monitor_cost --scale paper --steps 2 --look-images 512   # on CPU: a ratio
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import torch

from benchmarks.pretrain_throughput import build, sync, train_step
from benchmarks.record import ROOT, arguments, device_name, write_result
from cycle_pkg.errors import DatasetError
from cycle_pkg.pretrain.monitor import LabelledSet, Monitor, is_due, load_labelled_set
from cycle_pkg.settings.config import Config, load_config


def training_steps(config: Config) -> int:
    """Steps of one run of the scale's R18 grid points (R2V2-S, or the split's videos without it)."""
    p, data = config.pretrain, config.data
    if data.r2v2_subset:
        videos = data.r2v2_subset_videos
    else:
        from cycle_pkg.data.r2v2 import load_videos

        videos = len(load_videos(data.r2v2_root, data.r2v2_split, None))
    total = videos // p.batch_size * p.epochs
    return total if p.max_steps is None else min(total, p.max_steps)


def clock(device: torch.device):
    """Seconds to time with: on a CPU the process's CPU time (all its threads), which a machine shared
    with other work does not inflate as it does wall time; on a GPU wall time, the device synchronised."""
    return time.process_time if device.type == "cpu" else time.perf_counter


def step_seconds(config: Config, device: torch.device, steps: int) -> float:
    model, optimizer = build(config, config.loss.components, device)
    size, batch = config.pretrain.image_size, config.pretrain.batch_size
    query, positive = (torch.randn(batch, 3, size, size, device=device) for _ in range(2))
    train_step(model, optimizer, query, positive, device, config.pretrain.amp)  # warm-up
    times, now = [], clock(device)
    for _ in range(steps):
        sync(device)
        start = now()
        train_step(model, optimizer, query, positive, device, config.pretrain.amp)
        sync(device)
        times.append(now() - start)
    return statistics.median(times)


def labelled_set(config: Config, timed: int | None) -> tuple[LabelledSet, int, bool]:
    """(the set to time, the images of the real set, whether it is real)."""
    m = config.pretrain.monitor
    size = m.image_size or config.pretrain.image_size
    try:
        labelled = load_labelled_set(
            config.data.imagenet_root, m.dataset, m.bank_per_class, m.queries_per_class, size, 0
        )
        return labelled, len(labelled.labels), True
    except DatasetError as err:  # no ImageNet copy here: random images of the set's size and count
        print(f"labelled set not readable ({str(err)[:100]}); timing random images", file=sys.stderr)
    classes = 100 if m.dataset == "imagenet100" else 1000
    bank, queries = m.bank_per_class * classes, m.queries_per_class * classes
    count = min(timed or bank + queries, bank + queries)
    images = torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8)
    is_bank = torch.arange(count) < count * bank // (bank + queries)
    names = [str(c) for c in range(classes)]
    return LabelledSet(images, torch.arange(count) % classes, is_bank, names), bank + queries, False


def look_seconds(config: Config, labelled: LabelledSet, device: torch.device, rounds: int) -> float:
    model, _ = build(config, config.loss.components, device)
    monitor = Monitor(
        labelled,
        config.pretrain.monitor.k,
        config.pretrain.monitor.temperature,
        config.eval.batch_size,
        device,
        amp=config.pretrain.amp,
    )
    backbone = model.encoder_q.backbone
    monitor.look(backbone, 0)  # warm-up
    times, now = [], clock(device)
    for step in range(rounds):
        sync(device)
        start = now()
        monitor.look(backbone, step + 1)
        sync(device)
        times.append(now() - start)
    return statistics.median(times)


PICTURES = """
import sys, time, torch
start = time.perf_counter()
from cycle_pkg.pretrain.monitor_figures import embedding_figure, knn_curve_figure
n, width, classes = (int(a) for a in sys.argv[1:4])
saved = {"features": torch.randn(n, width), "labels": torch.arange(n) % classes,
         "bank": torch.arange(n) < n // 2, "classes": [str(c) for c in range(classes)]}
embedding_figure(saved, "run", sys.argv[4] + "/embedding.png")
curve = {"steps": [0, 1, 2], "knn_top1": [1, 2, 3], "knn_top5": [4, 5, 6], "query_images": n}
knn_curve_figure(curve, "run", sys.argv[4] + "/curve.png")
print(time.perf_counter() - start)
"""


def pictures_seconds(points: int, width: int, classes: int) -> float:
    """One run's pictures in a fresh interpreter (scikit-learn and matplotlib imports included)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-c", PICTURES, str(points), str(width), str(classes), tmp]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def main() -> None:
    began = time.time()
    parser = arguments(__doc__)
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps")
    parser.add_argument("--rounds", type=int, default=3, help="timed looks")
    parser.add_argument("--look-images", type=int, help="time this many images of a random set and extrapolate")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    device = torch.device(args.device)
    overrides = [f"model.backbone={args.backbone}", "mlflow.enabled=false", *args.overrides]
    config = load_config(ROOT / "params.yaml", args.scale, overrides)
    p, m = config.pretrain, config.pretrain.monitor
    labelled, images, real = labelled_set(config, args.look_images)
    look = look_seconds(config, labelled, device, args.rounds) * images / len(labelled.labels)
    step = step_seconds(config, device, args.steps)
    total = training_steps(config)
    looks = sum(is_due(s, p.monitor_every, total) for s in range(total + 1))
    width = 512 if args.backbone == "resnet18" else 2048
    result = {
        "scale": args.scale,
        "device": device_name(device),
        "backbone": args.backbone,
        "batch": p.batch_size,
        "image_size": p.image_size,
        "monitor": {**vars(m), "every": p.monitor_every},
        "labelled_images": images,
        "labelled_set": "real" if real else f"random, {len(labelled.labels)} timed and extrapolated",
        "clock": "process CPU time" if device.type == "cpu" else "wall, synchronised",
        "look_seconds": look,
        "step_seconds": step,
        "look_in_steps": look / step,
        "steps_per_run": total,
        "looks_per_run": looks,
        "monitor_fraction": looks * look / (total * step),
        "pictures_seconds": pictures_seconds(images, width, len(labelled.classes)),
    }
    write_result(result, args.out, began)


if __name__ == "__main__":
    main()
