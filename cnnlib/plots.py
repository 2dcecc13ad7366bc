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
    ax.bar_label(bars, labels=["×".join(map(str, shape)) for shape in shapes.values()], padding=3)
    ax.set_ylim(0, max(sizes) * 1.15)
    ax.set_xlabel("layer output")
    ax.set_ylabel("numbers per image")
    ax.set_title("How many numbers each layer passes on (labels: the shape)")
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


def convolution(image: Array, kernel: Array, output: Array, row: int, column: int) -> Figure:
    """A 3x3 kernel slid over the image: one window, the kernel, and where its result lands."""
    figure = Figure(figsize=(16, 4.8), layout="constrained")
    left, middle, right = figure.subplots(1, 3, width_ratios=[1, 0.8, 1])
    shape = "×".join(map(str, image.shape))
    shown = _image(left, image, DIGIT, None, None, f"input {shape}")
    left.add_patch(Rectangle((column - 0.5, row - 0.5), 3, 3, fill=False, ec="red", lw=3))
    figure.colorbar(shown, ax=left, label="normalized pixel")

    kernel = _numpy(kernel)
    shown = _image(middle, kernel, SIGNED, -_limit(kernel), _limit(kernel), "3×3 kernel")
    for (y, x), weight in np.ndenumerate(kernel):
        middle.text(x, y, f"{weight:g}", ha="center", va="center", fontsize=18)
    figure.colorbar(shown, ax=middle, label="weight")

    output = _numpy(output)
    title = f"output {'×'.join(map(str, output.shape))}, red box: {output[row, column]:.2f}"
    shown = _image(right, output, SIGNED, -_limit(output), _limit(output), title)
    right.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, ec="red", lw=3))
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


def digit_grid(
    images: Array, titles: Sequence[str], columns: int = 10, title: str = "", width: float = 1.2
) -> Figure:
    """Digits [N, 28, 28] in a grid, each with a short title (its label, or a prediction);
    `width` (inches per digit) makes room for longer titles."""
    images = _numpy(images)
    rows = math.ceil(len(images) / columns)
    height = rows * 1.45 + 0.9  # inches: the rows, then the title above the first row's labels
    figure = Figure(figsize=(columns * width, height))
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.9 / height, hspace=0.45)
    for ax, pixels, name in zip(figure.subplots(rows, columns).flat, images, titles, strict=False):
        _image(ax, pixels, DIGIT, None, None, name)
    figure.suptitle(title, y=1 - 0.1 / height, va="top")
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


def _log_axis(ax: Axes) -> None:
    """A log-scale y axis labelled at 1, 2, 5 times powers of ten, in plain numbers."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(mpl.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(mpl.ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(mpl.ticker.NullFormatter())


def training_curves(results: Sequence[EpochResult]) -> Figure:
    """Loss (log scale) and accuracy (zoomed on the trained epochs) after every epoch, on the
    training batches and on the test set; points below the accuracy axis sit on its edge as ▼."""
    epochs = [result.epoch for result in results]
    series = {
        "train (the epoch's batches)": (
            "o-",
            [r.loss for r in results],
            [r.train_accuracy for r in results],
        ),
        "test (10,000 images)": (
            "s-",
            [r.test_loss for r in results],
            [r.test_accuracy for r in results],
        ),
    }
    trained = [r.test_accuracy for r in results[1:]] or [results[0].test_accuracy]
    lowest = 5 * math.floor((min(trained) - 1) / 5)
    figure = Figure(figsize=(14, 5.2), layout="constrained")
    loss_ax, accuracy_ax = figure.subplots(1, 2, sharex=True)
    below = []
    for (label, (style, losses, accuracies)), color in zip(
        series.items(), ("tab:blue", "tab:orange"), strict=True
    ):
        loss_ax.plot(epochs, losses, style, color=color, label=label)
        shown = [max(accuracy, lowest) for accuracy in accuracies]
        accuracy_ax.plot(epochs, shown, style, color=color, label=label, clip_on=False)
        for epoch, accuracy in zip(epochs, accuracies, strict=True):
            if accuracy < lowest:
                below.append(f"epoch {epoch} {label.split()[0]}: {accuracy:.1f}%")
                accuracy_ax.plot(epoch, lowest, "v", color=color, ms=12, clip_on=False)
    if below:
        accuracy_ax.text(
            0.3,
            0.04,
            "▼ below the axis:\n" + "\n".join(sorted(below)),
            transform=accuracy_ax.transAxes,
            fontsize=12,
            va="bottom",
        )
    _log_axis(loss_ax)
    loss_ax.set_ylabel("cross-entropy loss (log scale)")
    loss_ax.set_title("Loss: lower is better")
    accuracy_ax.set_ylim(lowest, 100)
    accuracy_ax.set_ylabel(f"accuracy (%), from {lowest}%")
    accuracy_ax.set_title(f"Accuracy: {results[-1].test_accuracy:.2f}% on the test set at the end")
    for ax in (loss_ax, accuracy_ax):
        ax.set_xlabel("epoch (0 = before any training)")
        ax.set_xticks(epochs[:: max(1, math.ceil(len(epochs) / 11))])
        ax.grid(alpha=0.3, which="both")
    loss_ax.legend()
    accuracy_ax.legend(loc="center right")
    return figure


def weight_changes(changes: Mapping[str, Sequence[float]]) -> Figure:
    """How far each layer's weights moved in each epoch, relative to their size (log scale)."""
    figure = Figure(figsize=(11, 5.5), layout="constrained")
    ax = figure.subplots()
    epochs = list(range(1, len(next(iter(changes.values()))) + 1))
    for layer, values in changes.items():
        ax.plot(epochs, values, "o-", label=layer)
    _log_axis(ax)
    ax.set_xticks(epochs[:: max(1, math.ceil(len(epochs) / 10))])
    ax.set_xlabel("epoch")
    ax.set_ylabel("change of the weights (%, log scale)")
    ax.set_title("How much each epoch changed each layer's weights")
    ax.grid(alpha=0.3, which="both")
    ax.legend(title="layer", loc="upper right")
    return figure


def confusion_matrices(matrices: Mapping[str, Array]) -> Figure:
    """Confusion matrices side by side (rows: true digit, columns: predicted), the mistakes on
    one shared colour scale; the right answers, on the diagonal, are written on gray."""
    matrices = {title: _numpy(matrix) for title, matrix in matrices.items()}
    diagonal = np.eye(10, dtype=bool)
    bound = max(max(int(matrix[~diagonal].max()) for matrix in matrices.values()), 1)
    cmap = mpl.colormaps["Reds"].with_extremes(bad="0.85")
    figure = Figure(figsize=(7 * len(matrices) + 1.2, 7.2), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(matrices), sharex=True, sharey=True))
    for ax, (title, matrix) in zip(axes, matrices.items(), strict=True):
        image = ax.imshow(np.ma.masked_where(diagonal, matrix), cmap=cmap, vmin=0, vmax=bound)
        for (true, predicted), count in np.ndenumerate(matrix):
            if count == 0:
                continue
            dark = true != predicted and count > 0.6 * bound
            ax.text(
                predicted,
                true,
                str(count),
                ha="center",
                va="center",
                fontsize=11,
                color="white" if dark else "black",
            )
        ax.set_xticks(range(10))
        ax.set_yticks(range(10))
        ax.set_xlabel("predicted digit")
        ax.set_title(f"{title}: {int(matrix.sum() - matrix.trace()):,} mistakes")
    axes[0].set_ylabel("true digit")
    figure.colorbar(image, ax=list(axes), label="test images taken for another digit", shrink=0.9)
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
    return f"{size / 1e6:.2f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


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
