"""A pytest plugin (registered by tests/conftest.py): the long tests, marked ``long(minutes=N)``,
start first, spread over pytest-xdist's parallel workers."""

from __future__ import annotations

import os


def minutes(group: list) -> float:
    """How long a group of long tests runs, from their ``long(minutes=...)`` markers (1 unsaid)."""
    return sum(item.get_closest_marker("long").kwargs.get("minutes", 1) for item in group)


def pytest_collection_modifyitems(config, items):
    """The long tests start at once, one group per worker. `make test` runs pytest-xdist's work
    stealing, which hands worker i the i-th of n consecutive equal shares of this list and runs each
    share in order (an idle worker then steals from the tail of a busy one's). So the long tests go
    to the heads of the shares, the longest first to the least loaded share (a module marked long as
    a whole stays in one share, so that its fixtures are built once), and the short ones fill the
    shares behind them."""
    groups: dict[str, list] = {}
    short = []
    for item in items:
        if item.get_closest_marker("long") is None:
            short.append(item)
            continue
        own = any(mark.name == "long" for mark in item.own_markers)  # else the module's mark
        groups.setdefault(item.nodeid if own else item.module.__name__, []).append(item)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    heads: list[list] = [[] for _ in range(workers)]
    for group in sorted(groups.values(), key=minutes, reverse=True):
        min(heads, key=minutes).extend(group)
    ordered, remaining = [], len(items)
    for i, head in enumerate(heads):
        size = remaining // (workers - i)  # the share xdist sends worker i
        fill = max(0, size - len(head))
        ordered += head + short[:fill]
        short = short[fill:]
        remaining -= len(head) + fill
    items[:] = ordered + short
