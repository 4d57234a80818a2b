"""Matplotlib without a display, and figures written as PNG atomically."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .atomic import write_bytes_atomic


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (imported on first use: it costs half a second)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def legend_below(figure: Any, axes: Iterable[Any], columns: int = 3, fontsize: float = 8) -> None:
    """One legend for the panels ``axes`` (each label once), below the figure: off every panel's points.
    :func:`save_png` keeps what is drawn outside the figure."""
    handles: dict[str, Any] = {}
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        ncols = min(columns, len(handles))
        figure.legend(
            list(handles.values()),
            list(handles),
            loc="upper center",
            bbox_to_anchor=(0.5, 0),
            ncols=ncols,
            fontsize=fontsize,
        )


def legend_beside(axis: Any, **kwargs: Any) -> None:
    """The axes' legend to its right, outside it (the layout narrows the axes to make room)."""
    axis.legend(loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, **kwargs)


def save_png(figure: Any, path: str | Path, dpi: int = 120, rect: tuple[float, ...] | None = None) -> Path:
    """``rect``: the part of the figure the axes are laid out in. The image takes in what is drawn outside
    the figure (a legend below it), trimmed to what is drawn."""
    buffer = io.BytesIO()
    figure.tight_layout(rect=rect)
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(figure)
    write_bytes_atomic(path, buffer.getvalue())
    return Path(path)
