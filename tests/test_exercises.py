"""cnnlib.lecture.exercises: each checker passes the reference answer and fails a typical wrong one,
with one sentence of why."""

from __future__ import annotations

import json

import pytest
import torch

import cnnlib
from cnnlib.data import Mnist
from cnnlib.export import weights_by_layer
from cnnlib.lecture import exercises

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
