"""cnnlib.lecture.exercises: each checker passes the reference answer and fails a typical wrong one,
with one sentence of why; and every exercise of the notebooks has a checker or a worked answer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import cnnlib
from cnnlib.data import Mnist
from cnnlib.export import weights_by_layer
from cnnlib.lecture import exercises

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
CHECKER = "exercises.check_"
ANSWER = "<details><summary>Answer</summary>"

# checker: (the reference answer, a typical wrong one, what the sentence must say)
CASES = {
    "check_output_size": ((14,), (13,), "plus 1: 14 × 14"),
    "check_conv_parameters": ((1_616,), (1_600,), "+ 16 biases = 1,616"),
    "check_unseen_pixels": (({26, 27}, [27, 26]), ({0, 27}, {0, 27}), "rows [26, 27]"),
    "check_learning_rates": ((10.3, 78.5), (98.1, 97.9), "near chance (10%"),
}


def _is_one_sentence(text: str) -> bool:
    return text.endswith(".") and ". " not in text


@pytest.mark.parametrize("name", list(CASES))
def test_the_reference_answer_passes_and_a_typical_wrong_one_fails(name: str) -> None:
    check = getattr(exercises, name)
    right_answer, wrong_answer, says = CASES[name]
    right, wrong = check(*right_answer), check(*wrong_answer)
    assert right.startswith("Right: ") and wrong.startswith("Not yet: ")
    for verdict in (right, wrong):
        assert says in verdict and _is_one_sentence(verdict)


def test_the_json_size_without_epoch_weights_is_read_from_the_sizes() -> None:
    top_level = {"samples": 100, "training_epochs": 9_000, "final_weights": 800, "metadata": 100}
    per_epoch = {"weights": 8_000, "feature_maps": 900}
    right = exercises.check_size_without_epoch_weights(2_000, top_level, per_epoch)
    assert right == (
        "Right: the file's parts (10,000 bytes) minus the epochs' weights (8,000) leaves"
        " 2,000 bytes, 20%: samples, feature maps, metrics and the final weights."
    )
    without_epochs = sum(top_level.values()) - top_level["training_epochs"]  # the maps dropped too
    assert exercises.check_size_without_epoch_weights(without_epochs, top_level, per_epoch) == (
        right.replace("Right", "Not yet")
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
    assert right.startswith("Right: 0 of the 20 predictions change") and _is_one_sentence(right)
    assert f"`final_weights` shrinks by {saved:,} bytes" in right
    left = exercises.check_rounded_weights(0, json_bytes(small), payload)  # the bytes left
    assert left == right.replace("Right", "Not yet")
    assert exercises.check_rounded_weights(1, saved, payload).startswith("Not yet: ")


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
