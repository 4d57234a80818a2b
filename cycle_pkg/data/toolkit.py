"""What the OTB-2015 and GOT-10k readers share: the got10k toolkit's datasets read into checked
sequences of (name, frame files, boxes), and the toolkit's printed warnings routed to the log."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError

log = logging.getLogger(__name__)
TrackingSequence = tuple[str, Sequence[str | Path], np.ndarray]  # name, frame files, boxes (N, 4) as x, y, w, h


@contextlib.contextmanager
def toolkit_prints_to_log() -> Iterator[None]:
    """The toolkit reports problems with print(); route them to the log."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        yield
    for line in printed.getvalue().splitlines():
        if line.strip():
            log.info("got10k: %s", line.strip())


def _check_boxes(name: str, files: list[str], boxes: np.ndarray, source: str) -> TrackingSequence:
    if not files:
        raise DatasetError(f"{source}: sequence {name} has no frames")
    boxes = np.atleast_2d(np.asarray(boxes, dtype=np.float64))
    if boxes.shape[1] != 4:
        raise DatasetError(f"{source}: expected 4 numbers (x, y, w, h) per line, got {boxes.shape[1]}")
    return name, [Path(f) for f in files], boxes


def toolkit_sequences(
    dataset: Any, errors: tuple[type[Exception], ...], explain: Callable[[str, str, Exception], str]
) -> list[TrackingSequence]:
    """Every sequence of a toolkit dataset (``OTB`` or ``GOT10k``), read and checked; one that the
    toolkit fails to read with ``errors`` is a DatasetError saying ``explain(box file, name, error)``."""
    sequences = []
    for number, name in enumerate(dataset.seq_names):
        source = dataset.anno_files[number]
        try:
            files, boxes = dataset[number]
        except errors as err:
            raise DatasetError(explain(source, name, err)) from err
        sequences.append(_check_boxes(name, files, boxes, source))
    return sequences
