"""The divergence check shared by the evaluations' trainings, against hand-made loss histories, and
on the probe that diverged silently at the test scale (features ~200 in norm, lr 0.3)."""

import json
import logging
import math

import pytest
import torch

from cycle_pkg.eval.divergence import LossHistory, diverged, divergence_flags, divergence_reason
from cycle_pkg.eval.linear import new_classifier, train_fast
from cycle_pkg.eval.linear_settings import LinearEvalConfig


def history(*epochs: list[float]) -> LossHistory:
    losses = LossHistory()
    for steps in epochs:
        losses.add_epoch(steps)
    return losses


def test_history_keeps_the_first_step_and_epoch_means():
    losses = history([4.0, 2.0], [1.0, 2.0, 3.0])
    assert (losses.first_step, losses.epochs, losses.last) == (4.0, [3.0, 2.0], 2.0)


def test_a_training_that_ends_within_twice_its_start_did_not_diverge():
    assert divergence_reason(history([2.0, 1.0], [1.0])) is None
    assert divergence_reason(history([1.0, 5.0], [2.0])) is None  # 2.0 is not more than 2 x 1.0
    assert divergence_reason(history([5.0])) is None


def test_a_last_epoch_far_above_the_first_step_is_a_divergence():
    # The first epoch's mean (1510) already holds the blow-up; the first step (2.0) does not.
    losses = history([2.0, 3018.0], [6685.0], [1878.0])
    reason = divergence_reason(losses)
    assert reason is not None and "1878 is 939.0x the first step's 2" in reason
    assert divergence_reason(history([1.0, 2.0], [2.5]), factor=3.0) is None


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_loss_is_a_divergence(bad):
    assert divergence_reason(history([2.0, 1.0], [bad, 1.0], [1.0])) == f"the loss of epoch 2 is {bad}"
    assert divergence_reason(history([bad, 1.0])) == f"the loss of the first step is {bad}"


def test_flags_for_the_metrics_and_a_warning_in_the_log(caplog):
    with caplog.at_level(logging.WARNING):
        assert divergence_flags("linear probe", history([1.0], [0.5])) == {"diverged": False, "divergence": ""}
        assert not caplog.records
        flags = divergence_flags("linear probe", history([1.0], [7.0]))
    assert flags["diverged"] is True and flags["divergence"].startswith("the last epoch's loss 7")
    assert "linear probe diverged" in caplog.text
    assert diverged(flags) and not diverged({"top1": 50.0})


def large_uncentred_features(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features like those of a 12-step test-scale checkpoint in eval mode: BatchNorm's running
    statistics still hold much of their initial values, so every feature is offset by ~6 (norm ~200)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(3).repeat_interleave(8)
    values = 6 + 4 * torch.rand(len(labels), 512, generator=generator)
    values[torch.arange(len(labels)), labels] += 2.0
    return values, labels


def test_the_test_scales_old_probe_diverges_and_says_so():
    """lr 0.3 (the test scale's setting while its training loss reached thousands) on such features:
    the check flags it, although its last epoch ends near its first epoch's mean; a step size matched
    to their scale trains, unflagged."""
    features, labels = large_uncentred_features(0)
    assert 150 < features.norm(dim=1).mean() < 250
    runs = {}
    for lr in (0.3, 3e-5):
        cfg = LinearEvalConfig(protocol="fast", epochs=4, milestones=[2, 3], batch_size=16, lr=lr)
        torch.manual_seed(0)
        runs[lr] = train_fast(features, labels, new_classifier(512, 3), cfg)
    assert runs[0.3].first_step < 10 and runs[0.3].last > 100 and runs[0.3].last < 2 * runs[0.3].epochs[0]
    assert divergence_reason(runs[0.3]) is not None
    assert divergence_reason(runs[3e-5]) is None


def test_a_diverged_probes_metrics_file_is_strict_json(tmp_path):
    """NaN is Python's extension of JSON, which strict parsers (jq, JavaScript, Go) reject: a number that is
    not finite is written as null beside the divergence flag."""
    from cycle_pkg.jobs.atomic import write_json_atomic

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    path = tmp_path / "metrics.json"
    write_json_atomic(path, {"metrics": {"top1": math.nan, "loss": [1.0, math.inf], "diverged": 1}})
    assert json.loads(path.read_text(), parse_constant=refuse) == {
        "metrics": {"top1": None, "loss": [1.0, None], "diverged": 1}
    }
