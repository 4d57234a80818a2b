"""The paper's Tables 1-11: their rows, the paper's numbers, and where ours come from
(``paper_tables.yaml`` beside this module)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml


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


@functools.cache
def paper_tables() -> dict[str, Table]:
    text = resources.files("cycle_pkg").joinpath("paper_tables.yaml").read_text()
    tables = {}
    for name, spec in yaml.safe_load(text)["tables"].items():
        rows = tuple(Row(**row) for row in spec.pop("rows"))
        tables[name] = Table(name=name, rows=rows, **spec)
    return tables
