"""Small inputs for the evaluation tests, drawn with the synthetic world's renderer: tracking
sequences (frames on disk, boxes known exactly), decoded videos, and checkpoints in each format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cycle_pkg.data.synthetic import latent_classes, new_instance, render
from cycle_pkg.model import CycleContrast, build_backbone
from cycle_pkg.pretrain.state import save_checkpoint
from cycle_pkg.settings.config import load_config
from cycle_pkg.settings.sections import WorldConfig

from . import PARAMS


def latent(shape: str, pattern: str):
    """The world's latent class with this shape and pattern (all 48 of them are drawable)."""
    return next(c for c in latent_classes(48, seed=0) if (c.shape, c.pattern) == (shape, pattern))


def flat_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return np.clip(0.5 + rng.normal(0, 0.04, size=(height, width, 3)), 0, 1)


def draw_sequence(
    root: Path, name: str, seed: int, frames: int = 8, height: int = 96, width: int = 128, velocity: float = 2.0
) -> tuple[str, list[Path], np.ndarray]:
    """A striped disk moving over a plain background, as OTB-style JPEG frames; boxes (1-based
    x, y, w, h) are the disk's exact extent."""
    rng = np.random.default_rng(seed)
    instance = new_instance(latent("disk", "stripes"), rng, WorldConfig().pattern_scale)
    instance.aspect = 1.0
    background = flat_background(rng, height, width)
    radius = 14.0
    center = np.array([width / 2, height / 2])
    step = rng.normal(0, 1, size=2)
    step *= velocity / max(np.linalg.norm(step), 1e-9)
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    files, boxes = [], []
    for t in range(frames):
        position = np.clip(center + step * t, radius + 1, [width - radius - 1, height - radius - 1])
        image = render(instance, background, tuple(position), radius, 0.0, np.ones(3))
        path = folder / f"{t + 1:04d}.jpg"
        Image.fromarray(image).save(path, quality=95)
        files.append(path)
        boxes.append([position[0] - radius + 1, position[1] - radius + 1, 2 * radius, 2 * radius])
    return name, files, np.array(boxes)


SHAPES = ("disk", "square", "triangle", "cross", "star", "ring")


def draw_video(
    label: int, seed: int, frames: int = 20, height: int = 48, width: int = 64
) -> tuple[torch.Tensor, float]:
    """A decoded 25 fps video, uint8 (T, H, W, 3): the class decides the object's shape."""
    rng = np.random.default_rng(seed)
    instance = new_instance(latent(SHAPES[label % len(SHAPES)], "solid"), rng, WorldConfig().pattern_scale)
    background = flat_background(rng, height, width)
    video = []
    for t in range(frames):
        position = (width / 2 + 8 * np.sin(t / 4), height / 2)
        video.append(render(instance, background, position, 14.0, 0.1 * t, np.ones(3)))
    return torch.from_numpy(np.stack(video)), 25.0


def write_our_checkpoint(run_dir: Path, backbone: str = "resnet18", mlflow_run_id: str | None = "abc123") -> Path:
    """A pretraining checkpoint as pretrain/loop.py writes it (with summary.json), from a fresh model."""
    config = load_config(PARAMS, "test", [f"model.backbone={backbone}"])
    torch.manual_seed(0)
    model = CycleContrast(config.model, config.loss, seed=0)
    path = run_dir / "checkpoint.pt"
    save_checkpoint(path, {"step": 1, "run": run_dir.name, "config": config.to_dict(), "model": model.state_dict()})
    (run_dir / "summary.json").write_text(json.dumps({"run": run_dir.name, "mlflow_run_id": mlflow_run_id}))
    return path


def moco_state(backbone: str = "resnet18", seed: int = 1) -> dict:
    """A MoCo-v2 release's layout: a DDP-wrapped query encoder with an MLP projection as ``fc``."""
    torch.manual_seed(seed)
    net, width = build_backbone(backbone)
    weights = {f"module.encoder_q.{k}": v for k, v in net.state_dict().items()}
    weights.update(
        {
            "module.encoder_q.fc.0.weight": torch.randn(width, width),
            "module.encoder_q.fc.0.bias": torch.zeros(width),
            "module.encoder_q.fc.2.weight": torch.randn(128, width),
            "module.encoder_q.fc.2.bias": torch.zeros(128),
        }
    )
    weights.update({k.replace("encoder_q", "encoder_k"): v.clone() for k, v in weights.items()})
    return {"epoch": 200, "arch": backbone, "state_dict": weights}
