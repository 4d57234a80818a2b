"""What the representation monitor costs a whole `cycle pretrain` job, in CPU seconds.

One benchmark run times the same pretraining job (the scale's R18 grid point, or ``--set`` others)
as separate `cycle pretrain` processes, once per variant and round, the variants alternating within
each round so that a change in the machine's load falls on all of them: ``off`` (monitor_every 0)
and the variants named on the command line (``on`` = the scale's own settings). Each process's CPU
seconds (user + system, its loader workers included, from wait4; one torch thread, as the workflow
runs a job) and its summary's own account
(train_seconds, the monitor's seconds and monitor_fraction) are recorded; the monitor's cost is a
variant's median CPU seconds over ``off``'s, less one. The scale's data must be prepared (at the demo
scale: `snakemake --cores 2 results/data/imagenet.json` and the shards' index, which
`snakemake -n` names).

Example (demo scale, the monitor as params.yaml sets it, and with pictures):
    python -m benchmarks.monitor_run_cost --scale demo --rounds 2 \\
        --variant on= --variant pictures=pretrain.monitor.pictures=true
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.record import ROOT, arguments, write_result
from cycle_pkg.jobs import layout


def variant(text: str) -> tuple[str, list[str]]:
    """``name=KEY=VALUE,KEY=VALUE`` (``name=`` for the scale's own settings)."""
    name, _, sets = text.partition("=")
    return name, [s for s in sets.split(",") if s]


def run_job(scale: str, sets: list[str], results: Path) -> dict[str, float]:
    """One `cycle pretrain` process: its CPU seconds (children included) and its summary's account."""
    args = ["--set", f"results={results}", "--set", "mlflow.enabled=false"]
    for s in sets:
        args += ["--set", s]
    command = [sys.executable, "-m", "cycle_pkg.cli", "pretrain", "--params", "params.yaml", "--scale", scale, *args]
    command += ["--run", "bench", "--log", str(results / "bench.log")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # as the workflow's pretrain rule runs a one-thread job
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    stderr = process.stderr.read() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
    summary = json.loads(layout.summary_path(results, "bench").read_text())
    monitor = summary["monitor"] or {}
    pictures = [line for line in (results / "bench.log").read_text().splitlines() if "monitor pictures drawn" in line]
    return {
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "train_seconds": summary["train_seconds"],
        "monitor_seconds": monitor.get("seconds", 0.0),
        "monitor_fraction": summary["monitor_fraction"] or 0.0,
        "looks": len(monitor.get("steps", [])),
        "pictures_cpu_seconds": float(pictures[-1].split(" in ")[-1].split()[0]) if pictures else 0.0,
        "data_wait_fraction": summary["data_wait_fraction"],
    }


def main() -> None:
    began = time.time()
    parser = arguments(__doc__)
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variant", action="append", type=variant, default=[], metavar="NAME=KEY=VALUE,...")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    variants = {"off": ["pretrain.monitor_every=0"], **dict(args.variant or [("on", [])])}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, sets in variants.items():
            with tempfile.TemporaryDirectory() as tmp:
                runs[name].append(run_job(args.scale, [*args.overrides, *sets], Path(tmp)))
            print(name, json.dumps(runs[name][-1]), file=sys.stderr)
    medians = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    off = medians["off"]["cpu_seconds"]
    result = {
        "scale": args.scale,
        "overrides": args.overrides,
        "variants": variants,
        "rounds": args.rounds,
        "runs": runs,
        "median": medians,
        "cpu_cost_over_off": {name: m["cpu_seconds"] / off - 1 for name, m in medians.items() if name != "off"},
    }
    write_result(result, args.out, began)


if __name__ == "__main__":
    main()
