"""Pictures of a run's representation monitor: its kNN curve and a 2-D embedding of its labelled
set's features (the curves of a table's runs, over seeds: cycle_pkg.reproduction.figures).

The embedding is t-SNE from scikit-learn, on unit-normalised features (the kNN's cosine geometry):
scikit-learn is installed already, and its import is cheaper than UMAP's (umap-learn and numba).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..jobs.plots import legend_below, legend_beside, pyplot, save_png

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
