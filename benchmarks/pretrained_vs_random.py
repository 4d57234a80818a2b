"""Do the evaluations tell a pretrained backbone from a random one? Pretrain for a given budget with
`cycle pretrain`, then run `cycle eval linear` and `cycle eval retrieval` on that checkpoint and on a
seeded random backbone of the same architecture, and report both with their differences. With
``--supervised-epochs``, a backbone trained on the synthetic world's latent classes
(``supervised_reference.py``) is evaluated beside them, as a representation known to hold the classes.

Every step is the real command line, so the result is what the workflow would measure; the run and
the evaluations go to a scratch folder (MLflow off), or to ``--workdir``, where the run is kept and an
interrupted benchmark resumes its pretraining when started again with the same settings.

Examples (after `cycle world --scale demo`, which writes the synthetic world):
    python benchmarks/pretrained_vs_random.py --scale demo --epochs 10 \
        --set data.r2v2_subset=false --set data.r2v2_format=jpeg
    python benchmarks/pretrained_vs_random.py --scale demo --epochs 200 --set data.r2v2_format=jpeg  # a GPU
    python benchmarks/pretrained_vs_random.py --scale demo --epochs 100 --supervised-epochs 5 \
        --set data.r2v2_subset=false --set data.r2v2_format=jpeg
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from supervised_reference import train_for

from cycle_pkg.jobs import layout
from cycle_pkg.settings.config import load_config

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("linear", "retrieval")
HEADLINES = ("top1", "top5", "frame_top1", "frame_top5", "clip_top1", "clip_top5")


def cycle(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cycle_pkg.cli", *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--epochs", type=int, required=True, help="pretraining epochs")
    parser.add_argument("--supervised-epochs", type=int, default=0, help="also evaluate a labels-trained backbone")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--output", help="write the results here as JSON")
    parser.add_argument("--workdir", help="keep the run, features and evaluations here (default: a scratch folder)")
    args = parser.parse_args()

    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    with contextlib.nullcontext(args.workdir) if args.workdir else tempfile.TemporaryDirectory() as scratch:
        sets = [
            *args.overrides,
            f"results={scratch}",
            f"eval.cache_dir={scratch}/features",
            "mlflow.enabled=false",
            f"pretrain.epochs={args.epochs}",
        ]
        common = ["--params", args.params, "--scale", args.scale, *(a for s in sets for a in ("--set", s))]
        cycle("pretrain", *common, "--run", "probe")
        checkpoint = layout.backbone_path(scratch, "probe")
        summary = json.loads(layout.summary_path(scratch, "probe").read_text())
        backbones = {"pretrained": [str(checkpoint)], "random": ["random"]}  # random: model.backbone
        supervised = {}
        if args.supervised_epochs:
            config = load_config(args.params, args.scale, sets)
            weights = Path(scratch) / "supervised.pth"
            supervised = train_for(config, args.supervised_epochs, weights)
            backbones["supervised"] = [str(weights), "--format", "torchvision"]
        metrics: dict[str, dict[str, float]] = {name: {} for name in backbones}
        for name, source in backbones.items():
            for task in TASKS:
                output = Path(scratch) / f"{name}-{task}.json"
                cycle("eval", task, *common, "--checkpoint", *source, "--output", str(output))
                found = json.loads(output.read_text())["metrics"]
                metrics[name].update({k: v for k, v in found.items() if k in HEADLINES})

    results = {
        "scale": args.scale,
        "overrides": args.overrides,
        "steps": summary["steps"],
        "epochs": args.epochs,
        "pretrain_seconds": round(summary["train_seconds"], 1),  # summed over resumed sessions
        "final_metrics": summary["final_metrics"],
        **({"supervised_training": {"epochs": args.supervised_epochs, **supervised}} if supervised else {}),
        **metrics,
        **{
            f"{name}_minus_random": {k: round(metrics[name][k] - metrics["random"][k], 2) for k in metrics["random"]}
            for name in metrics
            if name != "random"
        },
    }
    print(json.dumps(results, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
