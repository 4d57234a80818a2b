"""Intervals over seeds: Student's t confidence interval of a mean, from n runs that differ only by
their seed. With one run there is no spread to estimate, hence no interval. And whether an accuracy
is above chance: the binomial tail of its number of correct answers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float | None  # None with fewer than two values
    high: float | None
    n: int

    def contains(self, value: float) -> bool | None:
        """Whether ``value`` lies inside the interval; None when there is no interval."""
        if self.low is None or self.high is None:
            return None
        return self.low <= value <= self.high


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """mean +- t_{(1+c)/2, n-1} * s / sqrt(n), s the sample standard deviation (n - 1 in its denominator)."""
    n = len(values)
    if n == 0:
        raise ValueError("an interval needs at least one value")
    mean = math.fsum(values) / n
    if n == 1:
        return Interval(mean, None, None, 1)
    from scipy.stats import t  # a second to import: only intervals need it

    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def binomial_tail(successes: int, n: int, p: float) -> float:
    """P(X >= successes) for X ~ Binomial(n, p): how often guessing with success probability ``p`` does
    at least as well (summed in log space: n is 50,000 for ImageNet's validation set)."""
    if successes <= 0:
        return 1.0
    if successes > n:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = (
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
        for i in range(successes, n + 1)
    )
    return min(1.0, math.fsum(math.exp(t) for t in terms))


def binomial_se(percent: float, n: int) -> float:
    """The standard error (in points) of an accuracy of ``percent`` % measured on ``n`` items: the
    evaluation's own noise, sqrt(p (1 - p) / n), apart from the seeds'."""
    p = percent / 100
    return 100 * math.sqrt(p * (1 - p) / n)
