"""The evaluations: the one list that the `cycle eval` command, the evaluation runner, the workflow's
rules and the paper's tables read.

An evaluation's name is its metrics folder (``results/eval/<name>/``) and what
``paper_tables.yaml`` calls it. Several evaluations may share a ``cycle eval`` task that their
settings tell apart (the linear probe on ImageNet or ImageNet-100). The task's settings are the
section ``eval.<task>`` of the configuration, defined with its ranges, checks and protocol in words
in the task's settings module (``<task>_settings.py``); its job is built by a function in the
evaluation's own module, named here as ``.module:function`` so that reading this list (the Snakefile
does, at parse time) imports no torch: the settings modules are free of it. Adding an evaluation is
one entry here plus its modules (a new task's section also joins ``EvalConfig`` and the ranges in
``cycle_pkg.settings``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..settings.typed_yaml import get_setting, parse_override
from . import action_settings, finetune_settings, linear_settings, retrieval_settings, track_settings

if TYPE_CHECKING:
    from ..jobs.mlflow_job import MlflowRun
    from ..settings.config import Config
    from .checkpoints import Backbone
    from .features import FrozenBackbone

# An evaluation's job: the backbone (frozen, unless the evaluation trains it) and the job's MLflow run
# in, the metrics out.
Evaluate = Callable[["FrozenBackbone | Backbone", "MlflowRun"], dict[str, Any]]
# The protocol that produced a metrics file, in words, from its (settings, metrics): the tables' headers.
Describe = Callable[[dict[str, Any], dict[str, Any]], str]


@dataclass(frozen=True)
class Evaluation:
    name: str
    task: str  # the `cycle eval` subcommand
    settings: tuple[str, ...]  # `--set` overrides that select this evaluation of its task
    datasets: tuple[str, ...]  # the datasets it reads: their `cycle data` reports (results/data/<dataset>.json)
    metrics: tuple[str, ...]  # the keys of its metrics file that the tables read
    builder: str  # ".module:function" in cycle_pkg.eval, (config, metrics file) -> Evaluate; reads the datasets
    description: str  # the help of `cycle eval <task>` (joined with the task's other evaluations')
    # its settings module's describe (cycle_pkg/eval/<task>_settings.py, torch-free like this list)
    protocol: Describe | None = None
    # Frozen: the job reads a FrozenBackbone, checked unchanged afterwards. Otherwise it trains the
    # backbone itself (fine-tuning), resumable from its state folder beside the metrics file.
    frozen: bool = True

    def selected_by(self, config: Config) -> bool:
        """Whether ``config`` holds this evaluation's settings."""
        for text in self.settings:
            keys, value = parse_override(text)
            if get_setting(config, ".".join(keys)) != value:
                return False
        return True

    def describe(self, settings: dict[str, Any], metrics: dict[str, Any]) -> str | None:
        """The protocol that produced a metrics file of this evaluation, in words (None if unknown)."""
        return None if self.protocol is None else self.protocol(settings, metrics)

    def job(self, config: Config, output: Path) -> Evaluate:
        """The evaluation's job on the datasets that ``config`` names, writing beside ``output``."""
        module, function = self.builder.split(":")
        return getattr(importlib.import_module(module, __package__), function)(config, output)


def _by_name(*evaluations: Evaluation) -> dict[str, Evaluation]:
    return {evaluation.name: evaluation for evaluation in evaluations}


RETRIEVAL_METRICS = tuple(
    f"{mode}_top{k}" for mode in ("frame", "clip") for k in retrieval_settings.RetrievalEvalConfig().topk
)
# fmt: off
EVALUATIONS = _by_name(
    # name, task, settings, datasets, metrics; then the builder, the task's help and the protocol in words
    Evaluation("linear_imagenet", "linear", ("eval.linear.dataset=imagenet",), ("imagenet",), ("top1", "top5"),
               ".linear:linear_evaluation", "linear probe on ImageNet (Tables 3-4)",
               linear_settings.describe),
    Evaluation("linear_imagenet100", "linear", ("eval.linear.dataset=imagenet100",), ("imagenet",), ("top1", "top5"),
               ".linear:linear_evaluation", "linear probe on ImageNet-100 (Tables 5-8)",
               linear_settings.describe),
    Evaluation("track", "track", (), ("got10k", "otb"), ("precision", "success", "success_rate"),
               ".tracking.evaluate:track_evaluation", "SiamFC on GOT-10k, tested on OTB-2015 (Tables 1-2)",
               track_settings.describe),
    Evaluation("action", "action", (), ("ucf101",), ("top1", "top5", "clip_top1"),
               ".action:action_evaluation", "UCF101 action recognition on frozen features (Table 10)",
               action_settings.describe),
    Evaluation("finetune", "finetune", (), ("ucf101",), ("top1", "top5", "clip_top1", "clip_top5"),
               ".finetune:finetune_evaluation", "UCF101 action recognition, the whole network fine-tuned (Table 9)",
               finetune_settings.describe, frozen=False),
    Evaluation("retrieval", "retrieval", (), ("ucf101",), RETRIEVAL_METRICS,
               ".retrieval:retrieval_evaluation", "UCF101 frame and clip retrieval (Table 11)",
               retrieval_settings.describe),
)
# fmt: on


def tasks() -> dict[str, str]:
    """The `cycle eval` tasks and their help, in the registry's order."""
    helps: dict[str, list[str]] = {}
    for evaluation in EVALUATIONS.values():
        helps.setdefault(evaluation.task, []).append(evaluation.description)
    return {task: "; ".join(texts) for task, texts in helps.items()}


def evaluation_of(task: str, config: Config) -> Evaluation:
    """The evaluation that ``cycle eval <task>`` runs with ``config``."""
    candidates = [e for e in EVALUATIONS.values() if e.task == task]
    chosen = [e for e in candidates if e.selected_by(config)]
    if len(chosen) != 1:
        options = "; ".join(f"{e.name}: {', '.join(e.settings) or 'no settings'}" for e in candidates)
        raise ConfigError(f"cycle eval {task}: the settings select {len(chosen)} of its evaluations ({options})")
    return chosen[0]


def evaluation_datasets() -> list[str]:
    """Every dataset an evaluation reads, each once."""
    return sorted({dataset for evaluation in EVALUATIONS.values() for dataset in evaluation.datasets})
