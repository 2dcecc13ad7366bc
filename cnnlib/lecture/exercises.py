"""The lecture's tools, exercises that check themselves: for each exercise with a definite answer,
a function that takes the student's answer and says right or wrong, with one sentence of why;
and `train_run`, which trains for an exercise into a folder of its own (never `data/`, which
notebooks 03 and 04 and the demo read)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnlib.data import DEFAULT_DATA_DIR, REPO_DIR, Mnist, load_mnist
from cnnlib.export import state_dict_bytes
from cnnlib.files import atomic_write_bytes
from cnnlib.lecture.convolution import receptive_field
from cnnlib.model import CNN, count_parameters
from cnnlib.store import write_artifacts
from cnnlib.train import EpochResult, TrainConfig, train

EXERCISE_DIR = REPO_DIR / "exercise_runs"
CHANCE = 10.0  # percent: ten digits


@dataclass(frozen=True)
class Verdict:
    """A checker's answer: right or not, and one sentence of why."""

    right: bool
    why: str

    def __str__(self) -> str:
        return f"{'Right' if self.right else 'Not quite'}: {self.why}"

    __repr__ = __str__


def verdict(right: bool, if_right: str, if_wrong: str) -> Verdict:
    return Verdict(right, if_right if right else if_wrong)


# --- 01 the model ------------------------------------------------------------------------------


def shift_by_one(conv1_moves_with_it: bool, pool1_moves_with_it: bool) -> Verdict:
    """01, exercise 1: after a 1-pixel shift, is conv1's map the old one moved? And pool1's?"""
    return verdict(
        conv1_moves_with_it and not pool1_moves_with_it,
        "conv1 moves with any whole-pixel shift, but pool1 cuts its input into fixed 2 × 2 blocks, "
        "so only a shift by a multiple of 2 moves it exactly.",
        "conv1 applies the same kernel everywhere, so its map moves with any whole-pixel shift; "
        "pool1's fixed 2 × 2 blocks regroup the pixels after a 1-pixel shift, so it does not.",
    )


def never_seen(rows: Iterable[int], columns: Iterable[int]) -> Verdict:
    """01, exercise 2: the input rows and columns that no pool2 unit sees."""
    model = CNN()
    seen_rows: set[int] = set()
    seen_columns: set[int] = set()
    for row in range(5):
        for column in range(5):
            field_rows, field_columns = receptive_field(model, "pool2", row, column)
            seen_rows.update(range(field_rows.start, field_rows.stop))
            seen_columns.update(range(field_columns.start, field_columns.stop))
    unseen_rows, unseen_columns = set(range(28)) - seen_rows, set(range(28)) - seen_columns
    return verdict(
        (set(rows), set(columns)) == (unseen_rows, unseen_columns),
        f"pool2's corner unit (4, 4) sees rows and columns 16..25, so {sorted(unseen_rows)} are "
        "never seen: pool2 drops conv2's odd last row and column, and with them these pixels.",
        f"the unseen rows and columns are {sorted(unseen_rows)} and {sorted(unseen_columns)}: "
        "pool2's corner unit (4, 4) sees rows and columns 16..25 only.",
    )


def transposed_sobel(top_edge: str, bottom_edge: str) -> Verdict:
    """01, exercise 3: the sign ("positive" or "negative") of `kernel.T`'s response on the top
    and on the bottom edge of a horizontal white stroke."""
    return verdict(
        (top_edge, bottom_edge) == ("positive", "negative"),
        "kernel.T subtracts the row above from the row below: positive where the image gets "
        "brighter downwards (a stroke's top edge), negative where it gets darker (its bottom).",
        "kernel.T subtracts the row above from the row below, so it is positive on a white "
        "stroke's top edge (dark above, bright below) and negative on its bottom edge.",
    )


class _BiggerConv1(CNN):
    """01, exercise 4's variant: conv1 with 8 filters of 5 x 5 (conv2 then reads 8 maps)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=5)
        self.conv2 = nn.Conv2d(8, 8, kernel_size=3)


def bigger_conv1(conv1_parameters: int, conv2_parameters: int, pool2_shape: tuple) -> Verdict:
    """01, exercise 4: with conv1 = Conv2d(1, 8, 5), conv1's and conv2's parameter counts and
    pool2's output shape for one digit."""
    model = _BiggerConv1()
    counts = count_parameters(model)
    with torch.inference_mode():
        shape = tuple(model.activations(torch.zeros(1, 1, 28, 28))["pool2"].shape[1:])
    expected = (counts["conv1"], counts["conv2"], shape)
    return verdict(
        (conv1_parameters, conv2_parameters, tuple(pool2_shape)) == expected,
        f"8 · 1 · 5 · 5 + 8 = {counts['conv1']} and 8 · 8 · 9 + 8 = {counts['conv2']}; "
        f"28 → 24 → 12 → 10 → 5, so pool2 is still {shape} and fc1 reads 200 numbers as before.",
        f"conv1 has 8 · 1 · 5 · 5 + 8 = {counts['conv1']} parameters, conv2 (now reading 8 maps) "
        f"8 · 8 · 9 + 8 = {counts['conv2']}, and pool2 is {shape} (28 → 24 → 12 → 10 → 5).",
    )


def dense_conv2(parameters: int) -> Verdict:
    """01, exercise 5: the parameters of a dense layer from pool1 (4 x 13 x 13) to conv2's
    output (8 x 11 x 11)."""
    dense = sum(count_parameters(nn.Linear(4 * 13 * 13, 8 * 11 * 11)).values())
    return verdict(
        parameters == dense,
        f"676 · 968 + 968 = {dense:,}, about {dense / 296:,.0f} times conv2's 296.",
        f"every one of the 676 inputs meets every one of the 968 outputs, plus a bias each: "
        f"676 · 968 + 968 = {dense:,}.",
    )


# --- 02 training -------------------------------------------------------------------------------


def learning_rates(accuracy_at_lr_0_1: float, accuracy_at_lr_1e_5: float) -> Verdict:
    """02, exercise 1: the final test (or validation) accuracies, in percent, that you measured
    after the lecture's 2,000 steps with lr 0.1 and with lr 1e-5."""
    too_big = accuracy_at_lr_0_1 < CHANCE + 5
    too_small = 50 < accuracy_at_lr_1e_5 < 95
    return verdict(
        too_big and too_small,
        "lr 0.1 overshoots and never recovers (chance, about 10%), lr 1e-5 learns but a hundred "
        "times too slowly (about 78% after 2,000 steps, where 1e-3 reaches about 98%).",
        "expected lr 0.1 at chance (about 10%: every step overshoots) and lr 1e-5 well below the "
        "lecture's run (about 78% after 2,000 steps: each step is tiny); check your two numbers.",
    )


def overfit_one_batch(batch_loss_near_zero: bool, better_on_the_test_set: bool) -> Verdict:
    """02, exercise 2: after 100 steps on one batch, is its loss near zero? Is the network better
    on the test set than after the lecture's first epoch?"""
    return verdict(
        batch_loss_near_zero and not better_on_the_test_set,
        "27,354 weights learn 64 images by heart, which says little about images never seen: "
        "the test accuracy stays far below that of an epoch of 100 different batches.",
        "repeated steps on the same 64 images drive their loss towards 0 (memorized), but the "
        "network sees only 64 digits, so it does worse on the test set than after one real epoch.",
    )


def most_confused(matrix: torch.Tensor, true_digit: int, predicted_digit: int) -> Verdict:
    """02, exercise 4: the largest off-diagonal cell of a confusion matrix (rows: true digit,
    columns: predicted), as the true digit and the digit it was taken for."""
    mistakes = matrix.clone()
    mistakes.fill_diagonal_(-1)
    largest = int(mistakes.max())
    cells = [(int(t), int(p)) for t, p in (mistakes == largest).nonzero()]
    return verdict(
        (true_digit, predicted_digit) in cells,
        f"{largest} test images of a {true_digit} were read as a {predicted_digit}, the largest "
        "mistake in this matrix.",
        f"the largest cell is {cells[0][0]} read as {cells[0][1]} ({largest} images); row = the "
        "true digit, column = the answer, and the diagonal (right answers) does not count.",
    )


# --- 03 feature maps ---------------------------------------------------------------------------


def edge_detector_changes_prediction(
    answer: bool, state_dict: Mapping[str, torch.Tensor], image: torch.Tensor, kernel: torch.Tensor
) -> Verdict:
    """03, exercise 3: does putting `kernel` into conv1's filter #3 of the model with these
    weights change its prediction for `image` ([1, 28, 28], normalized)?"""
    model = CNN().eval()
    model.load_state_dict(dict(state_dict))
    with torch.inference_mode():
        before = int(model(image[None]).argmax())
        model.conv1.weight[3, 0] = kernel
        after = int(model(image[None]).argmax())
    changed = before != after
    return verdict(
        answer == changed,
        f"the prediction {'changes' if changed else 'stays'} ({before} → {after}): "
        "the later layers were trained on the old filter's map, not on this one.",
        f"the prediction {'changes' if changed else 'stays the same'} ({before} → {after}); run "
        "the model before and after the swap and compare the argmax of the logits.",
    )


# --- 04 export ---------------------------------------------------------------------------------


def size_without_epoch_weights(
    answer: int, top_level: Mapping[str, int], per_epoch: Mapping[str, int]
) -> Verdict:
    """04, exercise 1: the bytes of the JSON without the per-epoch weights."""
    expected = sum(top_level.values()) - per_epoch["weights"]
    share = expected / sum(top_level.values())
    return verdict(
        math.isclose(answer, expected, rel_tol=0.01),
        f"{expected:,} bytes, {share:.0%} of the file: the weights of every epoch are almost all "
        "of it.",
        f"the whole file minus the epochs' weights is {expected:,} bytes "
        "(sum(top_level.values()) - per_epoch['weights']).",
    )


SWAP_NOTICED_BY = {"JSON weights = .pth", "feature maps", "predictions"}


def which_check_notices_a_swap(check: str) -> Verdict:
    """04, exercise 3: which of `verify`'s checks (by the name it prints) notices two conv1
    filters swapped in the JSON."""
    return verdict(
        check in SWAP_NOTICED_BY,
        "the shapes are still right, so the schema passes; the numbers are not, and every check "
        f"that compares numbers fails ({', '.join(sorted(SWAP_NOTICED_BY))}).",
        f"the swapped file still has every shape right, so {check!r} cannot notice; the checks "
        f"that compare numbers do: {', '.join(sorted(SWAP_NOTICED_BY))}.",
    )


# --- training for an exercise, into a folder of its own ------------------------------------------


def exercise_folder(name: str, root: Path = EXERCISE_DIR) -> Path:
    """root/NAME for an exercise's run: a plain name, never a path into `data/`."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ValueError(f"name must be a plain folder name (letters, digits, _ . -), got {name!r}")
    folder = (Path(root) / name).resolve()
    if folder == DEFAULT_DATA_DIR.resolve() or DEFAULT_DATA_DIR.resolve() in folder.parents:
        raise ValueError(
            f"{folder} is inside {DEFAULT_DATA_DIR}, which the lecture reads; use another root"
        )
    return folder


def train_run(
    name: str,
    config: TrainConfig = TrainConfig(),
    model_class: Callable[[], nn.Module] = CNN,
    data: Mnist | None = None,
    progress: bool = True,
    root: Path = EXERCISE_DIR,
) -> list[EpochResult]:
    """Train for an exercise into `exercise_runs/NAME` (or root/NAME), never into `data/`;
    return every epoch's results. The lecture's CNN gets a complete artifact set there (point a
    notebook's `output_dir` at it); a variant class (say, 8 conv1 filters) gets `metrics.json`
    and its final weights, `final_model_weights.pth`."""
    folder = exercise_folder(name, root)
    data = data if data is not None else load_mnist()
    results = train(config, data, progress, model_class)
    if model_class is CNN:
        write_artifacts(results, data, config, folder)
        return results
    folder.mkdir(parents=True, exist_ok=True)
    metrics = [{k: v for k, v in vars(r).items() if k != "state_dict"} for r in results]
    atomic_write_bytes(folder / "metrics.json", json.dumps(metrics, indent=1).encode())
    atomic_write_bytes(folder / "final_model_weights.pth", state_dict_bytes(results[-1].state_dict))
    return results
