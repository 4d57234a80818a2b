"""The tables' protocol lines and marks: a number whose evaluation's training diverged, or a top-k
over no more than k classes, is marked and has no difference from the paper's."""

import dataclasses
import json

import pandas as pd

from cycle_pkg.config import load_config
from cycle_pkg.eval.registry import EVALUATIONS
from cycle_pkg.grid import Grid
from cycle_pkg.paper import paper_tables
from cycle_pkg.tables import ablation_figure, mark, metrics_path, write_table

from .conftest import PARAMS


def write_records(results, table, grid, settings, metrics_of):
    for index in range(len(table.rows)):
        model = grid.model_of(table.name, index)
        if model:
            path = metrics_path(results, table.evaluation, model)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"metrics": metrics_of(model), "settings": settings}))


def test_marks():
    assert mark({"top1": 40.0, "classes": 12}, "top5") == ""
    assert mark({"top5": 100.0, "classes": 3}, "top5") == "chance: 3 classes"
    assert mark({"top1": 40.0, "classes": 3}, "top1") == ""
    assert mark({"top1": 40.0, "diverged": True}, "top1") == "diverged"
    assert mark({"frame_top50": 100.0}, "top50") == ""  # retrieval: no classes to count


def test_table5_states_its_protocol_and_k_plus_plus_and_marks_what_is_not_the_representations(tmp_path):
    config = load_config(PARAMS, "test", [f"results={tmp_path}"])
    grid, table = Grid(PARAMS, "test"), paper_tables()["table5"]
    diverged_run = grid.model_of("table5", 0)

    def metrics_of(model):
        if model == diverged_run:
            return {
                "top1": 33.3,
                "top5": 100.0,
                "classes": 3,
                "diverged": True,
                "divergence": "the loss of epoch 2 is nan",
            }
        return {"top1": 41.7, "top5": 100.0, "classes": 3, "diverged": False, "divergence": ""}

    write_records(tmp_path, table, grid, dataclasses.asdict(config.eval.linear), metrics_of)
    md_path, csv_path = write_table(table, grid, config, tmp_path / "tables")
    markdown = md_path.read_text()
    assert (
        "Protocol: the fast linear protocol, not MoCo's: MoCo's optimiser and schedule (SGD lr 0.01, 100 epochs "
        "(x0.1 at 60, 80), batch 16), each epoch's view of an image drawn from 2 RandomResizedCrop(32) + flip views"
    ) in markdown
    assert "k_++ (`loss.kpp_embedding: view`): the key of a second view of the query's frame" in markdown
    first = next(line for line in markdown.splitlines() if line.startswith("| m=128"))
    assert "33.3 (diverged) | 56.6 | - |" in first and "100.0 (diverged)" in first
    other = next(line for line in markdown.splitlines() if line.startswith("| m=256 |"))
    assert "41.7 | 57.0 | -15.3 |" in other and "100.0 (chance: 3 classes) | 83.1 | - |" in other
    frame = pd.read_csv(csv_path, keep_default_na=False)
    assert frame.loc[0, "top1_mark"] == "diverged" and frame.loc[0, "top1_diff"] == ""
    assert frame.loc[1, "top5_mark"] == "chance: 3 classes" and float(frame.loc[1, "top1_diff"]) < 0
    assert ablation_figure(table, grid, config, tmp_path / "table5.png").is_file()


def test_the_authors_kpp_is_named_where_it_produced_the_rows(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        PARAMS.read_text().replace(
            "query_view_in_neighbors: false", "kpp_embedding: query\n  query_view_in_neighbors: false", 1
        )
    )
    config = load_config(params, "test", [f"results={tmp_path}"])
    grid, table = Grid(params, "test"), paper_tables()["table5"]
    write_records(tmp_path, table, grid, dataclasses.asdict(config.eval.linear), lambda m: {"top1": 40.0, "classes": 3})
    markdown = write_table(table, grid, config, tmp_path / "tables")[0].read_text()
    assert "k_++ (`loss.kpp_embedding: query`): the query embedding itself" in markdown and "`view`" not in markdown


def test_tracking_and_video_protocols_in_words():
    config = load_config(PARAMS, "paper")
    track = dataclasses.asdict(config.eval.track)
    words = EVALUATIONS["track"].describe(track, {})
    assert "the authors' response geometry (upsampled to 16 x 17 px whatever its size)" in words
    assert "visibility filters" in words and "first" not in words
    exact = EVALUATIONS["track"].describe({**track, "response_geometry": "exact", "max_frames": 3}, {})
    assert "the exact response geometry (upsampled to 16 x its size)" in exact and "their first 3 frames" in exact
    moco = EVALUATIONS["linear_imagenet"].describe(dataclasses.asdict(config.eval.linear), {})
    assert moco.startswith("MoCo's linear protocol") and "SGD lr 30, 100 epochs (x0.1 at 60, 80), batch 256" in moco
    assert "AVID-CMA's linear setting" in EVALUATIONS["action"].describe(dataclasses.asdict(config.eval.action), {})
    assert "10 frames per video" in EVALUATIONS["retrieval"].describe(dataclasses.asdict(config.eval.retrieval), {})
