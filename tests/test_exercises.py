"""cnnlib.lecture.exercises: each checker passes the reference answer and fails a typical wrong
one, with one sentence of why; exercises that train write into a folder of their own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnlib
from cnnlib.data import DEFAULT_DATA_DIR
from cnnlib.export import JSON_NAME
from cnnlib.lecture import exercises
from cnnlib.lecture.features import REFERENCE_KERNELS
from cnnlib.train import TrainConfig

TINY = TrainConfig(epochs=1, batches_per_epoch=3, device="cpu")

CASES = {
    "shift_by_one": ((True, False), (True, True)),
    "never_seen": (({26, 27}, [27, 26]), ({27}, {27})),
    "transposed_sobel": (("positive", "negative"), ("negative", "positive")),
    "bigger_conv1": ((208, 584, (8, 5, 5)), (208, 296, (8, 5, 5))),
    "dense_conv2": ((655_336,), (654_368,)),
    "learning_rates": ((10.1, 78.0), (95.0, 97.0)),
    "overfit_one_batch": ((True, False), (True, True)),
    "which_check_notices_a_swap": (("predictions",), ("JSON schema",)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_reference_answer_passes_and_a_typical_wrong_one_fails(name: str) -> None:
    check = getattr(exercises, name)
    right, wrong = (check(*answer) for answer in CASES[name])
    assert right.right and not wrong.right
    for result in (right, wrong):
        assert result.why.endswith(".") and result.why.count(". ") == 0  # one sentence
    assert str(right).startswith("Right: ") and str(wrong).startswith("Not quite: ")


def test_the_most_confused_pair_is_read_from_the_matrix() -> None:
    matrix = torch.eye(10, dtype=torch.long) * 900
    matrix[4, 9], matrix[9, 4], matrix[3, 5] = 17, 9, 12
    assert exercises.most_confused(matrix, 4, 9).right
    wrong = exercises.most_confused(matrix, 9, 4)  # row and column swapped
    assert not wrong.right and "4 read as 9 (17 images)" in wrong.why
    assert not exercises.most_confused(matrix, 4, 4).right  # a right answer is no mistake


def test_the_json_size_without_epoch_weights() -> None:
    top_level = {"samples": 100, "training_epochs": 9_000, "metadata": 900}
    per_epoch = {"weights": 8_000, "feature_maps": 900}
    assert exercises.size_without_epoch_weights(2_000, top_level, per_epoch).right
    assert not exercises.size_without_epoch_weights(10_000 - 8_000 * 21, top_level, per_epoch).right


def test_the_edge_detector_checker_computes_the_truth_from_the_model(mnist) -> None:
    torch.manual_seed(0)
    weights = cnnlib.CNN().state_dict()
    image = mnist.test_images[18]
    kernel = REFERENCE_KERNELS["vertical edge"]
    model = cnnlib.CNN().eval()
    model.load_state_dict(weights)
    before = int(model(image[None]).argmax())
    model.conv1.weight.data[3, 0] = kernel
    changed = int(model(image[None]).argmax()) != before
    assert exercises.edge_detector_changes_prediction(changed, weights, image, kernel).right
    assert not exercises.edge_detector_changes_prediction(not changed, weights, image, kernel).right


class EightFilters(cnnlib.CNN):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3)
        self.conv2 = nn.Conv2d(8, 8, 3)


def test_a_custom_model_trains_into_a_folder_of_its_own(mnist, tmp_path: Path) -> None:
    results = exercises.train_run("eight", TINY, EightFilters, mnist, False, root=tmp_path)
    assert [r.epoch for r in results] == [0, 1]
    assert results[-1].state_dict["conv1.weight"].shape == (8, 1, 3, 3)
    folder = tmp_path / "eight"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics[1]["validation_accuracy"] == results[1].validation_accuracy
    weights = cnnlib.load_state_dict(folder / "final_model_weights.pth")
    assert torch.equal(weights["conv2.weight"], results[-1].state_dict["conv2.weight"])


def test_the_lectures_cnn_gets_a_whole_artifact_set_there(mnist, tmp_path: Path) -> None:
    exercises.train_run("seed1", TINY, data=mnist, progress=False, root=tmp_path)
    payload = json.loads((tmp_path / "seed1" / JSON_NAME).read_text())
    assert payload["metadata"]["config"] == TINY.as_dict()


@pytest.mark.parametrize("name", ["../data", "a/b", "", ".hidden"])
def test_an_exercise_run_is_a_plain_folder_name(name: str) -> None:
    with pytest.raises(ValueError, match="name must be a plain folder name"):
        exercises.exercise_folder(name)


def test_an_exercise_never_writes_into_data() -> None:
    with pytest.raises(ValueError, match="which the lecture reads; use another root"):
        exercises.exercise_folder("runs", root=DEFAULT_DATA_DIR)
    assert exercises.exercise_folder("runs").parent == exercises.EXERCISE_DIR.resolve()
