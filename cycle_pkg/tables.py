"""Metrics files -> the paper's tables, our numbers beside the paper's, and the ablation figures.

Each table is written as Markdown (for people) and CSV (for programs), atomically, with a header
that says which scale and which data produced our numbers (at the demo and test scales they come
from the synthetic world and are not comparable with the paper's, only the pipeline is) and which
protocol: the evaluation's, in words, from the settings its metrics files record. A number that does
not measure the representation is marked, never shown plain: one whose evaluation's training
diverged, and a top-k accuracy over no more than k classes (100% whatever the features).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from .config import Config
from .errors import DatasetError
from .eval.divergence import diverged
from .eval.registry import EVALUATIONS
from .grid import Grid
from .io_utils import write_bytes_atomic, write_text_atomic
from .paper import Table, metric_key, paper_tables


def metrics_path(results: str | Path, evaluation: str, model: str) -> Path:
    return Path(results) / "eval" / evaluation / f"{model}.json"


def read_record(path: Path) -> dict[str, Any]:
    """A metrics file: the metrics, the settings that produced them, the checkpoint."""
    if not path.is_file():
        raise DatasetError(f"{path}: metrics file missing; run the evaluation that writes it (snakemake makes it)")
    return json.loads(path.read_text())


def read_metrics(path: Path) -> dict[str, Any]:
    return read_record(path)["metrics"]


def mark(metrics: dict[str, Any], key: str) -> str:
    """Why our number for ``key`` does not measure the representation, or "" when it does."""
    if diverged(metrics):
        return "diverged"
    classes = metrics.get("classes")
    k = int(key[3:]) if key.startswith("top") and key[3:].isdigit() else None
    if k is not None and classes is not None and k >= classes:
        return f"chance: {classes} classes"
    return ""


def metric_value(metrics: dict[str, Any], key: str, section: str) -> float | None:
    """A metric of a row (see :func:`cycle_pkg.paper.metric_key`); None where the file has none."""
    value = metrics.get(metric_key(key, section))
    return None if value is None else float(value)


def table_frame(table: Table, grid: Grid, results: str | Path) -> pd.DataFrame:
    """One line per row of the paper's table: ours, the paper's, ours minus the paper's."""
    lines = []
    for index, row in enumerate(table.rows):
        model = grid.model_of(table.name, index)
        metrics = read_metrics(metrics_path(results, table.evaluation, model)) if model else {}
        line: dict[str, Any] = {
            "section": row.section,
            "method": row.method,
            "backbone": row.backbone,
            "data": row.data,
        }
        for key in table.metrics:
            ours = metric_value(metrics, key, row.section)
            paper = row.paper.get(key)
            flag = mark(metrics, key) if ours is not None else ""
            line[f"{key}_ours"] = ours
            line[f"{key}_paper"] = paper
            line[f"{key}_diff"] = None if ours is None or paper is None or flag else ours - paper
            line[f"{key}_mark"] = flag
        line["model"] = model or ""
        lines.append(line)
    frame = pd.DataFrame(lines)
    return frame.drop(columns=[c for c in ("section", "backbone", "data") if not frame[c].astype(bool).any()])


def _cell(value: Any, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:+.1f}" if signed else f"{value:.1f}"
    return str(value)


def markdown(table: Table, frame: pd.DataFrame, grid: Grid, config: Config) -> str:
    """The table in Markdown: one column group (ours / paper / difference) per metric."""
    text_columns = [c for c in ("section", "method", "backbone", "data") if c in frame.columns]
    header = [c.capitalize() for c in text_columns]
    for title in table.metrics.values():
        header += [f"{title} ours", f"{title} paper", "diff"]
    header.append("run")
    lines = [
        f"# Table {table.number}: {table.caption}",
        "",
        f"Scale `{config.scale}`: {describe_scale(config)}",
        "",
        *protocol_lines(table, grid, config.results),
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for _, line in frame.iterrows():
        cells = [_cell(line[c]) for c in text_columns]
        for key in table.metrics:
            ours = _cell(line[f"{key}_ours"]) + (f" ({line[f'{key}_mark']})" if line[f"{key}_mark"] else "")
            cells += [ours, _cell(line[f"{key}_paper"]), _cell(line[f"{key}_diff"], signed=True)]
        cells.append(f"`{line['model']}`" if line["model"] else "paper only")
        lines.append("| " + " | ".join(cells) + " |")
    if table.note:
        lines += ["", f"Note: {table.note}"]
    return "\n".join(lines) + "\n"


KPP_EMBEDDINGS = {
    "view": "the key of a second view of the query's frame, as the paper's text describes it",
    "query": "the query embedding itself, weighted by its similarity to that view's key, as the authors' code adds it",
}


def protocol_lines(table: Table, grid: Grid, results: str | Path) -> list[str]:
    """The protocol of our rows, in words: the evaluation's, read from the settings their metrics
    files record, and the pretraining choices a row's method leaves to a setting (Table 5's k_++)."""
    evaluation = EVALUATIONS[table.evaluation]
    described, kpp = [], set()
    for index in range(len(table.rows)):
        model = grid.model_of(table.name, index)
        if not model:
            continue
        record = read_record(metrics_path(results, table.evaluation, model))
        text = evaluation.describe(record["settings"], record["metrics"])
        if text and text not in described:
            described.append(text)
        if model in grid.runs and grid.config_of(model).loss.query_view_in_neighbors:
            kpp.add(grid.config_of(model).loss.kpp_embedding)
    lines = [f"Protocol: {text}." for text in described]
    lines += [f"k_++ (`loss.kpp_embedding: {k}`): {KPP_EMBEDDINGS[k]}." for k in sorted(kpp)]
    return [part for line in lines for part in (line, "")]


def describe_scale(config: Config) -> str:
    p, data = config.pretrain, config.data
    source = "the synthetic world" if config.scale != "paper" else "the real datasets"
    return (
        f"our numbers come from {source} (R2V2 at `{data.r2v2_root}`, ImageNet at `{data.imagenet_root}`, "
        f"UCF101 at `{data.ucf101_root}`, OTB at `{data.otb_root}`); pretraining {p.epochs} epochs at "
        f"{p.image_size} px, batch {p.batch_size}, queues {config.model.intra_queue}/{config.model.cycle_queue}. "
        + ("" if config.scale == "paper" else "They test the pipeline, not the paper's claims.")
    )


def write_table(table: Table, grid: Grid, config: Config, out_dir: str | Path) -> tuple[Path, Path]:
    frame = table_frame(table, grid, config.results)
    out_dir = Path(out_dir)
    md, csv = out_dir / f"{table.name}.md", out_dir / f"{table.name}.csv"
    write_text_atomic(md, markdown(table, frame, grid, config))
    write_text_atomic(csv, frame.to_csv(index=False))
    return md, csv


def ablation_figure(table: Table, grid: Grid, config: Config, path: str | Path) -> Path:
    """Ours and the paper's accuracy against the swept setting (Tables 5-8), in the paper's units."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = table_frame(table, grid, config.results)
    key = table.curve["x"]
    points = [
        (row.run.get(key, paper_default(key)), i)
        for i, row in enumerate(table.rows)
        if row.run is not None and row.on_curve
    ]
    metrics = list(table.metrics)
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for axis, metric in zip(axes[0], metrics, strict=True):
        for source, style in (("ours", "o-"), ("paper", "s--")):
            xy = sorted(
                (x, frame.loc[i, f"{metric}_{source}"])
                for x, i in points
                if table.rows[i].paper.get(metric) is not None
                and not (source == "ours" and frame.loc[i, f"{metric}_mark"])
            )
            xy = [(x, y) for x, y in xy if y is not None and not math.isnan(y)]
            if xy:
                axis.plot(
                    *zip(*xy, strict=True), style, label=f"{source} ({config.scale})" if source == "ours" else "paper"
                )
        marked = [(x, frame.loc[i, f"{metric}_ours"]) for x, i in points if frame.loc[i, f"{metric}_mark"]]
        if marked:  # off the curve: these numbers do not measure the representation
            axis.plot(*zip(*marked, strict=True), "rx", label="ours, marked in the table (diverged / chance)")
        axis.set_xlabel(table.curve["label"] + " (paper's units)")
        axis.set_ylabel(table.metrics[metric])
        if table.curve.get("log_x"):
            axis.set_xscale("log", base=2)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(f"Table {table.number}: {table.caption}", fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    write_bytes_atomic(path, buffer.getvalue())
    return Path(path)


def paper_default(key: str) -> Any:
    """The paper's value of a swept setting, for the rows that keep it (e.g. lambda = 0.1)."""
    section, name = key.split(".")
    return getattr(getattr(Config(), section), name)


def table_names() -> list[str]:
    return list(paper_tables())
