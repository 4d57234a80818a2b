"""Table 4's loss settings over seeds: does the paper's ordering (intra-image < intra-video <
intra-video + cycle) show, and by more than the seeds' spread? Each (setting, seed) is pretrained
with `cycle pretrain` and evaluated with `cycle eval linear` and `cycle eval retrieval`; the result
has every run's metrics and, per setting, each metric's mean with a 95% Student-t interval.

Every step is the real command line (MLflow off). ``--workdir`` keeps the runs, so that an
interrupted comparison resumes each pretraining where it stopped.

Examples (after `cycle world --scale demo`):
    python -m benchmarks.table4_seeds --scale demo --epochs 400 --seeds 0 1 2 --workdir /tmp/table4 \\
        --out benchmarks/results/table4_seeds_demo_400ep_cuda.json  # a GPU
    python -m benchmarks.table4_seeds --scale test --epochs 1 --seeds 0 1 --set data.r2v2_format=jpeg  # runs
"""

from __future__ import annotations

import itertools
import math
import statistics
import time

from scipy import stats

from benchmarks.pretrained_vs_random import (
    HEADLINES,
    evaluate,
    options,
    pretrain,
    run_settings,
    runs_arguments,
    workdir,
)
from benchmarks.record import write_result

SETTINGS = ("intra_image", "intra_video", "intra_video+cycle")  # Table 4's rows, in the paper's order


def interval(values: list[float]) -> dict[str, float]:
    """Mean and the half-width of its 95% Student-t interval (0 for one value: no spread measured)."""
    n = len(values)
    mean = statistics.fmean(values)
    half = stats.t.ppf(0.975, n - 1) * statistics.stdev(values) / math.sqrt(n) if n > 1 else 0.0
    return {"mean": round(mean, 2), "ci95": round(half, 2), "n": n}


def main() -> None:
    began = time.time()
    parser = runs_arguments(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    args = parser.parse_args()

    runs: dict[str, dict[int, dict[str, float]]] = {setting: {} for setting in args.settings}
    with workdir(args.workdir) as scratch:
        for setting in args.settings:
            for seed in args.seeds:
                sets = run_settings(args, scratch, f"loss.components={setting}", f"pretrain.seed={seed}")
                common = options(args, sets)
                run = f"{setting.replace('+', '-')}-seed{seed}"
                checkpoint, summary = pretrain(common, scratch, run)
                metrics = {"loss": summary["final_metrics"].get("loss"), "train_seconds": summary["train_seconds"]}
                runs[setting][seed] = {**metrics, **evaluate(common, scratch, run, [str(checkpoint)])}

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
    write_result(results, args.out, began)


if __name__ == "__main__":
    main()
