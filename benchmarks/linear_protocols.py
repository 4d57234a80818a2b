"""The fast linear probe (cached features of augmented views) against MoCo's protocol, side by side.

Both train the same N(0, 0.01)-initialised linear layer with the same SGD settings, schedule, batch
size and epochs on one frozen backbone, in one process: MoCo's protocol draws a fresh
RandomResizedCrop + flip view of every image each epoch; the fast one draws it from ``views`` such
views per image, computed once. Each protocol runs with several probe seeds (the classifier's
initialisation, the order and the views), so that their difference is measured against the spread of
either. The fast protocol's time includes computing its features (a cold cache) and is also reported
with a warm cache (a repeated probe of the same checkpoint). The output: per protocol the mean and
spread of top-1 / top-5 and the time, the fast protocols' differences from MoCo's and speed-ups.

Examples:
    python -m benchmarks.linear_protocols --scale demo --views 1 5 10 --seeds 0 1 2
    python -m benchmarks.linear_protocols --scale demo --checkpoint results/pretrain/r18/backbone.pt \\
        --out benchmarks/results/linear_protocols_demo_r18_cpu.json
    python -m benchmarks.linear_protocols --scale demo --supervised-epochs 2 --views 2 5 10 --seeds 0 1
    python -m benchmarks.linear_protocols --scale demo --checkpoint supervised.pth --images-per-class 160 \\
        --val-images-per-class 50 --views 5 8 10 --seeds 0 1 2

``--images-per-class`` draws a larger ImageNet-format set of the world's classes (the world's generator,
new instances) into a scratch folder: the demo world's 40 images a class are far from ImageNet's 1300,
and a probe's gain from fresh views shrinks as the images a class grow.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.record import ROOT, arguments, save_result, write_result
from benchmarks.supervised_reference import train_for
from cycle_pkg.data.imagenet import imagefolder_samples
from cycle_pkg.data.synthetic import generate_world, write_part
from cycle_pkg.eval.checkpoints import load_backbone
from cycle_pkg.eval.features import FeatureCache, FrozenBackbone
from cycle_pkg.eval.linear import linear_probe
from cycle_pkg.eval.linear_settings import LinearEvalConfig
from cycle_pkg.settings.config import load_config


def timed_probe(frozen, train, val, classes, cfg, eval_cfg, cache) -> dict:
    if frozen.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    metrics = linear_probe(frozen, train, val, classes, cfg, eval_cfg, cache)
    if frozen.device.type == "cuda":
        torch.cuda.synchronize()
    keep = ("top1", "top5", "train_loss", "diverged")
    return {"seconds": time.perf_counter() - started, **{k: metrics[k] for k in keep}}


def summary_of(runs: list[dict]) -> dict:
    """Mean and spread over the seeds' runs."""
    out = {"runs": runs}
    for key in ("top1", "top5", "seconds"):
        values = [r[key] for r in runs]
        out[f"{key}_mean"] = statistics.fmean(values)
        out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    out["diverged"] = sum(bool(r["diverged"]) for r in runs)
    return out


def main() -> None:
    began = time.time()
    parser = arguments(__doc__)
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--checkpoint", default="random", help="checkpoint file, or 'random'")
    parser.add_argument(
        "--supervised-epochs",
        type=int,
        help="probe a backbone trained this many epochs on the world's latent classes (supervised_reference)",
    )
    parser.add_argument("--supervised-weights", help="keep that backbone's weights here (default: a scratch folder)")
    parser.add_argument("--epochs", type=int, help="epochs of both protocols (default: the scale's)")
    parser.add_argument(
        "--views", type=int, nargs="+", default=[LinearEvalConfig.views], help="the fast protocol's views per image"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="probe seeds (eval.linear.seed)")
    parser.add_argument("--images-per-class", type=int, help="world ImageNet images a class (a scratch set)")
    parser.add_argument("--val-images-per-class", type=int, help="its validation images a class")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    if args.val_images_per_class and not args.images_per_class:
        parser.error("--val-images-per-class sizes the set --images-per-class draws: give both")
    with tempfile.TemporaryDirectory() as scratch:
        compare(args, Path(scratch), began)


def compare(args: argparse.Namespace, scratch: Path, began: float) -> None:
    """Run every protocol for each seed, writing the summary as each run finishes."""
    config = load_config(args.params, args.scale, args.overrides)
    cfg = config.eval.linear
    if args.epochs is not None:
        scale = args.epochs / cfg.epochs  # keep the schedule's shape: milestones at the same fractions
        milestones = [max(1, round(m * scale)) for m in cfg.milestones]
        cfg = dataclasses.replace(cfg, epochs=args.epochs, milestones=milestones)
    imagenet_root = config.data.imagenet_root
    if args.images_per_class:
        world = dataclasses.replace(
            config.world,
            root=str(scratch / "world"),
            images_per_class=args.images_per_class,
            val_images_per_class=args.val_images_per_class or config.world.val_images_per_class,
        )
        write_part("imagenet", world)
        imagenet_root = str(scratch / "world" / "imagenet")
    # The world, where the scale's data live in it: its ImageNet set, or the R2V2 copy the supervised reference
    # trains on.
    needs_world = args.supervised_epochs or not args.images_per_class
    if needs_world and config.data.imagenet_root.startswith(config.world.root):
        generate_world(config.world)
    train, classes = imagefolder_samples(imagenet_root, "train")
    val, _ = imagefolder_samples(imagenet_root, "val")
    checkpoint, supervised = args.checkpoint, {}
    if args.supervised_epochs:
        checkpoint = Path(args.supervised_weights or scratch / "supervised.pth")
        supervised = train_for(config, args.supervised_epochs, checkpoint)
    loaded = load_backbone(checkpoint, arch=config.model.backbone if checkpoint == "random" else None)
    frozen = FrozenBackbone(loaded.net, loaded.width)

    def summary_so_far() -> dict:
        """Every finished run; the differences and speed-ups over the seeds MoCo's protocol finished."""
        protocols = {name: summary_of(results) for name, results in runs.items() if results}
        compared = sorted(r["seed"] for r in runs["moco"])
        paired = {name: summary_of([r for r in rs if r["seed"] in compared]) for name, rs in runs.items() if compared}
        moco = paired.get("moco", {})
        comparison = {
            f"fast_{views}": {
                "top1_fast_minus_moco": paired[f"fast_{views}"]["top1_mean"] - moco["top1_mean"],
                # the difference of two means over independent seeds: its standard error
                "top1_difference_se": math.hypot(paired[f"fast_{views}"]["top1_std"], moco["top1_std"])
                / math.sqrt(len(compared)),
                "top5_fast_minus_moco": paired[f"fast_{views}"]["top5_mean"] - moco["top5_mean"],
                "speedup_cold": moco["seconds_mean"] / paired[f"fast_{views}"]["seconds_mean"],
                "speedup_warm": moco["seconds_mean"] / paired[f"fast_{views}_warm"]["seconds_mean"],
            }
            for views in args.views
            if compared
        }
        return {
            "scale": config.scale,
            "device": str(frozen.device),
            "checkpoint": "supervised" if supervised else args.checkpoint,
            **({"supervised_training": {"epochs": args.supervised_epochs, **supervised}} if supervised else {}),
            "backbone": loaded.arch,
            "epochs": cfg.epochs,
            "milestones": cfg.milestones,
            "batch_size": cfg.batch_size,
            "lr": cfg.lr,
            "image_size": cfg.image_size,
            "train_images": len(train),
            "val_images": len(val),
            "classes": len(classes),
            "seeds_compared": compared,
            "overrides": args.overrides,
            "protocols": protocols,
            "fast_against_moco": comparison,
        }

    runs: dict[str, list[dict]] = {"moco": []}
    for views in args.views:
        runs[f"fast_{views}"], runs[f"fast_{views}_warm"] = [], []
    for seed in args.seeds:  # all protocols for one seed, then the next; written as each run finishes
        for views in args.views:
            fast = dataclasses.replace(cfg, protocol="fast", views=views, seed=seed)
            with tempfile.TemporaryDirectory() as cache_dir:
                for name in (f"fast_{views}", f"fast_{views}_warm"):  # the features computed, then cached
                    result = timed_probe(frozen, train, val, len(classes), fast, config.eval, FeatureCache(cache_dir))
                    runs[name].append({"seed": seed, **result})
                    save_result(summary_so_far(), args.out, began)
        moco = dataclasses.replace(cfg, protocol="moco", seed=seed)
        result = timed_probe(frozen, train, val, len(classes), moco, config.eval, FeatureCache(None))
        runs["moco"].append({"seed": seed, **result})
        save_result(summary_so_far(), args.out, began)

    write_result(summary_so_far(), args.out, began, unprinted=["protocols"])


if __name__ == "__main__":
    main()
