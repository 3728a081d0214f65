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
