"""The science scale's result (docs/science.md), read from the metrics its DAG wrote: Table 4's
ResNet-18 rows over the seeds, each step of the ordering paired by seed with its 95% interval and
the pre-registered verdict (shown: the interval above 0; reversed: below; else not resolved), and the
cycle's mechanism at the last look of each run. Written as JSON (with the command, the wall time,
the machine, torch's version and the commit) and as a figure: the three settings with their
intervals beside the paper's, the paired steps, the mechanism.

    python -m benchmarks.science_report --scale science --out benchmarks/results/science_run1_cpu.json \\
        --figure benchmarks/results/science_run1_cpu.png --started "$(date +%s)"   # `make science` does
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.record import ROOT, arguments, write_result
from cycle_pkg.jobs.attempts import NAME as ATTEMPTS_LOG
from cycle_pkg.jobs.attempts import attempt_spans, busy_seconds
from cycle_pkg.jobs.layout import run_dir
from cycle_pkg.jobs.plots import pyplot, save_png
from cycle_pkg.pretrain.monitor import MECHANISM
from cycle_pkg.reproduction.figures import run_summary
from cycle_pkg.reproduction.grid import Grid
from cycle_pkg.reproduction.paper import paper_tables
from cycle_pkg.reproduction.stats import t_interval
from cycle_pkg.reproduction.tables import missing, table_frame

TABLE, METRIC = "table4", "top1"
AT_THE_END = ("knn_top1", *MECHANISM)


def verdict(low: float | None, high: float | None) -> str:
    """The pre-registered reading of a paired step's 95% interval."""
    if low is None or high is None:
        return "not resolved (one seed)"
    return "shown" if low > 0 else "reversed" if high < 0 else "not resolved"


def summarise(values: list[float]) -> dict[str, Any]:
    interval = t_interval(values)
    return {"mean": interval.mean, "low": interval.low, "high": interval.high, "n": interval.n, "values": values}


def ours(line: Any, values: list[float]) -> dict[str, Any]:
    """A row's accuracy over the seeds as the table states it (table_frame's mean and interval)."""
    low, high = (line.get(f"{METRIC}_{end}") for end in ("low", "high"))
    return {
        "mean": line[f"{METRIC}_ours"],
        "low": None if missing(low) else low,
        "high": None if missing(high) else high,
        "n": len(values),
        "values": values,
    }


def rows_of(grid: Grid, results: str) -> list[dict[str, Any]]:
    """Table 4's rows that our runs fill: accuracy per seed, its interval, the step over the row above,
    and each run's mechanism and losses at its end."""
    table = paper_tables()[TABLE]
    frame = table_frame(table, grid, results)
    rows = []
    for index, line in frame.iterrows():
        models = grid.models_of(TABLE, index)
        if not models:
            continue
        summaries = [run_summary(results, model) for model in models]
        ends = {key: [s["monitor"][key][-1] for s in summaries if key in (s["monitor"] or {})] for key in AT_THE_END}
        step = line.get(f"{METRIC}_step")
        rows.append(
            {
                "method": line["method"],
                "runs": list(models),
                "paper": line[f"{METRIC}_paper"],
                "ours": ours(line, [line[f"{METRIC}_seed{grid.seed_of(m)}"] for m in models]),
                "mark": line[f"{METRIC}_mark"],
                "step_over_row_above": None
                if missing(step)
                else {
                    "mean": step,
                    "low": line[f"{METRIC}_step_low"],
                    "high": line[f"{METRIC}_step_high"],
                    "verdict": verdict(line[f"{METRIC}_step_low"], line[f"{METRIC}_step_high"]),
                },
                "at_the_end": {key: summarise(values) for key, values in ends.items() if values},
                "final_losses": [
                    {k: v for k, v in s["final_metrics"].items() if k.startswith("loss")} for s in summaries
                ],
                "train_seconds": [s["train_seconds"] for s in summaries],
            }
        )
    return rows


def pretraining_time(results: str, runs: list[str]) -> dict[str, Any]:
    """When the runs pretrained, from their attempts logs: a run stopped with its session and resumed
    by a later `make science` has several attempts, and the wall time of that last command alone
    leaves the earlier ones out. ``busy_seconds``: how long at least one run was training, across
    every invocation, the time between them not counted."""
    attempts = {run: attempt_spans(run_dir(results, run) / ATTEMPTS_LOG) for run in runs}
    spans = [span for run_spans in attempts.values() for span in run_spans]
    return {
        "attempts": len(spans),
        "resumed_runs": sorted(run for run, run_spans in attempts.items() if len(run_spans) > 1),
        "busy_seconds": round(busy_seconds(spans)),
        "from": min(start for start, _ in spans).isoformat(sep=" ", timespec="seconds"),
        "to": max(stop for _, stop in spans).isoformat(sep=" ", timespec="seconds"),
    }


# The mechanism's bars (cycle_pkg.pretrain.mechanism's metrics), named for a reader
MECHANISM_LABELS = {
    "cycle_nn_same_class": "cycle's\nforward step:\nsame class",
    "backbone_nn_same_class": "backbone's\nnearest in\nanother video:\nsame class",
    "backbone_nn_own_video": "backbone's\nnearest:\nown video",
    "cycle_back_video": "cycle\nback to\nown video",
}


def figure(rows: list[dict[str, Any]], title: str, path: Path) -> Path:
    """Ours (mean, 95% interval, each seed) beside the paper's; the paired steps; the mechanism."""
    plt = pyplot()
    fig, (bars, steps, mechanism) = plt.subplots(1, 3, figsize=(14, 4.2))
    x = range(len(rows))
    means = [r["ours"]["mean"] for r in rows]
    errors = [
        [m - (r["ours"]["low"] or m) for m, r in zip(means, rows, strict=True)],
        [(r["ours"]["high"] or m) - m for m, r in zip(means, rows, strict=True)],
    ]
    bars.bar([i - 0.2 for i in x], means, 0.4, yerr=errors, capsize=4, label="ours, mean [95% CI]")
    for i, r in enumerate(rows):
        bars.plot([i - 0.2] * len(r["ours"]["values"]), r["ours"]["values"], "k.", markersize=5)
    bars.bar(
        [i + 0.2 for i in x],
        [r["paper"] for r in rows],
        0.4,
        color="lightgrey",
        hatch="//",
        label="paper (R2V2-S, ImageNet)",
    )
    bars.set_xticks(list(x), [r["method"] for r in rows], fontsize=8)
    bars.set_ylabel("linear top-1 (%)")
    bars.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.12))
    stepped = [r for r in rows if r["step_over_row_above"]]
    for i, r in enumerate(stepped):
        s = r["step_over_row_above"]
        steps.errorbar(
            [i],
            [s["mean"]],
            yerr=[[s["mean"] - s["low"]], [s["high"] - s["mean"]]],
            fmt="o",
            capsize=4,
            color="C0",
            label="ours, paired by seed [95% CI]" if i == 0 else None,
        )
        paper_step = r["paper"] - rows[rows.index(r) - 1]["paper"]
        steps.plot([i], [paper_step], "s", color="grey", label="paper" if i == 0 else None)
    steps.axhline(0, color="black", linewidth=0.8)
    steps.set_xticks(range(len(stepped)), [f"{r['method']}\nover the row above" for r in stepped], fontsize=8)
    steps.set_ylabel("step in top-1 (points)")
    steps.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.25))  # below the 2-line ticks
    keys = [k for k in MECHANISM_LABELS if all(k in r["at_the_end"] for r in rows)]
    width = 0.8 / max(len(rows), 1)
    for j, r in enumerate(rows):
        values = [r["at_the_end"][k]["mean"] for k in keys]
        mechanism.bar([i + j * width for i in range(len(keys))], values, width, label=r["method"])
    if keys and "cycle_same_class_chance" in rows[0]["at_the_end"]:
        mechanism.axhline(
            rows[0]["at_the_end"]["cycle_same_class_chance"]["mean"],
            color="grey",
            linestyle=":",
            label="same class by chance",
        )
    mechanism.set_xticks(
        [i + 0.4 - width / 2 for i in range(len(keys))], [MECHANISM_LABELS[k] for k in keys], fontsize=7
    )
    mechanism.set_ylabel("% of frames\n(last look, mean over seeds)")
    mechanism.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.36))  # below the 4-line ticks
    fig.suptitle(title, fontsize=9)
    return save_png(fig, path)


def main() -> None:
    parser = arguments(__doc__, required=True)
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--scale", default="science")
    parser.add_argument("--figure", help="the figure's PNG (beside the result: its name, ending .png)")
    parser.add_argument("--started", type=float, help="when the run started (seconds since the epoch)")
    parser.add_argument("--command", default="make science", help="the command that produced the metrics")
    args = parser.parse_args()

    grid = Grid(args.params, args.scale)
    rows = rows_of(grid, grid.base.results)
    result = {
        "what": "Table 4's ResNet-18 rows on the synthetic world over seeds (docs/science.md)",
        "scale": args.scale,
        "seeds": grid.seeds,
        "rows": rows,
        "ordering": "shown"
        if len(rows) > 1
        and all(r["step_over_row_above"] and r["step_over_row_above"]["verdict"] == "shown" for r in rows[1:])
        else "not shown",
    }
    result["pretraining"] = pretraining_time(grid.base.results, [run for row in rows for run in row["runs"]])
    if result["pretraining"]["resumed_runs"]:
        result["wall_seconds_of"] = "the last invocation of the command only: runs were resumed (see pretraining)"
    write_result(result, args.out, args.started, command=args.command, unprinted=["rows"])
    if args.figure:
        seeds = ", ".join(map(str, grid.seeds))
        figure(
            rows,
            f"Table 4 on the synthetic world ({args.scale} scale, seeds {seeds}): ours beside the paper's",
            Path(args.figure),
        )
    print(json.dumps({r["method"]: r["ours"]["mean"] for r in rows}), result["ordering"])


if __name__ == "__main__":
    main()
