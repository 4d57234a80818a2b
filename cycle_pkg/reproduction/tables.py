"""Metrics files -> the paper's tables, our numbers beside the paper's (their figures: figures.py).

Each table is written as Markdown (for people) and CSV (for programs), atomically, with a header
that says which scale and which data produced our numbers (at the demo and test scales they come
from the synthetic world and are not comparable with the paper's, only the pipeline is) and which
protocol: the evaluation's, in words, from the settings its metrics files record. A number that does
not measure the representation is marked, never shown plain: one whose evaluation's training
diverged, a top-k accuracy over no more than k classes (100% whatever the features) or at chance, and
a tracking score over too few frames a sequence. With
several seeds (``workflow.seeds``) our number is the mean over the seeds' runs with its 95%
t-interval, the table says whether the paper's number lies inside it, and the CSV keeps every
seed's value.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import DatasetError
from ..eval.divergence import diverged
from ..eval.registry import EVALUATIONS
from ..jobs.atomic import write_text_atomic
from ..jobs.layout import metrics_path
from ..settings.config import Config
from .grid import Grid
from .paper import Table, metric_key, paper_tables
from .stats import binomial_tail, t_interval

# the metrics files' counts of the items an accuracy is measured on (the linear probes', the UCF101 tasks')
TESTED = ("val_images", "test_videos")
CHANCE_LEVEL = 0.05
# Frames tracked per sequence (after the first, whose box is given) below which OTB's precision and success
# measure the initialisation more than the tracker: a few frames leave no room to drift (95-100% for any model)
MIN_TRACKED_FRAMES = 10


def read_record(path: Path) -> dict[str, Any]:
    """A metrics file: the metrics, the settings that produced them, the checkpoint."""
    if not path.is_file():
        raise DatasetError(f"{path}: metrics file missing; run the evaluation that writes it (snakemake makes it)")
    return json.loads(path.read_text())


def read_metrics(path: Path) -> dict[str, Any]:
    return read_record(path)["metrics"]


def mark(metrics: dict[str, Any], key: str, value: float | None = None) -> str:
    """Why our number ``value`` for ``key`` does not measure the representation, or "" when it does: its
    evaluation's training diverged, a top-k over no more than k classes, or an accuracy that guessing
    reaches too often (one-sided binomial test at CHANCE_LEVEL over the items tested)."""
    if diverged(metrics):
        return "diverged"
    tracked = tracked_frames(metrics)
    if tracked is not None and tracked < MIN_TRACKED_FRAMES:
        return f"too short: {tracked:g} of a sequence's frames tracked, fewer than {MIN_TRACKED_FRAMES}"
    classes, k = metrics.get("classes"), top_k(key)
    if k is not None and classes is not None and k >= classes:
        return f"chance: {classes} classes"
    guessed = chance(metrics, key)
    tested = next((metrics[name] for name in TESTED if name in metrics), None)
    if value is not None and guessed is not None and tested:
        p = binomial_tail(round(value / 100 * tested), tested, guessed)
        if p > CHANCE_LEVEL:
            return f"not above chance: p={p:.2f}, {guessed:.1%} by guessing, {tested} tested"
    return ""


def tracked_frames(metrics: dict[str, Any]) -> float | None:
    """A tracking evaluation's mean frames tracked per sequence; None for another evaluation."""
    frames, sequences = metrics.get("test_frames"), metrics.get("test_sequences")
    return None if frames is None or not sequences else frames / sequences - 1


def chance(metrics: dict[str, Any], key: str) -> float | None:
    """The share of right answers that guessing gives a top-k accuracy ``key``: k / classes for a
    classification, the metrics file's own ``chance_<key>`` for a retrieval (a random ranking's)."""
    if f"chance_{key}" in metrics:
        return metrics[f"chance_{key}"] / 100
    classes, k = metrics.get("classes"), top_k(key)
    return None if k is None or classes is None else min(1.0, k / classes)


def top_k(key: str) -> int | None:
    """k of a top-k metric's key (``top5``: 5); None for another metric."""
    return int(key[3:]) if key.startswith("top") and key[3:].isdigit() else None


def seeds_mark(marks: dict[int | None, str]) -> str:
    """The mark of a cell over its runs (seed -> mark): a run's mark names its seed unless every run
    has it, so that one seed's diverged run marks the mean it is part of."""
    kinds = {m for m in marks.values() if m}
    if not kinds:
        return ""
    if len(marks) == 1 or (all(marks.values()) and len(kinds) == 1):
        return kinds.pop()
    return "; ".join(f"{m}: seed {seed}" for seed, m in marks.items() if m)


def metric_value(metrics: dict[str, Any], key: str, section: str) -> float | None:
    """A metric of a row (see :func:`cycle_pkg.reproduction.paper.metric_key`); None where the file has none."""
    value = metrics.get(metric_key(key, section))
    return None if value is None else float(value)


def table_frame(table: Table, grid: Grid, results: str | Path) -> pd.DataFrame:
    """One line per row of the paper's table: ours, the paper's, ours minus the paper's; with
    several seeds ours is their mean, with its interval, n, whether the paper's number lies inside
    and each seed's value. A marked number has neither a difference nor a place in the interval test."""
    seeded = len(grid.seeds) > 1
    lines = []
    for index, row in enumerate(table.rows):
        models = grid.models_of(table.name, index)
        metrics = [read_metrics(metrics_path(results, table.evaluation, model)) for model in models]
        line: dict[str, Any] = {
            "section": row.section,
            "method": row.method,
            "backbone": row.backbone,
            "data": row.data,
        }
        for key in table.metrics:
            values = [metric_value(m, key, row.section) for m in metrics]
            known = [v for v in values if v is not None]
            interval = t_interval(known) if known else None
            ours = None if interval is None else interval.mean
            paper = row.paper.get(key)
            runs = zip(models, metrics, values, strict=True)
            flag = seeds_mark({grid.seed_of(model): mark(m, key, v) for model, m, v in runs if v is not None})
            line[f"{key}_ours"] = ours
            if seeded:
                line[f"{key}_low"] = None if interval is None else interval.low
                line[f"{key}_high"] = None if interval is None else interval.high
                line[f"{key}_n"] = len(known)
            line[f"{key}_paper"] = paper
            line[f"{key}_diff"] = None if ours is None or paper is None or flag else ours - paper
            line[f"{key}_mark"] = flag
            if seeded:
                unjudged = interval is None or paper is None or flag
                line[f"{key}_paper_inside"] = None if unjudged else interval.contains(paper)
                for model, value in zip(models, values, strict=True):
                    if grid.seed_of(model) is not None:
                        line[f"{key}_seed{grid.seed_of(model)}"] = value
        line["model"] = " ".join(models)
        lines.append(line)
    if seeded:
        add_paired_steps(lines, table, grid)
    frame = pd.DataFrame(lines)
    return frame.drop(columns=[c for c in ("section", "backbone", "data") if not frame[c].astype(bool).any()])


def add_paired_steps(lines: list[dict[str, Any]], table: Table, grid: Grid) -> None:
    """Each row's step over the row above (same section and backbone), paired by seed: the mean of
    the per-seed differences with its 95% t-interval (``<key>_step``, ``_step_low``, ``_step_high``).
    A seed shares the initialisation and the data order across settings, so the pairs remove the
    part of the seeds' spread that the settings share. Left empty where a run is missing or marked."""
    for above, line in zip(lines, lines[1:], strict=False):
        if (above.get("section"), above.get("backbone")) != (line.get("section"), line.get("backbone")):
            continue
        for key in table.metrics:
            if line[f"{key}_mark"] or above[f"{key}_mark"]:
                continue
            pairs = [(line.get(f"{key}_seed{seed}"), above.get(f"{key}_seed{seed}")) for seed in grid.seeds]
            if len(pairs) < 2 or any(missing(a) or missing(b) for a, b in pairs):
                continue
            step = t_interval([a - b for a, b in pairs])
            line[f"{key}_step"], line[f"{key}_step_low"], line[f"{key}_step_high"] = step.mean, step.low, step.high


def _step(line: pd.Series, key: str) -> str:
    if f"{key}_step" not in line or missing(line[f"{key}_step"]):
        return "-"
    return f"{line[f'{key}_step']:+.1f} [{line[f'{key}_step_low']:+.1f}, {line[f'{key}_step_high']:+.1f}]"


def _cell(value: Any, signed: bool = False) -> str:
    if missing(value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:+.1f}" if signed else f"{value:.1f}"
    return str(value)


def missing(value: Any) -> bool:
    """No number: None, or NaN (a cell pandas left empty)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _ours(line: pd.Series, key: str, seeded: bool) -> str:
    """Our number, marked where it does not measure the representation; with several seeds the
    mean, its 95% interval and n."""
    text = _cell(line[f"{key}_ours"])
    if seeded and text != "-":
        low, high, n = line[f"{key}_low"], line[f"{key}_high"], int(line[f"{key}_n"])
        text += f" (n={n})" if missing(low) else f" [{low:.1f}, {high:.1f}] (n={n})"
    return text + (f" ({line[f'{key}_mark']})" if line[f"{key}_mark"] else "")


def markdown(table: Table, frame: pd.DataFrame, grid: Grid, config: Config) -> str:
    """The table in Markdown: one column group (ours / paper / difference) per metric; with several
    seeds ours is their mean with its 95% t-interval, and a column says whether the paper's number
    lies inside it."""
    seeded = len(grid.seeds) > 1
    text_columns = [c for c in ("section", "method", "backbone", "data") if c in frame.columns]
    header = [c.capitalize() for c in text_columns]
    for title in table.metrics.values():
        header += [f"{title} ours" + (" (mean [95% CI])" if seeded else ""), f"{title} paper"]
        header += ["paper in CI", "diff", f"{title} step over the row above (paired by seed)"] if seeded else ["diff"]
    header.append("runs" if seeded else "run")
    lines = [
        f"# Table {table.number}: {table.caption}",
        "",
        f"Scale `{config.scale}`: {describe_scale(config)}",
        "",
        *protocol_lines(table, grid, config.results),
    ]
    if seeded:
        seeds = ", ".join(map(str, grid.seeds))
        lines += [
            f"Ours: the mean over seeds {seeds} (n runs), with Student's t 95% interval. A step over the row above:"
            " the mean of the per-seed differences, with its 95% interval.",
            "",
        ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, line in frame.iterrows():
        cells = [_cell(line[c]) for c in text_columns]
        for key in table.metrics:
            cells += [_ours(line, key, seeded), _cell(line[f"{key}_paper"])]
            if seeded:
                inside = line[f"{key}_paper_inside"]
                cells.append(_cell(None if missing(inside) else bool(inside)))
            cells.append(_cell(line[f"{key}_diff"], signed=True))
            if seeded:
                cells.append(_step(line, key))
        cells.append(" ".join(f"`{m}`" for m in line["model"].split()) if line["model"] else "paper only")
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
        for model in grid.models_of(table.name, index):
            record = read_record(metrics_path(results, table.evaluation, model))
            text = evaluation.describe(record["settings"], record["metrics"])
            if text and text not in described:
                described.append(text)
            if model in grid.runs and grid.config_of(model).loss.query_view_in_neighbors:
                kpp.add(grid.config_of(model).loss.kpp_embedding)
    lines = [f"Protocol: {text}." for text in described]
    lines += [f"k_++ (`loss.kpp_embedding: {k}`): {KPP_EMBEDDINGS[k]}." for k in sorted(kpp)]
    return [part for line in lines for part in (line, "")]


# What a scale's numbers can say (the small scales' only test the pipeline)
SCIENCE_CLAIM = "They test the paper's ordering on the synthetic world over seeds (docs/science.md), not its numbers."
SCALE_CLAIMS = {"paper": "", "science": SCIENCE_CLAIM, "science_long": SCIENCE_CLAIM}


def describe_scale(config: Config) -> str:
    p, data = config.pretrain, config.data
    source = "the synthetic world" if config.scale != "paper" else "the real datasets"
    return (
        f"our numbers come from {source} (R2V2 at `{data.r2v2_root}`, ImageNet at `{data.imagenet_root}`, "
        f"UCF101 at `{data.ucf101_root}`, OTB at `{data.otb_root}`); pretraining {p.epochs} epochs at "
        f"{p.image_size} px, batch {p.batch_size}, queues {config.model.intra_queue}/{config.model.cycle_queue}. "
        + SCALE_CLAIMS.get(config.scale, "They test the pipeline, not the paper's claims.")
    )


def write_table(table: Table, grid: Grid, config: Config, out_dir: str | Path) -> tuple[Path, Path]:
    frame = table_frame(table, grid, config.results)
    out_dir = Path(out_dir)
    md, csv = out_dir / f"{table.name}.md", out_dir / f"{table.name}.csv"
    write_text_atomic(md, markdown(table, frame, grid, config))
    write_text_atomic(csv, frame.to_csv(index=False))
    return md, csv


def table_names() -> list[str]:
    return list(paper_tables())
