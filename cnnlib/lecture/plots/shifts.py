"""The lecture's tools: the figure of notebook 03 that puts translation to the test: the test
accuracy of the trained CNN and of an MLP trained the same way, on digits shifted sideways."""

from __future__ import annotations

from collections.abc import Mapping

from matplotlib.figure import Figure


def shifted_accuracies(curves: Mapping[str, Mapping[int, float]]) -> Figure:
    """One line per model: test accuracy (percent) against the shift in pixels, values written
    at every point (above the first model's, below the others'): the better model first."""
    figure = Figure(figsize=(9, 5), layout="constrained")
    ax = figure.subplots()
    for number, ((name, accuracy), marker) in enumerate(zip(curves.items(), "os^", strict=False)):
        shifts, values = list(accuracy), list(accuracy.values())
        ax.plot(shifts, values, marker=marker, lw=2, label=name)
        above = number == 0  # the first line's values above its points, the others' below
        for x, y in zip(shifts, values, strict=True):
            ax.annotate(
                f"{y:.1f}",
                (x, y),
                textcoords="offset points",
                xytext=(0, 9 if above else -11),
                ha="center",
                va="bottom" if above else "top",
            )
    ax.set_xticks(list(next(iter(curves.values()))))
    ax.set_xlabel("every test digit shifted right by (pixels)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.axhline(10, color="gray", ls=":", lw=1)
    ax.text(4, 12, "chance: 10%", color="gray", ha="right")
    ax.legend(loc="upper right")
    ax.set_title("Shifted digits: trained CNN against a trained MLP")
    return figure
