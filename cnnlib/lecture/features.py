"""The lecture's tools, looking inside in numbers: what conv1's filters respond to, how alike their
feature maps are, and how far training moved each layer's weights from their random start."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Three hand-made 3x3 kernels to compare a learned filter with. Each measures one simple pattern:
# brightness around a pixel (the stroke), brightness rising to the right (an edge that runs up
# and down: a vertical edge), brightness rising downwards (a horizontal edge).
REFERENCE_KERNELS = {
    "stroke": torch.ones(3, 3) / 9,
    "vertical edge": torch.tensor([[-1.0, 0.0, 1.0]] * 3),
    "horizontal edge": torch.tensor([[-1.0, 0.0, 1.0]] * 3).T,
}
# What a map that follows a reference (r > 0) or its negative (r < 0) picks out on a digit.
MEANINGS = {
    ("stroke", 1): "the bright stroke: a slightly blurred copy of the digit",
    ("stroke", -1): "the dark background: a negative copy of the digit",
    ("vertical edge", 1): "vertical edges, dark on the left and bright on the right",
    ("vertical edge", -1): "vertical edges, bright on the left and dark on the right",
    ("horizontal edge", 1): "horizontal edges, dark above and bright below",
    ("horizontal edge", -1): "horizontal edges, bright above and dark below",
}


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson's r of two equally sized arrays: +1 the same picture (whatever its scale and
    offset), -1 its negative, 0 unrelated."""
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    norm = a.norm() * b.norm()
    return float(a @ b / norm) if norm > 0 else 0.0


def map_correlations(maps: torch.Tensor) -> torch.Tensor:
    """r between every pair of feature maps [C, H, W]: a C x C matrix, 1 on the diagonal."""
    channels = len(maps)
    return torch.tensor(
        [[correlation(maps[i], maps[j]) for j in range(channels)] for i in range(channels)]
    )


def reference_responses(image: torch.Tensor) -> dict[str, torch.Tensor]:
    """The image [1, 28, 28] (or [28, 28]) filtered by each reference kernel, no padding:
    maps of the same 26 x 26 size as conv1's."""
    pixels = image.reshape(1, 1, *image.shape[-2:]).float()
    return {
        name: F.conv2d(pixels, kernel.reshape(1, 1, 3, 3))[0, 0]
        for name, kernel in REFERENCE_KERNELS.items()
    }


@dataclass(frozen=True)
class FilterSummary:
    """One conv1 filter: its kernel's structure and what its feature map follows on a digit."""

    channel: int
    total: float  # sum of the 9 weights: > 0 brightens where the stroke is, < 0 darkens
    left_right: float  # right column minus left column: the weight on a vertical edge
    top_bottom: float  # bottom row minus top row: the weight on a horizontal edge
    r: dict[str, float]  # r between the filter's map and each reference response

    @property
    def best(self) -> str:
        """The reference whose response the map follows most closely (largest |r|)."""
        return max(self.r, key=lambda name: abs(self.r[name]))

    @property
    def detects(self) -> str:
        """What the map picks out, in words, with the r that says so."""
        r = self.r[self.best]
        return f"{MEANINGS[self.best, 1 if r > 0 else -1]} (r = {r:+.2f} with the {self.best} map)"


def summarize_filters(
    kernels: torch.Tensor, maps: torch.Tensor, image: torch.Tensor
) -> list[FilterSummary]:
    """For conv1's kernels [C, 1, 3, 3] and their maps [C, 26, 26] of `image`: one summary each."""
    references = reference_responses(image)
    summaries = []
    for channel, (kernel, values) in enumerate(zip(kernels[:, 0], maps, strict=True)):
        summaries.append(
            FilterSummary(
                channel=channel,
                total=float(kernel.sum()),
                left_right=float(kernel[:, 2].sum() - kernel[:, 0].sum()),
                top_bottom=float(kernel[2].sum() - kernel[0].sum()),
                r={name: correlation(values, response) for name, response in references.items()},
            )
        )
    return summaries


@dataclass(frozen=True)
class Drift:
    """How a weight tensor changed between two snapshots."""

    change: float  # size of the change relative to the start: |last - first| / |first|
    cosine: float  # direction kept: 1 = the same pattern (whatever its scale), 0 = unrelated
    scale: float  # |last| / |first|: how much larger the weights became


def drift(first: torch.Tensor, last: torch.Tensor) -> Drift:
    """Compare a weight tensor at two epochs (e.g. epoch 0, random, and the last epoch)."""
    first, last = first.flatten().double(), last.flatten().double()
    return Drift(
        change=float((last - first).norm() / first.norm()),
        cosine=float(first @ last / (first.norm() * last.norm())),
        scale=float(last.norm() / first.norm()),
    )


def output_correlation(first: torch.Tensor, last: torch.Tensor) -> float:
    """How much a layer's output for one image still looks like it did at another epoch: r per
    map, averaged, for maps [C, H, W]; r over all units for a vector (fc1, the logits)."""
    if first.dim() == 1:
        return correlation(first, last)
    return sum(correlation(a, b) for a, b in zip(first, last, strict=True)) / len(first)
