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


def pattern_fits(weight: torch.Tensor, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """How closely conv1-like filters (`weight` [C, 1, 3, 3]) follow each hand-made pattern on
    many digits (normalized `images` [N, 1, 28, 28]): {reference: r [N, C]}.

    A 3x3 map is a weighted sum of the digit's 9 shifted copies (a bias only shifts it, which r
    ignores), and so is each reference map; so r needs only the 9 x 9 covariances S of those
    copies: r(w, k) = w.S.k / sqrt(w.S.w * k.S.k). No map is drawn, thousands of kernels cost
    little."""
    pixels = images.reshape(-1, 28, 28).double()
    copies = torch.stack(  # [N, 9, 676]: the 26 x 26 pixels under each of the kernel's 9 cells
        [
            pixels[:, row : row + 26, column : column + 26]
            for row in range(3)
            for column in range(3)
        ],
        dim=1,
    ).flatten(2)
    copies = copies - copies.mean(-1, keepdim=True)
    covariances = copies @ copies.transpose(1, 2)  # [N, 9, 9]
    filters = weight.flatten(1).double()  # [C, 9]
    filter_spread = torch.einsum("ci,nij,cj->nc", filters, covariances, filters)
    fits = {}
    for name, kernel in REFERENCE_KERNELS.items():
        reference = kernel.flatten().double()
        together = torch.einsum("ci,nij,j->nc", filters, covariances, reference)
        spread = filter_spread * (reference @ covariances @ reference)[:, None]
        fits[name] = torch.where(spread > 0, together / spread.clamp_min(1e-300).sqrt(), 0.0)
    return fits


@dataclass(frozen=True)
class Gain:
    """How much more closely a filter follows its pattern at the end than at the start, over
    the same digits (a paired comparison)."""

    start: float  # mean |r| over the digits at the start
    end: float  # ... and at the end
    error: float  # standard error of the mean of the per-digit differences

    @property
    def change(self) -> float:
        return self.end - self.start


def fit_gain(start: torch.Tensor, end: torch.Tensor) -> Gain:
    """The paired change of |r| from `start` to `end` (r per digit, [N])."""
    differences = end.abs() - start.abs()
    return Gain(
        float(start.abs().mean()),
        float(end.abs().mean()),
        float(differences.std() / len(differences) ** 0.5),
    )


# How clearly a random kernel's weights add up to one sign: |sum| in [low, high).
SUM_BANDS = {"below 0.3": (0.0, 0.3), "0.3 to 0.5": (0.3, 0.5), "0.5 or more": (0.5, 9.0)}


def random_kernels(count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` random conv1 kernels [count, 1, 3, 3], drawn as PyTorch draws a new
    Conv2d(1, C, 3)'s: uniform between -1/3 and 1/3 (1 / sqrt of the 9 inputs)."""
    return (torch.rand(count, 1, 3, 3, generator=generator) * 2 - 1) / 3


def stroke_rates(weight: torch.Tensor, images: torch.Tensor) -> dict[str, float]:
    """For kernels grouped by how clearly their weights add up to one sign (`SUM_BANDS`): the
    share of (kernel, digit) pairs whose map follows the stroke, with the sign of the sum,
    at r > 0.5 (a blurred copy of the digit, or a negative one)."""
    sums = weight.sum((1, 2, 3))
    follows = (pattern_fits(weight, images)["stroke"] * sums.sign() > 0.5).float().mean(0)
    sums = sums.abs()
    rates = {}
    for band, (low, high) in SUM_BANDS.items():
        chosen = (sums >= low) & (sums < high)
        rates[band] = float(follows[chosen].mean()) if chosen.any() else float("nan")
    return rates


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
