"""Intervals over seeds, against values computed by hand."""

import math

import pytest

from cycle_pkg.reproduction.stats import binomial_tail, t_interval


def test_t_interval_by_hand():
    # mean 2, s = 1, t(0.975, 2 degrees of freedom) = 4.302653: 2 +- 4.302653 / sqrt(3)
    interval = t_interval([1.0, 2.0, 3.0])
    assert interval.n == 3 and interval.mean == pytest.approx(2.0)
    assert interval.low == pytest.approx(2 - 4.302653 / math.sqrt(3), abs=1e-6)
    assert interval.high == pytest.approx(2 + 4.302653 / math.sqrt(3), abs=1e-6)
    assert interval.contains(4.4) and not interval.contains(4.5)
    # two seeds: t(0.975, 1) = 12.706205, s = |a - b| / sqrt(2)
    two = t_interval([10.0, 12.0])
    assert two.high - two.mean == pytest.approx(12.706205 * math.sqrt(2) / math.sqrt(2), abs=1e-5)
    assert t_interval([5.0, 5.0]).low == t_interval([5.0, 5.0]).high == 5.0


def test_one_value_has_no_interval():
    one = t_interval([7.5])
    assert (one.mean, one.low, one.high, one.n) == (7.5, None, None, 1)
    assert one.contains(7.5) is None
    with pytest.raises(ValueError, match="at least one value"):
        t_interval([])


def test_binomial_tail_by_hand():
    assert binomial_tail(2, 3, 0.5) == pytest.approx(3 / 8 + 1 / 8)  # P(X >= 2) of three fair coins
    assert binomial_tail(3, 3, 0.5) == pytest.approx(1 / 8)
    assert binomial_tail(1, 2, 0.1) == pytest.approx(1 - 0.9**2)
    assert binomial_tail(4, 4, 0.25) == pytest.approx(0.25**4)
    assert binomial_tail(0, 5, 0.3) == 1.0 and binomial_tail(6, 5, 0.3) == 0.0
    # ImageNet's 50,000 validation images: half right by chance 1/2 is the mean, P = 1/2 + P(X = n/2)
    assert binomial_tail(25_000, 50_000, 0.5) == pytest.approx(0.5 + 0.5 * math.sqrt(2 / (math.pi * 50_000)), rel=1e-4)
