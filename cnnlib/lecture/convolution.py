"""The lecture's tools, why convolution: which input pixels one unit of a layer sees (its receptive
field), images moved by whole pixels (a convolution's maps move with its input), and what random
3x3 kernels, drawn as PyTorch draws conv1's, make of digits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlib.lecture.features import random_kernels
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


def kernel_correlations(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """r between each 3x3 kernel's map on each image [N, 1, H, W] and the pixels under the
    kernel's centre: +1 for a copy of the digit, -1 for a negative copy; [N, K] for kernels
    [K, 1, 3, 3]. A map is a weighted sum of the 9 pixels under the kernel, so r follows from
    their covariances, without computing the maps (a bias moves a map, and leaves r alone)."""
    patches = F.unfold(images, kernel_size=3)  # [N, 9, positions]: the pixels under the kernel
    patches = patches - patches.mean(dim=2, keepdim=True)
    covariance = patches @ patches.transpose(1, 2)  # [N, 9, 9]
    weights = kernels.flatten(start_dim=1)  # [K, 9]
    with_centre = weights @ covariance[:, :, 4].T  # [K, N]: each map's covariance with the centre
    spread = torch.einsum("ki,nij,kj->kn", weights, covariance, weights).sqrt()
    return (with_centre / (spread * covariance[:, 4, 4].sqrt())).T


def random_kernel_copies(
    images: torch.Tensor, kernels: int, seed: int, clear: float = 0.3, cancel: float = 0.1
) -> dict[str, float]:
    """Random 3x3 kernels, uniform in +-1/3 as PyTorch draws conv1's, on every image
    [N, 1, 28, 28]: the share of kernels whose weights sum to `clear` or more in size, and the
    share of (kernel, digit) pairs whose map is a copy of the digit (|r| > 0.5) of the sum's sign,
    among those kernels ("clear"), and of either sign among the kernels whose sum is below
    `cancel` ("cancel")."""
    weights = random_kernels(kernels, torch.Generator().manual_seed(seed))
    sums = weights.sum(dim=(1, 2, 3))
    r = kernel_correlations(images, weights)
    clear_kernels, cancelling = sums.abs() >= clear, sums.abs() < cancel
    return {
        "clear_share": float(clear_kernels.float().mean()),
        "clear": float((r * sums.sign() > 0.5)[:, clear_kernels].float().mean()),
        "cancel": float((r.abs() > 0.5)[:, cancelling].float().mean()),
    }
