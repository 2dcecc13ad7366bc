"""The lecture's tools: the style every figure shares (fonts for the back row, colour maps,
retina PNGs) and the small drawing helpers the figure modules use.

The colour convention, the same in the notebooks and in the demo page (demo/views.mjs's SCALES
holds the same stops; a test compares them): both scales get lighter as values grow, so that they
still read on a projector that washes colours out, or printed in grayscale.
* values of both signs (conv1 and conv2, drawn before their ReLU; kernels; weights; r) on a
  diverging scale centred on zero (`SIGNED`): dark blue negative, gray 0, light orange positive;
* values after a ReLU (pool1, pool2, fc1), never negative, on a one-sided scale (`POSITIVE`):
  black 0, as the digit's background, to light orange for the largest;
* digits in gray, as MNIST stores them (`DIGIT`): black 0, white 255.
Every figure also says right from wrong and one line from another by more than hue (a hatch, a
marker, a dash or a word), for colour-blind readers and for grayscale printouts.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import matplotlib as mpl
import numpy as np
import PIL.Image
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure, SubFigure
from matplotlib.image import AxesImage
from matplotlib.transforms import Bbox

LECTURE_STYLE = {
    "font.size": 14,
    "axes.titlesize": 15,
    "axes.labelsize": 14,
    "figure.titlesize": 18,
    "legend.fontsize": 13,
    "figure.dpi": 72,
}
DIGIT = "gray"  # MNIST as stored: white strokes on black
# Each layer's line in every figure: its own marker (and dash where four dashes go round), told
# apart without colour; conv1 drawn last (on top) and thickest, since its line often lies under
# the others'. fc2's output is the logits.
LAYER_STYLES = {
    "conv1": {"marker": "o", "ls": "-", "lw": 3.5, "zorder": 5},
    "pool1": {"marker": "v", "ls": ":", "lw": 2},
    "conv2": {"marker": "s", "ls": "--", "lw": 2},
    "pool2": {"marker": "p", "ls": ":", "lw": 2},
    "fc1": {"marker": "^", "ls": "-.", "lw": 2},
    "fc2": {"marker": "D", "ls": ":", "lw": 2},
}
LAYER_STYLES["logits"] = LAYER_STYLES["fc2"]
# Colour stops (t, (r, g, b)), t from -1 (or 0) to 1: the demo's SCALES, stop for stop.
SIGNED_STOPS = (
    (-1.0, (20, 40, 110)),
    (-0.5, (70, 110, 175)),
    (0.0, (140, 140, 140)),
    (0.5, (215, 150, 80)),
    (1.0, (255, 235, 180)),
)
POSITIVE_STOPS = ((0.0, (0, 0, 0)), (0.5, (175, 85, 40)), (1.0, (255, 235, 180)))
SIGNED = "lecture_signed"  # values of both signs: dark blue negative, gray 0, light orange positive
POSITIVE = "lecture_positive"  # values after ReLU, never negative: black 0 to light orange
SIGNED_LAYERS = ("conv1", "conv2")  # drawn before their ReLU, as the demo draws them
Array = torch.Tensor | np.ndarray


def _register(name: str, stops: Sequence[tuple[float, tuple[int, int, int]]]) -> None:
    """Make the colour map of `stops` known to matplotlib by `name` (cmap=name works anywhere)."""
    low = stops[0][0]
    colours = [((t - low) / (1 - low), np.array(rgb) / 255) for t, rgb in stops]
    if name not in mpl.colormaps:
        mpl.colormaps.register(LinearSegmentedColormap.from_list(name, colours))


_register(SIGNED, SIGNED_STOPS)
_register(POSITIVE, POSITIVE_STOPS)


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
    screen), in full colour (a gray digit stays gray, a colour bar stays smooth), and the size at
    which a browser should show it.

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
    image.save(buffer, format="png", compress_level=9)
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


def to_numpy(values: Array) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def abs_limit(values: Array) -> float:
    """The largest absolute value: the bound of a colour scale centred on zero."""
    return float(np.abs(to_numpy(values)).max()) or 1.0


def show_image(
    ax: Axes, values: Array, cmap: str, vmin: float | None, vmax: float | None, title: str = ""
) -> AxesImage:
    image = ax.imshow(to_numpy(values), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return image


def robust_limit(values: Array, percentile: float = 99.0) -> float:
    """A colour-scale bound that a few extreme values cannot stretch: the given percentile of
    the absolute values. Values beyond it are drawn in the end colour."""
    return float(np.percentile(np.abs(to_numpy(values)), percentile)) or abs_limit(values)


def maps_row(
    figure: Figure | SubFigure,
    maps: Array,
    signed: bool,
    label: str,
    bound: float | None = None,
    tile_titles: bool = True,
) -> list[AxesImage]:
    """Channels [C, H, W] side by side on one colour scale (the largest value, or `bound`), with
    its colour bar; `label` on the left of the row. Returns the images, to update in place."""
    maps = to_numpy(maps)
    axes = np.atleast_1d(figure.subplots(1, len(maps)))
    limit = abs_limit(maps) if bound is None else bound
    vmin, cmap = (-limit, SIGNED) if signed else (0.0, POSITIVE)
    images = []
    for channel, (ax, values) in enumerate(zip(axes, maps, strict=True)):
        title = f"#{channel}" if tile_titles and len(maps) > 1 else ""
        images.append(show_image(ax, values, cmap, vmin, limit, title))
    clipped = maps.max() > limit or (signed and maps.min() < -limit)
    extend = ("both" if signed else "max") if clipped else "neither"
    figure.colorbar(images[-1], ax=list(axes), label="activation", shrink=0.9, extend=extend)
    axes[0].set_ylabel(label)
    return images


def maps_grid(
    figure: Figure | SubFigure,
    rows: Sequence[tuple[str, Array, float]],
    signed: bool,
    tile_titles: bool = True,
) -> list[list[AxesImage]]:
    """Rows of channels [C, H, W] (each row: its label, its maps, the bound of its colour scale)
    in one grid, each row with its own colour bar in a column of its own: channel k sits at the
    same x in every row, whatever the width of a colour bar's tick labels, so that the rows can
    be compared down a column."""
    channels = len(to_numpy(rows[0][1]))
    axes = figure.subplots(
        len(rows), channels + 1, squeeze=False, width_ratios=[1] * channels + [0.07]
    )
    vmin_of, cmap = (lambda limit: -limit, SIGNED) if signed else (lambda limit: 0.0, POSITIVE)
    images = []
    for number, (row_axes, (label, maps, limit)) in enumerate(zip(axes, rows, strict=True)):
        maps = to_numpy(maps)
        row = []
        for channel, (ax, values) in enumerate(zip(row_axes[:-1], maps, strict=True)):
            title = f"#{channel}" if tile_titles and number == 0 and channels > 1 else ""
            row.append(show_image(ax, values, cmap, vmin_of(limit), limit, title))
        clipped = maps.max() > limit or (signed and maps.min() < -limit)
        extend = ("both" if signed else "max") if clipped else "neither"
        figure.colorbar(row[-1], cax=row_axes[-1], label="activation", extend=extend)
        row_axes[0].set_ylabel(label)
        images.append(row)
    return images


def as_grid(vector: Array, rows: int = 4) -> np.ndarray:
    """A vector of units (fc1's 128) folded into a small image of `rows` rows."""
    vector = to_numpy(vector)
    return vector.reshape(rows, len(vector) // rows)


def number_text(value: float, text_format: str) -> str:
    """A number as text, without the minus sign of a value that rounds to zero ("0.00")."""
    text = text_format.format(value)
    return text.removeprefix("-") if float(text) == 0 else text


def cell_values(
    ax: Axes, image: AxesImage, values: np.ndarray, text_format: str, fontsize: int = 14
) -> None:
    """Each value written in its cell: white on dark colours, black on light ones."""
    for (y, x), value in np.ndenumerate(values):
        red, green, blue, _ = image.cmap(image.norm(value))
        dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
        text = number_text(value, text_format)
        color = "white" if dark else "black"
        ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, color=color)
