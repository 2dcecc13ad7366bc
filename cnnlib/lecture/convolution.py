"""The lecture's tools, why convolution: which input pixels one unit of a layer sees (its receptive
field), and images moved by whole pixels, to show that a convolution's maps move with its input."""

from __future__ import annotations

import torch
from torch import nn

from cnnlib.model import CNN

# The layers whose units look at a window of the image: the ones before flatten, in order.
SPATIAL_LAYERS = ("conv1", "pool1", "conv2", "pool2")


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def receptive_field(model: CNN, layer: str, row: int, column: int) -> tuple[slice, slice]:
    """The rows and columns of the input image that can change the unit at (row, column) of
    `layer`'s maps, worked out backwards from each layer's kernel size, stride and padding.

    A unit at position p of a layer's output reads positions p*stride - padding up to
    p*stride - padding + kernel - 1 of the layer's input; going back layer by layer gives the
    window of input pixels, e.g. 3 x 3 for conv1 and 10 x 10 for pool2.
    """
    if layer not in SPATIAL_LAYERS:
        raise ValueError(f"layer must be one of {', '.join(SPATIAL_LAYERS)}, got {layer!r}")
    rows, columns = (row, row), (column, column)
    for name in reversed(SPATIAL_LAYERS[: SPATIAL_LAYERS.index(layer) + 1]):
        module: nn.Conv2d | nn.MaxPool2d = getattr(model, name)
        kernel, stride, padding = (
            _pair(module.kernel_size),
            _pair(module.stride),
            _pair(module.padding),
        )
        rows = (
            rows[0] * stride[0] - padding[0],
            rows[1] * stride[0] - padding[0] + kernel[0] - 1,
        )
        columns = (
            columns[0] * stride[1] - padding[1],
            columns[1] * stride[1] - padding[1] + kernel[1] - 1,
        )
    return slice(rows[0], rows[1] + 1), slice(columns[0], columns[1] + 1)


def _moved(size: int, by: int) -> tuple[slice, slice]:
    """Along one axis of length `size`: where the kept part comes from, and where it goes."""
    by = max(-size, min(size, by))
    if by >= 0:
        return slice(0, size - by), slice(by, size)
    return slice(-by, size), slice(0, size + by)


def shift(images: torch.Tensor, rows: int, columns: int, fill: float) -> torch.Tensor:
    """Images [..., H, W] moved down by `rows` and right by `columns` whole pixels (negative
    values: up and left). What leaves at one edge is lost; `fill` enters at the other edge
    (black for a digit; NaN for "unknown")."""
    height, width = images.shape[-2:]
    (source_rows, target_rows), (source_columns, target_columns) = (
        _moved(height, rows),
        _moved(width, columns),
    )
    moved = torch.full_like(images, fill)
    moved[..., target_rows, target_columns] = images[..., source_rows, source_columns]
    return moved
