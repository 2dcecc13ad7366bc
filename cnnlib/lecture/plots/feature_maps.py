"""The lecture's tools: figures of notebook 03, feature maps (filters, maps, predictions and
every epoch side by side)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.patches import Patch

from cnnlib.lecture.features import FilterSummary, output_correlation, reference_responses
from cnnlib.lecture.plots import style

TRUE_DIGIT, WRONG_GUESS, OTHER_DIGIT = "tab:green", "tab:red", "tab:gray"
WRONG_HATCH = "xx"  # a wrong answer is crossed out, not only red: readable without colour


def input_panel(figure: Figure | SubFigure, image: style.Array) -> None:
    """The input digit, drawn beside a figure of its feature maps."""
    ax = figure.subplots()
    style.show_image(ax, style.to_numpy(image).squeeze(), style.DIGIT, None, None, "input")


def with_input(width: float, height: float, image: style.Array) -> SubFigure:
    """A figure with the input digit in a narrow left column; returns the space on its right."""
    figure = Figure(figsize=(width, height), layout="constrained")
    left, right = figure.subfigures(1, 2, width_ratios=[1.6, width - 1.6])
    input_panel(left, image)
    return right


def probability_bars(ax: Axes, logits: style.Array, label: int) -> None:
    """Softmax of the logits as bars: the true digit green, a wrong top guess red."""
    probabilities = torch.as_tensor(style.to_numpy(logits)).softmax(dim=-1).numpy()
    guess = int(probabilities.argmax())
    colors = [
        TRUE_DIGIT if digit == label else WRONG_GUESS if digit == guess else OTHER_DIGIT
        for digit in range(10)
    ]
    bars = ax.bar(range(10), probabilities, color=colors)
    if guess != label:
        bars[guess].set_hatch(WRONG_HATCH)
        bars[guess].set_edgecolor("black")
    ax.set_xticks(range(10))
    ax.set_ylim(0, 1)
    ax.set_xlabel("digit")


def bar_legend(figure: Figure | SubFigure) -> None:
    handles = [
        Patch(color=TRUE_DIGIT, label="the true digit"),
        Patch(fc=WRONG_GUESS, ec="black", hatch=WRONG_HATCH, label="top guess, when wrong"),
        Patch(color=OTHER_DIGIT, label="other digits"),
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False)


def conv1_filters(weights_by_epoch: Mapping[int, style.Array]) -> Figure:
    """conv1's four 3x3 kernels, one row per epoch, each weight written in its cell."""
    bound = max(style.abs_limit(weight) for weight in weights_by_epoch.values())
    figure = Figure(figsize=(9.5, 2.4 * len(weights_by_epoch) + 0.7), layout="constrained")
    axes = figure.subplots(len(weights_by_epoch), 4, squeeze=False)
    for row, (epoch, weight) in zip(axes, weights_by_epoch.items(), strict=True):
        for channel, (ax, kernel) in enumerate(zip(row, style.to_numpy(weight)[:, 0], strict=True)):
            image = style.show_image(ax, kernel, style.SIGNED, -bound, bound)
            style.cell_values(ax, image, kernel, "{:.2f}")
            if ax in axes[0]:
                ax.set_title(f"filter #{channel}")
        row[0].set_ylabel(f"epoch {epoch}")
    figure.colorbar(image, ax=axes, label="weight", shrink=0.8)
    figure.suptitle("conv1: the four 3×3 kernels, one row per epoch")
    return figure


def filter_roles(
    image: style.Array, kernels: style.Array, maps: style.Array, summaries: Sequence[FilterSummary]
) -> Figure:
    """A row per conv1 filter: its kernel, its map of the digit, and the hand-made map (stroke,
    vertical or horizontal edge) that its map follows most closely, with their correlation r."""
    kernels, maps = style.to_numpy(kernels)[:, 0], style.to_numpy(maps)
    references = {
        name: style.to_numpy(values) for name, values in reference_responses(image).items()
    }
    right = with_input(10, 2.1 * len(kernels) + 0.5, image)
    axes = right.subplots(len(kernels), 3, squeeze=False)
    bound = style.abs_limit(kernels)
    for row, kernel, values, summary in zip(axes, kernels, maps, summaries, strict=True):
        shown = style.show_image(row[0], kernel, style.SIGNED, -bound, bound)
        style.cell_values(row[0], shown, kernel, "{:.2f}")
        row[0].set_ylabel(f"filter #{summary.channel}")
        style.show_image(
            row[1], values, style.SIGNED, -style.abs_limit(values), style.abs_limit(values)
        )
        reference = references[summary.best]
        style.show_image(
            row[2], reference, style.SIGNED, -style.abs_limit(reference), style.abs_limit(reference)
        )
        row[2].set_xlabel(f"{summary.best}: r = {summary.r[summary.best]:+.2f}")
    titles = ("kernel", "its map of the digit", "closest hand-made map")
    for ax, title in zip(axes[0], titles, strict=True):
        ax.set_title(title)
    return right.figure


def correlation_matrices(matrices_by_epoch: Mapping[int, style.Array]) -> Figure:
    """How alike conv1's maps of the digit are: r for every pair of filters, one panel per epoch."""
    figure = Figure(figsize=(4.2 * len(matrices_by_epoch) + 1.5, 4.2), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(matrices_by_epoch), sharex=True, sharey=True))
    for ax, (epoch, matrix) in zip(axes, matrices_by_epoch.items(), strict=True):
        matrix = style.to_numpy(matrix)
        image = style.show_image(ax, matrix, style.SIGNED, -1, 1, f"epoch {epoch}")
        style.cell_values(ax, image, matrix, "{:.2f}")
        ticks = range(len(matrix))
        ax.set_xticks(ticks, [f"#{channel}" for channel in ticks])
        ax.set_yticks(ticks, [f"#{channel}" for channel in ticks])
        ax.set_xlabel("filter")
    axes[0].set_ylabel("filter")
    figure.colorbar(image, ax=list(axes), label="r between two maps", shrink=0.9)
    return figure


def layer_changes(
    weight_cosines: Mapping[str, float], output_correlations: Mapping[str, float], last: int
) -> Figure:
    """Epoch 0 against epoch `last`, layer by layer: how much of their direction the weights kept
    (cosine), and how much the layer's output for the digit still looks like it did (r)."""
    figure = Figure(figsize=(14, 5), layout="constrained")
    weights_ax, outputs_ax = figure.subplots(1, 2, sharey=True)
    panels = (
        (weights_ax, weight_cosines, "tab:blue", f"weights: epoch 0 vs {last} (cosine)"),
        (outputs_ax, output_correlations, "tab:orange", f"output for the digit: 0 vs {last} (r)"),
    )
    for ax, values, color, title in panels:
        bars = ax.bar(list(values), list(values.values()), color=color)
        ax.bar_label(
            bars,
            labels=[style.number_text(value, "{:.2f}") for value in values.values()],
            padding=3,
        )
        ax.set_title(title)
        ax.set_xlabel("layer (input side on the left)")
        ax.axhline(0, color="black", lw=1)
    lowest = min(0.0, *weight_cosines.values(), *output_correlations.values())
    weights_ax.set_ylim(lowest - 0.12 if lowest < 0 else 0, 1.1)
    weights_ax.set_ylabel("1 = unchanged pattern")
    return figure


def conv2_filters(weight: style.Array, epoch: int) -> Figure:
    """conv2's kernels [8, 4, 3, 3]: a column per output map, a row per input channel; the colour
    scale ends at the 99th percentile of the weights, so that a few large ones don't wash it out."""
    weight = style.to_numpy(weight)
    bound = style.robust_limit(weight)
    figure = Figure(figsize=(11, 5.8), layout="constrained")
    axes = figure.subplots(weight.shape[1], weight.shape[0])
    for (row, column), ax in np.ndenumerate(axes):
        image = style.show_image(ax, weight[column, row], style.SIGNED, -bound, bound)
        if row == 0:
            ax.set_title(f"out #{column}")
        if column == 0:
            ax.set_ylabel(f"in #{row}")
    figure.colorbar(image, ax=axes, label="weight", shrink=0.8, extend="both")
    figure.suptitle(f"conv2 at epoch {epoch}: each output map mixes all four pool1 maps")
    return figure


def layer_bound(layer: str, values: style.Array) -> float:
    """conv2's scale ends at a percentile (a few extreme values would wash out the rest)."""
    return style.robust_limit(values) if layer == "conv2" else style.abs_limit(values)


def feature_maps(
    maps_by_epoch: Mapping[int, style.Array], layer: str, image: style.Array
) -> Figure:
    """One layer's output for the digit (drawn on the left), one row per epoch, each row on its
    own colour scale; channel k sits at the same x in every row, to compare down a column."""
    rows = [
        (f"epoch {epoch}", style.as_grid(maps)[None] if layer == "fc1" else maps, 0.0)
        for epoch, maps in maps_by_epoch.items()
    ]
    rows = [(label, maps, layer_bound(layer, maps)) for label, maps, _ in rows]
    right = with_input(13, (1.3 if layer == "fc1" else 2.2) * len(rows) + 0.8, image)
    style.maps_grid(right, rows, layer in style.SIGNED_LAYERS)
    shape = "×".join(map(str, next(iter(maps_by_epoch.values())).shape))
    right.suptitle(f"{layer} ({shape}) of the digit, by epoch")
    return right.figure


def predictions(logits_by_epoch: Mapping[int, style.Array], label: int) -> Figure:
    """The predicted probabilities for one image at several epochs."""
    figure = Figure(figsize=(4.5 * len(logits_by_epoch), 4.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(logits_by_epoch), sharey=True))
    for ax, (epoch, logits) in zip(axes, logits_by_epoch.items(), strict=True):
        probability_bars(ax, logits, label)
        probability = float(torch.as_tensor(style.to_numpy(logits)).softmax(dim=-1)[label])
        ax.set_title(f"epoch {epoch}: {probability:.0%} on {label}")
    axes[0].set_ylabel("probability")
    bar_legend(figure)
    return figure


def every_epoch(
    activations_by_epoch: Mapping[int, Mapping[str, style.Array]], label: int
) -> Figure:
    """All epochs at a glance: how close each layer's output for the digit is to its final form
    (r with the last epoch's), and the probability of the true digit."""
    epochs = sorted(activations_by_epoch)
    last = activations_by_epoch[epochs[-1]]
    figure = Figure(figsize=(14, 5), layout="constrained")
    layers_ax, probability_ax = figure.subplots(1, 2, sharex=True)
    for name in last:
        r = [output_correlation(activations_by_epoch[epoch][name], last[name]) for epoch in epochs]
        layers_ax.plot(epochs, r, ms=7, label=name, **style.LAYER_STYLES[name])
    layers_ax.set_ylabel(f"r with epoch {epochs[-1]}")
    layers_ax.set_title("each layer's output, against its final form")
    layers_ax.grid(alpha=0.3)
    layers_ax.legend(ncols=2, loc="lower right")
    logits = [
        torch.as_tensor(style.to_numpy(activations_by_epoch[epoch]["logits"])) for epoch in epochs
    ]
    probabilities = [float(values.softmax(dim=-1)[label]) for values in logits]
    right = [int(values.argmax()) == label for values in logits]
    bars = probability_ax.bar(
        epochs, probabilities, color=[TRUE_DIGIT if ok else WRONG_GUESS for ok in right]
    )
    for bar, ok in zip(bars, right, strict=True):
        if not ok:
            bar.set_hatch(WRONG_HATCH)
            bar.set_edgecolor("black")
    probability_ax.set_ylim(0, 1)
    probability_ax.set_ylabel(f"probability of {label}")
    probability_ax.set_title(f"the prediction for the digit (a {label})")
    handles = [
        Patch(color=TRUE_DIGIT, label=f"top guess {label}: right"),
        Patch(
            fc=WRONG_GUESS, ec="black", hatch=WRONG_HATCH, label="top guess another digit: wrong"
        ),
    ]
    figure.legend(handles=handles, loc="outside lower right", ncols=2, frameon=False)
    for ax in (layers_ax, probability_ax):
        ax.set_xlabel("epoch")
        ax.set_xticks(epochs[:: max(1, len(epochs) // 10)])
    return figure
