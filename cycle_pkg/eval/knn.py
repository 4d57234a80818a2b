"""The weighted k-nearest-neighbour classifier of the instance-discrimination literature (Wu et al.,
2018; the kNN monitor of MoCo-style training): the k labelled features most similar (cosine) to a
query vote for their classes with weight exp(similarity / T).

scikit-learn's ``KNeighborsClassifier`` weights by inverse distance, not by this exponential, and
copies the features to the CPU: the few lines below are that protocol, on the features' device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .metrics import topk_accuracy


def knn_scores(query: Tensor, bank: Tensor, bank_labels: Tensor, classes: int, k: int, temperature: float) -> Tensor:
    """(N, classes) votes: each class's sum of exp(cos / T) over the query's k nearest bank
    features (k is capped at the bank's size)."""
    if query.shape[1] != bank.shape[1] or len(bank) != len(bank_labels):
        raise ValueError(
            f"expected queries (N, D), a bank (M, D) and M labels, got {tuple(query.shape)}, "
            f"{tuple(bank.shape)} and {len(bank_labels)}"
        )
    similarity = F.normalize(query.float(), dim=1) @ F.normalize(bank.float(), dim=1).T
    nearest, index = similarity.topk(min(k, len(bank)), dim=1)
    votes = torch.zeros(len(query), classes, device=query.device)
    return votes.scatter_add_(1, bank_labels.to(query.device)[index], (nearest / temperature).exp())


def knn_accuracy(
    query: Tensor,
    query_labels: Tensor,
    bank: Tensor,
    bank_labels: Tensor,
    classes: int,
    k: int,
    temperature: float,
    ks: Sequence[int] = (1, 5),
) -> dict[int, float]:
    """Top-k accuracy (%) of the weighted kNN classifier on labelled queries."""
    scores = knn_scores(query, bank, bank_labels, classes, k, temperature)
    return topk_accuracy(scores.cpu(), query_labels.cpu(), ks)
