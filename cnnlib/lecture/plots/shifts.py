"""The lecture's tools: the figure of notebook 03 that puts translation to the test: the test
accuracy of the trained CNN and of an MLP trained the same way, on digits shifted sideways."""

from __future__ import annotations

from collections.abc import Mapping

from matplotlib.figure import Figure


def shifted_accuracies(curves: Mapping[str, Mapping[int, float]]) -> Figure:
    """One line per model: test accuracy (percent) against the shift in pixels, values written
    at every point."""
    figure = Figure(figsize=(9, 5), layout="constrained")
    ax = figure.subplots()
    for (name, accuracy), marker in zip(curves.items(), "os^", strict=False):
        shifts, values = list(accuracy), list(accuracy.values())
        ax.plot(shifts, values, marker=marker, lw=2, label=name)
        for x, y in zip(shifts, values, strict=True):
            ax.annotate(f"{y:.1f}", (x, y), textcoords="offset points", xytext=(0, 8), ha="center")
    ax.set_xticks(list(next(iter(curves.values()))))
    ax.set_xlabel("every test digit shifted right by (pixels)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.axhline(10, color="gray", ls=":", lw=1)
    ax.text(0, 12, "chance: 10%", color="gray")
    ax.legend(loc="lower left")
    ax.set_title("Shifted digits: trained CNN against a trained MLP")
    return figure
