"""The lecture's tools: figures of notebook 01, the model (layers, parameters, receptive fields,
convolution and pooling by hand, the whole network on one digit)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cnnlib.lecture.plots import style


def digit(pixels: style.Array, title: str) -> Figure:
    """One 28x28 digit with the value of each pixel on a colour bar."""
    figure = Figure(figsize=(5.5, 4.5))
    ax = figure.subplots()
    image = style.show_image(ax, pixels, style.DIGIT, 0, 255, title)
    figure.colorbar(image, ax=ax, label="pixel value (0 = black, 255 = white)")
    return figure


def layer_sizes(shapes: Mapping[str, Sequence[int]]) -> Figure:
    """How many numbers each layer hands to the next, for one image."""
    names = list(shapes)
    sizes = [math.prod(shape) for shape in shapes.values()]
    figure = Figure(figsize=(11, 4.5))
    ax = figure.subplots()
    bars = ax.bar(names, sizes, color="tab:blue")
    labels = [
        f"{'×'.join(map(str, shape))}\n= {size:,}" if len(shape) > 1 else f"{size:,}"
        for shape, size in zip(shapes.values(), sizes, strict=True)
    ]
    ax.bar_label(bars, labels=labels, padding=3)
    ax.set_ylim(0, max(sizes) * 1.25)
    ax.set_xlabel("layer output")
    ax.set_ylabel("numbers per image")
    ax.set_title("How many numbers each layer passes on (labels: shape = count)")
    return figure


def parameter_counts(counts: Mapping[str, int]) -> Figure:
    """Trainable parameters per layer: where the 27,354 numbers that training tunes live."""
    figure = Figure(figsize=(9, 4.5))
    ax = figure.subplots()
    bars = ax.bar(list(counts), list(counts.values()), color="tab:orange")
    ax.bar_label(bars, labels=[f"{count:,}" for count in counts.values()], padding=3)
    ax.set_ylim(0, max(counts.values()) * 1.15)
    ax.set_xlabel("layer")
    ax.set_ylabel("parameters (weights + biases)")
    ax.set_title(f"{sum(counts.values()):,} parameters in total")
    return figure


def weight_sharing(counts: Mapping[str, int]) -> Figure:
    """Parameter counts of designs side by side, on a log axis: they span six powers of ten."""
    figure = Figure(figsize=(13, 1.1 * len(counts) + 1.3), layout="constrained")
    ax = figure.subplots()
    bars = ax.barh(list(counts), list(counts.values()), color="tab:orange")
    ax.bar_label(bars, labels=[f"{count:,}" for count in counts.values()], padding=4)
    ax.set_xscale("log")
    ax.set_xlim(1, max(counts.values()) * 30)
    ax.invert_yaxis()
    ax.set_xlabel("parameters (log scale: each tick is 10 times the previous)")
    ax.set_title("Weight sharing in numbers")
    return figure


def receptive_fields(
    image: style.Array,
    maps: Mapping[str, style.Array],
    units: Mapping[str, tuple[int, int]],
    fields: Mapping[str, tuple[slice, slice]],
) -> Figure:
    """Top row: one map of each layer, one unit marked, each with its colour bar (signed maps on
    the blue-white-red scale, maps after ReLU on white-to-red, see `style`); bottom row: the
    input pixels that unit sees (its receptive field), boxed on the digit."""
    figure = Figure(figsize=(16, 8.6), layout="constrained")
    axes = figure.subplots(2, len(maps))
    for (top, bottom), (name, values) in zip(axes.T, maps.items(), strict=True):
        values = style.to_numpy(values)
        row, column = units[name]
        height, width = values.shape
        vmin, cmap = (
            (-style.abs_limit(values), style.SIGNED)
            if name in style.SIGNED_LAYERS
            else (0.0, style.POSITIVE)
        )
        shown = style.show_image(
            top, values, cmap, vmin, style.abs_limit(values), f"{name} map #0: {height}×{width}"
        )
        figure.colorbar(shown, ax=top, shrink=0.8, label="activation")
        top.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, ec="lime", lw=3))
        top.set_xlabel(f"unit at row {row}, column {column}")
        rows, columns = fields[name]
        style.show_image(bottom, style.to_numpy(image).squeeze(), style.DIGIT, None, None)
        size = (rows.stop - rows.start, columns.stop - columns.start)
        corner = (columns.start - 0.5, rows.start - 0.5)
        bottom.add_patch(Rectangle(corner, size[1], size[0], fill=False, ec="lime", lw=3))
        bottom.set_xlabel(f"it sees {size[0]}×{size[1]} input pixels")
    figure.suptitle(
        "One unit (green square, top) and the input pixels it can see (green box, below)"
    )
    return figure


def translation(
    images: tuple[style.Array, style.Array],
    maps: tuple[style.Array, style.Array],
    difference: style.Array,
    columns: int,
) -> Figure:
    """A digit and the same digit moved right, each with one conv1 map, and the difference between
    the moved digit's map and the original map moved by the same number of pixels."""
    figure = Figure(figsize=(15, 9.5), layout="constrained")
    axes = figure.subplot_mosaic([["digit", "map", "."], ["moved", "moved map", "difference"]])
    bound = max(style.abs_limit(values) for values in maps)
    names = (("digit", "map", "original"), ("moved", "moved map", f"moved {columns} pixels right"))
    first_column = int(np.flatnonzero(np.abs(style.to_numpy(maps[0])).max(axis=0) > 0.5 * bound)[0])
    for (digit_name, map_name, title), pixels, values in zip(names, images, maps, strict=True):
        style.show_image(
            axes[digit_name],
            style.to_numpy(pixels).squeeze(),
            style.DIGIT,
            None,
            None,
            f"input: {title}",
        )
        style.show_image(
            axes[map_name], values, style.SIGNED, -bound, bound, f"conv1 map #0: {title}"
        )
        axes[map_name].axvline(first_column, color="green", lw=2, ls="--")
    difference = np.ma.masked_invalid(style.to_numpy(difference))
    cmap = mpl.colormaps[style.SIGNED].with_extremes(bad="white")
    shown = style.show_image(
        axes["difference"], difference, cmap, -bound, bound, "moved map − map moved"
    )
    largest = style.number_text(float(np.abs(difference).max()), "{:.2g}")
    axes["difference"].set_xlabel(f"largest |difference|: {largest}\nblank: not comparable")
    signed = [axes["map"], axes["moved map"], axes["difference"]]
    figure.colorbar(shown, ax=signed, label="filter response", shrink=0.6)
    figure.suptitle("Shift the digit, the map shifts with it (dashed green: the same column)")
    return figure


def convolution(
    image: style.Array, kernel: style.Array, output: style.Array, row: int, column: int
) -> Figure:
    """A 3x3 kernel slid over the image: one window, the kernel, and where its result lands."""
    figure = Figure(figsize=(16, 4.8), layout="constrained")
    left, middle, right = figure.subplots(1, 3, width_ratios=[1, 0.8, 1])
    shape = "×".join(map(str, image.shape))
    shown = style.show_image(left, image, style.DIGIT, None, None, f"input {shape}")
    left.add_patch(Rectangle((column - 0.5, row - 0.5), 3, 3, fill=False, ec="lime", lw=3))
    figure.colorbar(shown, ax=left, label="normalized pixel")

    kernel = style.to_numpy(kernel)
    shown = style.show_image(
        middle,
        kernel,
        style.SIGNED,
        -style.abs_limit(kernel),
        style.abs_limit(kernel),
        "3×3 kernel",
    )
    style.cell_values(middle, shown, kernel, "{:g}", fontsize=18)
    figure.colorbar(shown, ax=middle, label="weight")

    output = style.to_numpy(output)
    title = f"output {'×'.join(map(str, output.shape))}, green box: {output[row, column]:.2f}"
    shown = style.show_image(
        right, output, style.SIGNED, -style.abs_limit(output), style.abs_limit(output), title
    )
    right.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, ec="lime", lw=3))
    figure.colorbar(shown, ax=right, label="filter response")
    return figure


def max_pool(before: style.Array, after: style.Array) -> Figure:
    """A map before and after a 2x2 max-pool, on the same colour scale."""
    figure = Figure(figsize=(11, 4.8))
    axes = figure.subplots(1, 2)
    bound = style.abs_limit(before)
    for ax, values, name in zip(axes, (before, after), ("before", "after"), strict=True):
        shape = "×".join(map(str, values.shape))
        image = style.show_image(
            ax, values, style.POSITIVE, 0, bound, f"{name} 2×2 max-pool: {shape}"
        )
    figure.colorbar(image, ax=list(axes), label="activation")
    return figure


def network(image: style.Array, activations: Mapping[str, style.Array], title: str) -> Figure:
    """One image through the whole network: every feature map, fc1's units, the prediction."""
    figure = Figure(figsize=(13, 17), layout="constrained")
    figure.suptitle(title)
    top, conv1, pool1, conv2, pool2, fc1 = figure.subfigures(
        6, 1, height_ratios=[1.3, 1.1, 1.1, 0.9, 0.9, 0.9]
    )
    digit_ax, bar_ax = top.subplots(1, 2, width_ratios=[1, 2.5])
    style.show_image(
        digit_ax, style.to_numpy(image).squeeze(), style.DIGIT, None, None, "input 1×28×28"
    )
    probabilities = torch.as_tensor(style.to_numpy(activations["logits"])).softmax(dim=-1).numpy()
    bar_ax.bar(range(10), probabilities, color="tab:green")
    bar_ax.set_xticks(range(10))
    bar_ax.set_ylim(0, 1)
    bar_ax.set_xlabel("digit")
    bar_ax.set_ylabel("probability")
    bar_ax.set_title(f"output: predicts {probabilities.argmax()} ({probabilities.max():.0%})")
    for subfigure, name in zip(
        (conv1, pool1, conv2, pool2), ("conv1", "pool1", "conv2", "pool2"), strict=True
    ):
        maps = activations[name]
        shape = "×".join(map(str, maps.shape))
        style.maps_row(subfigure, maps, name in style.SIGNED_LAYERS, f"{name}: {shape}")
    ax = fc1.subplots()
    units = style.show_image(
        ax,
        style.as_grid(activations["fc1"]),
        style.POSITIVE,
        0,
        style.abs_limit(activations["fc1"]),
    )
    fc1.colorbar(units, ax=ax, label="activation")
    fc1.suptitle(f"fc1: {len(activations['fc1'])} units, drawn as a 4×32 grid")
    return figure
