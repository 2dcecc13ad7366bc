"""The lecture's tools: figures of notebook 02, training (the data, the curves, how far the
weights moved, what the network still gets wrong)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox

from cnnlib.lecture.hyperparams import Cell
from cnnlib.lecture.plots.style import DIGIT, LAYER_STYLES, Array, _drawn, show_image, to_numpy
from cnnlib.train import EpochResult

# Each optimizer drawn with its own colour, marker and dash: told apart without colour too.
OPTIMIZER_STYLES = {
    "Adam": {"color": "tab:blue", "marker": "o", "ls": "-"},
    "SGD": {"color": "tab:orange", "marker": "s", "ls": "--"},
}


def digit_grid(
    images: Array,
    titles: Sequence[str] = (),
    columns: int = 10,
    title: str = "",
    width: float = 1.2,
    row_labels: Sequence[str] = (),
) -> Figure:
    """Digits [N, 28, 28] in a grid, each with a short title (a prediction), or, where a whole
    row shares its label, that label once on the row's left (`row_labels`); `width` (inches per
    digit) makes room for longer titles."""
    images = to_numpy(images)
    rows = math.ceil(len(images) / columns)
    row_height = 1.45 if titles else 1.2  # inches: a digit, and its title above it
    height = rows * row_height + 0.9  # the rows, then the figure's title
    left = 0.5 / (columns * width) if row_labels else 0.01
    figure = Figure(figsize=(columns * width, height))
    figure.subplots_adjust(
        left=left, right=0.99, bottom=0.01, top=1 - 0.9 / height, hspace=0.45 if titles else 0.1
    )
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax, pixels, name in itertools.zip_longest(axes.flat, images, titles[: len(images)]):
        if pixels is None:
            ax.set_axis_off()
            continue
        show_image(ax, pixels, DIGIT, None, None, name or "")
    for row, label in zip(axes, row_labels, strict=False):
        row[0].set_ylabel(label, rotation=0, fontsize=20, ha="right", va="center")
    figure.suptitle(title, y=1 - 0.1 / height, va="top")
    return figure


def pixel_histograms(pixels: Array, normalized: Array) -> Figure:
    """All pixel values before and after normalization: same shape, new scale (mean 0, std 1)."""
    figure = Figure(figsize=(13, 4.5))
    axes = figure.subplots(1, 2)
    panels = ((to_numpy(pixels) / 255.0, "scaled to 0..1"), (to_numpy(normalized), "normalized"))
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


HELD_OUT = {
    "test": "test (10,000 images)",
    "validation": "validation (5,000 held-out training images)",
}


def training_curves(results: Sequence[EpochResult], held_out: str = "test") -> Figure:
    """Loss (log scale) and accuracy (zoomed on the trained epochs) after every epoch, on the
    training batches and on a held-out set: the test set, or (`held_out="validation"`) the
    validation set, on which every choice is made; points below the accuracy axis sit on its
    edge as ▼."""
    if held_out not in HELD_OUT:
        raise ValueError(f"held_out must be one of {', '.join(HELD_OUT)}, got {held_out!r}")
    epochs = [result.epoch for result in results]
    series = {
        "train (the epoch's batches)": (
            "o-",
            [r.loss for r in results],
            [r.train_accuracy for r in results],
        ),
        HELD_OUT[held_out]: (
            "s--",
            [getattr(r, f"{held_out}_loss") for r in results],
            [getattr(r, f"{held_out}_accuracy") for r in results],
        ),
    }
    accuracies = series[HELD_OUT[held_out]][2]
    trained = accuracies[1:] or accuracies[:1]
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
            fontsize=14,
            va="bottom",
        )
    _log_axis(loss_ax)
    loss_ax.set_ylabel("cross-entropy loss (log scale)")
    loss_ax.set_title("Loss: lower is better")
    accuracy_ax.set_ylim(lowest, 100)
    accuracy_ax.set_ylabel(f"accuracy (%), from {lowest}%")
    accuracy_ax.set_title(f"Accuracy: {accuracies[-1]:.2f}% on the {held_out} set at the end")
    for ax in (loss_ax, accuracy_ax):
        ax.set_xlabel("epoch (0 = before any training)")
        ax.set_xticks(epochs[:: max(1, math.ceil(len(epochs) / 11))])
        ax.grid(alpha=0.3, which="both")
    loss_ax.legend()
    accuracy_ax.legend(loc="center right")
    return figure


def overfitting(curve: Mapping[int, tuple[float, float]], images: int) -> Figure:
    """Training loss (over each epoch's batches) and validation loss after each measured epoch
    (`curve`: epoch -> (training, validation)) of a run on `images` training images, log scale;
    the epoch where the validation loss is lowest is marked."""
    epochs = list(curve)
    training, validation = zip(*curve.values(), strict=True)
    best = min(curve, key=lambda epoch: curve[epoch][1])
    figure = Figure(figsize=(11, 5.5), layout="constrained")
    ax = figure.subplots()
    ax.plot(epochs, training, "o-", color="tab:blue", label="training (the epoch's batches)")
    ax.plot(epochs, validation, "s--", color="tab:orange", label="validation (5,000 images)")
    ax.axvline(best, color="0.4", ls=":", lw=2, label=f"lowest validation loss: epoch {best}")
    _log_axis(ax)
    ax.set_xlabel(f"epoch (one pass over the {images:,} training images)")
    ax.set_ylabel("cross-entropy loss (log scale)")
    ax.set_title(f"Overfitting: {images:,} training images, {epochs[-1]} passes")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower left")
    return figure


def weight_changes(changes: Mapping[str, Sequence[float]]) -> Figure:
    """How far each layer's weights moved in each epoch, relative to their size (log scale)."""
    figure = Figure(figsize=(11, 5.5), layout="constrained")
    ax = figure.subplots()
    epochs = list(range(1, len(next(iter(changes.values()))) + 1))
    for layer, values in changes.items():
        ax.plot(epochs, values, ms=8, label=layer, **LAYER_STYLES[layer])
    _log_axis(ax)
    ax.set_xticks(epochs[:: max(1, math.ceil(len(epochs) / 10))])
    ax.set_xlabel("epoch")
    ax.set_ylabel("change of the weights (%, log scale)")
    ax.set_title("How much each epoch changed each layer's weights")
    ax.grid(alpha=0.3, which="both")
    ax.legend(title="layer", loc="upper right")
    return figure


def confusion_matrices(matrices: Mapping[str, Array]) -> Figure:
    """Confusion matrices side by side (rows: true digit, columns: predicted), the mistakes of
    each on a colour scale of its own (with its own colour bar: a matrix with few mistakes is not
    left pale); the right answers, on the diagonal, are written on gray."""
    matrices = {title: to_numpy(matrix) for title, matrix in matrices.items()}
    diagonal = np.eye(10, dtype=bool)
    cmap = mpl.colormaps["Reds"].with_extremes(bad="0.85")
    figure = Figure(figsize=(7.6 * len(matrices), 7.2), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(matrices), sharex=True, sharey=True))
    for ax, (title, matrix) in zip(axes, matrices.items(), strict=True):
        bound = max(int(matrix[~diagonal].max()), 1)
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
                fontsize=14,
                color="white" if dark else "black",
            )
        ax.set_xticks(range(10))
        ax.set_yticks(range(10))
        ax.set_xlabel("predicted digit")
        ax.set_title(f"{title}: {int(matrix.sum() - matrix.trace()):,} mistakes")
        figure.colorbar(image, ax=ax, label="test images taken for another digit", shrink=0.8)
    axes[0].set_ylabel("true digit")
    return figure


def rate_text(lr: float) -> str:
    """A learning rate as the lecture writes it: 0.001 is "1e-3", 0.0005 is "5e-4"."""
    mantissa, exponent = f"{lr:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


# Where a point's value may be written, in order of preference: (dx, dy) in points from the
# point, and its alignment. Above (or, the list turned over, below) first, then beside.
PLACES = (
    (0, 10, "center", "bottom"),
    (14, 6, "left", "bottom"),
    (-14, 6, "right", "bottom"),
    (0, -10, "center", "top"),
    (14, -6, "left", "top"),
    (-14, -6, "right", "top"),
)


SAMPLES = np.linspace(0, 1, 100)  # points along a segment where a number must not sit


def _clear(box: Bbox, ax: Axes, taken: list[Bbox]) -> bool:
    """Is `box` (display pixels) inside `ax`, off every line drawn on it and off the boxes
    already `taken`?"""
    if not (ax.bbox.contains(box.x0, box.y0) and ax.bbox.contains(box.x1, box.y1)):
        return False
    if any(box.overlaps(other) for other in taken):
        return False
    for line in ax.get_lines():
        points = line.get_transform().transform(line.get_xydata())
        radius = line.get_markersize() / 2 * ax.figure.dpi / 72 if line.get_marker() else 0
        if box.padded(radius).count_contains(points):
            return False
        for start, end in itertools.pairwise(points):
            if box.padded(2).count_contains(start + SAMPLES[:, None] * (end - start)):
                return False
    return True


def _write_values(
    figure: Figure, series: Sequence[tuple[Axes, Sequence[float], Sequence[float], str, bool]]
) -> None:
    """Write each point's value beside it, in its line's colour: above it (or below, for a line
    whose values go `below`) where that is clear of every line and every other number, else in
    the first clear place of PLACES. Placed on the figure as drawn, so that no number hides
    another or sits on a line, whatever the values."""
    with _drawn(figure, figure.dpi) as canvas:
        renderer = canvas.get_renderer()
        taken: list[Bbox] = []
        for ax, xs, ys, color, below in series:
            places = PLACES[3:] + PLACES[:3] if below else PLACES
            for x, y in zip(xs, ys, strict=True):
                for dx, dy, ha, va in places:
                    text = ax.annotate(
                        f"{y:.1f}",
                        (x, y),
                        xytext=(dx, dy),
                        textcoords="offset points",
                        ha=ha,
                        va=va,
                        fontsize=14,
                        color=color,
                        in_layout=False,
                    )
                    box = text.get_window_extent(renderer)
                    if _clear(box, ax, taken) or (dx, dy) == places[-1][:2]:
                        taken.append(box)
                        break
                    text.remove()


def hyperparameters(
    cells: Sequence[Cell], chosen: tuple[str, float, int] = ("Adam", 1e-3, 64)
) -> Figure:
    """The hyperparameter grid on the validation set: accuracy against the learning rate (log
    axis), a line per optimizer, each with its own marker and dash; and against the batch size at
    the `chosen` optimizer and learning rate. The `chosen` cell (the lecture's) is ringed."""
    optimizer, lr, batch_size = chosen
    figure = Figure(figsize=(15, 6), layout="constrained")
    lr_ax, batch_ax = figure.subplots(1, 2, width_ratios=[1.7, 1], sharey=True)
    series = []
    for name, style in OPTIMIZER_STYLES.items():
        line = sorted(
            (c for c in cells if c.optimizer == name and c.batch_size == batch_size),
            key=lambda c: c.lr,
        )
        accuracies = [c.validation_accuracy for c in line]
        xs = [c.lr for c in line]
        lr_ax.plot(xs, accuracies, label=name, ms=11, lw=2.5, **style)
        series.append((lr_ax, xs, accuracies, style["color"], name == "SGD"))
    sizes = sorted(
        (c for c in cells if (c.optimizer, c.lr) == (optimizer, lr)), key=lambda c: c.batch_size
    )
    accuracies = [c.validation_accuracy for c in sizes]
    label = f"{optimizer}, lr {rate_text(lr)}"
    batch_sizes = [c.batch_size for c in sizes]
    style = OPTIMIZER_STYLES[optimizer]
    batch_ax.plot(batch_sizes, accuracies, label=label, ms=11, lw=2.5, **style)
    series.append((batch_ax, batch_sizes, accuracies, style["color"], True))
    mine = next(c for c in cells if (c.optimizer, c.lr, c.batch_size) == chosen)
    ring = {"marker": "o", "ms": 22, "mfc": "none", "mec": "black", "mew": 2}
    for ax, x in ((lr_ax, mine.lr), (batch_ax, mine.batch_size)):
        ax.plot(x, mine.validation_accuracy, **ring)
        ax.axhline(10, color="0.4", ls=":", lw=2)
        ax.grid(alpha=0.3, which="both")
        ax.margins(x=0.1)  # room for the numbers written beside the first and last points
    handles = [
        *lr_ax.get_lines()[: len(OPTIMIZER_STYLES)],
        Line2D([], [], ls="none", **ring),
        Line2D([], [], color="0.4", ls=":", lw=2),
    ]
    labels = [*OPTIMIZER_STYLES, "the lecture's setting", "chance: 10%"]
    figure.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    rates = sorted({c.lr for c in cells})
    lr_ax.set_xscale("log")
    lr_ax.set_xticks(rates, [rate_text(rate) for rate in rates])
    lr_ax.minorticks_off()
    lr_ax.set_xlabel("learning rate (log scale)")
    lr_ax.set_ylabel("validation accuracy (%)")
    lr_ax.set_ylim(0, 105)
    lr_ax.set_title(f"Learning rate × optimizer (batch size {batch_size})")
    batch_ax.set_xscale("log", base=2)
    batch_ax.set_xticks(batch_sizes, [str(size) for size in batch_sizes])
    batch_ax.minorticks_off()
    batch_ax.set_xlabel("batch size (log scale)")
    batch_ax.set_title(f"Batch size ({label})")
    figure.suptitle(
        f"{cells[0].steps} training steps per setting, scored on the 5,000 validation images"
    )
    _write_values(figure, series)
    return figure
