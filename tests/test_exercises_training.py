"""Notebook 02's code-writing exercise: the checker accepts SGD's step, and for each usual
mistake says what is wrong without writing the answer."""

from __future__ import annotations

import pytest
import torch

from cnnlib.lecture.exercises_training import check_sgd_step


def sgd(model, lr):
    with torch.no_grad():
        for weight in model.parameters():
            weight -= lr * weight.grad


def test_the_step_as_torch_optim_sgd_takes_it_is_right() -> None:
    assert check_sgd_step(sgd).startswith("Right")
    optimizer_step = lambda model, lr: torch.optim.SGD(model.parameters(), lr).step()  # noqa: E731
    assert check_sgd_step(optimizer_step).startswith("Right")


def uphill(model, lr):
    with torch.no_grad():
        for weight in model.parameters():
            weight += lr * weight.grad


def no_lr(model, lr):
    with torch.no_grad():
        for weight in model.parameters():
            weight -= weight.grad


def rebinds(model, lr):
    for weight in model.parameters():
        weight = weight - lr * weight.grad  # noqa: F841 (the mistake: a new tensor, not the weight)


def weights_only(model, lr):
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if name.endswith("weight"):
                weight -= lr * weight.grad


def tracked(model, lr):
    for weight in model.parameters():
        weight -= lr * weight.grad


def sign_only(model, lr):
    with torch.no_grad():
        for weight in model.parameters():
            weight -= lr * weight.grad.sign()


@pytest.mark.parametrize(
    ("step", "says"),
    [
        (uphill, "uphill"),
        (no_lr, "by 1 times its gradient"),
        (rebinds, "no weight moved"),
        (weights_only, "conv1.bias, conv2.bias, fc1.bias, fc2.bias did not move"),
        (tracked, "inside `with torch.no_grad():`"),
        (sign_only, "not along their gradient"),
    ],
)
def test_a_wrong_step_says_what_is_wrong_and_never_shows_the_answer(step, says: str) -> None:
    verdict = check_sgd_step(step)
    assert verdict.startswith("Not yet: ") and says in verdict
    assert "-=" not in verdict and "weight.grad" not in verdict
