"""What the figure tests look at in a saved figure."""

from __future__ import annotations


def _drawn(figure) -> tuple:
    """The figure drawn as it was laid out when saved: its renderer and its legends."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)  # pyplot's was let go when the figure was closed
    canvas.draw()
    legends = [*figure.legends, *(axis.get_legend() for axis in figure.axes if axis.get_legend())]
    return canvas.get_renderer(), legends


def legend_overlaps(figure) -> list[str]:
    """The figure's legends that lie over one of its (visible) axes; an error if it has no legend."""
    renderer, legends = _drawn(figure)
    assert legends, "the figure has no legend"
    return [
        f"legend {[t.get_text() for t in legend.get_texts()]} over axes {axis.get_ylabel()!r}"
        for legend in legends
        for axis in figure.axes
        if axis.axison and legend.get_window_extent(renderer).overlaps(axis.get_window_extent(renderer))
    ]


def label_overlaps(figure) -> list[str]:
    """Tick labels of one axis that run into each other, and legends over an axis's tick labels."""
    renderer, legends = _drawn(figure)
    found = []
    for axis in figure.axes:
        ticks = [t for t in axis.get_xticklabels() if t.get_text()]
        boxes = [t.get_window_extent(renderer) for t in ticks]
        found += [
            f"ticks {ticks[i].get_text()!r} and {ticks[i + 1].get_text()!r} meet"
            for i in range(len(boxes) - 1)
            if boxes[i].overlaps(boxes[i + 1])
        ]
        found += [
            f"legend {[t.get_text() for t in legend.get_texts()]} over tick {tick.get_text()!r}"
            for legend in legends
            for tick, box in zip(ticks, boxes, strict=True)
            if legend.get_window_extent(renderer).overlaps(box)
        ]
    return found
