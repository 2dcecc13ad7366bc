"""The lecture's tools: the predicates behind notebook 02's checked sentences (see `claims`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from cnnlib.data import VALIDATION_SIZE
from cnnlib.lecture.claims import Verdict, claim, rounded
from cnnlib.lecture.evaluate import paired, standard_error
from cnnlib.lecture.hyperparams import Cell, best_cell, find

# The rows of notebook 02's ablation table.
TRAINED, FROZEN, RESET = (
    "as trained",
    "conv1 frozen at its start",
    "trained, then conv1 set back to its start",
)


@claim("step-helps")
def step_helps(before: float, after: float) -> Verdict:
    return Verdict(after < before, f"loss {before:.4f} before the step, {after:.4f} after")


@claim("gradient-by-hand")
def gradient_by_hand(difference: float) -> Verdict:
    return Verdict(difference < 1e-6, f"largest difference from autograd {difference:.1e}")


@claim("adam-by-hand")
def adam_by_hand(difference: float) -> Verdict:
    return Verdict(difference < 1e-6, f"largest difference from torch.optim.Adam {difference:.1e}")


@claim("never-drawn")
def never_drawn(never: int, expected: float, images: int) -> Verdict:
    """Independent shuffles miss each image with the same chance, so the count of never-drawn
    images spreads like a binomial count around `expected`: four of its standard errors allowed."""
    spread = math.sqrt(expected * (1 - expected / images))
    return Verdict(
        0.07 < never / images < 0.1 and abs(never - expected) < 4 * spread,
        f"{never:,} of {images:,} never drawn; independent shuffles {expected:,.0f} ± {spread:.0f}",
    )


@claim("untrained-loss")
def untrained_loss(loss: float, accuracy: float) -> Verdict:
    return Verdict(
        abs(loss - math.log(10)) < 0.15 and 5 < accuracy < 20,
        f"loss {loss:.3f} (ln 10 = 2.303), accuracy {accuracy:.1f}%",
    )


@claim("first-epoch")
def first_epoch(validation_losses: Sequence[float]) -> Verdict:
    first = validation_losses[0] - validation_losses[1] if len(validation_losses) > 1 else 0.0
    later = validation_losses[1] - min(validation_losses[1:], default=0.0)
    return Verdict(
        first > later,
        f"validation loss: epoch 1 lowers it by {first:.3f}, later ones by {later:.3f}",
    )


def _paired_loss_z(before: torch.Tensor, after: torch.Tensor) -> float:
    """z of the mean change of per-image losses measured on the same images: the mean over its
    standard error."""
    change = after - before
    return float(change.mean() / (change.std() / math.sqrt(len(change))))


@claim("overfits")
def overfits(
    curve: Mapping[int, tuple[float, float]], lowest: torch.Tensor, end: torch.Tensor
) -> Verdict:
    """`curve`: epoch -> (training loss, validation loss); `lowest`, `end`: the per-image
    validation losses where the validation loss is lowest and at the last epoch."""
    best = min(curve, key=lambda epoch: curve[epoch][1])
    final = max(curve)
    z = _paired_loss_z(lowest, end)
    return Verdict(
        best < final and curve[final][0] < curve[best][0] / 5 and z > 3,
        f"validation loss lowest after epoch {best} ({curve[best][1]:.3f}), {curve[final][1]:.3f} "
        f"after epoch {final}, paired z = {z:+.1f}; training loss {curve[best][0]:.3f} -> "
        f"{curve[final][0]:.4f}",
    )


@claim("no-overfit")
def no_overfit(training: float, validation: float) -> Verdict:
    return Verdict(
        training > validation / 2,
        f"at the end: training loss {training:.3f}, validation loss {validation:.3f}",
    )


# The sets of notebook 02's loss table.
DRAWN, NEVER = "drawn by training", "never drawn"


def _mean_difference(losses: Mapping[str, torch.Tensor], first: str, second: str) -> tuple:
    """How much higher the mean loss of `first` is than of `second` (two sets of images), in
    standard errors of that difference, and the numbers."""
    means = {name: float(losses[name].mean()) for name in (first, second)}
    errors = [float(losses[name].std()) / math.sqrt(len(losses[name])) for name in (first, second)]
    z = (means[first] - means[second]) / math.hypot(*errors)
    return z, f"{first} {means[first]:.4f}, {second} {means[second]:.4f}: {z:+.1f} standard errors"


@claim("unseen-alike")
def unseen_alike(losses: Mapping[str, torch.Tensor]) -> Verdict:
    """`losses`: per-image losses of each set of the table."""
    z, numbers = _mean_difference(losses, NEVER, "validation")
    return Verdict(abs(z) < 3, numbers)


@claim("drawn-lower", general=False)
def drawn_lower(losses: Mapping[str, torch.Tensor]) -> Verdict:
    z, numbers = _mean_difference(losses, NEVER, DRAWN)
    return Verdict(z > 2, numbers)


def _per_epoch(changes: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    layers = list(changes)
    return [
        dict(zip(layers, values, strict=True)) for values in zip(*changes.values(), strict=True)
    ]


@claim("epoch1-most")
def epoch1_most(changes: Mapping[str, Sequence[float]]) -> Verdict:
    return Verdict(
        bool(_per_epoch(changes)) and all(values[0] == max(values) for values in changes.values()),
        "epoch 1 vs the largest later change: "
        + ", ".join(
            f"{layer} {v[0]:.1f} vs {max(v[1:], default=0):.1f}" for layer, v in changes.items()
        ),
    )


@claim("conv1-least")
def conv1_least(changes: Mapping[str, Sequence[float]]) -> Verdict:
    """Almost every epoch: seeds 5 and 7 have one early epoch (2) where fc2 changes less."""
    smallest = [min(epoch, key=epoch.get) for epoch in _per_epoch(changes)]
    return Verdict(
        bool(smallest) and smallest.count("conv1") >= 0.8 * len(smallest),
        f"the least changed layer per epoch: {smallest}",
    )


@claim("fc1-most")
def fc1_most(changes: Mapping[str, Sequence[float]]) -> Verdict:
    largest = [max(epoch, key=epoch.get) for epoch in _per_epoch(changes)]
    return Verdict(
        bool(largest) and largest.count("fc1") >= 0.85 * len(largest),
        f"the most changed layer per epoch: {largest}",
    )


@claim("conv-settle")
def conv_settle(periods: Mapping[str, Sequence[float]]) -> Verdict:
    return Verdict(
        all(periods[layer][2] < periods[layer][1] for layer in ("conv1", "conv2")),
        f"mean change in epochs 6-8 and the last 3: "
        f"{ {layer: rounded(values[1:], 1) for layer, values in periods.items()} }",
    )


@claim("fc-steady")
def fc_steady(fc1: Sequence[float]) -> Verdict:
    return Verdict(len(fc1) >= 10 and min(fc1) > 3, f"fc1's changes: {rounded(fc1, 1)}")


def _against_trained(ablation: Mapping[str, torch.Tensor], variant: str) -> tuple[float, str]:
    """Paired z of `variant` against the trained network on the same images, and the numbers."""
    b, c, z = paired(ablation[TRAINED], ablation[variant])
    accuracy = 100 * float(ablation[variant].float().mean())
    return z, f"{variant}: {accuracy:.2f}%, {b} turn wrong, {c} right, z = {z:+.1f}"


@claim("frozen-worse", general=False)  # seed 7: z = -0.3
def frozen_worse(ablation: Mapping[str, torch.Tensor]) -> Verdict:
    """`ablation`: for each variant, which validation images it reads right."""
    z, numbers = _against_trained(ablation, FROZEN)
    return Verdict(z < -2, numbers)


@claim("best-late")
def best_late(validation: Sequence[float]) -> Verdict:
    """`validation`: the validation accuracy after each epoch, epoch 0 first."""
    best = max(range(1, len(validation)), key=validation.__getitem__, default=0)
    return Verdict(
        best >= len(validation) - 4,
        f"best validation accuracy after epoch {best} of {len(validation) - 1}",
    )


@claim("epochs-flip")
def epochs_flip(flips: tuple[int, int]) -> Verdict:
    """`flips`: validation images the last epoch turns wrong, and right."""
    return Verdict(min(flips) > 10, f"{flips[0]} turn wrong, {flips[1]} turn right")


@claim("grid-too-large")
def grid_too_large(cells: Sequence[Cell]) -> Verdict:
    """Seeds 0, 1 and 42 stay at chance (about 10%), seed 2 reaches 28%: all far below 1e-3."""
    large, good = find(cells, "Adam", 0.1), find(cells, "Adam", 1e-3)
    return Verdict(
        large.validation_accuracy < 50
        and good.validation_accuracy - large.validation_accuracy > 40,
        f"Adam at 0.1: {large.validation_accuracy:.1f}% (chance 10%), at 1e-3: "
        f"{good.validation_accuracy:.1f}%",
    )


@claim("grid-sgd")
def grid_sgd(cells: Sequence[Cell]) -> Verdict:
    adam, sgd = find(cells, "Adam", 1e-3), find(cells, "SGD", 1e-3)
    fast = max(find(cells, "SGD", lr).validation_accuracy for lr in (1e-2, 1e-1))
    return Verdict(
        adam.validation_accuracy > 90 and sgd.validation_accuracy < 40 and fast > 70,  # seed 9: 28%
        f"at 1e-3 Adam {adam.validation_accuracy:.1f}%, SGD {sgd.validation_accuracy:.1f}%; "
        f"SGD at 1e-2 or 1e-1 up to {fast:.1f}%",
    )


@claim("grid-batches")
def grid_batches(cells: Sequence[Cell]) -> Verdict:
    scores = {
        cell.batch_size: cell.validation_accuracy
        for cell in cells
        if (cell.optimizer, cell.lr) == ("Adam", 1e-3)
    }
    small, large = scores[min(scores)], scores[max(scores)]
    # two standard errors of the difference of two accuracies on the validation images
    margin = 2 * math.hypot(*(standard_error(score, VALIDATION_SIZE) for score in (small, large)))
    return Verdict(
        large - small > margin,
        f"validation accuracy by batch size: {dict(sorted(scores.items()))}; two standard "
        f"errors of the difference: {margin:.2f} points",
    )


@claim("grid-choice")
def grid_choice(cells: Sequence[Cell]) -> Verdict:
    best = best_cell(list(cells))
    return Verdict(
        best.optimizer == "Adam" and best.lr in (1e-3, 1e-2),
        f"best cell: {best.optimizer}, lr {best.lr:g}, batch size {best.batch_size}, "
        f"{best.validation_accuracy:.1f}%",
    )


@claim("reset-worse", general=False)  # seed 7: a cost of 0.8 points
def reset_worse(ablation: Mapping[str, torch.Tensor]) -> Verdict:
    frozen, frozen_numbers = _against_trained(ablation, FROZEN)
    reset, reset_numbers = _against_trained(ablation, RESET)
    accuracy = {name: 100 * float(right.float().mean()) for name, right in ablation.items()}
    cost = accuracy[TRAINED] - accuracy[RESET]
    return Verdict(
        cost > 2 and cost > 3 * (accuracy[TRAINED] - accuracy[FROZEN]) and reset < frozen,
        f"{frozen_numbers}; {reset_numbers}",
    )


@claim("fewer-mistakes")
def fewer_mistakes(mistakes: Mapping[int, int]) -> Verdict:
    first, last = min(mistakes), max(mistakes)
    return Verdict(
        first != last and mistakes[last] < mistakes[first] / 2, f"mistakes per epoch: {mistakes}"
    )


@claim("confused-pairs", general=False)
def confused_pairs(top: Mapping[int, Sequence[tuple[int, int]]]) -> Verdict:
    return Verdict(
        bool(top) and all((3, 5) in pairs and (4, 9) in pairs for pairs in top.values()),
        f"the five most confused pairs: { {e: list(pairs) for e, pairs in top.items()} }",
    )


@claim("sure-mistakes")
def sure_mistakes(shown: Sequence[float], sure: int, wrong: int) -> Verdict:
    return Verdict(
        len(shown) > 0 and min(shown) > 0.9 and sure > wrong / 10,
        f"lowest confidence shown {min(shown, default=0):.1%}; "
        f"{sure} of {wrong} mistakes above 90%",
    )
