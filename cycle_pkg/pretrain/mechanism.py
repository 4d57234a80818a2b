"""The cycle's mechanism, measured while training: does the forward step find other videos of the
query's class, and does the backward step come back to the query?

Replayed on a fixed set of frames (the world's validation videos with their latent classes, or the
monitor's labelled images, each its own video) embedded by the query encoder, as the training step
does it on its queue: the other videos are split into the neighbour set U (even-indexed videos) and
the negatives (odd-indexed); for every frame q, its soft nearest neighbour q_hat in U (Eq. 3-4) is
matched back against the frames of q's own video (q included) and the negatives. Training never
reads the classes: they only score the forward step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

NO_CLASS = -1  # a frame whose class is unknown (real videos)


@dataclass
class FrameSet:
    """The frames the mechanism is replayed on."""

    images: Tensor  # uint8 (N, 3, S, S), resized and centre-cropped
    videos: Tensor  # (N,) video index 0..V-1
    classes: Tensor  # (N,) class index, or NO_CLASS


def _percent(hits: Tensor) -> float:
    return 100.0 * hits.float().mean().item()


@torch.no_grad()
def cycle_steps(embeddings: Tensor, videos: Tensor, classes: Tensor, temperature: float) -> dict[str, float]:
    """The cycle replayed for every frame as a query (see the module's docstring), in %:

    - ``back_video`` / ``back_self``: q_hat's nearest candidate is a frame of q's video / q itself;
    - ``nn_same_class``: q's nearest neighbour in U shows q's class, against ``same_class_chance``,
      the share of U that does; ``nn_class_weight``: the soft nearest neighbour's weight on them.
    The class metrics are left out where no class is known.
    """
    e = F.normalize(embeddings.float(), dim=1)
    similarity = e @ e.T
    own = videos[:, None] == videos[None, :]
    in_u = (videos % 2 == 0)[None, :] & ~own
    negative = (videos % 2 == 1)[None, :] & ~own
    u_similarity = similarity.masked_fill(~in_u, float("-inf"))
    weights = torch.softmax(u_similarity / temperature, dim=1)
    q_hat = F.normalize(weights @ e, dim=1)
    back = (q_hat @ e.T).masked_fill(~(own | negative), float("-inf")).argmax(dim=1)
    rows = torch.arange(len(e))
    metrics = {"back_video": _percent(own[rows, back]), "back_self": _percent(back == rows)}
    known = classes != NO_CLASS
    if known.any():
        same = (classes[:, None] == classes[None, :]) & known[:, None]
        nearest = u_similarity.argmax(dim=1)
        metrics["nn_same_class"] = _percent(same[rows, nearest][known])
        metrics["nn_class_weight"] = 100.0 * (weights * same).sum(dim=1)[known].mean().item()
        metrics["same_class_chance"] = 100.0 * ((same & in_u).sum(1) / in_u.sum(1))[known].mean().item()
    return metrics


@torch.no_grad()
def nearest_frames(features: Tensor, videos: Tensor, classes: Tensor) -> dict[str, float]:
    """In a feature space (the backbone's), in %: ``nn_same_class``, the nearest frame of another
    video shows the frame's class; ``nn_own_video``, the nearest other frame is of its own video
    (what instance and intra-video learning sharpen). Each where it can be measured."""
    f = F.normalize(features.float(), dim=1)
    similarity = (f @ f.T).fill_diagonal_(float("-inf"))
    own = videos[:, None] == videos[None, :]
    rows = torch.arange(len(f))
    metrics = {}
    if own.sum() > len(f):  # some video has several frames
        metrics["nn_own_video"] = _percent(own[rows, similarity.argmax(dim=1)])
    known = classes != NO_CLASS
    if known.any():
        nearest = similarity.masked_fill(own, float("-inf")).argmax(dim=1)
        metrics["nn_same_class"] = _percent((classes[nearest] == classes)[known])
    return metrics
