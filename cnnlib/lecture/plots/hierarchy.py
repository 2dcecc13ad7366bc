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

SHOWN = 4  # pictures per channel or unit: few and large enough for a projector
GROUPS = 2  # blocks of rows side by side, so that the figure fits a screen's height


def _tiles(
    rows: Sequence[tuple[str, Sequence[tuple[np.ndarray, str]]]], title: str, tile: float = 1.5
) -> Figure:
    """Rows of titled pictures (each row: its label, its (pixels, title) pairs), in GROUPS blocks
    of rows side by side, each picture about `tile` inches wide."""
    per_group = -(-len(rows) // GROUPS)
    columns = max(len(pictures) for _, pictures in rows)
    figure = Figure(
        figsize=(GROUPS * (columns * tile + 0.6), per_group * (tile + 0.35) + 1.0),
        layout="constrained",
    )
    figure.suptitle(title)
    blocks = figure.subfigures(1, GROUPS, wspace=0.04)
    for number, block in enumerate(blocks):
        group = rows[number * per_group : (number + 1) * per_group]
        if not group:
            continue
        axes = block.subplots(len(group), columns, squeeze=False)
        for row_axes, (label, pictures) in zip(axes, group, strict=True):
            for ax, (pixels, name) in zip(row_axes, pictures, strict=True):
                show_image(ax, pixels, DIGIT, 0, 255, name)
            row_axes[0].set_ylabel(label)
    return figure


def strongest_patches(tops: Sequence[TopPatches], labels: Array, shown: int = SHOWN) -> Figure:
    """A row per channel: the input patches (its receptive field) of the test images that excite
    it most, strongest on the left, each titled with the label of the digit it was cut from."""
    labels = to_numpy(labels)
    first = tops[0]
    size = "×".join(map(str, first.patches.shape[1:]))
    rows = [
        (
            f"#{top.channel}",
            [
                (to_numpy(patch), f"from a {int(labels[int(image)])}")
                for patch, image in zip(top.patches[:shown], top.images[:shown], strict=True)
            ],
        )
        for top in tops
    ]
    title = (
        f"What excites each conv2 channel most, over the test set: the {size} pixels "
        f"one {first.layer} unit sees"
    )
    return _tiles(rows, title)


def strongest_digits(
    pixels: Array,
    tops: Mapping[int, torch.Tensor],
    labels: Array,
    layer: str = "fc1",
    shown: int = SHOWN,
) -> Figure:
    """A row per unit: the whole test digits that excite it most, strongest on the left, each
    titled with its label."""
    pixels, labels = to_numpy(pixels), to_numpy(labels)
    rows = [
        (f"unit {unit}", [(pixels[i], f"a {int(labels[i])}") for i in indices[:shown].tolist()])
        for unit, indices in tops.items()
    ]
    return _tiles(rows, f"What excites a few {layer} units most, over the 10,000 test digits")
