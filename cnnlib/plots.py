"""Figures for the lecture notebooks: one function per idea, each returns a matplotlib Figure.

Built with matplotlib's object-oriented API (no pyplot state), with fonts a class can read.
"""

from __future__ import annotations

import base64
import io
import math
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import matplotlib as mpl
import numpy as np
import PIL.Image
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, SubFigure
from matplotlib.image import AxesImage
from matplotlib.patches import Patch, Rectangle
from matplotlib.transforms import Bbox

from cnnlib.features import FilterSummary, output_correlation, reference_responses
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
    """Large fonts everywhere, for the back row; in a notebook, figures shown as `retina_png`."""
    mpl.rcParams.update(LECTURE_STYLE)
    try:
        from IPython import get_ipython
    except ImportError:  # the notebook extras are not installed: plain matplotlib
        return
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["image/png"].for_type(Figure, _retina_png_base64)


def retina_png(figure: Figure) -> tuple[bytes, dict[str, int]]:
    """The figure as a PNG at twice its pixel density (sharp on a projector or a high-resolution
    screen) in at most 256 colours (a third of the bytes, no visible change), and the size at which
    a browser should show it.

    Like `savefig(bbox_inches="tight")`, the picture is the figure's content with a margin of
    `savefig.pad_inches` around it; but the figure is drawn once and cut out, where savefig draws
    it twice (once to measure, once to render). Only a figure with something drawn beyond its
    edge (a legend placed outside it, say) is left to savefig, which makes room for it.
    """
    scale = 2 * figure.dpi  # pixels per inch
    with _drawn(figure, scale) as canvas:
        content = figure.get_tightbbox(canvas.get_renderer())  # inches, from the bottom left
        pixels = np.asarray(canvas.buffer_rgba())[..., :3]
    edge = figure.bbox_inches.padded(0.5 / scale)  # half a pixel of slack for rounding
    if np.all(content.min >= edge.min) and np.all(content.max <= edge.max):
        picture = _cut_out(pixels, content, scale, figure.get_facecolor())
    else:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=scale, bbox_inches="tight")
        picture = np.asarray(PIL.Image.open(buffer).convert("RGB"))
    buffer = io.BytesIO()
    image = PIL.Image.fromarray(picture)
    image.quantize(256).save(buffer, format="png", optimize=True)
    return buffer.getvalue(), {"width": image.width // 2, "height": image.height // 2}


def _cut_out(pixels: np.ndarray, content: Bbox, scale: float, background: object) -> np.ndarray:
    """The `content` (inches) of a drawing at `scale` pixels per inch, with a margin of
    `savefig.pad_inches`; where the margin reaches past the drawing, the `background` colour."""
    pad = mpl.rcParams["savefig.pad_inches"]
    height = pixels.shape[0]
    left, right = round((content.x0 - pad) * scale), round((content.x1 + pad) * scale)
    top, bottom = (
        height - round((content.y1 + pad) * scale),
        height - round((content.y0 - pad) * scale),
    )
    colour = np.round(np.array(mpl.colors.to_rgb(background)) * 255)
    picture = np.full((bottom - top, right - left, 3), colour, dtype=np.uint8)
    inside = pixels[max(top, 0) : bottom, max(left, 0) : right]
    row, column = max(-top, 0), max(-left, 0)
    picture[row : row + inside.shape[0], column : column + inside.shape[1]] = inside
    return picture


@contextmanager
def _drawn(figure: Figure, dpi: float) -> Iterator[FigureCanvasAgg]:
    """The figure drawn at `dpi` on a canvas of its own; afterwards the figure has its own
    resolution and canvas back (a live figure keeps drawing where it did)."""
    original_dpi, original_canvas = figure.dpi, figure.canvas
    canvas = FigureCanvasAgg(figure)
    figure.set_dpi(dpi)
    try:
        canvas.draw()
        yield canvas
    finally:
        figure.set_dpi(original_dpi)
        figure.set_canvas(original_canvas)


def _retina_png_base64(figure: Figure) -> tuple[str, dict[str, int]]:
    png, size = retina_png(figure)
    return base64.b64encode(png).decode("ascii"), size


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


def _robust_limit(values: Array, percentile: float = 99.0) -> float:
    """A colour-scale bound that a few extreme values cannot stretch: the given percentile of
    the absolute values. Values beyond it are drawn in the end colour."""
    return float(np.percentile(np.abs(_numpy(values)), percentile)) or _limit(values)


def _maps_row(
    figure: Figure | SubFigure,
    maps: Array,
    signed: bool,
    label: str,
    bound: float | None = None,
    tile_titles: bool = True,
) -> list[AxesImage]:
    """Channels [C, H, W] side by side on one colour scale (the largest value, or `bound`), with
    its colour bar; `label` on the left of the row. Returns the images, to update in place."""
    maps = _numpy(maps)
    axes = np.atleast_1d(figure.subplots(1, len(maps)))
    limit = _limit(maps) if bound is None else bound
    vmin, cmap = (-limit, SIGNED) if signed else (0.0, POSITIVE)
    images = []
    for channel, (ax, values) in enumerate(zip(axes, maps, strict=True)):
        title = f"#{channel}" if tile_titles and len(maps) > 1 else ""
        images.append(_image(ax, values, cmap, vmin, limit, title))
    clipped = maps.max() > limit or (signed and maps.min() < -limit)
    extend = ("both" if signed else "max") if clipped else "neither"
    figure.colorbar(images[-1], ax=list(axes), label="activation", shrink=0.9, extend=extend)
    axes[0].set_ylabel(label)
    return images


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

TRUE_DIGIT, WRONG_GUESS, OTHER_DIGIT = "tab:green", "tab:red", "tab:gray"


def _input_panel(figure: Figure | SubFigure, image: Array) -> None:
    """The input digit, drawn beside a figure of its feature maps."""
    ax = figure.subplots()
    _image(ax, _numpy(image).squeeze(), DIGIT, None, None, "input")


def _with_input(width: float, height: float, image: Array) -> SubFigure:
    """A figure with the input digit in a narrow left column; returns the space on its right."""
    figure = Figure(figsize=(width, height), layout="constrained")
    left, right = figure.subfigures(1, 2, width_ratios=[1.6, width - 1.6])
    _input_panel(left, image)
    return right


def _probability_bars(ax: Axes, logits: Array, label: int) -> None:
    """Softmax of the logits as bars: the true digit green, a wrong top guess red."""
    probabilities = torch.as_tensor(_numpy(logits)).softmax(dim=-1).numpy()
    guess = int(probabilities.argmax())
    colors = [
        TRUE_DIGIT if digit == label else WRONG_GUESS if digit == guess else OTHER_DIGIT
        for digit in range(10)
    ]
    ax.bar(range(10), probabilities, color=colors)
    ax.set_xticks(range(10))
    ax.set_ylim(0, 1)
    ax.set_xlabel("digit")


def _bar_legend(figure: Figure | SubFigure) -> None:
    handles = [
        Patch(color=TRUE_DIGIT, label="the true digit"),
        Patch(color=WRONG_GUESS, label="top guess, when wrong"),
        Patch(color=OTHER_DIGIT, label="other digits"),
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False)


def conv1_filters(weights_by_epoch: Mapping[int, Array]) -> Figure:
    """conv1's four 3x3 kernels, one row per epoch, each weight written in its cell."""
    bound = max(_limit(weight) for weight in weights_by_epoch.values())
    figure = Figure(figsize=(9.5, 2.4 * len(weights_by_epoch) + 0.7), layout="constrained")
    axes = figure.subplots(len(weights_by_epoch), 4, squeeze=False)
    for row, (epoch, weight) in zip(axes, weights_by_epoch.items(), strict=True):
        for channel, (ax, kernel) in enumerate(zip(row, _numpy(weight)[:, 0], strict=True)):
            image = _image(ax, kernel, SIGNED, -bound, bound)
            _cell_values(ax, image, kernel, "{:.2f}", fontsize=11)
            if ax in axes[0]:
                ax.set_title(f"filter #{channel}")
        row[0].set_ylabel(f"epoch {epoch}")
    figure.colorbar(image, ax=axes, label="weight", shrink=0.8)
    figure.suptitle("conv1: the four 3×3 kernels, one row per epoch")
    return figure


def filter_roles(
    image: Array, kernels: Array, maps: Array, summaries: Sequence[FilterSummary]
) -> Figure:
    """A row per conv1 filter: its kernel, its map of the digit, and the hand-made map (stroke,
    vertical or horizontal edge) that its map follows most closely, with their correlation r."""
    kernels, maps = _numpy(kernels)[:, 0], _numpy(maps)
    references = {name: _numpy(values) for name, values in reference_responses(image).items()}
    right = _with_input(10, 2.1 * len(kernels) + 0.5, image)
    axes = right.subplots(len(kernels), 3, squeeze=False)
    bound = _limit(kernels)
    for row, kernel, values, summary in zip(axes, kernels, maps, summaries, strict=True):
        shown = _image(row[0], kernel, SIGNED, -bound, bound)
        _cell_values(row[0], shown, kernel, "{:.2f}", fontsize=10)
        row[0].set_ylabel(f"filter #{summary.channel}")
        _image(row[1], values, SIGNED, -_limit(values), _limit(values))
        reference = references[summary.best]
        _image(row[2], reference, SIGNED, -_limit(reference), _limit(reference))
        row[2].set_xlabel(f"{summary.best}: r = {summary.r[summary.best]:+.2f}")
    titles = ("kernel", "its map of the digit", "closest hand-made map")
    for ax, title in zip(axes[0], titles, strict=True):
        ax.set_title(title)
    return right.figure


def correlation_matrices(matrices_by_epoch: Mapping[int, Array]) -> Figure:
    """How alike conv1's maps of the digit are: r for every pair of filters, one panel per epoch."""
    figure = Figure(figsize=(4.2 * len(matrices_by_epoch) + 1.5, 4.2), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(matrices_by_epoch), sharex=True, sharey=True))
    for ax, (epoch, matrix) in zip(axes, matrices_by_epoch.items(), strict=True):
        matrix = _numpy(matrix)
        image = _image(ax, matrix, SIGNED, -1, 1, f"epoch {epoch}")
        _cell_values(ax, image, matrix, "{:.2f}", fontsize=13)
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
            bars, labels=[_number_text(value, "{:.2f}") for value in values.values()], padding=3
        )
        ax.set_title(title)
        ax.set_xlabel("layer (input side on the left)")
        ax.axhline(0, color="black", lw=1)
    lowest = min(0.0, *weight_cosines.values(), *output_correlations.values())
    weights_ax.set_ylim(lowest - 0.12 if lowest < 0 else 0, 1.1)
    weights_ax.set_ylabel("1 = unchanged pattern")
    return figure


def conv2_filters(weight: Array, epoch: int) -> Figure:
    """conv2's kernels [8, 4, 3, 3]: a column per output map, a row per input channel; the colour
    scale ends at the 99th percentile of the weights, so that a few large ones don't wash it out."""
    weight = _numpy(weight)
    bound = _robust_limit(weight)
    figure = Figure(figsize=(11, 5.8), layout="constrained")
    axes = figure.subplots(weight.shape[1], weight.shape[0])
    for (row, column), ax in np.ndenumerate(axes):
        image = _image(ax, weight[column, row], SIGNED, -bound, bound)
        if row == 0:
            ax.set_title(f"out #{column}")
        if column == 0:
            ax.set_ylabel(f"in #{row}")
    figure.colorbar(image, ax=axes, label="weight", shrink=0.8, extend="both")
    figure.suptitle(f"conv2 at epoch {epoch}: each output map mixes all four pool1 maps")
    return figure


def _layer_bound(layer: str, values: Array) -> float:
    """conv2's scale ends at a percentile (a few extreme values would wash out the rest)."""
    return _robust_limit(values) if layer == "conv2" else _limit(values)


def feature_maps(maps_by_epoch: Mapping[int, Array], layer: str, image: Array) -> Figure:
    """One layer's output for the digit (drawn on the left), one row per epoch, each row on its
    own colour scale."""
    rows = len(maps_by_epoch)
    right = _with_input(13, (1.3 if layer == "fc1" else 2.2) * rows + 0.8, image)
    for row, (subfigure, (epoch, maps)) in enumerate(
        zip(np.atleast_1d(right.subfigures(rows, 1)), maps_by_epoch.items(), strict=True)
    ):
        if layer == "fc1":
            maps = _as_grid(maps)[None]
        signed = layer in SIGNED_LAYERS
        bound = _layer_bound(layer, maps)
        _maps_row(subfigure, maps, signed, f"epoch {epoch}", bound, tile_titles=row == 0)
    shape = "×".join(map(str, next(iter(maps_by_epoch.values())).shape))
    right.suptitle(f"{layer} ({shape}) of the digit, by epoch")
    return right.figure


def predictions(logits_by_epoch: Mapping[int, Array], label: int) -> Figure:
    """The predicted probabilities for one image at several epochs."""
    figure = Figure(figsize=(4.5 * len(logits_by_epoch), 4.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(logits_by_epoch), sharey=True))
    for ax, (epoch, logits) in zip(axes, logits_by_epoch.items(), strict=True):
        _probability_bars(ax, logits, label)
        probability = float(torch.as_tensor(_numpy(logits)).softmax(dim=-1)[label])
        ax.set_title(f"epoch {epoch}: {probability:.0%} on {label}")
    axes[0].set_ylabel("probability")
    _bar_legend(figure)
    return figure


def every_epoch(activations_by_epoch: Mapping[int, Mapping[str, Array]], label: int) -> Figure:
    """All epochs at a glance: how close each layer's output for the digit is to its final form
    (r with the last epoch's), and the probability of the true digit."""
    epochs = sorted(activations_by_epoch)
    last = activations_by_epoch[epochs[-1]]
    figure = Figure(figsize=(14, 5), layout="constrained")
    layers_ax, probability_ax = figure.subplots(1, 2, sharex=True)
    for name in last:
        r = [output_correlation(activations_by_epoch[epoch][name], last[name]) for epoch in epochs]
        layers_ax.plot(epochs, r, "o-", ms=4, label=name)
    layers_ax.set_ylabel(f"r with epoch {epochs[-1]}")
    layers_ax.set_title("each layer's output, against its final form")
    layers_ax.grid(alpha=0.3)
    layers_ax.legend(ncols=2, loc="lower right")
    logits = [torch.as_tensor(_numpy(activations_by_epoch[epoch]["logits"])) for epoch in epochs]
    probabilities = [float(values.softmax(dim=-1)[label]) for values in logits]
    colors = [TRUE_DIGIT if int(values.argmax()) == label else WRONG_GUESS for values in logits]
    probability_ax.bar(epochs, probabilities, color=colors)
    probability_ax.set_ylim(0, 1)
    probability_ax.set_ylabel(f"probability of {label}")
    probability_ax.set_title(f"the prediction for the digit (a {label})")
    handles = [
        Patch(color=TRUE_DIGIT, label=f"top guess {label}: right"),
        Patch(color=WRONG_GUESS, label="top guess another digit: wrong"),
    ]
    figure.legend(handles=handles, loc="outside lower right", ncols=2, frameon=False)
    for ax in (layers_ax, probability_ax):
        ax.set_xlabel("epoch")
        ax.set_xticks(epochs[:: max(1, len(epochs) // 10)])
    return figure


EXPLORER_DPI = 80  # the live view: sharp enough on screen, quick to redraw
PX_PER_EPOCH = 24  # the slider's length per epoch: easy to land on one with the mouse


def slider_width(steps: int) -> int:
    """Pixels for a slider of `steps` steps: PX_PER_EPOCH each, plus its label and readout."""
    return max(400, PX_PER_EPOCH * steps + 160)


class EpochExplorer:
    """The whole network's view of the digit at one epoch, in one figure that a slider redraws.

    The figure is built and drawn once, without the parts that change. Moving to another epoch
    replaces only the data of its images, the heights of its bars and the title, and redraws just
    those on top of the saved background (matplotlib's "blitting"). Each layer keeps one colour
    scale for all epochs, so the growth of the values shows; each epoch is rendered once.
    """

    def __init__(
        self, image: Array, activations_by_epoch: Mapping[int, Mapping[str, Array]], label: int
    ) -> None:
        self.activations = activations_by_epoch
        self.label = label
        self.epochs = sorted(activations_by_epoch)
        self.frames: dict[int, bytes] = {}
        self.lock = threading.Lock()  # one epoch at a time in the figure
        self.figure = Figure(figsize=(13, 15), dpi=EXPLORER_DPI, layout="constrained")
        self.canvas = FigureCanvasAgg(self.figure)
        top, *layers, fc1 = self.figure.subfigures(6, 1, height_ratios=[1.5, 1, 1, 0.85, 0.85, 1])
        digit_ax, self.bar_ax = top.subplots(1, 2, width_ratios=[1, 2.5])
        _image(digit_ax, _numpy(image).squeeze(), DIGIT, None, None, "input")
        self.bars = self.bar_ax.bar(range(10), np.zeros(10))
        self.bar_ax.set_xticks(range(10))
        self.bar_ax.set_ylim(0, 1)
        self.bar_ax.set_xlabel("digit")
        self.bar_ax.set_ylabel("probability")
        _bar_legend(top)
        self.images: dict[str, list[AxesImage]] = {}
        for subfigure, name in zip(layers, ("conv1", "pool1", "conv2", "pool2"), strict=True):
            every = self._stacked(name)
            shape = "×".join(map(str, every.shape[1:]))
            self.images[name] = _maps_row(
                subfigure,
                every[-1],
                name in SIGNED_LAYERS,
                f"{name}\n{shape}",
                _layer_bound(name, every),
            )
        every = self._stacked("fc1")
        self.images["fc1"] = _maps_row(
            fc1, _as_grid(every[-1])[None], False, "fc1\n128 units", _limit(every)
        )
        self.changing = [*self.bars, self.bar_ax.title]
        for image in (image for images in self.images.values() for image in images):
            self.changing += [image, *image.axes.spines.values()]  # the frame on top of the image
        for artist in self.changing:
            artist.set_animated(True)  # left out of the full draw below
        self.show(self.epochs[-1])
        self.figure.draw_without_rendering()  # lay the figure out once, then keep that layout
        self.figure.set_layout_engine("none")
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.figure.bbox)

    def _stacked(self, name: str) -> np.ndarray:
        return np.stack([_numpy(self.activations[epoch][name]) for epoch in self.epochs])

    def show(self, epoch: int) -> None:
        """Put `epoch`'s values into the figure: image data, bar heights and colours, title."""
        values = self.activations[epoch]
        for name, images in self.images.items():
            maps = _as_grid(values[name])[None] if name == "fc1" else _numpy(values[name])
            for shown, channel in zip(images, maps, strict=True):
                shown.set_data(channel)
        probabilities = torch.as_tensor(_numpy(values["logits"])).softmax(dim=-1).numpy()
        guess = int(probabilities.argmax())
        for digit, (bar, probability) in enumerate(zip(self.bars, probabilities, strict=True)):
            bar.set_height(probability)
            wrong = digit == guess != self.label
            bar.set_color(
                TRUE_DIGIT if digit == self.label else WRONG_GUESS if wrong else OTHER_DIGIT
            )
        self.bar_ax.set_title(
            f"epoch {epoch}: predicts {guess} ({probabilities[guess]:.0%}); it is a {self.label}"
        )

    def png(self, epoch: int) -> bytes:
        """The figure at `epoch` as PNG bytes, rendered on first use."""
        with self.lock:
            if epoch not in self.frames:
                self.show(epoch)
                self.canvas.restore_region(self.background)
                for artist in self.changing:
                    self.figure.draw_artist(artist)
                buffer = io.BytesIO()
                PIL.Image.fromarray(np.asarray(self.canvas.buffer_rgba())).save(
                    buffer, format="png", compress_level=1
                )
                self.frames[epoch] = buffer.getvalue()
            return self.frames[epoch]

    def render_all(self) -> None:
        """Render every epoch ahead of time, so that moving the slider only swaps pictures."""
        for epoch in self.epochs:
            self.png(epoch)

    def widget(self, ahead: bool = True):  # -> ipywidgets.VBox, imported only for a slider
        """A slider over the epochs above the figure; moving it swaps in that epoch's picture.
        With `ahead`, the other epochs are rendered in the background while nobody is looking."""
        import ipywidgets

        steps = self.epochs[-1] - self.epochs[0]
        slider = ipywidgets.IntSlider(
            value=self.epochs[-1],
            min=self.epochs[0],
            max=self.epochs[-1],
            description="epoch",
            layout=ipywidgets.Layout(width=f"{slider_width(steps)}px"),
        )
        picture = ipywidgets.Image(value=self.png(slider.value), format="png")
        slider.observe(lambda change: setattr(picture, "value", self.png(change.new)), "value")
        if ahead:
            threading.Thread(target=self.render_all, daemon=True).start()
        return ipywidgets.VBox([slider, picture])


def show_epoch_explorer(
    image: Array, activations_by_epoch: Mapping[int, Mapping[str, Array]], label: int
) -> None:
    """In JupyterLab, a slider over the epochs (`EpochExplorer`); headless, where nobody can move
    a slider, one figure of every epoch at a glance (`every_epoch`)."""
    from IPython.display import display

    if live_frontend():
        display(EpochExplorer(image, activations_by_epoch, label).widget())
    else:
        display(every_epoch(activations_by_epoch, label))


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
