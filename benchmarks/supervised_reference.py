"""A reference backbone for the synthetic world: a ResNet trained with the world's own labels.

The synthetic R2V2 copy records each video's latent class (``latent_classes_train.csv``, which the
real dataset does not have). Training the backbone on those labels for a short budget gives a
representation that is known to carry class information, so that an evaluation which ranks it above
a random backbone is shown to tell representations apart. The weights are saved in torchvision's
format (classifier included), which `cycle eval --format torchvision` reads.

Example (the world's R2V2 frames at the scale's pretraining size; 44 s an epoch on 2 CPU cores at the demo's):
    python -m benchmarks.supervised_reference --scale demo --epochs 10 --weights supervised.pth \\
        --out benchmarks/results/supervised_reference_demo_10ep_cpu.json
    python -m benchmarks.supervised_reference --scale science --set world.pattern_scale=[1.0,2.0] --weights s.pth \\
        --probe --out result.json   # then the scale's own linear probe of it (science run 2's calibration)
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torchvision.transforms import v2

from benchmarks.record import ROOT, arguments, write_result
from cycle_pkg.data.augment import IMAGENET_MEAN, IMAGENET_STD
from cycle_pkg.data.r2v2 import frame_relpath, read_videos
from cycle_pkg.data.synthetic import generate_world
from cycle_pkg.eval.features import read_image
from cycle_pkg.pretrain.schedule import cosine_lr
from cycle_pkg.settings.config import Config, load_config

LABELS = "latent_classes_train.csv"


def labelled_frames(r2v2_root: Path) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Every train frame of the synthetic R2V2 copy, decoded, with its video's latent class."""
    labels_file = r2v2_root / LABELS
    if not labels_file.is_file():
        raise SystemExit(f"{labels_file}: not found; only the synthetic world (`cycle world`) records latent classes")
    with labels_file.open() as rows:
        label_of = {row["video"]: int(row["class"]) for row in csv.DictReader(rows)}
    images, labels = [], []
    for video in read_videos(r2v2_root, "train"):
        for frame in video.frames:
            images.append(read_image(r2v2_root / frame_relpath("train", video.video_id, frame)))
            labels.append(label_of[video.video_id])
    return images, torch.tensor(labels)


def train_supervised(
    r2v2_root: Path, arch: str, image_size: int, epochs: int, output: Path, batch_size: int = 32, seed: int = 0
) -> dict[str, float]:
    """Train ``arch`` from scratch to classify the frames' latent classes (crop + flip, SGD with a
    cosine schedule) and save its state dict; returns the time taken and the last epoch's accuracy."""
    images, labels = labelled_frames(r2v2_root)
    augment = v2.Compose(
        [
            v2.RandomResizedCrop(image_size, scale=(0.3, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    torch.manual_seed(seed)
    net = getattr(torchvision.models, arch)(weights=None, num_classes=int(labels.max()) + 1)
    base_lr = 0.05
    optimizer = torch.optim.SGD(net.parameters(), lr=base_lr, momentum=0.9, weight_decay=5e-4)
    steps_per_epoch = len(images) // batch_size
    total_steps, step = epochs * steps_per_epoch, 0
    started = time.perf_counter()
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(len(images))
        correct = 0
        for start in range(0, steps_per_epoch * batch_size, batch_size):
            batch = order[start : start + batch_size]
            inputs = torch.stack([augment(images[i]) for i in batch])
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(base_lr, step, total_steps)
            logits = net(inputs)
            loss = F.cross_entropy(logits, labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            correct += int((logits.argmax(1) == labels[batch]).sum())
        accuracy = 100 * correct / (steps_per_epoch * batch_size)
        print(f"supervised epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}, train top-1 {accuracy:.1f}%", flush=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), output)
    return {"seconds": round(time.perf_counter() - started, 1), "train_top1": round(accuracy, 1)}


def train_for(config: Config, epochs: int, output: Path) -> dict[str, float]:
    """:func:`train_supervised` on ``config``'s world R2V2 copy, backbone and pretraining image size."""
    return train_supervised(
        Path(config.data.r2v2_root), config.model.backbone, config.pretrain.image_size, epochs, output
    )


def main() -> None:
    began = time.time()
    parser = arguments(__doc__)
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--weights", required=True, help="where to write the weights (torchvision's format)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--probe", action="store_true", help="then the scale's linear probe (`cycle eval linear`)")
    args = parser.parse_args()
    config = load_config(args.params, args.scale, args.overrides)
    generate_world(config.world)
    result = train_for(config, args.epochs, Path(args.weights))
    if args.probe:
        result["linear"] = probe(args.params, args.scale, args.overrides, Path(args.weights))
    write_result({"scale": args.scale, "overrides": args.overrides, "epochs": args.epochs, **result}, args.out, began)


def probe(params: str, scale: str, overrides: list[str], weights: Path) -> dict[str, float]:
    """The scale's linear probe of the weights, as the workflow runs it (MLflow left out): its metrics."""
    metrics = weights.with_suffix(".linear.json")
    sets = [*overrides, "mlflow.enabled=false"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cycle_pkg.cli",
            "eval",
            "linear",
            "--params",
            params,
            "--scale",
            scale,
            *(a for s in sets for a in ("--set", s)),
            "--checkpoint",
            str(weights),
            "--format",
            "torchvision",
            "--output",
            str(metrics),
            "--log",
            str(weights.with_suffix(".linear.log")),
        ],
        check=True,
    )
    return json.loads(metrics.read_text())["metrics"]


if __name__ == "__main__":
    main()
