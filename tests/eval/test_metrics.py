"""Every metric against values computed by hand: top-k accuracy, retrieval top-k, and the OTB
metrics of the got10k toolkit as our experiment uses them (IoU, centre error, success and precision
curves and scores, first frame set to the ground truth, per-sequence result files)."""

import json

import numpy as np
import pytest
import torch
from got10k.trackers import IdentityTracker
from got10k.utils.metrics import center_error, rect_iou
from PIL import Image

from cycle_pkg.eval.metrics import retrieval_chance, retrieval_topk, topk_accuracy
from cycle_pkg.eval.tracking.otb import OTBExperiment


def test_topk_accuracy_by_hand():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    labels = torch.tensor([1, 1, 0, 2])
    # top-1 sets: {1}, {0}, {2}, {0} -> row 0 only; top-2: {1, 2}, {0, 1}, {2, 1}, {0, 1} -> rows 0 and 1
    accuracy = topk_accuracy(scores, labels, ks=(1, 2, 5))
    assert accuracy[1] == pytest.approx(25.0)
    assert accuracy[2] == pytest.approx(50.0)
    assert accuracy[5] == pytest.approx(100.0)  # k beyond the classes counts every class
    with pytest.raises(ValueError, match="expected scores"):
        topk_accuracy(scores, labels[:2])


def test_retrieval_chance_by_hand():
    gallery = torch.tensor([0, 0, 1, 1])
    # one query of class 0: k = 1 draws one of its 2 in 4 (1/2); k = 2 misses only with both of class 1
    # (1 - 1/C(4, 2) = 5/6); k = 3 cannot miss; k beyond the gallery is the whole gallery
    expected = {1: 50.0, 2: 250 / 3, 3: 100.0, 50: 100.0}
    assert retrieval_chance(torch.tensor([0]), gallery, (1, 2, 3, 50)) == pytest.approx(expected)
    # a class the gallery lacks is never found: queries 0, 1, 2 average 1/2, 1/2 and 0
    assert retrieval_chance(torch.tensor([0, 1, 2]), gallery, (1,)) == pytest.approx({1: 100 / 3})


def test_retrieval_topk_by_hand():
    gallery = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    gallery_labels = torch.tensor([0, 1, 2, 3])
    # Cosine, not Euclidean: [10, 0.5] is nearest to [1, 0], then [1, 1], then [0, 1].
    queries = torch.tensor([[10.0, 0.5], [0.1, 1.0], [-1.0, -0.2]])
    query_labels = torch.tensor([2, 1, 0])
    scores = retrieval_topk(queries, query_labels, gallery, gallery_labels, ks=(1, 2, 3, 50))
    # query 0 (class 2): order 0, 2, 1, 3 -> hit at rank 2; query 1 (class 1): hit at rank 1;
    # query 2 (class 0): cosines 0.98 (3), -0.196 (1), -0.832 (2), -0.98 (0) -> hit at rank 4.
    assert scores[1] == pytest.approx(100 / 3)
    assert scores[2] == pytest.approx(200 / 3)
    assert scores[3] == pytest.approx(200 / 3)
    assert scores[50] == pytest.approx(100.0)  # k beyond the gallery counts all of it


def test_iou_and_centre_error_by_hand():
    boxes = np.array([[1, 1, 10, 10], [1, 1, 10, 10], [1, 1, 10, 10], [0, 0, 4, 2]], dtype=float)
    truth = np.array([[1, 1, 10, 10], [6, 1, 10, 10], [21, 1, 10, 10], [2, 0, 4, 2]], dtype=float)
    assert rect_iou(boxes, truth) == pytest.approx([1.0, 50 / 150, 0.0, 4 / 12])
    # centres are x + (w - 1) / 2: 5.5 vs 10.5, 5.5 vs 25.5, 1.5 vs 3.5
    assert center_error(boxes, truth) == pytest.approx([0.0, 5.0, 20.0, 2.0])


def make_experiment(tmp_path, sequences):
    return OTBExperiment(sequences, tmp_path / "results", tmp_path / "reports")


def test_success_and_precision_curves_by_hand(tmp_path):
    experiment = make_experiment(tmp_path, [("a", ["f1", "f2"], np.ones((2, 4)))])
    ious = np.array([1.0, 1.0, 1 / 3, 0.0])
    errors = np.array([0.0, 0.0, 5.0, 20.0])
    success, precision = experiment._calc_curves(ious, errors)
    thresholds = np.linspace(0, 1, 21)
    expected_success = [0.75 if t < 1 / 3 else (0.5 if t < 1 else 0.0) for t in thresholds]
    assert success == pytest.approx(expected_success)  # IoU strictly greater than the threshold
    expected_precision = [0.5 if t < 5 else (0.75 if t < 20 else 1.0) for t in range(51)]
    assert precision == pytest.approx(expected_precision)  # error at most the threshold


def test_otb_experiment_records_and_scores_like_the_toolkit(tmp_path):
    # IdentityTracker repeats the first box, so every prediction is [1, 1, 10, 10].
    truth_a = np.array([[1, 1, 10, 10], [1, 1, 10, 10], [6, 1, 10, 10], [21, 1, 10, 10]], dtype=float)
    truth_b = np.array([[1, 1, 10, 10], [1, 1, 10, 10]], dtype=float)
    (tmp_path / "frames").mkdir()
    files = [tmp_path / "frames" / f"{n}.jpg" for n in range(4)]
    for path in files:
        Image.new("RGB", (32, 32), (128, 128, 128)).save(path)
    experiment = make_experiment(tmp_path, [("a", files, truth_a), ("b", files[:2], truth_b)])
    experiment.run(IdentityTracker())

    record = tmp_path / "results" / "OTB2015" / "IdentityTracker" / "a.txt"
    assert record.read_text().splitlines()[2] == "1.000,1.000,10.000,10.000"  # the toolkit's format
    assert (record.parent / "times" / "a_time.txt").is_file()

    # Predictions off in the first frame are overruled by the ground truth (the toolkit's rule).
    record.write_text(record.read_text().replace("1.000,1.000,10.000,10.000", "90.0,90.0,3.0,3.0", 1))
    overall = experiment.performance("IdentityTracker")["overall"]
    # Sequence a: IoUs 1, 1, 1/3, 0 -> success AUC (7 * 0.75 + 13 * 0.5 + 0) / 21; precision@20 = 1.
    # Sequence b: IoUs 1, 1 -> AUC 20 / 21; precision@20 = 1. The curves are averaged over sequences.
    auc_a, auc_b = (7 * 0.75 + 13 * 0.5) / 21, 20 / 21
    assert overall["success_score"] == pytest.approx((auc_a + auc_b) / 2)
    assert overall["precision_score"] == pytest.approx(1.0)
    assert overall["precision_curve"][0] == pytest.approx((0.5 + 1.0) / 2)
    assert overall["success_rate"] == pytest.approx((0.5 + 1.0) / 2)  # threshold 0.5
    report = tmp_path / "reports" / "OTB2015" / "IdentityTracker"
    assert json.loads((report / "performance.json").read_text())["IdentityTracker"]["overall"]["precision_score"] == 1.0
    for plot in experiment.plot_files("IdentityTracker"):
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
