"""The fast linear probe (cached features) against MoCo's protocol, at equal epochs on the same data.

Both train the same N(0, 0.01)-initialised linear layer with the same SGD settings, schedule, batch
size and epochs on one frozen backbone, in one process; the fast protocol's time includes computing
its features (a cold cache) and is also reported with a warm cache. The output is the time ratio
and the top-1 / top-5 difference.

Examples:
    python benchmarks/linear_protocols.py --scale demo --epochs 30
    python benchmarks/linear_protocols.py --scale demo --checkpoint results/pretrain/r18/checkpoint.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch

from cycle_pkg.config import load_config
from cycle_pkg.data.imagenet import imagefolder_samples
from cycle_pkg.data.synthetic import generate_world
from cycle_pkg.eval.checkpoints import load_backbone
from cycle_pkg.eval.features import FeatureCache, FrozenBackbone
from cycle_pkg.eval.linear import linear_probe

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--checkpoint", default="random", help="checkpoint file, or 'random'")
    parser.add_argument("--epochs", type=int, help="epochs of both protocols (default: the scale's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--output", help="write the results here as JSON")
    args = parser.parse_args()

    config = load_config(args.params, args.scale, args.overrides)
    if config.data.imagenet_root.startswith(config.world.root):
        generate_world(config.world)
    cfg = config.eval.linear
    if args.epochs is not None:
        scale = args.epochs / cfg.epochs  # keep the schedule's shape: milestones at the same fractions
        milestones = [max(1, round(m * scale)) for m in cfg.milestones]
        cfg = dataclasses.replace(cfg, epochs=args.epochs, milestones=milestones)
    train, classes = imagefolder_samples(config.data.imagenet_root, "train")
    val, _ = imagefolder_samples(config.data.imagenet_root, "val")
    loaded = load_backbone(args.checkpoint, arch=config.model.backbone if args.checkpoint == "random" else None)
    frozen = FrozenBackbone(loaded.net, loaded.width)

    results = {}
    with tempfile.TemporaryDirectory() as cache_dir:
        runs = (
            ("moco", FeatureCache(None)),  # no cache: MoCo's protocol recomputes every view
            ("fast", FeatureCache(cache_dir)),  # cold: the features are computed once, inside the timing
            ("fast_warm", FeatureCache(cache_dir)),  # warm: a repeated probe of the same checkpoint
        )
        for name, cache in runs:
            protocol = dataclasses.replace(cfg, protocol="moco" if name == "moco" else "fast")
            if frozen.device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            metrics = linear_probe(frozen, train, val, len(classes), protocol, config.eval, cache)
            if frozen.device.type == "cuda":
                torch.cuda.synchronize()
            results[name] = {"seconds": time.perf_counter() - started, "top1": metrics["top1"], "top5": metrics["top5"]}

    summary = {
        "scale": config.scale,
        "device": str(frozen.device),
        "checkpoint": args.checkpoint,
        "backbone": loaded.arch,
        "epochs": cfg.epochs,
        "milestones": cfg.milestones,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "image_size": cfg.image_size,
        "train_images": len(train),
        "val_images": len(val),
        "classes": len(classes),
        "protocols": results,
        "speedup_cold": results["moco"]["seconds"] / results["fast"]["seconds"],
        "speedup_warm": results["moco"]["seconds"] / results["fast_warm"]["seconds"],
        "top1_fast_minus_moco": results["fast"]["top1"] - results["moco"]["top1"],
        "top5_fast_minus_moco": results["fast"]["top5"] - results["moco"]["top5"],
    }
    print(json.dumps(summary, indent=2))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
