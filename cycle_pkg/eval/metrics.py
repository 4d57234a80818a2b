"""Classification and retrieval metrics, in percent as the paper reports them. The tracking metrics
(IoU, centre error, success and precision curves) are the got10k toolkit's, used by
:mod:`cycle_pkg.eval.tracking.otb`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor


def topk_accuracy(scores: Tensor, labels: Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Percentage of rows whose label is among the k highest scores; k beyond the number of classes
    counts every class."""
    if scores.ndim != 2 or len(scores) != len(labels):
        raise ValueError(f"expected scores (N, C) and N labels, got {tuple(scores.shape)} and {len(labels)}")
    widest = min(max(ks), scores.shape[1])
    hits = scores.topk(widest, dim=1).indices == labels[:, None]
    return {k: 100.0 * hits[:, : min(k, widest)].any(dim=1).float().mean().item() for k in ks}


def retrieval_topk(
    queries: Tensor, query_labels: Tensor, gallery: Tensor, gallery_labels: Tensor, ks: Sequence[int]
) -> dict[int, float]:
    """Nearest-neighbour retrieval by cosine similarity: a query is correct at k when one of its k
    nearest gallery items has its class. k beyond the gallery's size counts the whole gallery."""
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError(f"query and gallery features differ in width: {queries.shape[1]} vs {gallery.shape[1]}")
    similarity = F.normalize(queries.float(), dim=1) @ F.normalize(gallery.float(), dim=1).T
    widest = min(max(ks), len(gallery))
    nearest = similarity.topk(widest, dim=1).indices
    hits = gallery_labels[nearest] == query_labels[:, None]
    return {k: 100.0 * hits[:, : min(k, widest)].any(dim=1).float().mean().item() for k in ks}


def retrieval_chance(query_labels: Tensor, gallery_labels: Tensor, ks: Sequence[int]) -> dict[int, float]:
    """What :func:`retrieval_topk` scores with a random ranking: the mean over the queries of the
    chance that k gallery items drawn without replacement hold one of the query's class,
    1 - C(N - n_c, k) / C(N, k) with n_c the gallery's items of that class."""
    size = len(gallery_labels)
    in_gallery = dict(zip(*(t.tolist() for t in gallery_labels.unique(return_counts=True)), strict=True))
    queried = dict(zip(*(t.tolist() for t in query_labels.unique(return_counts=True)), strict=True))
    result = {}
    for k in ks:
        drawn = min(k, size)
        missed = math.fsum(
            queries * math.comb(size - in_gallery.get(label, 0), drawn) / math.comb(size, drawn)
            for label, queries in queried.items()
        )
        result[k] = 100.0 * (1 - missed / len(query_labels))
    return result
