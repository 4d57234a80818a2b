"""Pictures of the representation monitor: a run's kNN curve, a 2-D embedding of its labelled set's
features, and the kNN and mechanism curves of a table's runs (the mean over seeds, with its 95%
interval as a band when there are several).

The embedding is t-SNE from scikit-learn, on unit-normalised features (the kNN's cosine geometry):
scikit-learn is installed already, and its import is cheaper than UMAP's (umap-learn and numba).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..jobs.plots import legend_below, legend_beside, pyplot, save_png
from ..reproduction.stats import t_interval

Curve = Mapping[str, Any]  # a monitor summary: steps, knn_top1, knn_top5, ...


def knn_curve_figure(curve: Curve, title: str, path: str | Path) -> Path:
    """One run's kNN top-1 and top-5 against the training step."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(5, 3.4))
    for key, style in (("knn_top1", "o-"), ("knn_top5", "s--")):
        axis.plot(curve["steps"], curve[key], style, label=key.replace("knn_", "kNN "))
    _label(axis, curve)
    legend_below(figure, [axis])
    axis.set_title(title, fontsize=9)
    return save_png(figure, path)


def _label(axis: Any, curve: Curve) -> None:
    axis.set_xlabel("training step")
    axis.set_ylabel(f"kNN accuracy (%), {curve['query_images']} queries")
    axis.grid(alpha=0.3)


def embed_2d(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """t-SNE of unit-normalised features to 2-D (perplexity 30, or less for small sets)."""
    from sklearn.manifold import TSNE

    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    perplexity = min(30.0, (len(unit) - 1) / 3)
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(unit)


def embedding_figure(saved: Mapping[str, Any], title: str, path: str | Path, seed: int = 0) -> Path:
    """The labelled set's features in 2-D, coloured by class; bank images as dots, queries as crosses."""
    plt = pyplot()
    points = embed_2d(saved["features"].numpy(), seed)
    labels, bank, classes = saved["labels"].numpy(), saved["bank"].numpy(), saved["classes"]
    colours = plt.get_cmap("tab20" if len(classes) <= 20 else "hsv", len(classes))
    figure, axis = plt.subplots(figsize=(5.6, 4.6))
    for kind, mask, marker in (("bank", bank, "o"), ("query", ~bank, "x")):
        axis.scatter(points[mask, 0], points[mask, 1], c=colours(labels[mask]), marker=marker, s=14, label=kind)
    if len(classes) <= 20:
        for label, name in enumerate(classes):
            axis.scatter([], [], color=colours(label), marker="s", s=14, label=name)
    legend_beside(axis, fontsize=6)
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_title(title, fontsize=9)
    return save_png(figure, path)


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
