"""Do the evaluations tell a pretrained backbone from a random one? Pretrain for a given budget with
`cycle pretrain`, then run `cycle eval linear` and `cycle eval retrieval` on that checkpoint and on a
seeded random backbone of the same architecture, and report both with their differences. With
``--supervised-epochs``, a backbone trained on the synthetic world's latent classes
(:mod:`benchmarks.supervised_reference`) is evaluated beside them, as a representation known to hold the classes.

Every step is the real command line, so the result is what the workflow would measure; the run and
the evaluations go to a scratch folder (MLflow off), or to ``--workdir``, where the run is kept and an
interrupted benchmark resumes its pretraining when started again with the same settings.

Examples (after `cycle world --scale demo`, which writes the synthetic world):
    python -m benchmarks.pretrained_vs_random --scale demo --epochs 10 \\
        --set data.r2v2_subset=false --set data.r2v2_format=jpeg \\
        --out benchmarks/results/pretrained_vs_random_demo_10ep_cpu.json
    python -m benchmarks.pretrained_vs_random --scale demo --epochs 200 --set data.r2v2_format=jpeg  # a GPU
    python -m benchmarks.pretrained_vs_random --scale demo --epochs 100 --supervised-epochs 5 \\
        --set data.r2v2_subset=false --set data.r2v2_format=jpeg
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.record import ROOT, arguments, write_result
from benchmarks.supervised_reference import train_for
from cycle_pkg.jobs import layout
from cycle_pkg.settings.config import load_config

TASKS = ("linear", "retrieval")
HEADLINES = ("top1", "top5", "frame_top1", "frame_top5", "clip_top1", "clip_top5")


def cycle(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cycle_pkg.cli", *args], check=True)


def runs_arguments(doc: str | None) -> argparse.ArgumentParser:
    """The command line of a benchmark that pretrains and evaluates with `cycle` (this one, table4_seeds)."""
    parser = arguments(doc)
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--epochs", type=int, required=True, help="pretraining epochs of every run")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--workdir", help="keep the runs, features and evaluations here (default: a scratch folder)")
    return parser


def workdir(path: str | None) -> contextlib.AbstractContextManager[str]:
    """The runs' folder: ``path``, made and kept (a run started again resumes), or a scratch folder."""
    if not path:
        return tempfile.TemporaryDirectory()
    Path(path).mkdir(parents=True, exist_ok=True)
    return contextlib.nullcontext(path)


def run_settings(args: argparse.Namespace, scratch: str, *sets: str) -> list[str]:
    """The ``--set`` overrides, then ``args.epochs`` of pretraining in ``scratch`` (MLflow off), then ``sets``."""
    return [
        *args.overrides,
        f"results={scratch}",
        f"eval.cache_dir={scratch}/features",
        "mlflow.enabled=false",
        f"pretrain.epochs={args.epochs}",
        *sets,
    ]


def options(args: argparse.Namespace, sets: list[str]) -> list[str]:
    """`cycle`'s options: the settings file, the scale and ``sets``."""
    return ["--params", args.params, "--scale", args.scale, *(a for s in sets for a in ("--set", s))]


def pretrain(common: list[str], scratch: str, run: str) -> tuple[Path, dict[str, Any]]:
    """`cycle pretrain` of ``run``: its backbone's file and its summary."""
    cycle("pretrain", *common, "--run", run)
    return layout.backbone_path(scratch, run), json.loads(layout.summary_path(scratch, run).read_text())


def evaluate(common: list[str], scratch: str, name: str, checkpoint: list[str]) -> dict[str, float]:
    """`cycle eval` linear and retrieval of ``checkpoint`` (its file, and options): their headline metrics."""
    metrics = {}
    for task in TASKS:
        output = Path(scratch) / f"{name}-{task}.json"
        cycle("eval", task, *common, "--checkpoint", *checkpoint, "--output", str(output))
        found = json.loads(output.read_text())["metrics"]
        metrics.update({k: v for k, v in found.items() if k in HEADLINES})
    return metrics


def main() -> None:
    began = time.time()
    parser = runs_arguments(__doc__)
    parser.add_argument("--supervised-epochs", type=int, default=0, help="also evaluate a labels-trained backbone")
    args = parser.parse_args()

    with workdir(args.workdir) as scratch:
        sets = run_settings(args, scratch)
        common = options(args, sets)
        checkpoint, summary = pretrain(common, scratch, "probe")
        backbones = {"pretrained": [str(checkpoint)], "random": ["random"]}  # random: model.backbone
        supervised = {}
        if args.supervised_epochs:
            config = load_config(args.params, args.scale, sets)
            weights = Path(scratch) / "supervised.pth"
            supervised = train_for(config, args.supervised_epochs, weights)
            backbones["supervised"] = [str(weights), "--format", "torchvision"]
        metrics = {name: evaluate(common, scratch, name, source) for name, source in backbones.items()}

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
    write_result(results, args.out, began)


if __name__ == "__main__":
    main()
