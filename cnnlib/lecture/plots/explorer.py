"""The lecture's tools: notebook 03's epoch explorer, a slider over the epochs in JupyterLab
(static figures when run headless)."""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping

import numpy as np
import PIL.Image
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from cnnlib.lecture.plots.feature_maps import (
    OTHER_DIGIT,
    TRUE_DIGIT,
    WRONG_GUESS,
    WRONG_HATCH,
    bar_legend,
    every_epoch,
    layer_bound,
)
from cnnlib.lecture.plots.style import (
    DIGIT,
    SIGNED_LAYERS,
    Array,
    abs_limit,
    as_grid,
    live_frontend,
    maps_row,
    show_image,
    to_numpy,
)

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
        show_image(digit_ax, to_numpy(image).squeeze(), DIGIT, None, None, "input")
        self.bars = self.bar_ax.bar(range(10), np.zeros(10))
        self.bar_ax.set_xticks(range(10))
        self.bar_ax.set_ylim(0, 1)
        self.bar_ax.set_xlabel("digit")
        self.bar_ax.set_ylabel("probability")
        bar_legend(top)
        self.images: dict[str, list[AxesImage]] = {}
        for subfigure, name in zip(layers, ("conv1", "pool1", "conv2", "pool2"), strict=True):
            every = self._stacked(name)
            shape = "×".join(map(str, every.shape[1:]))
            self.images[name] = maps_row(
                subfigure,
                every[-1],
                name in SIGNED_LAYERS,
                f"{name}\n{shape}",
                layer_bound(name, every),
            )
        every = self._stacked("fc1")
        self.images["fc1"] = maps_row(
            fc1, as_grid(every[-1])[None], False, "fc1\n128 units", abs_limit(every)
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
        return np.stack([to_numpy(self.activations[epoch][name]) for epoch in self.epochs])

    def show(self, epoch: int) -> None:
        """Put `epoch`'s values into the figure: image data, bar heights and colours, title."""
        values = self.activations[epoch]
        for name, images in self.images.items():
            maps = as_grid(values[name])[None] if name == "fc1" else to_numpy(values[name])
            for shown, channel in zip(images, maps, strict=True):
                shown.set_data(channel)
        probabilities = torch.as_tensor(to_numpy(values["logits"])).softmax(dim=-1).numpy()
        guess = int(probabilities.argmax())
        for digit, (bar, probability) in enumerate(zip(self.bars, probabilities, strict=True)):
            bar.set_height(probability)
            wrong = digit == guess != self.label
            bar.set_facecolor(
                TRUE_DIGIT if digit == self.label else WRONG_GUESS if wrong else OTHER_DIGIT
            )
            bar.set_hatch(WRONG_HATCH if wrong else None)
            bar.set_edgecolor("black" if wrong else "none")
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
