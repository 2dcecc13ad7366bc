"""The lecture's tools: figures of notebook 04, the export (where the JSON's bytes go, PyTorch
against the JSON's own forward pass, what the JSON's network reads in each sample)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from cnnlib.lecture.plots.style import DIGIT, Array, show_image, to_numpy


def _size_text(size: int) -> str:
    if size >= 100_000:
        return f"{size / 1e6:.2f} MB"
    return f"{size / 1e3:.1f} kB" if size >= 1_000 else f"{size} bytes"


def json_sizes(top_level: Mapping[str, int], per_epoch: Mapping[str, int]) -> Figure:
    """Where the bytes of the JSON go: its top-level keys, then the parts of the epochs."""
    figure = Figure(figsize=(14, 5), layout="constrained")
    axes = figure.subplots(1, 2)
    panels = (
        (top_level, "top-level keys"),
        (per_epoch, "inside training_epochs (all epochs)"),
    )
    for ax, (sizes, title) in zip(axes, panels, strict=True):
        megabytes = [size / 1e6 for size in sizes.values()]
        bars = ax.barh(list(sizes), megabytes, color="tab:purple")
        ax.bar_label(bars, labels=[_size_text(size) for size in sizes.values()], padding=3)
        ax.set_xlim(0, max(megabytes) * 1.4)
        ax.invert_yaxis()
        ax.set_xlabel("size (MB)")
        ax.set_title(title)
    return figure


def logits_agreement(pytorch: Array, from_json: Array) -> Figure:
    """Each logit as PyTorch computes it against the NumPy forward pass from the JSON."""
    pytorch, from_json = to_numpy(pytorch).ravel(), to_numpy(from_json).ravel()
    figure = Figure(figsize=(6.5, 6))
    ax = figure.subplots()
    ax.scatter(pytorch, from_json, s=12, alpha=0.5)
    ends = [min(pytorch.min(), from_json.min()), max(pytorch.max(), from_json.max())]
    ax.plot(ends, ends, color="red", lw=1, label="identical")
    ax.set_xlabel("logit, PyTorch (.pth)")
    ax.set_ylabel("logit, NumPy (JSON weights)")
    ax.set_title(f"{len(pytorch):,} logits; largest gap {np.abs(pytorch - from_json).max():.1e}")
    ax.legend()
    return figure


def sample_predictions(pixels: Array, predicted: Array, labels: Array) -> Figure:
    """The sample digits [N, 28, 28] in rows of 10, each titled with the digit the JSON's
    network reads; a mistake framed in thick red, its title "read 5, is 3" in bold."""
    pixels, predicted, labels = to_numpy(pixels), to_numpy(predicted), to_numpy(labels)
    rows = math.ceil(len(pixels) / 10)
    figure = Figure(figsize=(12, rows * 1.45 + 0.9), layout="constrained")
    wrong = int((predicted != labels).sum())
    figure.suptitle(
        f"{len(pixels) - wrong} of {len(pixels)} read right; "
        f"{'the mistake is' if wrong == 1 else 'mistakes are'} framed in red"
    )
    for ax, digit, guess, label in zip(
        figure.subplots(rows, 10).flat, pixels, predicted, labels, strict=False
    ):
        show_image(ax, digit, DIGIT, None, None, f"{guess}")
        if guess != label:
            ax.set_title(f"read {guess}, is {label}", color="red", fontweight="bold")
            for spine in ax.spines.values():
                spine.set(color="red", linewidth=5)
    return figure
