"""One consistent plot style for the whole course (matplotlib only).

``use_style()`` once per notebook; then the helpers below, or plain matplotlib with the same colours.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

#: colour-blind-safe palette (Okabe-Ito)
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def use_style() -> None:
    """Apply the course style: light grid, no top/right spines, readable sizes, the palette."""
    matplotlib.rcParams.update({
        "figure.figsize": (7.0, 3.6), "figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3,
        "axes.spines.top": False, "axes.spines.right": False, "axes.titlesize": 11,
        "axes.titleweight": "bold", "axes.labelsize": 10, "legend.frameon": False, "font.size": 10,
        "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    })


def smooth(values: Sequence[float], window: int = 20) -> np.ndarray:
    """Moving average (same length; the first points average what is available)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0 or window <= 1:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def plot_curves(curves: Mapping[str, Sequence[float]], title: str, xlabel: str = "step", ylabel: str = "",
                window: int = 1, ax: plt.Axes | None = None, logy: bool = False) -> plt.Axes:
    """Several named curves on one axis (raw values faint, smoothed values bold when ``window > 1``)."""
    ax = ax or plt.subplots()[1]
    for i, (name, ys) in enumerate(curves.items()):
        color = PALETTE[i % len(PALETTE)]
        if window > 1:
            ax.plot(ys, color=color, alpha=0.25, lw=0.8)
            ax.plot(smooth(ys, window), color=color, lw=2, label=name)
        else:
            ax.plot(ys, color=color, lw=2, label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    if len(curves) > 1:
        ax.legend()
    return ax


def grouped_bars(groups: Sequence[str], series: Mapping[str, Sequence[float]], title: str, ylabel: str = "",
                 ax: plt.Axes | None = None, ylim: tuple[float, float] | None = (0, 1), annotate: bool = True) -> plt.Axes:
    """Grouped bar chart: one group per entry of ``groups``, one bar per series, values written on top."""
    ax = ax or plt.subplots()[1]
    n = len(series)
    width = 0.8 / max(n, 1)
    x = np.arange(len(groups))
    for i, (name, vals) in enumerate(series.items()):
        bars = ax.bar(x + (i - (n - 1) / 2) * width, vals, width, label=name, color=PALETTE[i % len(PALETTE)])
        if annotate:
            ax.bar_label(bars, labels=[f"{v:.2f}" for v in vals], fontsize=7, padding=1)
    ax.set_xticks(x, groups)
    ax.set(title=title, ylabel=ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    if n > 1:
        ax.legend(fontsize=8)
    return ax


# ---------------------------------------------------------------------------------------------- concept diagrams
#: a node of a concept diagram: ``(x, y, text)`` in axis units (0..1 by default), optionally ``(x, y, text, colour)``
Node = tuple


def diagram(nodes: Mapping[str, Node], edges: Sequence[tuple], title: str = "", ax: plt.Axes | None = None,
            size: tuple[float, float] = (10.0, 3.2)) -> plt.Axes:
    """Draw a concept diagram - boxes joined by labelled arrows - so that every notebook's pipeline figure is
    code a reader can edit (no image files).

    ``nodes``: name -> ``(x, y, text[, colour])`` with centres in ``[0, 1]``; ``edges``: ``(from, to[, label[, style]])``
    with ``style`` ``"-"`` (solid, default) or ``"--"`` (dashed: a signal that does not carry gradient, a loop back).
    Returns the axes (frameless). Example::

        diagram({"x": (0.1, 0.5, "prompt x"), "pi": (0.4, 0.5, "policy pi"), "r": (0.75, 0.5, "verifier r")},
                [("x", "pi"), ("pi", "r", "completion y"), ("r", "pi", "reward", "--")], title="RL on a verifier")
    """
    if ax is None:
        _, ax = plt.subplots(figsize=size)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    bbox = ax.get_window_extent()
    aspect = bbox.width / max(bbox.height, 1.0)  # arcs bend in display space: convert their offsets to axis units
    boxes, labels = {}, {}
    for i, (name, node) in enumerate(nodes.items()):
        x, y, text = node[:3]
        colour = node[3] if len(node) > 3 else PALETTE[i % len(PALETTE)]
        boxes[name] = (x, y)
        labels[name] = ax.text(x, y, text, ha="center", va="center", fontsize=9, wrap=True,
                               bbox=dict(boxstyle="round,pad=0.45", fc=matplotlib.colors.to_rgba(colour, 0.15), ec=colour, lw=1.4))
    ax.figure.canvas.draw()  # the boxes get their sizes, so that arrows can end at their edges
    for edge in edges:
        a, b = edge[0], edge[1]
        label = edge[2] if len(edge) > 2 else ""
        style = edge[3] if len(edge) > 3 else "-"
        if a not in boxes or b not in boxes:
            raise KeyError(f"edge {a!r} -> {b!r} names a node that is not in nodes ({sorted(boxes)})")
        (x0, y0), (x1, y1) = boxes[a], boxes[b]
        bend = 0.35 if style == "--" or (x1 < x0 and abs(y1 - y0) < 1e-6) else 0.0
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color="0.35", lw=1.3, ls=style, shrinkA=2, shrinkB=2,
                                    patchA=labels[a].get_bbox_patch(), patchB=labels[b].get_bbox_patch(),
                                    connectionstyle=f"arc3,rad={bend}"))
        if label:  # on the curve's midpoint (a quadratic Bezier's, as matplotlib's arc3 draws it), a little above a line
            mx = (x0 + x1) / 2 + bend * (y1 - y0) / 2 / aspect
            my = (y0 + y1) / 2 - bend * (x1 - x0) / 2 * aspect + (0 if bend else 0.06)
            ax.text(mx, my, label, ha="center", va="center", fontsize=8, color="0.25", style="italic",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    if title:
        ax.set_title(title)
    return ax
