"""The monitor's pictures: a run's kNN curve, its embedding, a table's curves with seed intervals."""

import pytest
import torch
from PIL import Image

from cycle_pkg.pretrain.monitor_figures import embed_2d, embedding_figure, knn_curve_figure
from cycle_pkg.reproduction.figures import mean_curve, table_knn_figure
from cycle_pkg.reproduction.stats import t_interval

from ..helpers.figures import legend_overlaps


def curve(top1, steps=(0, 4, 8)):
    return {"steps": list(steps), "knn_top1": list(top1), "knn_top5": [v + 10 for v in top1], "query_images": 24}


def test_mean_curve_over_seeds_with_intervals():
    steps, mean, low, high = mean_curve([curve([10, 20, 30]), curve([12, 24, 36, 40], steps=(0, 4, 8, 12))], "knn_top1")
    assert steps == [0, 4, 8]  # the steps both seeds have
    assert mean == [11, 22, 33]
    assert low[1] == pytest.approx(t_interval([20, 24]).low) and high[1] == pytest.approx(t_interval([20, 24]).high)
    one = mean_curve([curve([10, 20, 30])], "knn_top1")
    assert one[2] == one[1] == one[3] == [10, 20, 30]  # one seed: no band


def test_embedding_separates_separable_classes():
    generator = torch.Generator().manual_seed(0)
    centres = torch.eye(3, 16) * 10
    features = (centres.repeat_interleave(10, dim=0) + torch.randn(30, 16, generator=generator)).numpy()
    points = embed_2d(features)
    assert points.shape == (30, 2)
    means = [points[i * 10 : (i + 1) * 10].mean(axis=0) for i in range(3)]
    spread = max(points[i * 10 : (i + 1) * 10].std(axis=0).max() for i in range(3))
    gaps = [((means[i] - means[j]) ** 2).sum() ** 0.5 for i in range(3) for j in range(i)]
    assert min(gaps) > 2 * spread  # each class is its own cluster


def test_figures_are_written_with_their_legends_off_the_axes(tmp_path, saved_figures):
    saved = {
        "features": torch.randn(20, 8),
        "labels": torch.arange(20) % 4,
        "bank": torch.arange(20) < 12,
        "classes": ["a", "b", "c", "d"],
    }
    paths = [
        knn_curve_figure(curve([10, 20, 30]), "r18", tmp_path / "curve.png"),
        embedding_figure(saved, "r18", tmp_path / "embedding.png"),
        table_knn_figure(
            {"r18": [curve([10, 20, 30]), curve([12, 18, 33])], "r18-lambda0.3": [curve([5, 6, 7])]},
            "Table 8",
            tmp_path / "table8-knn.png",
        ),
    ]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] > 300
    assert len(saved_figures) == 3
    for figure in saved_figures:  # below the figure, or beside the axes: never over its points
        assert legend_overlaps(figure) == []
