"""Matplotlib without a display, and figures written as PNG atomically."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from .atomic import write_bytes_atomic


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (imported on first use: it costs half a second)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(figure: Any, path: str | Path, dpi: int = 120, rect: tuple[float, ...] | None = None) -> Path:
    """``rect``: the part of the figure the axes are laid out in (room left for a figure legend)."""
    buffer = io.BytesIO()
    figure.tight_layout(rect=rect)
    figure.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(figure)
    write_bytes_atomic(path, buffer.getvalue())
    return Path(path)
