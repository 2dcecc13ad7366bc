"""The lecture's tools: figures of notebook 03's feature hierarchy, what excites conv2's channels
most (patches of the size one pool2 unit sees) and what excites fc1's units most (whole digits),
over the whole test set."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from cnnlib.lecture.hierarchy import TopPatches
from cnnlib.lecture.plots.style import DIGIT, Array, show_image, to_numpy


def _tiles(rows: int, columns: int, title: str, tile: float = 1.15) -> tuple[Figure, np.ndarray]:
    figure = Figure(figsize=(columns * tile + 1.2, rows * (tile + 0.3) + 0.9), layout="constrained")
    figure.suptitle(title)
    return figure, figure.subplots(rows, columns, squeeze=False)


def strongest_patches(tops: Sequence[TopPatches], labels: Array) -> Figure:
    """A row per channel: the input patches (its receptive field) of the test images that excite
    it most, strongest on the left, each titled with the label of the digit it was cut from."""
    labels = to_numpy(labels)
    first = tops[0]
    size = "×".join(map(str, first.patches.shape[1:]))
    figure, axes = _tiles(
        len(tops),
        len(first.images),
        f"What excites each conv2 channel most, over the test set:\n{size}-pixel patches, "
        f"all that one {first.layer} unit sees",
    )
    for row, top in zip(axes, tops, strict=True):
        for ax, patch, image in zip(row, top.patches, top.images, strict=True):
            show_image(ax, patch, DIGIT, 0, 255, f"from a {int(labels[int(image)])}")
        row[0].set_ylabel(f"#{top.channel}")
    return figure


def strongest_digits(
    pixels: Array, tops: Mapping[int, torch.Tensor], labels: Array, layer: str = "fc1"
) -> Figure:
    """A row per unit: the whole test digits that excite it most, strongest on the left, each
    titled with its label."""
    pixels, labels = to_numpy(pixels), to_numpy(labels)
    columns = len(next(iter(tops.values())))
    figure, axes = _tiles(
        len(tops), columns, f"What excites a few {layer} units most, over the 10,000 test digits"
    )
    for row, (unit, indices) in zip(axes, tops.items(), strict=True):
        for ax, index in zip(row, indices.tolist(), strict=True):
            show_image(ax, pixels[index], DIGIT, 0, 255, f"a {int(labels[index])}")
        row[0].set_ylabel(f"unit {unit}")
    return figure
