"""cnnlib.lecture.exercises: each checker passes the reference answer and fails a typical wrong one,
with one sentence of why; and every exercise of the notebooks has a checker or a worked answer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import cnnlib
from cnnlib.data import Mnist
from cnnlib.export import weights_by_layer
from cnnlib.lecture import exercises

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
CHECKER = "exercises.check_"
ANSWER = "<details><summary>Answer</summary>"

# checker: (the reference answer, typical wrong ones, what the right verdict says, the solution
# that no wrong verdict may print)
CASES = {
    "check_output_size": ((14,), [(13,), (12,), (15,), (9,)], "plus 1: 14 × 14", ["14"]),
    "check_conv_parameters": (
        (1_616,),
        [(1_600,), (416,), (1_680,), (7,)],
        "+ 16 biases = 1,616",
        ["1,616", "1616"],
    ),
    "check_unseen_pixels": (
        ({26, 27}, [27, 26]),
        [({0, 27}, {0, 27}), ({27}, {27})],
        "rows [26, 27]",
        ["26", "16..25"],
    ),
    "check_learning_rates": (
        (10.3, 78.5),
        [(98.1, 97.9), (10.3, 97.9)],
        "near chance (10%",
        ["near chance", "too slowly"],
    ),
}


def _says_what_and_hints(verdict: str) -> bool:
    return re.fullmatch(r"Not yet: [^\n]+\. Hint: [^\n]+\.", verdict) is not None


@pytest.mark.parametrize("name", list(CASES))
def test_the_reference_answer_passes_and_wrong_ones_get_a_hint_not_the_answer(name: str) -> None:
    check = getattr(exercises, name)
    right_answer, wrong_answers, says, solution = CASES[name]
    right = check(*right_answer)
    assert right.startswith("Right: ") and says in right
    for wrong_answer in wrong_answers:
        wrong = check(*wrong_answer)
        assert _says_what_and_hints(wrong), wrong
        assert not any(part in wrong for part in solution), wrong


def test_typical_slips_are_named() -> None:
    assert "steps between windows" in exercises.check_output_size(13)
    assert "leaves out the padding" in exercises.check_output_size(12)
    assert "weights only" in exercises.check_conv_parameters(1_600)
    assert "some pool2 unit sees 0" in exercises.check_unseen_pixels({0, 27}, {0, 27})


def conv2d_by_hand(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The exercise's reference answer: the loops of a 3 x 3 cross-correlation."""
    height, width = image.shape
    output = torch.zeros(height - 2, width - 2)
    for row in range(height - 2):
        for column in range(width - 2):
            output[row, column] = (image[row : row + 3, column : column + 3] * kernel).sum()
    return output


def test_a_convolution_by_hand_is_checked_against_f_conv2d() -> None:
    assert exercises.check_conv2d(conv2d_by_hand).startswith("Right: ")
    flipped = exercises.check_conv2d(lambda image, kernel: conv2d_by_hand(image, kernel.flip(0, 1)))
    assert "flipped the kernel" in flipped and _says_what_and_hints(flipped)
    transposed = exercises.check_conv2d(lambda image, kernel: conv2d_by_hand(image.T, kernel.T).T)
    assert transposed.startswith("Right: ")  # transposing everything is still a right answer
    shape = exercises.check_conv2d(lambda image, kernel: conv2d_by_hand(image, kernel)[:-1])
    assert "(2, 3)" in shape and _says_what_and_hints(shape)
    off = exercises.check_conv2d(lambda image, kernel: conv2d_by_hand(image, kernel) + 0.5)
    assert "is off by 0.5" in off and _says_what_and_hints(off)
    assert "sum(" not in off and "for " not in off  # a hint in words, no code to copy


def gradient_by_hand(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The exercise's reference answer: softmax minus the one-hot label, over the batch size."""
    return (logits.softmax(dim=1) - F.one_hot(labels, 10)) / len(labels)


def test_a_gradient_by_hand_is_checked_against_autograd() -> None:
    assert exercises.check_gradient(gradient_by_hand).startswith("Right: ")
    slips = {
        "N = 8 times": lambda z, y: gradient_by_hand(z, y) * len(y),
        "opposite sign": lambda z, y: -gradient_by_hand(z, y),
        "no part for the label": lambda z, y: z.softmax(dim=1) / len(y),
        "differs from autograd's": lambda z, y: z.softmax(dim=0) - F.one_hot(y, 10),
    }
    for what, wrong in slips.items():
        verdict = exercises.check_gradient(wrong)
        assert what in verdict and _says_what_and_hints(verdict), verdict
        assert "softmax" not in verdict and "one-hot" not in verdict


def sgd_step_by_hand(parameters: list[torch.Tensor], lr: float) -> None:
    with torch.no_grad():
        for parameter in parameters:
            parameter -= lr * parameter.grad


def test_an_sgd_step_by_hand_is_checked_against_torch_optim_sgd() -> None:
    assert exercises.check_sgd_step(sgd_step_by_hand).startswith("Right: ")

    def not_in_place(parameters: list[torch.Tensor], lr: float) -> None:
        for parameter in parameters:
            parameter = parameter - lr * parameter.grad  # noqa: PLW2901 (the slip under test)

    def uphill(parameters: list[torch.Tensor], lr: float) -> None:
        sgd_step_by_hand(parameters, -lr)

    def without_lr(parameters: list[torch.Tensor], lr: float) -> None:
        sgd_step_by_hand(parameters, 1.0)

    for wrong, what in ((not_in_place, "did not move"), (uphill, "up the gradient")):
        verdict = exercises.check_sgd_step(wrong)
        assert what in verdict and _says_what_and_hints(verdict), verdict

    def tracked(parameters: list[torch.Tensor], lr: float) -> None:
        for parameter in parameters:
            parameter -= lr * parameter.grad  # without torch.no_grad(): autograd refuses

    assert "10 times too large" in exercises.check_sgd_step(without_lr)
    assert "torch.no_grad()" in exercises.check_sgd_step(tracked)
    assert "−=" not in exercises.check_sgd_step(uphill)


def test_the_json_size_without_epoch_weights_is_read_from_the_sizes() -> None:
    top_level = {"samples": 100, "training_epochs": 9_000, "final_weights": 800, "metadata": 100}
    per_epoch = {"weights": 8_000, "feature_maps": 900}
    right = exercises.check_size_without_epoch_weights(2_000, top_level, per_epoch)
    assert right == (
        "Right: the file's parts (10,000 bytes) minus the epochs' weights (8,000) leaves"
        " 2,000 bytes, 20%: samples, feature maps, metrics and the final weights."
    )
    without_epochs = sum(top_level.values()) - top_level["training_epochs"]  # the maps dropped too
    for wrong in (without_epochs, 8_000):
        verdict = exercises.check_size_without_epoch_weights(wrong, top_level, per_epoch)
        assert _says_what_and_hints(verdict) and "2,000" not in verdict, verdict
    assert "feature maps and metrics too" in exercises.check_size_without_epoch_weights(
        without_epochs, top_level, per_epoch
    )


def json_bytes(value: object) -> int:
    """As notebook 04 counts a part of the file."""
    return len(json.dumps(value, separators=(",", ":")))


def rounded(value: list | float) -> list | float:
    """The worked answer's rounding: every weight to 3 significant digits."""
    if isinstance(value, list):
        return [rounded(item) for item in value]
    return float(f"{value:.3g}")


def test_rounded_weights_are_checked_against_the_payload(mnist: Mnist) -> None:
    torch.manual_seed(0)
    weights = {
        layer: {kind: tensor.tolist() for kind, tensor in tensors.items()}
        for layer, tensors in weights_by_layer(cnnlib.CNN().state_dict()).items()
    }
    samples = [{"image": image.tolist()} for image in mnist.test_pixels[:20]]
    payload = {"final_weights": weights, "samples": samples}
    small = {layer: {k: rounded(w) for k, w in ws.items()} for layer, ws in weights.items()}
    saved = json_bytes(weights) - json_bytes(small)

    right = exercises.check_rounded_weights(0, saved, payload)
    assert right.startswith("Right: 0 of the 20 predictions change")
    assert f"`final_weights` shrinks by {saved:,} bytes" in right
    left = exercises.check_rounded_weights(0, json_bytes(small), payload)  # the bytes left
    assert "size of the rounded weights" in left
    for verdict in (left, exercises.check_rounded_weights(1, saved, payload)):
        assert _says_what_and_hints(verdict) and f"{saved:,}" not in verdict, verdict


def exercise_items(markdown: str) -> list[str]:
    """The numbered items of an "## Exercises" cell, up to its next heading."""
    exercises_part = re.split(r"^## (?!Exercises)", markdown, flags=re.MULTILINE)[0]
    return re.split(r"^\d+\. ", exercises_part, flags=re.MULTILINE)[1:]


def unanswered(markdown: str) -> list[int]:
    """The numbers of the exercises with neither a checker call nor a worked answer."""
    items = exercise_items(markdown)
    return [n for n, item in enumerate(items, 1) if CHECKER not in item and ANSWER not in item]


def exercises_cell(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    (cell,) = [c for c in cells if "".join(c["source"]).startswith("## Exercises")]
    return "".join(cell["source"])


@pytest.mark.parametrize("path", sorted(NOTEBOOKS_DIR.glob("0*.ipynb")), ids=lambda p: p.stem)
def test_every_exercise_has_a_checker_or_a_worked_answer(path: Path) -> None:
    markdown = exercises_cell(path)
    assert len(exercise_items(markdown)) >= 4
    assert unanswered(markdown) == []


@pytest.mark.parametrize("path", sorted(NOTEBOOKS_DIR.glob("0*.ipynb")), ids=lambda p: p.stem)
def test_the_checkers_an_exercise_names_exist(path: Path) -> None:
    for name in re.findall(r"exercises\.(check_\w+)\(", exercises_cell(path)):
        assert callable(getattr(exercises, name, None)), name


def test_an_exercise_with_neither_is_flagged() -> None:
    markdown = (
        "## Exercises\n\n"
        "1. **Checked.** Check with `exercises.check_output_size(your_answer)`.\n\n"
        "2. **Answered.** Why?\n   <details><summary>Answer</summary>\n\n   So.\n   </details>\n\n"
        "3. **Hinted only.** How?\n   <details><summary>Hint</summary>\n\n   Look.\n"
        "   </details>\n\n"
        "## Key takeaways\n\n* `exercises.check_` and <details><summary>Answer</summary> here"
        " answer nothing.\n"
    )
    assert len(exercise_items(markdown)) == 3
    assert unanswered(markdown) == [3]
