"""What the figure tests look at in a saved figure."""

from __future__ import annotations


def legend_overlaps(figure) -> list[str]:
    """The figure's legends that lie over one of its (visible) axes, drawn as it was laid out when saved;
    an error if it has no legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)  # pyplot's was let go when the figure was closed
    canvas.draw()
    renderer = canvas.get_renderer()
    legends = [*figure.legends, *(axis.get_legend() for axis in figure.axes if axis.get_legend())]
    assert legends, "the figure has no legend"
    return [
        f"legend {[t.get_text() for t in legend.get_texts()]} over axes {axis.get_ylabel()!r}"
        for legend in legends
        for axis in figure.axes
        if axis.axison and legend.get_window_extent(renderer).overlaps(axis.get_window_extent(renderer))
    ]
