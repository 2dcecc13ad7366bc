"""Figures for the lecture notebooks: one function per idea, each returns a matplotlib Figure.

Built with matplotlib's object-oriented API (no pyplot state), with fonts a class can read.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

from cnnlib.train import EpochResult

LECTURE_STYLE = {
    "font.size": 14,
    "axes.titlesize": 15,
    "axes.labelsize": 14,
    "figure.titlesize": 18,
    "legend.fontsize": 13,
    "figure.dpi": 72,
}
DIGIT = "gray"  # MNIST as stored: white strokes on black
SIGNED = "RdBu_r"  # values of both signs: red positive, blue negative, white zero
POSITIVE = "viridis"  # values after ReLU, never negative
SIGNED_LAYERS = ("conv1", "conv2")  # drawn before their ReLU, as the demo draws them
Array = torch.Tensor | np.ndarray


def use_lecture_style() -> None:
    """Large fonts everywhere, for the back row; in a notebook, figures drawn at twice the pixel
    density (retina), so that they stay sharp on a projector or a high-resolution screen."""
    mpl.rcParams.update(LECTURE_STYLE)
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # the notebook extras are not installed: plain matplotlib
        return
    if get_ipython() is not None:
        set_matplotlib_formats("retina")


def live_frontend() -> bool:
    """True in a kernel that a Jupyter server started (JupyterLab): someone can move a slider.

    Headless runs (papermill, nbval, nbconvert) start their kernels without a server.
    """
    return "JPY_SESSION_NAME" in os.environ


def _numpy(values: Array) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _limit(values: Array) -> float:
    """The largest absolute value: the bound of a colour scale centred on zero."""
    return float(np.abs(_numpy(values)).max()) or 1.0


def _image(
    ax: Axes, values: Array, cmap: str, vmin: float | None, vmax: float | None, title: str = ""
) -> AxesImage:
    image = ax.imshow(_numpy(values), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return image


def _maps_row(figure: Figure | SubFigure, maps: Array, signed: bool, title: str) -> None:
    """Channels [C, H, W] side by side on one colour scale, with its colour bar."""
    maps = _numpy(maps)
    axes = np.atleast_1d(figure.subplots(1, len(maps)))
    bound = _limit(maps)
    vmin, cmap = (-bound, SIGNED) if signed else (0.0, POSITIVE)
    for channel, (ax, values) in enumerate(zip(axes, maps, strict=True)):
        image = _image(ax, values, cmap, vmin, bound, f"#{channel}" if len(maps) > 1 else "")
    figure.colorbar(image, ax=list(axes), label="activation", shrink=0.9)
    figure.suptitle(title)


def _as_grid(vector: Array, rows: int = 4) -> np.ndarray:
    """A vector of units (fc1's 128) folded into a small image of `rows` rows."""
    vector = _numpy(vector)
    return vector.reshape(rows, len(vector) // rows)


# --- 01: the model ---------------------------------------------------------------------------


def digit(pixels: Array, title: str) -> Figure:
    """One 28x28 digit with the value of each pixel on a colour bar."""
    figure = Figure(figsize=(5.5, 4.5))
    ax = figure.subplots()
    image = _image(ax, pixels, DIGIT, 0, 255, title)
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


def _number_text(value: float, text_format: str) -> str:
    """A number as text, without the minus sign of a value that rounds to zero ("0.00")."""
    text = text_format.format(value)
    return text.removeprefix("-") if float(text) == 0 else text


def _cell_values(
    ax: Axes, image: AxesImage, values: np.ndarray, text_format: str, fontsize: int = 14
) -> None:
    """Each value written in its cell: white on dark colours, black on light ones."""
    for (y, x), value in np.ndenumerate(values):
        red, green, blue, _ = image.cmap(image.norm(value))
        dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
        text = _number_text(value, text_format)
        color = "white" if dark else "black"
        ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, color=color)


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
    image: Array,
    maps: Mapping[str, Array],
    units: Mapping[str, tuple[int, int]],
    fields: Mapping[str, tuple[slice, slice]],
) -> Figure:
    """Top row: one map of each layer, one unit marked; bottom row: the input pixels that unit
    sees (its receptive field), boxed on the digit."""
    figure = Figure(figsize=(16, 8.6), layout="constrained")
    axes = figure.subplots(2, len(maps))
    for (top, bottom), (name, values) in zip(axes.T, maps.items(), strict=True):
        values = _numpy(values)
        row, column = units[name]
        height, width = values.shape
        vmin, cmap = (-_limit(values), SIGNED) if name in SIGNED_LAYERS else (0.0, POSITIVE)
        _image(top, values, cmap, vmin, _limit(values), f"{name} map #0: {height}×{width}")
        top.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, ec="lime", lw=3))
        top.set_xlabel(f"unit at row {row}, column {column}")
        rows, columns = fields[name]
        _image(bottom, _numpy(image).squeeze(), DIGIT, None, None)
        size = (rows.stop - rows.start, columns.stop - columns.start)
        corner = (columns.start - 0.5, rows.start - 0.5)
        bottom.add_patch(Rectangle(corner, size[1], size[0], fill=False, ec="lime", lw=3))
        bottom.set_xlabel(f"it sees {size[0]}×{size[1]} input pixels")
    figure.suptitle(
        "One unit (green square, top) and the input pixels it can see (green box, below)"
    )
    return figure


def translation(
    images: tuple[Array, Array], maps: tuple[Array, Array], difference: Array, columns: int
) -> Figure:
    """A digit and the same digit moved right, each with one conv1 map, and the difference between
    the moved digit's map and the original map moved by the same number of pixels."""
    figure = Figure(figsize=(15, 9.5), layout="constrained")
    axes = figure.subplot_mosaic([["digit", "map", "."], ["moved", "moved map", "difference"]])
    bound = max(_limit(values) for values in maps)
    names = (("digit", "map", "original"), ("moved", "moved map", f"moved {columns} pixels right"))
    first_column = int(np.flatnonzero(np.abs(_numpy(maps[0])).max(axis=0) > 0.5 * bound)[0])
    for (digit_name, map_name, title), pixels, values in zip(names, images, maps, strict=True):
        _image(axes[digit_name], _numpy(pixels).squeeze(), DIGIT, None, None, f"input: {title}")
        _image(axes[map_name], values, SIGNED, -bound, bound, f"conv1 map #0: {title}")
        axes[map_name].axvline(first_column, color="green", lw=2, ls="--")
    difference = np.ma.masked_invalid(_numpy(difference))
    cmap = mpl.colormaps[SIGNED].with_extremes(bad="0.6")
    shown = _image(axes["difference"], difference, cmap, -bound, bound, "moved map − map moved")
    largest = _number_text(float(np.abs(difference).max()), "{:.2g}")
    axes["difference"].set_xlabel(f"largest |difference|: {largest}\ngray: not comparable")
    signed = [axes["map"], axes["moved map"], axes["difference"]]
    figure.colorbar(shown, ax=signed, label="filter response", shrink=0.6)
    figure.suptitle("Shift the digit, the map shifts with it (dashed green: the same column)")
    return figure


def convolution(image: Array, kernel: Array, output: Array, row: int, column: int) -> Figure:
    """A 3x3 kernel slid over the image: one window, the kernel, and where its result lands."""
    figure = Figure(figsize=(16, 4.8), layout="constrained")
    left, middle, right = figure.subplots(1, 3, width_ratios=[1, 0.8, 1])
    shape = "×".join(map(str, image.shape))
    shown = _image(left, image, DIGIT, None, None, f"input {shape}")
    left.add_patch(Rectangle((column - 0.5, row - 0.5), 3, 3, fill=False, ec="lime", lw=3))
    figure.colorbar(shown, ax=left, label="normalized pixel")

    kernel = _numpy(kernel)
    shown = _image(middle, kernel, SIGNED, -_limit(kernel), _limit(kernel), "3×3 kernel")
    _cell_values(middle, shown, kernel, "{:g}", fontsize=18)
    figure.colorbar(shown, ax=middle, label="weight")

    output = _numpy(output)
    title = f"output {'×'.join(map(str, output.shape))}, green box: {output[row, column]:.2f}"
    shown = _image(right, output, SIGNED, -_limit(output), _limit(output), title)
    right.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, ec="lime", lw=3))
    figure.colorbar(shown, ax=right, label="filter response")
    return figure


def max_pool(before: Array, after: Array) -> Figure:
    """A map before and after a 2x2 max-pool, on the same colour scale."""
    figure = Figure(figsize=(11, 4.8))
    axes = figure.subplots(1, 2)
    bound = _limit(before)
    for ax, values, name in zip(axes, (before, after), ("before", "after"), strict=True):
        shape = "×".join(map(str, values.shape))
        image = _image(ax, values, POSITIVE, 0, bound, f"{name} 2×2 max-pool: {shape}")
    figure.colorbar(image, ax=list(axes), label="activation")
    return figure


def network(image: Array, activations: Mapping[str, Array], title: str) -> Figure:
    """One image through the whole network: every feature map, fc1's units, the prediction."""
    figure = Figure(figsize=(13, 17), layout="constrained")
    figure.suptitle(title)
    top, conv1, pool1, conv2, pool2, fc1 = figure.subfigures(
        6, 1, height_ratios=[1.3, 1.1, 1.1, 0.9, 0.9, 0.9]
    )
    digit_ax, bar_ax = top.subplots(1, 2, width_ratios=[1, 2.5])
    _image(digit_ax, _numpy(image).squeeze(), DIGIT, None, None, "input 1×28×28")
    probabilities = torch.as_tensor(_numpy(activations["logits"])).softmax(dim=-1).numpy()
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
        _maps_row(subfigure, maps, name in SIGNED_LAYERS, f"{name}: {shape}")
    ax = fc1.subplots()
    units = _image(ax, _as_grid(activations["fc1"]), POSITIVE, 0, _limit(activations["fc1"]))
    fc1.colorbar(units, ax=ax, label="activation")
    fc1.suptitle(f"fc1: {len(activations['fc1'])} units, drawn as a 4×32 grid")
    return figure


# --- 02: training ----------------------------------------------------------------------------


def digit_grid(images: Array, titles: Sequence[str], columns: int = 10, title: str = "") -> Figure:
    """Digits [N, 28, 28] in a grid, each with a short title (its label, or a prediction)."""
    images = _numpy(images)
    rows = math.ceil(len(images) / columns)
    height = rows * 1.45 + 0.6
    figure = Figure(figsize=(columns * 1.2, height))
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.7 / height, hspace=0.45)
    for ax, pixels, name in zip(figure.subplots(rows, columns).flat, images, titles, strict=False):
        _image(ax, pixels, DIGIT, None, None, name)
    figure.suptitle(title)
    return figure


def pixel_histograms(pixels: Array, normalized: Array) -> Figure:
    """All pixel values before and after normalization: same shape, new scale (mean 0, std 1)."""
    figure = Figure(figsize=(13, 4.5))
    axes = figure.subplots(1, 2)
    panels = ((_numpy(pixels) / 255.0, "scaled to 0..1"), (_numpy(normalized), "normalized"))
    for ax, (values, name) in zip(axes, panels, strict=True):
        ax.hist(values.ravel(), bins=50, color="tab:blue", log=True)
        ax.axvline(values.mean(), color="red", lw=2, label=f"mean {values.mean():.2f}")
        ax.set_title(f"{name}: std {values.std():.2f}")
        ax.set_xlabel("pixel value")
        ax.set_ylabel("pixels (log scale)")
        ax.legend()
    return figure


def training_curves(results: Sequence[EpochResult]) -> Figure:
    """Loss and accuracy after every epoch, on the training batches and on the test set."""
    epochs = [result.epoch for result in results]
    figure = Figure(figsize=(14, 5))
    loss_ax, accuracy_ax = figure.subplots(1, 2)
    loss_ax.plot(epochs, [r.loss for r in results], "o-", label="train (the epoch's batches)")
    loss_ax.plot(epochs, [r.test_loss for r in results], "s-", label="test (10,000 images)")
    loss_ax.set_ylabel("cross-entropy loss")
    loss_ax.set_title("Loss: lower is better")
    accuracy_ax.plot(epochs, [r.train_accuracy for r in results], "o-", label="train")
    accuracy_ax.plot(epochs, [r.test_accuracy for r in results], "s-", label="test")
    accuracy_ax.set_ylabel("accuracy (%)")
    accuracy_ax.set_title(f"Accuracy: {results[-1].test_accuracy:.1f}% on the test set at the end")
    for ax in (loss_ax, accuracy_ax):
        ax.set_xlabel("epoch (0 = before any training)")
        ax.set_xticks(epochs[:: max(1, len(epochs) // 10)])
        ax.grid(alpha=0.3)
        ax.legend()
    return figure


def weight_changes(snapshots: Sequence[Mapping[str, torch.Tensor]]) -> Figure:
    """How far each layer's weights moved in each epoch, relative to their size."""
    figure = Figure(figsize=(10, 5))
    ax = figure.subplots()
    epochs = list(range(1, len(snapshots)))
    for key in (key for key in snapshots[0] if key.endswith(".weight")):
        changes = [
            100
            * float(
                (snapshots[e][key] - snapshots[e - 1][key]).norm() / snapshots[e - 1][key].norm()
            )
            for e in epochs
        ]
        ax.plot(epochs, changes, "o-", label=key.removesuffix(".weight"))
    ax.set_xticks(epochs[:: max(1, len(epochs) // 10)])
    ax.set_xlabel("epoch")
    ax.set_ylabel("change of the weights (%)")
    ax.set_title("How much each epoch changed each layer's weights")
    ax.grid(alpha=0.3)
    ax.legend(title="layer")
    return figure


# --- 03: feature maps ------------------------------------------------------------------------


def conv1_filters(weights_by_epoch: Mapping[int, Array]) -> Figure:
    """conv1's four 3x3 kernels, one row per epoch, each weight written in its cell."""
    bound = max(_limit(weight) for weight in weights_by_epoch.values())
    figure = Figure(figsize=(12, 3.2 * len(weights_by_epoch)), layout="constrained")
    axes = figure.subplots(len(weights_by_epoch), 4, squeeze=False)
    for row, (epoch, weight) in zip(axes, weights_by_epoch.items(), strict=True):
        for channel, (ax, kernel) in enumerate(zip(row, _numpy(weight)[:, 0], strict=True)):
            image = _image(ax, kernel, SIGNED, -bound, bound, f"epoch {epoch}, filter #{channel}")
            for (y, x), value in np.ndenumerate(kernel):
                ax.text(x, y, f"{value:.2f}", ha="center", va="center", fontsize=11)
    figure.colorbar(image, ax=axes, label="weight", shrink=0.8)
    figure.suptitle("conv1: the four 3×3 kernels the image is convolved with")
    return figure


def conv2_filters(weight: Array, epoch: int) -> Figure:
    """conv2's kernels [8, 4, 3, 3]: a column per output map, a row per input channel."""
    weight = _numpy(weight)
    bound = _limit(weight)
    figure = Figure(figsize=(12, 6.5), layout="constrained")
    axes = figure.subplots(weight.shape[1], weight.shape[0])
    for (row, column), ax in np.ndenumerate(axes):
        image = _image(ax, weight[column, row], SIGNED, -bound, bound)
        if row == 0:
            ax.set_title(f"out #{column}")
        if column == 0:
            ax.set_ylabel(f"in #{row}")
    figure.colorbar(image, ax=axes, label="weight", shrink=0.8)
    figure.suptitle(f"conv2 at epoch {epoch}: each output map mixes all four pool1 maps")
    return figure


def feature_maps(maps_by_epoch: Mapping[int, Array], layer: str) -> Figure:
    """One layer's output for the same image, one row per epoch, each row on its own scale."""
    rows = len(maps_by_epoch)
    figure = Figure(figsize=(13, 2.6 * rows + 0.8), layout="constrained")
    for subfigure, (epoch, maps) in zip(
        np.atleast_1d(figure.subfigures(rows, 1)), maps_by_epoch.items(), strict=True
    ):
        if layer == "fc1":
            _maps_row(subfigure, _as_grid(maps)[None], False, f"epoch {epoch}")
        else:
            _maps_row(subfigure, maps, layer in SIGNED_LAYERS, f"epoch {epoch}")
    shape = "×".join(map(str, next(iter(maps_by_epoch.values())).shape))
    figure.suptitle(f"{layer} ({shape}) of the same digit as training goes on")
    return figure


def predictions(logits_by_epoch: Mapping[int, Array], label: int) -> Figure:
    """The predicted probabilities for one image at several epochs; the true digit in green."""
    figure = Figure(figsize=(4.5 * len(logits_by_epoch), 4.2), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(logits_by_epoch), sharey=True))
    for ax, (epoch, logits) in zip(axes, logits_by_epoch.items(), strict=True):
        probabilities = torch.as_tensor(_numpy(logits)).softmax(dim=-1).numpy()
        colors = ["tab:green" if digit == label else "tab:gray" for digit in range(10)]
        ax.bar(range(10), probabilities, color=colors)
        ax.set_xticks(range(10))
        ax.set_ylim(0, 1)
        ax.set_xlabel("digit")
        ax.set_title(f"epoch {epoch}: {probabilities[label]:.0%} on {label}")
    axes[0].set_ylabel("probability")
    return figure


def show_epoch_explorer(
    image: Array, activations_by_epoch: Mapping[int, Mapping[str, Array]], static: Sequence[int]
) -> None:
    """In JupyterLab, a slider over the epochs that redraws `network`; headless, static figures
    for the epochs in `static`, since nobody is there to move a slider."""
    from IPython.display import display

    if not live_frontend():
        for epoch in static:
            display(network(image, activations_by_epoch[epoch], f"epoch {epoch}"))
        return

    import ipywidgets

    epochs = sorted(activations_by_epoch)
    slider = ipywidgets.IntSlider(
        value=epochs[-1],
        min=epochs[0],
        max=epochs[-1],
        description="epoch",
        continuous_update=False,
    )
    ipywidgets.interact(
        lambda epoch: display(network(image, activations_by_epoch[epoch], f"epoch {epoch}")),
        epoch=slider,
    )


# --- 04: export ------------------------------------------------------------------------------


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
    pytorch, from_json = _numpy(pytorch).ravel(), _numpy(from_json).ravel()
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
