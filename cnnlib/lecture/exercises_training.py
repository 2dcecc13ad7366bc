"""The lecture's tools: the checker of notebook 02's code-writing exercise, one step of plain
gradient descent written by hand. Given a wrong step it says what is wrong, with a hint."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnnlib.model import CNN

LR = 0.1


def _with_gradients() -> CNN:
    """A fresh CNN (always the same) with the gradients of one batch of made-up digits."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = CNN()
        images, labels = torch.randn(8, 1, 28, 28), torch.arange(8)
    F.cross_entropy(model(images), labels).backward()
    return model


def _diagnosis(moved: dict[str, torch.Tensor], gradients: dict[str, torch.Tensor]) -> str:
    """What a step that moved each weight by `moved` did wrong; "" if it is SGD's step."""
    still = [name for name, change in moved.items() if not change.any()]
    if len(still) == len(moved):
        return (
            "no weight moved. Change each weight tensor in place (an assignment to a name "
            "only rebinds the name), inside `with torch.no_grad():`."
        )
    if still:
        return f"{', '.join(still)} did not move: every parameter, biases included, takes a step."
    change, gradient = torch.cat([*moved.values()]), torch.cat([*gradients.values()])
    ratio = float((change @ gradient) / (gradient @ gradient))  # the step, in gradients
    if not torch.allclose(change, ratio * gradient, atol=1e-7, rtol=1e-4):
        return "the weights moved, but not along their gradient: each weight's own gradient."
    if ratio > 0:
        return "the weights moved *with* their gradient, uphill: the loss grows that way."
    if abs(ratio + LR) > 1e-3 * LR:
        return f"each weight moved by {-ratio:g} times its gradient; the step is lr = {LR:g} times."
    return ""


def check_sgd_step(step: Callable[[nn.Module, float], None]) -> str:
    """Exercise (02): `step(model, lr)` moves every weight of `model`, whose gradients are
    computed, as one step of `torch.optim.SGD(model.parameters(), lr)` does."""
    model = _with_gradients()
    before = {name: weight.detach().clone() for name, weight in model.named_parameters()}
    gradients = {name: weight.grad.clone().flatten() for name, weight in model.named_parameters()}
    try:
        step(model, LR)
    except RuntimeError as error:
        if "in-place operation" not in str(error):
            raise
        return (
            "Not yet: PyTorch refused to change a weight that autograd records; make the change "
            "inside `with torch.no_grad():`."
        )
    moved = {
        name: (weight.detach() - before[name]).flatten()
        for name, weight in model.named_parameters()
    }
    wrong = _diagnosis(moved, gradients)
    if wrong:
        return f"Not yet: {wrong}"
    return "Right: every weight moved by −lr × its gradient, as torch.optim.SGD's step moves it."
