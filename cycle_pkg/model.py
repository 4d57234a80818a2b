"""The CycleContrast builder: query encoder, momentum key encoder, queues, shuffle-BN.

One item of a batch is one video: ``query`` is a view of frame I_i, ``positive`` a view of frame
I_j of the same video (of I_i itself for intra-image learning) and ``query_view`` (only for
Table 5's k_++) a second view of I_i. The losses themselves live in :mod:`cycle_pkg.losses`.
"""

from __future__ import annotations

import copy

import torch
import torch.distributed as dist
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from .errors import ConfigError
from .losses import cycle_loss, info_nce
from .settings.sections import LossConfig, ModelConfig


def build_backbone(name: str, **kwargs) -> tuple[nn.Module, int]:
    """A randomly initialised torchvision ResNet without its classifier, and its feature width."""
    if name not in ("resnet18", "resnet50"):
        raise ValueError(f"unknown backbone {name!r}: expected resnet18 or resnet50")
    net = getattr(torchvision.models, name)(weights=None, **kwargs)
    width = net.fc.in_features
    net.fc = nn.Identity()
    return net, width


def build_head(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    """The paper's single FC layer, or the authors' released MLP (Linear-ReLU-Linear)."""
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))
    raise ValueError(f"unknown head {kind!r}: expected linear or mlp")


def uses_intra(loss: LossConfig) -> bool:
    return loss.components != "cycle"


def uses_cycle(loss: LossConfig) -> bool:
    return loss.components in ("intra_video+cycle", "cycle")


def uses_same_frame_positive(loss: LossConfig) -> bool:
    """Intra-image learning: the positive is a second view of the query's own frame."""
    return loss.components == "intra_image"


class Encoder(nn.Module):
    """Backbone + the intra head and/or the cycle head (separate, as in the paper)."""

    def __init__(self, model: ModelConfig, loss: LossConfig):
        super().__init__()
        self.backbone, width = build_backbone(model.backbone)
        for module in self.backbone.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = model.bn_momentum
        self.intra_head = build_head(model.head, width, model.embed_dim) if uses_intra(loss) else None
        self.cycle_head = build_head(model.head, width, model.embed_dim) if uses_cycle(loss) else None

    def forward(self, images: Tensor) -> tuple[Tensor | None, Tensor | None]:
        features = self.backbone(images)
        intra = self.intra_head(features) if self.intra_head is not None else None
        cycle = self.cycle_head(features) if self.cycle_head is not None else None
        return intra, cycle


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@torch.no_grad()
def gather_from_all(tensor: Tensor) -> Tensor:
    """Concatenate a tensor over all processes (no gradient), in rank order."""
    if not _distributed():
        return tensor
    tensor = tensor.contiguous()  # the outputs too: a channels_last input would be read into them as contiguous
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor)
    return torch.cat(parts)


class CycleContrast(nn.Module):
    def __init__(self, model: ModelConfig, loss: LossConfig, seed: int = 0):
        super().__init__()
        self.model_cfg, self.loss_cfg = model, loss
        self.encoder_q = Encoder(model, loss)
        self.encoder_k = copy.deepcopy(self.encoder_q)
        for p in self.encoder_k.parameters():
            p.requires_grad = False
        # Draws the neighbour set U and the shuffle-BN permutation; saved in checkpoints so that a
        # resumed run repeats an uninterrupted one exactly.
        self.generator = torch.Generator().manual_seed(seed)
        # Where each queue's next keys go: Python ints, so that no step waits to read them from the
        # device; in the state dict as 0-d tensors, as when they were buffers.
        self.pointers: dict[str, int] = {}
        if uses_intra(loss):
            self.register_buffer("intra_queue", self._random_queue(model.intra_queue, model.embed_dim))
            self.pointers["intra_ptr"] = 0
        if uses_cycle(loss):
            self.register_buffer("cycle_queue", self._random_queue(model.cycle_queue, model.embed_dim))
            self.pointers["cycle_ptr"] = 0

    def get_extra_state(self) -> dict:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        for name, value in self.pointers.items():
            destination[prefix + name] = torch.tensor(value)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors) -> None:
        for name in self.pointers:
            if prefix + name in state_dict:
                self.pointers[name] = int(state_dict.pop(prefix + name))
            elif strict:
                missing.append(prefix + name)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing, unexpected, errors)

    def _random_queue(self, size: int, dim: int) -> Tensor:
        return F.normalize(torch.randn(size, dim, generator=self.generator), dim=1)

    @torch.no_grad()
    def momentum_update(self) -> None:
        """k <- m k + (1 - m) q in a few multi-tensor launches, not two kernels per parameter."""
        keys, queries = list(self.encoder_k.parameters()), list(self.encoder_q.parameters())
        torch._foreach_lerp_(keys, queries, 1 - self.model_cfg.momentum)

    @torch.no_grad()
    def _enqueue(self, name: str, keys: Tensor) -> None:
        queue, keys = getattr(self, name.replace("_ptr", "_queue")), gather_from_all(keys)
        start = self.pointers[name]
        queue[start : start + len(keys)] = keys.to(queue.dtype)  # sizes divide (settings.checks.check_training)
        self.pointers[name] = (start + len(keys)) % len(queue)

    def _permutation(self, n: int, device: torch.device) -> Tensor:
        """A permutation from the model's generator (the CPU's: the same draws on any device), copied
        to the device without making the host wait for it."""
        order = torch.randperm(n, generator=self.generator)
        return order.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else order

    @torch.no_grad()
    def encode_keys(self, images: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Key embeddings (unit norm) with shuffle-BN: the keys of the whole batch, over all processes,
        are shuffled and BatchNorm-ed in groups of ``model.key_bn_group`` samples (by default the share
        of one of the paper's 8 GPUs), so that a key's batch statistics are not its query's and BN
        cannot leak the positive. A single process splits its batch into such groups itself."""
        world, rank = (dist.get_world_size(), dist.get_rank()) if _distributed() else (1, 0)
        if world > 1 and torch.is_autocast_enabled(images.device.type):  # the encoder casts them anyway
            images = images.to(torch.get_autocast_dtype(images.device.type))
        everything = gather_from_all(images)
        order = self._permutation(len(everything), images.device)
        if world > 1:
            dist.broadcast(order, src=0)
        mine = order.view(world, -1)[rank]
        group = self.model_cfg.key_bn_group_size(len(everything))
        if len(mine) > group and len(mine) % group:
            raise ConfigError(
                f"model.key_bn_group ({group}) does not divide the {len(mine)} keys of each of {world} processes"
            )
        groups = [self.encoder_k(chunk) for chunk in everything[mine].split(group)]
        restore = torch.argsort(order).view(world, -1)[rank]
        outputs = []
        for head in range(2):
            parts = [g[head] for g in groups]
            if parts[0] is None:
                outputs.append(None)
                continue
            outputs.append(F.normalize(gather_from_all(torch.cat(parts))[restore].float(), dim=1))
        return outputs[0], outputs[1]

    def forward(self, query: Tensor, positive: Tensor, query_view: Tensor | None = None) -> dict[str, Tensor]:
        """One training step's losses; updates the key encoder and the queues as a side effect."""
        cfg = self.loss_cfg
        q_intra, q_cycle = self.encoder_q(query)
        self.momentum_update()
        k_intra, k_cycle = self.encode_keys(positive)
        # The queues are enqueued in place below, before backward: the losses only keep normalised
        # copies of them for the gradient.
        losses: dict[str, Tensor] = {}
        if q_intra is not None:
            losses["intra"] = info_nce(q_intra, k_intra, self.intra_queue, cfg.temperature)
        if q_cycle is not None:
            view = None
            if cfg.query_view_in_neighbors:
                if query_view is None:
                    raise ValueError("loss.query_view_in_neighbors needs a second view of the query")
                view = self.encode_keys(query_view)[1]
            order = self._permutation(len(self.cycle_queue), self.cycle_queue.device)
            neighbors = self.cycle_queue[order[: cfg.neighbors]]
            negatives = self.cycle_queue[order[cfg.neighbors :]]
            losses["cycle"] = cycle_loss(
                q_cycle,
                k_cycle,
                neighbors,
                negatives,
                cfg.temperature,
                cfg.nn_temperature,
                cfg.topk,
                view,
                cfg.kpp_embedding,
            )
        if cfg.components == "cycle":
            losses["total"] = losses["cycle"]
        elif cfg.components == "intra_video+cycle":
            losses["total"] = losses["intra"] + cfg.lambda_cycle * losses["cycle"]
        else:
            losses["total"] = losses["intra"]
        if k_intra is not None:
            self._enqueue("intra_ptr", k_intra)
        if k_cycle is not None:
            self._enqueue("cycle_ptr", k_cycle)
        return losses
