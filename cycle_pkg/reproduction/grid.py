"""From the paper's tables to jobs: the unique pretraining grid points, their names and tags, and
the evaluations.

A grid point is a set of settings that differ from the scale's (``run`` of a table row); rows of
several tables that name the same settings share one pretraining run, named by :func:`run_name`.
Neighbour-set sizes and top-K values are given in the paper's units and mapped to the scale's by
its ``grid`` section. Which settings name a run, tag it and are mapped is said once, in
:data:`cycle_pkg.settings.facts.SETTING_FACTS`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..settings.config import Config, load_config
from ..settings.facts import SETTING_FACTS
from ..settings.typed_yaml import get_setting
from .paper import Row, paper_tables


@dataclass(frozen=True)
class Job:
    """One evaluation of one model: a pretraining run of the grid, or a user's baseline checkpoint."""

    evaluation: str
    model: str  # a run name, or ``baseline-<key>``


def run_name(config: Config, reference: Config) -> str:
    """A readable run name: the backbone, then how the method differs from ``reference`` (the
    scale's own settings), e.g. ``r18``, ``r18-lambda0.3``, ``r18-cycle-m256-kpp``."""
    parts = [config.model.backbone.replace("resnet", "r")]
    for facts in SETTING_FACTS:
        if facts.name is None:
            continue
        value = get_setting(config, facts.key)
        if value == get_setting(reference, facts.key):
            continue
        if isinstance(facts.name, tuple):
            parts.append(facts.name[0] if value else facts.name[1])
        else:
            parts.append(f"{facts.name}{value}".replace("+", "_"))
    return "-".join(parts)


def grid_tags(config: Config) -> dict[str, str]:
    """A pretraining run's place on the grid's axes, as MLflow tags ``grid.<axis>``."""
    return {f"grid.{facts.tag}": str(get_setting(config, facts.key)) for facts in SETTING_FACTS if facts.tag}


def scaled_settings(run: dict[str, Any], config: Config) -> dict[str, Any]:
    """A row's settings with the paper's sizes replaced by the scale's."""
    settings = dict(run)
    for facts in SETTING_FACTS:
        if facts.grid_map and settings.get(facts.key) is not None:
            settings[facts.key] = getattr(config.grid, facts.grid_map).get(settings[facts.key], settings[facts.key])
    return settings


def as_overrides(settings: dict[str, Any]) -> list[str]:
    """``--set`` arguments (values in JSON, which YAML reads back unchanged)."""
    return [f"{key}={json.dumps(value)}" for key, value in sorted(settings.items())]


class Grid:
    """The grid of one scale: run name -> overrides, and the evaluation jobs of every table. Each
    grid point is one run per seed of ``workflow.seeds``; a seed other than the scale's
    ``pretrain.seed`` names its runs (``r18-seed1``), so that one seed keeps the names as they are
    and adding seeds keeps the runs already trained."""

    def __init__(self, params: str | Path, scale: str | None = None):
        self.params, self.base = params, load_config(params, scale)
        self.scale = self.base.scale
        self.seeds = self.base.workflow.seeds
        self.runs: dict[str, list[str]] = {}
        self._configs: dict[str, Config] = {}
        self._row_models: dict[tuple[str, int], tuple[str, ...]] = {}
        for table in paper_tables().values():
            for index, row in enumerate(table.rows):
                self._row_models[(table.name, index)] = self._models_of(row)

    def _models_of(self, row: Row) -> tuple[str, ...]:
        if row.run is not None and not self._trained(row.run):
            return ()
        if row.run is not None:
            return tuple(self._run_of(row.run, seed) for seed in self.seeds)
        if row.baseline is not None and row.baseline in self.base.baselines:
            return (f"baseline-{row.baseline}",)
        return ()

    def _trained(self, grid_point: dict[str, Any]) -> bool:
        """Whether ``workflow.backbones`` selects a row's backbone (empty: every one)."""
        backbones = self.base.workflow.backbones
        return not backbones or grid_point.get("model.backbone", self.base.model.backbone) in backbones

    def config_of(self, run: str) -> Config:
        """The settings a pretraining run of the grid trains with."""
        return self._configs[run]

    def _run_of(self, grid_point: dict[str, Any], seed: int) -> str:
        settings = scaled_settings(grid_point, self.base)
        if seed != self.base.pretrain.seed:
            settings["pretrain.seed"] = seed
        overrides = as_overrides(settings)
        config = load_config(self.params, self.scale, overrides)
        name = run_name(config, self.base)
        # Rows may reach the same settings by different routes (a row's lambda = 0.3 when
        # params.yaml's lambda is 0.3): one run; different settings under one name would be a bug.
        if self._configs.setdefault(name, config) != config:
            raise ValueError(f"grid points {self.runs[name]} and {overrides} share the run name {name!r}")
        self.runs.setdefault(name, overrides)
        return name

    def models_of(self, table: str, index: int) -> tuple[str, ...]:
        """The runs (one per seed) or the baseline whose metrics fill row ``index`` of ``table``;
        none: the paper's numbers only."""
        return self._row_models[(table, index)]

    def seed_of(self, model: str) -> int | None:
        """A run's pretraining seed; None for a baseline."""
        return self._configs[model].pretrain.seed if model in self._configs else None

    def jobs(self) -> list[Job]:
        """Every (evaluation, model) pair the tables need, each once."""
        tables = paper_tables()
        unique = {
            Job(tables[name].evaluation, model) for (name, _), models in self._row_models.items() for model in models
        }
        return sorted(unique, key=lambda job: (job.evaluation, job.model))

    def tables_of(self, model: str) -> list[str]:
        return sorted({name for (name, _), models in self._row_models.items() if model in models})
