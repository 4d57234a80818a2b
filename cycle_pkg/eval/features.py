"""The frozen feature extractor shared by every evaluation, and its on-disk feature cache.

An evaluation may read the backbone, never change it: it is kept in eval mode (BatchNorm uses its
running statistics) without gradients, and :meth:`FrozenBackbone.check_unchanged` compares a digest
of every weight and buffer with the one taken at load time, as MoCo's ``sanity_check`` does.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision.io import ImageReadMode, decode_image, read_file
from tqdm import tqdm

from ..errors import DatasetError
from ..jobs.atomic import write_bytes_atomic

log = logging.getLogger(__name__)


def eval_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def weights_digest(module: nn.Module) -> str:
    """A digest of every parameter and buffer (names, shapes, dtypes and values)."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(module.state_dict().items()):
        if not isinstance(tensor, Tensor):
            continue
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` in eval mode without gradients (BatchNorm reads its running statistics and updates
    none), then every submodule back in the mode it was in: a model in training can be looked at
    without changing what it computes next."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        with torch.no_grad():
            yield module
    finally:
        for m, training in modes:
            m.training = training


def dilate_resnet(net: nn.Module) -> nn.Module:
    """A copy of a torchvision ResNet with output stride 8: layer3 and layer4 keep stride 1 and
    dilate their 3x3 convolutions by 2 and 4 (mmaction's strides (1, 2, 1, 1), dilations (1, 1, 2, 4)).
    Works for BasicBlock too, which torchvision's ``replace_stride_with_dilation`` refuses; the weights
    are shared in shape and value with the undilated network."""
    dilated = copy.deepcopy(net)
    for layer, dilation in ((dilated.layer3, 2), (dilated.layer4, 4)):
        for module in layer.modules():
            if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3):
                module.stride, module.dilation, module.padding = (1, 1), (dilation, dilation), (dilation, dilation)
            elif isinstance(module, nn.Conv2d) and module.stride != (1, 1):  # the 1x1 downsample shortcut
                module.stride = (1, 1)
    return dilated


class FrozenBackbone:
    """Pooled features (``__call__``) or stride-8 feature maps (``feature_map``) of a frozen ResNet."""

    def __init__(self, net: nn.Module, width: int, device: torch.device | None = None):
        self.width = width
        self.device = device or eval_device()
        self.net = net.to(self.device).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.digest = weights_digest(self.net)
        self._dilated: nn.Module | None = None

    @torch.no_grad()
    def __call__(self, images: Tensor) -> Tensor:
        self.net.eval()
        return self.net(images.to(self.device, non_blocking=True)).float()

    def dilated(self) -> nn.Module:
        """The backbone at output stride 8 (a copy with the same weights), frozen and in eval mode."""
        if self._dilated is None:
            self._dilated = dilate_resnet(self.net).eval()
        return self._dilated

    @torch.no_grad()
    def feature_map(self, images: Tensor) -> Tensor:
        """layer4's output at output stride 8, without pooling."""
        net = self.dilated()
        net.eval()
        x = net.maxpool(net.relu(net.bn1(net.conv1(images.to(self.device, non_blocking=True)))))
        return net.layer4(net.layer3(net.layer2(net.layer1(x)))).float()

    def check_unchanged(self) -> None:
        """Raise if an evaluation changed a weight or a BatchNorm statistic of the backbone."""
        for module in (self.net, self._dilated):
            if module is not None and weights_digest(module) != self.digest:
                raise RuntimeError(
                    "the frozen backbone's weights or BatchNorm statistics changed during the evaluation; "
                    "its results are not those of the checkpoint"
                )


def read_image(path: str | Path) -> Tensor:
    """Decode an image file (JPEG, PNG, ...) to uint8 (3, H, W) RGB; a clear error names a bad file."""
    try:
        return decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
    except (RuntimeError, OSError) as err:
        raise DatasetError(f"{path}: cannot decode this image ({str(err).splitlines()[0][:120]})") from err


class ImageFiles(Dataset):
    """(path, label) samples -> (transform(image), label)."""

    def __init__(self, samples: Sequence[tuple[Path, int]], transform: Callable[[Tensor], Tensor]):
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.samples[index]
        return self.transform(read_image(path)), label


@torch.no_grad()
def extract(
    backbone: FrozenBackbone, batches: Iterable[tuple[Tensor, Any]], total: int | None = None, desc: str = "features"
) -> Tensor:
    """Pooled features of every image the (image batch, anything) iterable yields, in order."""
    parts = [backbone(images).cpu() for images, _ in tqdm(batches, total=total, desc=desc, dynamic_ncols=True)]
    return torch.cat(parts) if parts else torch.empty(0)


def image_features(
    backbone: FrozenBackbone, dataset: Dataset, batch_size: int, workers: int, desc: str = "features"
) -> Tensor:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    return extract(backbone, loader, len(loader), desc)


def files_digest(paths: Iterable[str | Path], labels: Iterable[int] | None = None) -> str:
    """A dataset's identity: its files (name, size, modification time) in order, and their labels, so
    that a regenerated or edited dataset is not served stale features."""
    digest = hashlib.blake2b(digest_size=16)
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    if labels is not None:
        digest.update(json.dumps(list(labels)).encode())
    return digest.hexdigest()


class FeatureCache:
    """Features on disk under ``root/<name>-<key>.pt``; the key hashes the backbone's weights digest,
    the dataset's identity and the transform's description. ``root=None`` turns caching off."""

    def __init__(self, root: str | Path | None):
        self.root = Path(root) if root else None
        self.hits = self.misses = 0

    @staticmethod
    def key(weights: str, dataset: str, transform: str) -> str:
        return hashlib.blake2b(f"{weights}\n{dataset}\n{transform}".encode(), digest_size=12).hexdigest()

    def get(
        self, name: str, weights: str, dataset: Callable[[], str], transform: str, compute: Callable[[], Tensor]
    ) -> Tensor:
        """The cached features, or ``compute()``'s, stored for next time. ``dataset`` returns the
        data's identity (e.g. :func:`files_digest`); it is only called when caching is on."""
        if self.root is None:
            self.misses += 1
            return compute()
        dataset = dataset()
        path = self.root / f"{name}-{self.key(weights, dataset, transform)}.pt"
        if path.is_file():
            try:
                features = torch.load(path, map_location="cpu", weights_only=True)["features"]
                self.hits += 1
                log.info("features of %s from the cache (%s)", name, path)
                return features
            except Exception as err:  # a damaged file, whatever the unpickler says about it, is recomputed
                log.warning("ignoring unreadable cache file %s (%s)", path, err)
        features = compute()
        buffer = io.BytesIO()
        meta = {"weights": weights, "dataset": dataset, "transform": transform}
        torch.save({"features": features.contiguous(), "meta": meta}, buffer)
        write_bytes_atomic(path, buffer.getvalue())
        self.misses += 1
        return features
