"""The lecture's tools: figures of notebook 01, the model (layers, parameters, receptive fields,
convolution and pooling by hand, the whole network on one digit)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure, SubFigure
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
    """A digit and the same digit moved right, each with one conv1 map; on the right, one row of
    both maps, with the original map's values moved by the same number of pixels on top of the
    moved map's: they coincide wherever both are known."""
    figure = Figure(figsize=(16, 8.4), layout="constrained")
    axes = figure.subplot_mosaic(
        [["digit", "map", "row"], ["moved", "moved map", "row"]], width_ratios=[1, 1, 1.5]
    )
    original, moved = (style.to_numpy(values) for values in maps)
    bound = max(style.abs_limit(values) for values in maps)
    row = int(np.abs(original).sum(axis=1).argmax())  # the row with the strongest responses
    titles = (("input", "conv1 map #0"), (f"input moved {columns} right", "its conv1 map #0"))
    for (digit_name, map_name), pixels, values, (digit_title, map_title) in zip(
        (("digit", "map"), ("moved", "moved map")), images, (original, moved), titles, strict=True
    ):
        pixels = style.to_numpy(pixels).squeeze()
        style.show_image(axes[digit_name], pixels, style.DIGIT, None, None, digit_title)
        shown = style.show_image(axes[map_name], values, style.SIGNED, -bound, bound, map_title)
        axes[map_name].axhline(row, color="lime", lw=2, ls="--")
    figure.colorbar(shown, ax=[axes["map"], axes["moved map"]])
    ax = axes["row"]
    positions = np.arange(len(moved[row]))
    ax.plot(positions, original[row], color="gray", lw=1.5, label="original map")
    ax.plot(positions, moved[row], color="tab:orange", lw=5, alpha=0.6, label="moved map")
    ax.plot(
        positions + columns, original[row], "k.", ms=9, label=f"original, {columns} columns right"
    )
    ax.set_xlim(-0.5, len(positions) - 0.5)
    low, high = ax.get_ylim()
    ax.set_ylim(low, high + 0.45 * (high - low))  # room for the legend above the curves
    ax.set_ylabel("filter response")
    ax.set_title(f"row {row} of both maps (dashed green line)")
    ax.legend(loc="upper left")
    largest = style.number_text(float(np.nanmax(np.abs(style.to_numpy(difference)))), "{:.2g}")
    ax.set_xlabel(f"column\nlargest |difference| where both are known, all 4 maps: {largest}")
    figure.suptitle("Shift the digit, the map shifts with it")
    return figure


def convolution(
    image: style.Array, kernel: style.Array, output: style.Array, row: int, column: int
) -> Figure:
    """A 3x3 kernel slid over the image: one window, the kernel, and where its result lands. The
    output is drawn at its real size, each value under the centre of its window, so that it
    lines up with the input: one pixel narrower on every side."""
    figure = Figure(figsize=(16, 4.8), layout="constrained")
    left, middle, right = figure.subplots(1, 3, width_ratios=[1, 0.8, 1])
    image = style.to_numpy(image)
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
    height, width = output.shape
    title = f"output {height}×{width}, green: {output[row, column]:.2f}"
    shown = style.show_image(
        right, output, style.SIGNED, -style.abs_limit(output), style.abs_limit(output), title
    )
    shown.set_extent((0.5, width + 0.5, height + 0.5, 0.5))  # under the windows' centres
    right.set_xlim(left.get_xlim())
    right.set_ylim(left.get_ylim())
    right.set_facecolor("white")  # the input's border row and column: no window is centred there
    right.add_patch(Rectangle((column + 0.5, row + 0.5), 1, 1, fill=False, ec="lime", lw=3))
    right.set_xlabel("white border: no 3×3 window is centred there")
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


def _maps_column(
    subfigure: SubFigure, maps: style.Array, signed: bool, title: str, columns: int
) -> None:
    """Channels [C, H, W] in a grid of `columns` columns, on one colour scale, with a horizontal
    colour bar below: one stage of the network, read top to bottom."""
    maps = style.to_numpy(maps)
    axes = subfigure.subplots(len(maps) // columns, columns, squeeze=False)
    limit = style.abs_limit(maps)
    vmin, cmap = (-limit, style.SIGNED) if signed else (0.0, style.POSITIVE)
    for channel, (ax, values) in enumerate(zip(axes.flat, maps, strict=True)):
        shown = style.show_image(ax, values, cmap, vmin, limit, f"#{channel}")
    subfigure.colorbar(shown, ax=axes.ravel().tolist(), location="bottom", shrink=0.9)
    subfigure.suptitle(title)


def network(image: style.Array, activations: Mapping[str, style.Array], title: str) -> Figure:
    """One image through the whole network, left to right as the data flows, sized for a
    projector screen (16:9): the digit, every feature map, fc1's 128 units as one column, and the
    prediction; each stage with its colour bar below it."""
    figure = Figure(figsize=(17, 9.2), layout="constrained")
    figure.suptitle(title)
    stages = figure.subfigures(1, 7, width_ratios=[2.2, 2.1, 2.1, 3.3, 3.3, 1.3, 2.4])
    digit_ax = stages[0].subplots()
    style.show_image(
        digit_ax, style.to_numpy(image).squeeze(), style.DIGIT, None, None, "input 1×28×28"
    )
    for stage, name, columns in zip(
        stages[1:5], ("conv1", "pool1", "conv2", "pool2"), (1, 1, 2, 2), strict=True
    ):
        maps = activations[name]
        shape = "×".join(map(str, maps.shape))
        _maps_column(stage, maps, name in style.SIGNED_LAYERS, f"{name}\n{shape}", columns)
    units = style.to_numpy(activations["fc1"])
    ax = stages[5].subplots()
    shown = ax.imshow(
        units[:, None], cmap=style.POSITIVE, vmin=0, vmax=style.abs_limit(units), aspect="auto"
    )
    ax.set_xticks([])
    ax.set_yticks([0, len(units) - 1])
    bar = stages[5].colorbar(shown, ax=ax, location="bottom")
    bar.set_ticks([0, style.abs_limit(units)], labels=["0", f"{style.abs_limit(units):.1f}"])
    stages[5].suptitle(f"fc1\n{len(units)} units")
    probabilities = torch.as_tensor(style.to_numpy(activations["logits"])).softmax(dim=-1).numpy()
    bar_ax = stages[6].subplots()
    bar_ax.barh(range(10), probabilities, color="tab:green")
    bar_ax.set_yticks(range(10))
    bar_ax.invert_yaxis()
    bar_ax.set_xlim(0, 1)
    bar_ax.set_ylabel("digit")
    bar_ax.set_xlabel("probability (softmax)")
    stages[6].suptitle(f"output\npredicts {probabilities.argmax()} ({probabilities.max():.0%})")
    return figure
