"""The paper's objectives as pure functions of tensors (Wu & Wang, Eq. 1-5).

Similarity is cosine throughout, so inputs need not be normalised. Shapes: ``query`` and
``positive`` (n, c), ``neighbors`` (m, c), ``negatives`` (r, c). Everything is computed in float32,
with autocast off, whatever the dtype of the encoders: logits divided by a temperature of 0.07
lose too much in bfloat16.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

F_ = TypeVar("F_", bound=Callable[..., Tensor])
KppEmbedding = Literal["view", "query"]


def _in_float32(function: F_) -> F_:
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with torch.autocast(args[0].device.type, enabled=False):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _unit(x: Tensor) -> Tensor:
    return F.normalize(x.float(), dim=-1)


@_in_float32
def info_nce(query: Tensor, positive: Tensor, negatives: Tensor, temperature: float) -> Tensor:
    """Eq. 1 / Eq. 2: mean over the batch of -log softmax, the positive at index 0."""
    q, k, neg = _unit(query), _unit(positive), _unit(negatives)
    positive_logit = (q * k).sum(dim=1, keepdim=True)
    logits = torch.cat([positive_logit, q @ neg.T], dim=1) / temperature
    labels = torch.zeros(len(q), dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, labels)


@_in_float32
def soft_nearest_neighbor(
    query: Tensor,
    neighbors: Tensor,
    temperature: float,
    topk: int | None = None,
    query_view: Tensor | None = None,
    kpp_embedding: KppEmbedding = "view",
) -> Tensor:
    """Eq. 3-4: q_hat = sum_u softmax_u(sim(q, u) / T) u, over the unit-norm neighbours u.

    ``topk`` (Table 7) keeps, for each query, only its K most similar neighbours. ``query_view``
    (n, c) (Table 5's k_++) adds to each query's neighbour set an element whose similarity is that of
    the query with this view of its own frame; the element itself is the view (``kpp_embedding``
    "view", the paper's "the query's own view") or the query embedding (``"query"``, the authors'
    code: ``weight_self * q_cycle``, with its gradient). Returns (n, c), not normalised.
    """
    q, u = _unit(query), _unit(neighbors)
    similarity = q @ u.T  # (n, m): the same U for every query ...
    kpp = None
    if query_view is not None:  # ... plus, with k_++, one element of each query's own as column m
        view = _unit(query_view)
        similarity = torch.cat([similarity, (q * view).sum(dim=1, keepdim=True)], dim=1)
        kpp = view if kpp_embedding == "view" else q
    if topk is None:
        weights = torch.softmax(similarity / temperature, dim=1)
        q_hat = weights[:, : len(u)] @ u
        return q_hat if kpp is None else q_hat + weights[:, len(u) :] * kpp
    similarity, index = similarity.topk(topk, dim=1)
    weights = torch.softmax(similarity / temperature, dim=1)
    chosen = u[index.clamp(max=len(u) - 1)]  # (n, K, c)
    if kpp is not None:
        chosen = torch.where((index == len(u)).unsqueeze(-1), kpp.unsqueeze(1), chosen)
    return torch.einsum("nk,nkc->nc", weights, chosen)


def forward_temperature(temperature: float, nn_temperature: float | None) -> float:
    """The cycle's forward step's temperature: ``loss.nn_temperature``, or T where it is not set (the paper's)."""
    return temperature if nn_temperature is None else nn_temperature


@_in_float32
def cycle_loss(
    query: Tensor,
    positive: Tensor,
    neighbors: Tensor,
    negatives: Tensor,
    temperature: float,
    nn_temperature: float | None = None,
    topk: int | None = None,
    query_view: Tensor | None = None,
    kpp_embedding: KppEmbedding = "view",
) -> Tensor:
    """Eq. 5: the soft nearest neighbour q_hat of the query in U (forward step) must pick the
    positive, another frame of the query's video, out of the negatives (backward step)."""
    q_hat = soft_nearest_neighbor(
        query, neighbors, forward_temperature(temperature, nn_temperature), topk, query_view, kpp_embedding
    )
    return info_nce(q_hat, positive, negatives, temperature)
