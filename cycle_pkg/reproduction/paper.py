"""The paper's Tables 1-11: their rows, the paper's numbers, and where ours come from
(``paper_tables.yaml`` beside this module): a grid point or a baseline, evaluated by one of the
evaluations of :mod:`cycle_pkg.eval.registry`, whose metrics the table's columns read."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from ..eval.registry import EVALUATIONS


@dataclass(frozen=True)
class Row:
    method: str
    paper: dict[str, float]
    backbone: str = ""
    data: str = ""
    section: str = ""
    run: dict[str, Any] | None = None  # a grid point, in the paper's units
    baseline: str | None = None  # a user-supplied checkpoint key
    on_curve: bool = True  # ablation tables: a point of the figure's curve


@dataclass(frozen=True)
class Table:
    name: str
    caption: str
    evaluation: str
    metrics: dict[str, str]  # metric key -> column title
    rows: tuple[Row, ...]
    curve: dict[str, Any] = field(default_factory=dict)  # ablation tables: the swept setting
    note: str = ""

    @property
    def number(self) -> int:
        return int(self.name.removeprefix("table"))


def metric_key(key: str, section: str) -> str:
    """Where a row's metric is in its metrics file: rows with a section (Table 11: frame / clip)
    read ``<section>_<key>``."""
    return f"{section}_{key}" if section else key


@functools.cache
def paper_tables() -> dict[str, Table]:
    text = resources.files("cycle_pkg.reproduction").joinpath("paper_tables.yaml").read_text()
    tables = {}
    for name, spec in yaml.safe_load(text)["tables"].items():
        rows = tuple(Row(**row) for row in spec.pop("rows"))
        tables[name] = table = Table(name=name, rows=rows, **spec)
        _check_evaluation(table)
    return tables


def _check_evaluation(table: Table) -> None:
    """A table names one of the registry's evaluations and only metrics that it writes."""
    where = f"cycle_pkg/reproduction/paper_tables.yaml: {table.name}"
    evaluation = EVALUATIONS.get(table.evaluation)
    if evaluation is None:
        known = ", ".join(EVALUATIONS)
        raise ValueError(f"{where}: unknown evaluation {table.evaluation!r} (cycle_pkg/eval/registry.py: {known})")
    read = {metric_key(key, row.section) for row in table.rows for key in table.metrics}
    unknown = sorted(read - set(evaluation.metrics))
    if unknown:
        written = ", ".join(evaluation.metrics)
        raise ValueError(f"{where}: {table.evaluation} writes no metric {', '.join(unknown)} (it writes {written})")
