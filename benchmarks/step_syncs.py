"""The pretraining step's host waits and op count, against an earlier commit's, in one run.

On a GPU a step is fast only if the host never waits for the device inside it. On the CPU no step
waits, so the places where a CUDA step would are counted instead, by intercepting them:
- a tensor's value read on the host (``item``, ``int()``, ``float()``, ``bool()``, ``tolist``,
  ``nonzero``): the host waits for every kernel queued before it;
- a copy to a device from pageable host memory (``.to(device)`` / ``.cuda()`` of an unpinned tensor
  without ``non_blocking``): CUDA makes it synchronous.
The op count is the aten ops a step dispatches (each one a kernel launch and its Python and
dispatcher overhead on a GPU). The step time ratio is measured on the CPU at the chosen scale.

Each code version runs in processes of its own (the baseline's ``cycle_pkg`` exported with
``git archive``, and run from that folder, so that it is the ``cycle_pkg`` imported), alternating
rounds, with this checkout's params.yaml and benchmarks.

    python -m benchmarks.step_syncs --baseline main --scale demo --out benchmarks/results/step_syncs_demo_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.record import ROOT, arguments, write_result

VALUE_READS = {"item", "__int__", "__float__", "__bool__", "__index__", "tolist", "nonzero"}
COPIES = {"to", "cuda"}


class HostWaits(TorchFunctionMode):
    """Counts, by name, the calls at which a CUDA step would make the host wait for the device."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in VALUE_READS:
            self.counts[name] += 1
        elif name in COPIES and pageable_copy(args, kwargs):
            self.counts[f"{name} (pageable copy)"] += 1
        return func(*args, **kwargs)


def pageable_copy(args: tuple, kwargs: dict) -> bool:
    """Whether ``Tensor.to`` / ``Tensor.cuda`` copies an unpinned host tensor to a device, blocking."""
    tensor = args[0] if args and isinstance(args[0], torch.Tensor) else None
    device = kwargs.get("device") or next((a for a in args[1:] if isinstance(a, (str, torch.device))), None)
    if tensor is None or device is None or kwargs.get("non_blocking"):
        return False
    return tensor.device.type == "cpu" and not tensor.is_pinned()


class OpCount(TorchDispatchMode):
    """The aten ops dispatched (the backward's included)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def measure(scale: str, steps: int) -> dict:
    """In a child: a training step of ``cycle_pkg`` on importable here, counted once, then timed."""
    import cycle_pkg
    from cycle_pkg.pretrain.runtime import Runtime
    from cycle_pkg.pretrain.steps import train_step
    from cycle_pkg.pretrain.training import build_training
    from cycle_pkg.settings.config import load_config

    device = torch.device("cpu")
    config = load_config(ROOT / "params.yaml", scale, ["mlflow.enabled=false"])
    training = build_training(config, "bench", Runtime(0, 1, device), 1000, 1000, None)
    training.model.train()
    size, batch = config.pretrain.image_size, config.pretrain.batch_size
    generator = torch.Generator().manual_seed(0)
    views = {name: torch.randn(batch, 3, size, size, generator=generator) for name in ("query", "positive")}
    autocast = torch.autocast("cpu", enabled=False)
    for _ in range(2):  # warm-up
        train_step(training, views, 0.01, autocast)
    waits, ops = HostWaits(), OpCount()
    with waits, ops:
        train_step(training, views, 0.01, autocast)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(training, views, 0.01, autocast)
    return {
        "package": str(Path(cycle_pkg.__file__).parent),
        "host_waits": sum(waits.counts.values()),
        "host_waits_by_call": dict(waits.counts),
        "aten_ops": ops.ops,
        "seconds_per_step": (time.perf_counter() - start) / steps,
    }


def child(package_root: Path, scale: str, steps: int, threads: int) -> dict:
    """:func:`measure` in a process that imports the ``cycle_pkg`` of ``package_root``: run from there
    (``-m`` puts the working directory first on the path), the benchmarks found in this checkout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package_root), str(ROOT)]), "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "benchmarks.step_syncs", "--child", "--scale", scale, "--steps", str(steps)]
    result = subprocess.run(command, cwd=package_root, env=env, capture_output=True, text=True, check=True)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    if Path(measured["package"]) != package_root / "cycle_pkg":
        raise RuntimeError(f"the child imported {measured['package']}, not {package_root / 'cycle_pkg'}")
    return measured


def commit(rev: str) -> str:
    return subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def main() -> None:
    began = time.time()
    parser = arguments(__doc__)
    parser.add_argument("--baseline", default="main", help="the git revision to compare against")
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each measuring process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.scale, args.steps)))
        return
    with tempfile.TemporaryDirectory() as folder:
        baseline = Path(folder)
        archive = subprocess.run(
            ["git", "archive", args.baseline, "cycle_pkg"], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
        roots = {"baseline": baseline, "this": ROOT}
        runs: dict[str, list[dict]] = {name: [] for name in roots}
        for _ in range(args.rounds):
            for name, root in roots.items():
                runs[name].append(child(root, args.scale, args.steps, args.threads))
    result = {
        "scale": args.scale,
        "device": f"cpu, {args.threads} thread(s) a process",
        "commits": {"baseline": f"{args.baseline} ({commit(args.baseline)})", "this": commit("HEAD")},
    }
    for name, measured in runs.items():
        first = measured[0]
        result[name] = {
            "host_waits_per_step": first["host_waits"],
            "host_waits_by_call": first["host_waits_by_call"],
            "aten_ops_per_step": first["aten_ops"],
            "seconds_per_step": statistics.median(m["seconds_per_step"] for m in measured),
        }
    result["step_time_ratio_this_over_baseline"] = (
        result["this"]["seconds_per_step"] / result["baseline"]["seconds_per_step"]
    )
    result["aten_ops_ratio_this_over_baseline"] = (
        result["this"]["aten_ops_per_step"] / result["baseline"]["aten_ops_per_step"]
    )
    write_result(result, args.out, began)


if __name__ == "__main__":
    main()
