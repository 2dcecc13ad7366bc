"""The lecture's tools: the predicates behind notebook 02's checked sentences (see `claims`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from cnnlib.lecture.claims import Verdict, claim
from cnnlib.lecture.evaluate import standard_error
from cnnlib.lecture.hyperparams import Cell, find

TEST_IMAGES = 10_000
# The rows of notebook 02's ablation table.
TRAINED, FROZEN, RESET = (
    "as trained",
    "conv1 frozen at its start",
    "trained, then conv1 set back to its start",
)


def _rounded(values: Sequence[float], digits: int = 2) -> list[float]:
    return [round(value, digits) for value in values]


@claim("step-helps")
def step_helps(before: float, after: float) -> Verdict:
    return Verdict(after < before, f"loss {before:.4f} before the step, {after:.4f} after")


@claim("adam-first-step")
def adam_first_step(exact: int, moved: int, largest: float, lr: float) -> Verdict:
    return Verdict(
        exact > 0.99 * moved and largest <= 1.01 * lr,
        f"{exact:,} of {moved:,} weights moved by lr to within 1%, the largest move {largest:.3g}, "
        f"lr {lr:g}",
    )


@claim("never-drawn")
def never_drawn(never: int, images: int) -> Verdict:
    return Verdict(0.07 < never / images < 0.14, f"{never:,} of {images:,} never drawn")


@claim("untrained-loss")
def untrained_loss(loss: float, accuracy: float) -> Verdict:
    return Verdict(
        abs(loss - math.log(10)) < 0.15 and 5 < accuracy < 20,
        f"loss {loss:.3f} (ln 10 = 2.303), accuracy {accuracy:.1f}%",
    )


@claim("first-epoch")
def first_epoch(test_losses: Sequence[float]) -> Verdict:
    drops = [a - b for a, b in zip(test_losses, test_losses[1:], strict=False)]
    return Verdict(
        len(drops) > 1 and drops[0] > 2 * max(drops[1:]),
        f"test loss drops per epoch {_rounded(drops[:4], 3)} ...",
    )


@claim("above-95")
def above_95(accuracies: Sequence[float]) -> Verdict:
    later = accuracies[5:]
    return Verdict(
        bool(later) and min(later) > 94.5,
        f"lowest test accuracy from epoch 5 on: {min(later, default=math.nan):.2f}%",
    )


@claim("noisy-epochs")
def noisy_epochs(changes: Sequence[float], error: float) -> Verdict:
    lower = sum(change < 0 for change in changes)
    within = sum(abs(change) < 3 * error for change in changes)
    return Verdict(
        lower >= 2 and within > len(changes) / 2,
        f"{lower} of {len(changes)} epochs lower the accuracy, {within} change it by less than "
        f"3 standard errors ({3 * error:.2f} points)",
    )


@claim("train-above-test")
def train_above_test(train: Mapping[int, float], test: Mapping[int, float]) -> Verdict:
    epochs = [epoch for epoch in train if epoch >= 2]
    return Verdict(
        sum(train[epoch] > test[epoch] for epoch in epochs) > len(epochs) / 2,
        ", ".join(f"epoch {e}: training {train[e]:.3f}, test {test[e]:.3f}" for e in epochs),
    )


@claim("no-overfit")
def no_overfit(accuracies: Sequence[float]) -> Verdict:
    last, before = accuracies[-5:], accuracies[-10:-5]
    gain = sum(last) / 5 - sum(before) / 5
    return Verdict(
        len(accuracies) >= 11 and gain > 0, f"the last five epochs average {gain:+.2f} points"
    )


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
    smallest = [min(epoch, key=epoch.get) for epoch in _per_epoch(changes)]
    return Verdict(
        bool(smallest) and set(smallest) == {"conv1"},
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
        f"{ {layer: _rounded(values[1:], 1) for layer, values in periods.items()} }",
    )


@claim("fc-steady")
def fc_steady(fc1: Sequence[float]) -> Verdict:
    return Verdict(len(fc1) >= 10 and min(fc1) > 3, f"fc1's changes: {_rounded(fc1, 1)}")


@claim("frozen-worse", general=False)  # seeds 1 and 4: within noise
def frozen_worse(ablation: Mapping[str, float]) -> Verdict:
    trained, frozen = ablation[TRAINED], ablation[FROZEN]
    margin = 2 * standard_error(trained, TEST_IMAGES)
    return Verdict(
        trained - frozen > margin,
        f"trained {trained:.2f}%, conv1 frozen {frozen:.2f}% (two standard errors: "
        f"{margin:.2f} points)",
    )


@claim("best-late")
def best_late(validation: Sequence[float]) -> Verdict:
    """`validation`: the validation accuracy after each epoch, epoch 0 first."""
    best = max(range(1, len(validation)), key=validation.__getitem__, default=0)
    return Verdict(
        best >= len(validation) - 4,
        f"best validation accuracy after epoch {best} of {len(validation) - 1}",
    )


@claim("grid-too-large")
def grid_too_large(cells: Sequence[Cell]) -> Verdict:
    cell = find(cells, "Adam", 0.1)
    return Verdict(
        cell.validation_accuracy < 15, f"Adam at 0.1: {cell.validation_accuracy:.1f}% (chance 10%)"
    )


@claim("grid-sgd")
def grid_sgd(cells: Sequence[Cell]) -> Verdict:
    adam, sgd = find(cells, "Adam", 1e-3), find(cells, "SGD", 1e-3)
    fast = max(find(cells, "SGD", lr).validation_accuracy for lr in (1e-2, 1e-1))
    return Verdict(
        adam.validation_accuracy > 90 and sgd.validation_accuracy < 20 and fast > 70,
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
    ordered = [scores[size] for size in sorted(scores)]
    return Verdict(
        len(ordered) > 1 and all(a < b for a, b in zip(ordered, ordered[1:], strict=False)),
        f"validation accuracy by batch size: {dict(sorted(scores.items()))}",
    )


@claim("reset-worse")
def reset_worse(ablation: Mapping[str, float]) -> Verdict:
    trained, frozen, reset = ablation[TRAINED], ablation[FROZEN], ablation[RESET]
    return Verdict(
        trained - reset > 3 * (trained - frozen) and trained - reset > 2,
        f"trained {trained:.2f}%, frozen {frozen:.2f}%, conv1 set back {reset:.2f}%",
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
