"""From the paper's tables to jobs: the unique pretraining grid points and the evaluations.

A grid point is a set of settings that differ from the scale's (``run`` of a table row); rows of
several tables that name the same settings share one pretraining run, named by
:func:`cycle_pkg.config.run_name`. Neighbour-set sizes and top-K values are given in the paper's
units and mapped to the scale's by its ``grid`` section.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Config, load_config, run_name
from .paper import Row, paper_tables

SCALED = {"loss.neighbors": "neighbors", "loss.topk": "topk"}


@dataclass(frozen=True)
class Job:
    """One evaluation of one model: a pretraining run of the grid, or a user's baseline checkpoint."""

    evaluation: str
    model: str  # a run name, or ``baseline-<key>``


def scaled_settings(run: dict[str, Any], config: Config) -> dict[str, Any]:
    """A row's settings with the paper's sizes replaced by the scale's."""
    settings = dict(run)
    for key, grid_field in SCALED.items():
        if settings.get(key) is not None:
            settings[key] = getattr(config.grid, grid_field).get(settings[key], settings[key])
    return settings


def as_overrides(settings: dict[str, Any]) -> list[str]:
    """``--set`` arguments (values in JSON, which YAML reads back unchanged)."""
    return [f"{key}={json.dumps(value)}" for key, value in sorted(settings.items())]


class Grid:
    """The grid of one scale: run name -> overrides, and the evaluation jobs of every table."""

    def __init__(self, params: str | Path, scale: str | None = None):
        self.params, self.base = params, load_config(params, scale)
        self.scale = self.base.scale
        self.runs: dict[str, list[str]] = {}
        self._configs: dict[str, Config] = {}
        self._row_models: dict[tuple[str, int], str | None] = {}
        for table in paper_tables().values():
            for index, row in enumerate(table.rows):
                self._row_models[(table.name, index)] = self._model_of(row)

    def _model_of(self, row: Row) -> str | None:
        if row.run is not None:
            overrides = as_overrides(scaled_settings(row.run, self.base))
            config = load_config(self.params, self.scale, overrides)
            name = run_name(config, self.base)
            # Rows may reach the same settings by different routes (a row's lambda = 0.3 when
            # params.yaml's lambda is 0.3): one run; different settings under one name would be a bug.
            if self._configs.setdefault(name, config) != config:
                raise ValueError(f"grid points {self.runs[name]} and {overrides} share the run name {name!r}")
            self.runs.setdefault(name, overrides)
            return name
        if row.baseline is not None and row.baseline in self.base.baselines:
            return f"baseline-{row.baseline}"
        return None

    def model_of(self, table: str, index: int) -> str | None:
        """The run (or baseline) whose metrics fill row ``index`` of ``table``; None: paper only."""
        return self._row_models[(table, index)]

    def jobs(self) -> list[Job]:
        """Every (evaluation, model) pair the tables need, each once."""
        tables = paper_tables()
        unique = {
            Job(tables[name].evaluation, model) for (name, _), model in self._row_models.items() if model is not None
        }
        return sorted(unique, key=lambda job: (job.evaluation, job.model))

    def tables_of(self, model: str) -> list[str]:
        return sorted({name for (name, _), m in self._row_models.items() if m == model})
