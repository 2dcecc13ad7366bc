"""The lecture's tools: checkers for the exercises. A student calls one with an answer (a number,
or a function they wrote); a right one is explained, a wrong one gets what is wrong with it and a
hint, never the answer."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlib import reference
from cnnlib.lecture.convolution import receptive_field
from cnnlib.lecture.sizes import json_bytes
from cnnlib.model import CNN


def output_size(size: int, kernel: int, padding: int = 0, stride: int = 1) -> int:
    """Side of a convolution's or pool's output: floor((n + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _right(why: str) -> str:
    return f"Right: {why}"


def _not_yet(what: str, hint: str) -> str:
    """A wrong answer: what is wrong with it and a hint towards the right one, never the answer."""
    return f"Not yet: {what}. Hint: {hint}."


def check_output_size(answer: int) -> str:
    """Exercise (01): a 5 x 5 kernel, padding 2, stride 2, on a 28 x 28 image."""
    size = output_size(28, kernel=5, padding=2, stride=2)
    if answer == size:
        return _right(
            f"(28 + 2·2 − 5) / 2 = 13.5, rounded down to 13, plus 1: {size} × {size}"
            " (PyTorch drops a last window that does not fit)."
        )
    slips = {
        (28 + 2 * 2 - 5) // 2: (
            "that counts the steps between windows, not the windows",
            "the first window is there before any step",
        ),
        output_size(28, kernel=5, stride=2): (
            "that leaves out the padding",
            "2 zeros are added on each side: n + 2p",
        ),
        output_size(28, kernel=5, padding=2): (
            "that is the size with stride 1",
            "with stride 2 the window moves 2 pixels a step",
        ),
        -(-(28 + 2 * 2 - 5) // 2) + 1: (
            "that rounds 13.5 up",
            "a last window that does not fit is dropped: round down",
        ),
    }
    what, hint = slips.get(
        answer,
        (
            f"{answer} × {answer} is not the size",
            "⌊(n + 2p − k) / s⌋ + 1 with n = 28, k = 5, p = 2"
            " and s = 2, or run F.conv2d on a 28 × 28 tensor and look at the shape",
        ),
    )
    return _not_yet(what, hint)


def check_conv_parameters(answer: int) -> str:
    """Exercise (01): parameters of nn.Conv2d(4, 16, kernel_size=5)."""
    count = 16 * 4 * 5 * 5 + 16
    if answer == count:
        return _right(f"16 filters × 4 input channels × 5 × 5 weights + 16 biases = {count:,}.")
    slips = {
        16 * 4 * 5 * 5: ("that counts the weights only", "each filter has a bias too"),
        16 * 5 * 5 + 16: (
            "that gives each filter one channel",
            "every filter reads all 4 input channels, each with its own 5 × 5",
        ),
        16 * 4 * 5 * 5 + 16 * 4: (
            "that gives each channel of each filter a bias",
            "a filter sums its channels and adds one bias",
        ),
    }
    what, hint = slips.get(
        answer,
        (
            f"{answer:,} is not the count",
            "count one filter's weights (input channels × 5 × 5),"
            " multiply by the filters, add one bias per filter",
        ),
    )
    return _not_yet(what, hint)


def check_unseen_pixels(rows: Iterable[int], columns: Iterable[int]) -> str:
    """Exercise (01): the image rows and columns that no pool2 unit sees."""
    model = CNN()
    seen_rows: set[int] = set()
    seen_columns: set[int] = set()
    for row, column in itertools.product(range(5), repeat=2):
        field_rows, field_columns = receptive_field(model, "pool2", row, column)
        seen_rows.update(range(field_rows.start, field_rows.stop))
        seen_columns.update(range(field_columns.start, field_columns.stop))
    unseen_rows, unseen_columns = set(range(28)) - seen_rows, set(range(28)) - seen_columns
    if (set(rows), set(columns)) == (unseen_rows, unseen_columns):
        return _right(
            f"pool2's corner unit (4, 4) sees rows and columns 16..25, so rows"
            f" {sorted(unseen_rows)} and columns {sorted(unseen_columns)} are seen by no unit:"
            " pool2 drops conv2's 11th row and column."
        )
    seen = sorted((set(rows) & seen_rows) | (set(columns) & seen_columns))
    if seen:
        return _not_yet(
            f"some pool2 unit sees {', '.join(map(str, seen[:3]))}",
            "the corner units' receptive fields, convolution.receptive_field(model, 'pool2',"
            " 0, 0) and (4, 4), span every row and column any unit sees",
        )
    return _not_yet(
        "there are more rows or columns that no unit sees",
        "look at the last row and column the corner unit (4, 4) sees, and count to 27",
    )


def check_conv2d(conv2d: Callable[[torch.Tensor, torch.Tensor], Any]) -> str:
    """Exercise (01): `conv2d(image, kernel)`, written with loops, for one image [H, W] and one
    3 x 3 kernel, no padding, stride 1; compared with F.conv2d on random inputs."""
    generator = torch.Generator().manual_seed(0)
    for height, width in ((5, 5), (6, 9), (11, 7)):
        image = torch.randn(height, width, generator=generator)
        kernel = torch.randn(3, 3, generator=generator)
        expected = F.conv2d(image[None, None], kernel[None, None])[0, 0]
        result = torch.as_tensor(np.asarray(conv2d(image, kernel)), dtype=torch.float32)
        if result.shape != expected.shape:
            return _not_yet(
                f"on a {height} × {width} image your output is {tuple(result.shape)}",
                "a 3 × 3 window fits n − 2 times along a side of n pixels; rows come first",
            )
        if torch.allclose(result, expected, atol=1e-4):
            continue
        flipped = F.conv2d(image[None, None], kernel.flip(0, 1)[None, None])[0, 0]
        if torch.allclose(result, flipped, atol=1e-4):
            return _not_yet(
                "you flipped the kernel: that is the textbook convolution",
                "PyTorch multiplies the window by the kernel as it is (cross-correlation)",
            )
        row, column = divmod(int((result - expected).abs().argmax()), width - 2)
        return _not_yet(
            f"on a {height} × {width} image your value at ({row}, {column}) is off by"
            f" {float((result - expected)[row, column].abs()):.3g}",
            "output[r, c] is the sum of the 3 × 3 window whose top-left pixel is (r, c),"
            " times the kernel, element by element",
        )
    return _right("your loops give F.conv2d's numbers on three random images and kernels.")


def check_gradient(gradient: Callable[[torch.Tensor, torch.Tensor], Any]) -> str:
    """Exercise (02): `gradient(logits, labels)`, by hand, the gradient of
    F.cross_entropy(logits, labels) (the mean over the batch) with respect to the logits [N, 10];
    compared with autograd on a random batch."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 10, generator=generator, requires_grad=True)
    labels = torch.randint(0, 10, (8,), generator=generator)
    F.cross_entropy(logits, labels).backward()
    expected = logits.grad
    result = torch.as_tensor(np.asarray(gradient(logits.detach().clone(), labels)))
    if result.shape != expected.shape:
        return _not_yet(
            f"your gradient has shape {list(result.shape)}, not the logits' {list(expected.shape)}",
            "one number per logit: how much the loss changes when that logit grows",
        )
    result = result.to(expected.dtype)
    if torch.allclose(result, expected, atol=1e-5):
        return _right("your gradient equals autograd's: softmax minus the one-hot label, / N.")
    slips = (
        (
            len(labels) * expected,
            "yours is N = 8 times autograd's",
            "F.cross_entropy averages over the batch: each digit's part is divided by N",
        ),
        (
            -expected,
            "yours has the opposite sign",
            "the loss falls when the right digit's logit grows",
        ),
        (
            expected + F.one_hot(labels, 10) / len(labels),
            "yours has no part for the label",
            "the loss is −log of the label's probability: its logit appears a second time",
        ),
    )
    for wrong, what, hint in slips:
        if torch.allclose(result, wrong, atol=1e-5):
            return _not_yet(what, hint)
    return _not_yet(
        f"yours differs from autograd's by up to {float((result - expected).abs().max()):.3g}",
        "write the loss of one digit as −z_y + log Σ exp(z_j) and differentiate by each z_j",
    )


def check_sgd_step(step: Callable[[list[torch.Tensor], float], Any]) -> str:
    """Exercise (02): `step(parameters, lr)`, one plain SGD step by hand, in place, for
    parameters whose .grad is filled; compared with torch.optim.SGD on the same gradients."""
    torch.manual_seed(0)
    model, lr = nn.Linear(5, 3), 0.1
    inputs, targets = torch.randn(4, 5), torch.randn(4, 3)
    reference = copy.deepcopy(model)
    for network in (model, reference):
        F.mse_loss(network(inputs), targets).backward()
    torch.optim.SGD(reference.parameters(), lr=lr).step()
    before = [parameter.detach().clone() for parameter in model.parameters()]
    try:
        step(list(model.parameters()), lr)
    except RuntimeError as error:
        if "leaf Variable" not in str(error):
            raise
        return _not_yet(
            "PyTorch refused to change a weight that autograd tracks",
            "make the update inside `with torch.no_grad():`",
        )
    after, expected = list(model.parameters()), list(reference.parameters())
    if all(torch.allclose(a, e) for a, e in zip(after, expected, strict=True)):
        return _right("your step moves every weight as torch.optim.SGD does: w −= lr · grad.")
    moves = [(a.detach() - b) for a, b in zip(after, before, strict=True)]
    grads = [parameter.grad for parameter in model.parameters()]
    if all(torch.equal(move, torch.zeros_like(move)) for move in moves):
        return _not_yet(
            "the parameters did not move",
            "change them in place (p -= ...) inside `with torch.no_grad():`; p = p - ... only"
            " makes a new tensor",
        )
    slips = (
        (
            lambda g: lr * g,
            "your step goes up the gradient: the loss would grow",
            "step against the gradient",
        ),
        (lambda g: -g, "your step is 1 / lr = 10 times too large", "scale the gradient by lr"),
    )
    for move_for, what, hint in slips:
        if all(torch.allclose(m, move_for(g)) for m, g in zip(moves, grads, strict=True)):
            return _not_yet(what, hint)
    return _not_yet(
        "your step moves the weights differently from torch.optim.SGD",
        "every parameter moves by −lr times its own .grad, nothing else",
    )


def check_learning_rates(accuracy_at_lr_0_1: float, accuracy_at_lr_1e_5: float) -> str:
    """Exercise (02): test accuracies (percent) after 2,000 steps at lr 0.1 and at lr 1e-5."""
    near_chance = accuracy_at_lr_0_1 < 20
    slow = 20 < accuracy_at_lr_1e_5 < 95
    if near_chance and slow:
        return _right(
            "at lr 0.1 Adam's steps overshoot and the network ends near chance (10% for ten"
            " digits); at lr 1e-5 it learns, but too slowly to reach lr 1e-3's 98% in 2,000 steps."
        )
    if not near_chance:
        return _not_yet(
            f"{accuracy_at_lr_0_1:.1f}% at lr 0.1 is not what a network trained at lr 0.1 reaches",
            "train a new network with TrainConfig(lr=0.1), and measure that network",
        )
    return _not_yet(
        f"{accuracy_at_lr_1e_5:.1f}% at lr 1e-5 is not what a network trained at lr 1e-5 reaches",
        "train a new network with TrainConfig(lr=1e-5) for the same 2,000 steps, and measure it",
    )


def _significant(value: object, digits: int) -> object:
    """A copy of a parsed JSON value with every float rounded to `digits` significant digits."""
    if isinstance(value, dict):
        return {key: _significant(item, digits) for key, item in value.items()}
    if isinstance(value, list):
        return [_significant(item, digits) for item in value]
    return float(f"{value:.{digits}g}") if isinstance(value, float) else value


def check_size_without_epoch_weights(
    answer: int, top_level: Mapping[str, int], per_epoch: Mapping[str, int]
) -> str:
    """Exercise (04): the bytes of the JSON without the per-epoch weights, within 1%."""
    whole = sum(top_level.values())
    rest = whole - per_epoch["weights"]
    if math.isclose(answer, rest, rel_tol=0.01):
        return _right(
            f"the file's parts ({whole:,} bytes) minus the epochs' weights"
            f" ({per_epoch['weights']:,}) leaves {rest:,} bytes, {rest / whole:.0%}: samples,"
            " feature maps, metrics and the final weights."
        )
    if math.isclose(answer, whole - top_level["training_epochs"], rel_tol=0.01):
        return _not_yet(
            "that drops all of training_epochs, the feature maps and metrics too",
            "take away only per_epoch['weights']",
        )
    return _not_yet(
        f"{answer:,} bytes is {'more' if answer > rest else 'less'} than the file without the"
        " epochs' weights",
        "start from the whole file, sum(top_level.values()), and take away the epochs' weights",
    )


def check_rounded_weights(changed: int, bytes_saved: int, payload: Mapping[str, Any]) -> str:
    """Exercise (04): how many of the sample predictions change with `final_weights` rounded to
    3 significant digits, and how many bytes of `final_weights` that saves (within 1%)."""
    weights = payload["final_weights"]
    rounded = _significant(weights, 3)
    pixels = np.array([sample["image"] for sample in payload["samples"]], dtype=np.uint8)
    before = reference.forward(weights, pixels)["logits"]
    after = reference.forward(rounded, pixels)["logits"]
    flipped = int((before.argmax(axis=1) != after.argmax(axis=1)).sum())
    saved = json_bytes(weights) - json_bytes(rounded)
    if changed == flipped and math.isclose(bytes_saved, saved, rel_tol=0.01):
        return _right(
            f"{flipped} of the {len(pixels)} predictions change (no logit moves by more than"
            f" {np.abs(after - before).max():.3f}) and `final_weights` shrinks by {saved:,} bytes,"
            f" {saved / json_bytes(weights):.0%} of its text."
        )
    if changed != flipped:
        return _not_yet(
            f"{changed} is not the number of predictions that change",
            "count the samples whose argmax differs: (after.argmax(axis=1) !="
            " before.argmax(axis=1)).sum(), both from reference.forward",
        )
    if math.isclose(bytes_saved, json_bytes(rounded), rel_tol=0.01):
        return _not_yet(
            "that is the size of the rounded weights", "subtract it from the original's"
        )
    return _not_yet(
        f"{bytes_saved:,} is not the bytes saved",
        "json_bytes of the original final_weights minus json_bytes of the rounded copy",
    )
