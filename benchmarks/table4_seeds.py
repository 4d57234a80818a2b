"""Table 4's loss settings over seeds: does the paper's ordering (intra-image < intra-video <
intra-video + cycle) show, and by more than the seeds' spread? Each (setting, seed) is pretrained
with `cycle pretrain` and evaluated with `cycle eval linear` and `cycle eval retrieval`; the result
has every run's metrics and, per setting, each metric's mean with a 95% Student-t interval.

Every step is the real command line (MLflow off). ``--workdir`` keeps the runs, so that an
interrupted comparison resumes each pretraining where it stopped.

Examples (after `cycle world --scale demo`):
    python benchmarks/table4_seeds.py --scale demo --epochs 400 --seeds 0 1 2 --workdir /tmp/table4  # a GPU
    python benchmarks/table4_seeds.py --scale test --epochs 1 --seeds 0 1 --set data.r2v2_format=jpeg  # runs
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import statistics
import tempfile
from pathlib import Path

from pretrained_vs_random import HEADLINES, ROOT, TASKS, cycle
from scipy import stats

from cycle_pkg.jobs import layout

SETTINGS = ("intra_image", "intra_video", "intra_video+cycle")  # Table 4's rows, in the paper's order


def interval(values: list[float]) -> dict[str, float]:
    """Mean and the half-width of its 95% Student-t interval (0 for one value: no spread measured)."""
    n = len(values)
    mean = statistics.fmean(values)
    half = stats.t.ppf(0.975, n - 1) * statistics.stdev(values) / math.sqrt(n) if n > 1 else 0.0
    return {"mean": round(mean, 2), "ci95": round(half, 2), "n": n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--epochs", type=int, required=True, help="pretraining epochs of every run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--output", help="write the results here as JSON")
    parser.add_argument("--workdir", help="keep the runs and evaluations here (default: a scratch folder)")
    args = parser.parse_args()

    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict[int, dict[str, float]]] = {setting: {} for setting in args.settings}
    with contextlib.nullcontext(args.workdir) if args.workdir else tempfile.TemporaryDirectory() as scratch:
        for setting in args.settings:
            for seed in args.seeds:
                sets = [
                    *args.overrides,
                    f"results={scratch}",
                    f"eval.cache_dir={scratch}/features",
                    "mlflow.enabled=false",
                    f"pretrain.epochs={args.epochs}",
                    f"loss.components={setting}",
                    f"pretrain.seed={seed}",
                ]
                common = ["--params", args.params, "--scale", args.scale, *(a for s in sets for a in ("--set", s))]
                run = f"{setting.replace('+', '-')}-seed{seed}"
                cycle("pretrain", *common, "--run", run)
                checkpoint = layout.backbone_path(scratch, run)
                summary = json.loads(layout.summary_path(scratch, run).read_text())
                metrics = {"loss": summary["final_metrics"].get("loss"), "train_seconds": summary["train_seconds"]}
                for task in TASKS:
                    output = Path(scratch) / f"{run}-{task}.json"
                    cycle("eval", task, *common, "--checkpoint", str(checkpoint), "--output", str(output))
                    found = json.loads(output.read_text())["metrics"]
                    metrics.update({k: v for k, v in found.items() if k in HEADLINES})
                runs[setting][seed] = metrics

    measured = [k for k in HEADLINES if k in runs[args.settings[0]][args.seeds[0]]]
    summary = {
        setting: {k: interval([runs[setting][seed][k] for seed in args.seeds]) for k in measured}
        for setting in args.settings
    }
    ordered = {
        k: all(summary[a][k]["mean"] < summary[b][k]["mean"] for a, b in itertools.pairwise(args.settings))
        for k in measured
    }
    results = {
        "scale": args.scale,
        "epochs": args.epochs,
        "seeds": args.seeds,
        "overrides": args.overrides,
        "runs": runs,
        "mean_ci95": summary,
        "in_the_papers_order": ordered,  # means increase down Table 4's rows (intervals may still overlap)
    }
    print(json.dumps(results, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
