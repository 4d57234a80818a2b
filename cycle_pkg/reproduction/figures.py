"""The figures of the paper's tables: the ablation curves (ours and the paper's accuracy against the
swept setting, Tables 5-8) and the representation monitor's curves of each table's runs (the kNN top-1
and the cycle's mechanism against the training step, the mean over seeds with its 95% interval as a
band when there are several). A single run's pictures are drawn by cycle_pkg.pretrain.monitor_figures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import DatasetError
from ..jobs.layout import summary_path
from ..jobs.plots import legend_below, pyplot, save_png
from ..pretrain.monitor_figures import Curve
from ..settings.config import Config
from .grid import Grid
from .paper import Table
from .stats import t_interval
from .tables import missing, table_frame


def ablation_figure(table: Table, grid: Grid, config: Config, path: str | Path) -> Path:
    """Ours and the paper's accuracy against the swept setting (Tables 5-8), in the paper's units;
    with several seeds ours is the mean with its 95% interval as error bars. Marked numbers are
    drawn apart, off the curve."""
    plt = pyplot()
    frame = table_frame(table, grid, config.results)
    seeded = len(grid.seeds) > 1
    key = table.curve["x"]
    points = [
        (row.run.get(key, paper_default(key)), i)
        for i, row in enumerate(table.rows)
        if row.run is not None and row.on_curve
    ]
    metrics = list(table.metrics)
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for axis, metric in zip(axes[0], metrics, strict=True):
        shown = sorted((x, i) for x, i in points if table.rows[i].paper.get(metric) is not None)
        paper = [(x, frame.loc[i, f"{metric}_paper"]) for x, i in shown]
        ours = [(x, i) for x, i in shown if not missing(frame.loc[i, f"{metric}_ours"])]
        marked = [(x, frame.loc[i, f"{metric}_ours"]) for x, i in ours if frame.loc[i, f"{metric}_mark"]]
        ours = [(x, i) for x, i in ours if not frame.loc[i, f"{metric}_mark"]]
        if ours:
            xs = [x for x, _ in ours]
            ys = [frame.loc[i, f"{metric}_ours"] for _, i in ours]
            label = f"ours ({config.scale})"
            if seeded:
                low = [y - frame.loc[i, f"{metric}_low"] for y, (_, i) in zip(ys, ours, strict=True)]
                high = [frame.loc[i, f"{metric}_high"] - y for y, (_, i) in zip(ys, ours, strict=True)]
                yerr = [[0.0 if missing(v) else v for v in low], [0.0 if missing(v) else v for v in high]]
                axis.errorbar(xs, ys, yerr=yerr, fmt="o-", capsize=3, label=f"{label}, mean, 95% CI")
            else:
                axis.plot(xs, ys, "o-", label=label)
        if paper:
            axis.plot(*zip(*paper, strict=True), "s--", label="paper")
        if marked:  # off the curve: these numbers do not measure the representation
            axis.plot(*zip(*marked, strict=True), "rx", label="ours, marked in the table")
        axis.set_xlabel(table.curve["label"] + " (paper's units)")
        axis.set_ylabel(table.metrics[metric])
        if table.curve.get("log_x"):
            axis.set_xscale("log", base=2)
        axis.grid(alpha=0.3)
    legend_below(figure, axes[0])
    seeds = f"; {len(grid.seeds)} seeds" if seeded else ""
    figure.suptitle(f"Table {table.number}: {table.caption}{seeds}", fontsize=9)
    return save_png(figure, path)


def knn_figure(table: Table, grid: Grid, config: Config, path: str | Path) -> Path:
    """The monitor's curves of the table's pretraining runs (:func:`table_knn_figure`: a panel per metric, kNN
    top-1 and the cycle's mechanism), a curve per row (the mean over its seeds, a 95% band when there are several)."""
    runs: dict[str, list[dict[str, Any]]] = {}
    seen = False
    for index, row in enumerate(table.rows):
        models = [m for m in grid.models_of(table.name, index) if m in grid.runs]
        if not models:
            continue
        seen = True
        curves = [c for c in (run_summary(config.results, m).get("monitor") for m in models) if c]
        label = " ".join(part for part in (row.section, row.method, row.backbone) if part) + f" ({models[0]})"
        if curves and not any(existing == curves for existing in runs.values()):  # a run two rows share: once
            runs[label] = curves
    title = f"Table {table.number}: the representation monitor ({config.scale})"
    if not runs:  # the workflow still expects the figure: it says why it has no curve
        why = "pretrain.monitor_every is 0 for its runs" if seen else "no pretraining run of ours fills its rows"
        return no_curves_figure(f"{title}: no monitor curve ({why})", path)
    return table_knn_figure(runs, title, path)


def run_summary(results: str | Path, run: str) -> dict[str, Any]:
    path = summary_path(results, run)
    if not path.is_file():
        raise DatasetError(f"{path}: pretraining summary missing; run `cycle pretrain --run {run}` (snakemake does)")
    return json.loads(path.read_text())


def paper_default(key: str) -> Any:
    """The paper's value of a swept setting, for the rows that keep it (e.g. lambda = 0.1)."""
    section, name = key.split(".")
    return getattr(getattr(Config(), section), name)


def mean_curve(curves: Sequence[Curve], key: str) -> tuple[list[int], list[float], list[float], list[float]]:
    """(steps, mean, low, high) over seeds at the steps every seed's curve has; low = high = mean for one seed."""
    common = sorted(set.intersection(*(set(c["steps"]) for c in curves)))
    means, lows, highs = [], [], []
    for step in common:
        interval = t_interval([c[key][c["steps"].index(step)] for c in curves])
        means.append(interval.mean)
        lows.append(interval.mean if interval.low is None else interval.low)
        highs.append(interval.mean if interval.high is None else interval.high)
    return common, means, lows, highs


# The panels of a table's figure, where its runs measured them: the kNN curve and the cycle's mechanism
PANELS = {
    "knn_top1": "kNN top-1 (%)",
    "cycle_nn_same_class": "nearest in U of the query's class (%)",
    "cycle_back_video": "cycle back to the query's video (%)",
    "backbone_nn_same_class": "backbone: nearest other video's frame\nof the same class (%)",
    "backbone_nn_own_video": "backbone: nearest frame in its own video (%)",
}
RESOLVED_POINTS = 1.0  # a kNN curve over fewer queries than one per this many points is flagged as coarse


def resolution_note(queries: int) -> str:
    """What one query weighs in a kNN accuracy, said where it is too coarse to tell runs apart."""
    points = 100 / queries
    return f"{queries} queries" + (f": one is {points:.1f} points, coarse" if points > RESOLVED_POINTS else "")


def table_knn_figure(runs: Mapping[str, Sequence[Curve]], title: str, path: str | Path) -> Path:
    """A table's grid points (label -> one curve per seed), a panel per metric of :data:`PANELS` their
    monitor recorded: the kNN top-1 and the cycle's mechanism (the mean over seeds, with a band)."""
    plt = pyplot()
    first = next(iter(runs.values()))[0]
    keys = [k for k in PANELS if all(k in c and None not in c[k] for curves in runs.values() for c in curves)]
    columns = min(3, len(keys))
    rows = -(-len(keys) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.4 * rows + 0.6), squeeze=False)
    for axis in axes.flat[len(keys) :]:
        axis.axis("off")
    for axis, key in zip(axes.flat, keys, strict=False):
        for label, curves in runs.items():
            steps, mean, low, high = mean_curve(curves, key)
            n = len(curves)
            (line,) = axis.plot(steps, mean, "o-", markersize=3, label=label if n == 1 else f"{label} (mean of {n})")
            if n > 1:
                axis.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        if key == "cycle_nn_same_class" and "cycle_same_class_chance" in first:
            axis.axhline(first["cycle_same_class_chance"][-1], color="grey", linestyle=":", label="by chance")
        axis.set_xlabel("training step")
        axis.set_ylabel(PANELS[key])
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"kNN top-1 (%), {resolution_note(first['query_images'])}")
    legend_below(figure, axes.flat)
    banded = "" if all(len(c) == 1 for c in runs.values()) else "; bands: 95% t-interval"
    figure.suptitle(title + banded, fontsize=9)
    return save_png(figure, path, rect=(0, 0, 1, 0.96))


def no_curves_figure(text: str, path: str | Path) -> Path:
    """A figure that says why a table has no kNN curve to show (the workflow expects one per table)."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6, 1.2))
    axis.axis("off")
    axis.text(0.5, 0.5, text, ha="center", va="center", fontsize=9, wrap=True)
    return save_png(figure, path)
