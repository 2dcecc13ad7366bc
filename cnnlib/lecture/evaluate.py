"""The lecture's tools, looking back at a training run: how much each epoch moved each layer's
weights, what the network still gets wrong on the test set (confusion matrix, most confused
pairs, most confident mistakes), and how precise an accuracy measured on a set of images is."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import torch

from cnnlib.export import confident_mistakes as confident_mistakes  # as the demo's gallery
from cnnlib.model import CNN
from cnnlib.train import EVAL_CHUNK

Snapshot = Mapping[str, torch.Tensor]
CLASSES = 10


def weight_layers(snapshot: Snapshot) -> list[str]:
    """The layers that have a weight tensor, in order: conv1, conv2, fc1, fc2."""
    return [key.removesuffix(".weight") for key in snapshot if key.endswith(".weight")]


def weight_changes(snapshots: Sequence[Snapshot]) -> dict[str, list[float]]:
    """For each layer, how much each epoch changed its weights, relative to their size before the
    epoch, in percent: entry e - 1 is epoch e, 100 * |W_e - W_(e-1)| / |W_(e-1)|."""
    changes: dict[str, list[float]] = {}
    for layer in weight_layers(snapshots[0]):
        key = f"{layer}.weight"
        changes[layer] = [
            100 * float((after[key] - before[key]).norm() / before[key].norm())
            for before, after in itertools.pairwise(snapshots)
        ]
    return changes


@torch.inference_mode()
def logits_of(state_dict: Snapshot, images: torch.Tensor) -> torch.Tensor:
    """The class scores [N, 10] of a CNN with these weights, a chunk of images at a time."""
    model = CNN()
    model.load_state_dict(state_dict)
    model.eval()
    return torch.cat([model(chunk) for chunk in images.split(EVAL_CHUNK)])


def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Counts [10, 10]: row = the true digit, column = the predicted one; the diagonal is right."""
    matrix = torch.zeros(CLASSES, CLASSES, dtype=torch.long)
    matrix.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    return matrix


def confused_pairs(matrix: torch.Tensor) -> list[tuple[int, int, int]]:
    """Pairs of digits (a < b) with how often either was taken for the other, most confused first
    (ties: the smaller digits first); pairs never confused are left out."""
    both_ways = matrix + matrix.T
    pairs = [
        (a, b, int(both_ways[a, b]))
        for a in range(CLASSES)
        for b in range(a + 1, CLASSES)
        if both_ways[a, b] > 0
    ]
    return sorted(pairs, key=lambda pair: (-pair[2], pair[0], pair[1]))


def standard_error(accuracy: float, count: int) -> float:
    """One standard error of an accuracy (percent) measured on `count` images, in points: each
    image is right or wrong, so sqrt(p (1 - p) / n). 98% on the 10,000 test images: ±0.14."""
    p = accuracy / 100
    return 100 * math.sqrt(p * (1 - p) / count)


def paired(right_before: torch.Tensor, right_after: torch.Tensor) -> tuple[int, int, float]:
    """Two networks read the same images (`right_*`: True where each is right): how many images
    only the first reads right (b), only the second (c), and z = (c - b) / sqrt(b + c). Were both
    equally good, each of those b + c images would be a coin toss: |z| above 2 is more than that."""
    b = int((right_before & ~right_after).sum())
    c = int((~right_before & right_after).sum())
    return b, c, (c - b) / math.sqrt(b + c) if b + c else 0.0


def confidence_text(probability: float) -> str:
    """A probability as a percentage with one decimal, rounded down: 0.99996 is "99.9%", not
    "100.0%", which would say the network was certain."""
    return f"{math.floor(float(probability) * 1000) / 10:.1f}%"
