"""The tables' protocol lines and marks (a number whose evaluation's training diverged, or a top-k
over no more than k classes, is marked and has no difference from the paper's), and with several
seeds the mean with its 95% t-interval (hand-computed here), whether the paper's number lies inside,
every seed's value in the CSV, error bars in the ablation figures, and the kNN monitor figures."""

import dataclasses
import json

import matplotlib.axes
import pandas as pd
import pytest
import yaml

from cycle_pkg.eval.registry import EVALUATIONS
from cycle_pkg.jobs.layout import metrics_path
from cycle_pkg.reproduction.figures import ablation_figure, knn_figure
from cycle_pkg.reproduction.grid import Grid
from cycle_pkg.reproduction.paper import paper_tables
from cycle_pkg.reproduction.tables import mark, seeds_mark, write_table
from cycle_pkg.settings.config import load_config

from ..helpers import PARAMS
from ..helpers.figures import legend_overlaps


def write_records(results, table, grid, settings, metrics_of):
    for index in range(len(table.rows)):
        for model in grid.models_of(table.name, index):
            path = metrics_path(results, table.evaluation, model)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"metrics": metrics_of(model), "settings": settings}))


def test_marks():
    assert mark({"top1": 40.0, "classes": 12}, "top5") == ""
    assert mark({"top5": 100.0, "classes": 3}, "top5") == "chance: 3 classes"
    assert mark({"top1": 40.0, "classes": 3}, "top1") == ""
    assert mark({"top1": 40.0, "diverged": True}, "top1") == "diverged"
    assert mark({"frame_top50": 100.0}, "top50") == ""  # retrieval without a chance level: nothing to judge
    # an accuracy that guessing reaches too often: 4 of 96 videos right with 24 classes (P(X >= 4) = 0.57),
    # 12 of 120 images with 12 (0.30); 19 of 120 is above chance (0.005)
    action = {"top1": 4.1667, "classes": 24, "test_videos": 96}
    assert mark(action, "top1", 4.1667) == "not above chance: p=0.57, 4.2% by guessing, 96 tested"
    probe = {"classes": 12, "val_images": 120}
    assert mark(probe, "top1", 10.0) == "not above chance: p=0.30, 8.3% by guessing, 120 tested"
    assert mark(probe, "top1", 15.8) == ""
    # retrieval: the file's chance level of a random ranking (3 of 4 queries right at 50% is p = 5/16)
    retrieval = {"chance_top5": 50.0, "test_videos": 4}
    assert mark(retrieval, "top5", 75.0) == "not above chance: p=0.31, 50.0% by guessing, 4 tested"
    assert mark({"chance_top1": 4.0, "test_videos": 96}, "top1", 30.0) == ""
    # tracking: 10 sequences of 2 frames track 1 frame each after the given first box
    short = {"precision": 98.0, "test_sequences": 10, "test_frames": 20}
    assert mark(short, "precision", 98.0) == "too short: 1 of a sequence's frames tracked, fewer than 10"
    assert mark({**short, "test_frames": 110}, "precision", 60.0) == ""


def test_table5_states_its_protocol_and_k_plus_plus_and_marks_what_is_not_the_representations(tmp_path):
    config = load_config(PARAMS, "test", [f"results={tmp_path}"])
    grid, table = Grid(PARAMS, "test"), paper_tables()["table5"]
    (diverged_run,) = grid.models_of("table5", 0)

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
        " whose features were computed once; the best val top-1 of the 100 epochs, as MoCo's main_lincls reports it."
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
    subset = EVALUATIONS["track"].describe({**track, "max_sequences": 25, "max_frames": 2}, {})
    assert "tracking OTB-2015 (its first 25 targets, their first 2 frames)" in subset
    moco = EVALUATIONS["linear_imagenet"].describe(dataclasses.asdict(config.eval.linear), {})
    assert moco.startswith("MoCo's linear protocol") and "SGD lr 30, 100 epochs (x0.1 at 60, 80), batch 256" in moco
    last = EVALUATIONS["linear_imagenet"].describe({**dataclasses.asdict(config.eval.linear), "report": "last"}, {})
    assert moco.endswith("the best val top-1 of the 100 epochs, as MoCo's main_lincls reports it")
    assert last.endswith("the last epoch's val top-1, not MoCo's best of the epochs")
    action = dataclasses.asdict(config.eval.action)
    words = EVALUATIONS["action"].describe(action, {})
    assert (
        "AVID-CMA's linear setting" in words and "BatchNorm in train mode as the authors' (groups of 64 clips" in words
    )
    pretrained = EVALUATIONS["action"].describe({**action, "batch_norm": "eval"}, {})
    assert "BatchNorm with the pretraining statistics, not the authors' train mode" in pretrained
    assert "10 frames per video" in EVALUATIONS["retrieval"].describe(dataclasses.asdict(config.eval.retrieval), {})


# t_{0.975, 1} = 12.7062: two seeds 40 and 44 give 42 +- 12.7062 * 2.8284 / 1.4142 = 42 +- 25.41
TOP1 = {0: 40.0, 1: 44.0}


def record_calls(monkeypatch, method):
    """The (args, kwargs) of every call of a matplotlib Axes method, which still draws."""
    calls, original = [], getattr(matplotlib.axes.Axes, method)
    monkeypatch.setattr(matplotlib.axes.Axes, method, lambda *a, **k: calls.append((a, k)) or original(*a, **k))
    return calls


def seeded_results(tmp_path, seeds, metrics_of=lambda model, seed, index: {}):
    """Table 6's metrics files and monitor curves at the test scale, one run per seed and row."""
    params = yaml.safe_load(PARAMS.read_text())
    params["workflow"]["seeds"] = seeds
    params["results"] = str(tmp_path / "results")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    grid = Grid(tmp_path / "params.yaml", "test")
    config = load_config(tmp_path / "params.yaml", "test")
    table = paper_tables()["table6"]
    settings = dataclasses.asdict(config.eval.linear)
    for index in range(len(table.rows)):
        for model in grid.models_of(table.name, index):
            seed = grid.seed_of(model)
            path = metrics_path(config.results, table.evaluation, model)
            path.parent.mkdir(parents=True, exist_ok=True)
            # the paper's 58.48 (m = 16384) lies inside 42 +- 25.41 only for rows shifted up by 10
            metrics = {"top1": TOP1[seed] + 10 * index, "top5": 80.0 + seed / 10, "classes": 12}
            metrics.update(metrics_of(model, seed, index))
            path.write_text(json.dumps({"metrics": metrics, "settings": settings}))
            summary = tmp_path / "results" / "pretrain" / model / "summary.json"
            summary.parent.mkdir(parents=True, exist_ok=True)
            curve = {"steps": [0, 4, 8], "knn_top1": [20.0, 25.0 + seed, 30.0 + seed + index], "query_images": 12}
            summary.write_text(json.dumps({"monitor": {**curve, "knn_top5": [50.0, 60.0, 70.0]}}))
    return table, grid, config


def test_two_seeds_give_means_intervals_and_every_seeds_value(tmp_path, monkeypatch, saved_figures):
    table, grid, config = seeded_results(tmp_path, [0, 1])
    md, csv = write_table(table, grid, config, tmp_path / "tables")
    frame = pd.read_csv(csv)
    assert frame["top1_seed0"].tolist() == [40.0, 50.0, 60.0, 70.0]
    assert frame["top1_seed1"].tolist() == [44.0, 54.0, 64.0, 74.0]
    assert frame["top1_ours"].tolist() == [42.0, 52.0, 62.0, 72.0] and frame["top1_n"].tolist() == [2] * 4
    assert frame["top1_low"][0] == pytest.approx(42 - 25.4124, abs=1e-3)
    assert frame["top1_high"][0] == pytest.approx(42 + 25.4124, abs=1e-3)
    # paper 56.68, 57.36, 56.82, 58.48 against [16.6, 67.4], [26.6, 77.4], [36.6, 87.4], [46.6, 97.4]
    assert frame["top1_paper_inside"].tolist() == [True, True, True, True]
    assert frame["top5_paper_inside"].tolist() == [False, False, False, False]  # 80.05 +- 0.64 misses 83.5-84.0
    assert frame["model"][0] == "r18-m16 r18-m16-seed1"
    text = md.read_text()
    assert "Top-1 (%) ours (mean [95% CI])" in text and "paper in CI" in text and "Protocol: " in text
    assert "| 42.0 [16.6, 67.4] (n=2) | 56.7 | yes | -14.7 |" in text
    assert "`r18-m16` `r18-m16-seed1`" in text and "seeds 0, 1" in text

    bars = record_calls(monkeypatch, "errorbar")
    figure = ablation_figure(table, grid, config, tmp_path / "figures" / "table6.png")
    assert len(bars) == 2  # top-1 and top-5: the half-widths of the intervals below and above the means
    assert bars[0][1]["yerr"][0] == pytest.approx([25.4124] * 4, abs=1e-3) == bars[0][1]["yerr"][1]
    knn = knn_figure(table, grid, config, tmp_path / "figures" / "knn" / "table6.png")
    assert figure.read_bytes()[:8] == knn.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ablation, knn_curves = saved_figures
    assert len(ablation.legends) == 1 and len(ablation.axes) == 2  # one legend, for both panels, below them
    assert legend_overlaps(ablation) == [] and legend_overlaps(knn_curves) == []


def test_a_seeds_diverged_run_marks_the_mean_it_is_part_of(tmp_path):
    def metrics_of(model, seed, index):
        return {"diverged": True, "divergence": "the loss of epoch 2 is nan"} if (seed, index) == (1, 0) else {}

    table, grid, config = seeded_results(tmp_path, [0, 1], metrics_of)
    md, csv = write_table(table, grid, config, tmp_path / "tables")
    frame = pd.read_csv(csv, keep_default_na=False)
    assert frame.loc[0, "top1_mark"] == "diverged: seed 1" and frame.loc[0, "top1_diff"] == ""
    assert frame.loc[0, "top1_paper_inside"] == "" and frame.loc[1, "top1_paper_inside"] == "True"
    assert "| 42.0 [16.6, 67.4] (n=2) (diverged: seed 1) | 56.7 | - | - |" in md.read_text()


def test_each_rows_step_over_the_row_above_is_paired_by_seed(tmp_path):
    # row 1 is 3 and 1 points above row 0 in seeds 0 and 1: a step of 2 +- 12.7062 * 1.4142 / 1.4142
    tops = {(0, 0): 40.0, (1, 0): 44.0, (0, 1): 43.0, (1, 1): 45.0}

    def metrics_of(model, seed, index):
        if (seed, index) in tops:
            return {"top1": tops[(seed, index)]}
        return {"diverged": True, "divergence": "nan"} if (seed, index) == (1, 2) else {}

    table, grid, config = seeded_results(tmp_path, [0, 1], metrics_of)
    md, csv = write_table(table, grid, config, tmp_path / "tables")
    frame = pd.read_csv(csv)
    assert frame["top1_step"][1] == pytest.approx(2.0)
    assert frame["top1_step_low"][1] == pytest.approx(2 - 12.7062, abs=1e-3)
    assert frame["top1_step_high"][1] == pytest.approx(2 + 12.7062, abs=1e-3)
    # a marked row has no step, nor has the row after it; the first row has none to take
    assert frame["top1_step"].isna().tolist() == [True, False, True, True]
    assert "| +2.0 [-10.7, +14.7] |" in md.read_text() and "step over the row above (paired by seed)" in md.read_text()


def test_seeds_marks():
    assert seeds_mark({0: "", 1: ""}) == ""
    assert seeds_mark({None: "diverged"}) == "diverged"
    assert seeds_mark({0: "chance: 3 classes", 1: "chance: 3 classes"}) == "chance: 3 classes"
    assert seeds_mark({0: "", 1: "diverged", 2: "diverged"}) == "diverged: seed 1; diverged: seed 2"


def test_one_seed_keeps_the_table_as_it_was(tmp_path):
    table, grid, config = seeded_results(tmp_path, [0])
    md, csv = write_table(table, grid, config, tmp_path / "tables")
    frame = pd.read_csv(csv)
    assert frame["top1_ours"].tolist() == [40.0, 50.0, 60.0, 70.0]
    assert not [c for c in frame.columns if c.endswith(("_low", "_high", "_n", "_paper_inside")) or "_seed" in c]
    assert "| 40.0 | 56.7 | -16.7 |" in md.read_text() and "CI" not in md.read_text()


def test_a_knn_figure_without_monitor_curves_says_why(tmp_path, monkeypatch):
    table, grid, config = seeded_results(tmp_path, [0])
    for summary in (tmp_path / "results" / "pretrain").glob("*/summary.json"):
        summary.write_text(json.dumps({"monitor": None}))
    texts = record_calls(monkeypatch, "text")
    assert knn_figure(table, grid, config, tmp_path / "knn.png").is_file()
    assert [args[3] for args, _ in texts] == [
        "Table 6: the representation monitor (test): no monitor curve (pretrain.monitor_every is 0 for its runs)"
    ]
