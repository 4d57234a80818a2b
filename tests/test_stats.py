"""Intervals over seeds, against values computed by hand."""

import math

import pytest

from cycle_pkg.stats import t_interval


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
