"""js/cnn.mjs, the demo's forward pass in JavaScript, run under Node.js against PyTorch.

Where Node.js is absent these tests skip, except in CI (the CI variable set): there they fail.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlib.data import REPO_DIR, normalize
from cnnlib.export import JSON_NAME, epoch_weights_name, load_state_dict
from cnnlib.model import ACTIVATION_NAMES, CNN
from tests.conftest import run_es_module

JS_DIR = REPO_DIR / "js"
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def payload(short_run: Path) -> dict:
    return json.loads((short_run / JSON_NAME).read_text())


@pytest.fixture(scope="module")
def js_result(node: str, short_run: Path) -> dict:
    """What js/check.mjs prints for the short run: per epoch, feature-map errors and predictions."""
    done = subprocess.run(
        [node, str(JS_DIR / "check.mjs"), str(short_run / JSON_NAME)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def torch_logits(short_run: Path, payload: dict) -> dict[int, np.ndarray]:
    """PyTorch's logits for the 100 samples, per epoch, from the .pth snapshots."""
    pixels = torch.tensor([sample["image"] for sample in payload["samples"]], dtype=torch.uint8)
    model = CNN().eval()
    logits = {}
    for entry in payload["training_epochs"]:
        model.load_state_dict(load_state_dict(short_run / epoch_weights_name(entry["epoch"])))
        with torch.inference_mode():
            logits[entry["epoch"]] = model(normalize(pixels)).numpy()
    return logits


def run_module(node: str, script: str) -> object:
    """Run an ES-module snippet that imports cnn.mjs as `cnn`; return what it prints as JSON."""
    return run_es_module(node, JS_DIR / "cnn.mjs", "cnn", script)


def test_js_covers_every_epoch_and_sample(js_result: dict, payload: dict):
    assert [entry["epoch"] for entry in js_result["epochs"]] == [
        entry["epoch"] for entry in payload["training_epochs"]
    ]
    assert js_result["samples"] == 100


def test_js_activations_match_the_json_feature_maps(js_result: dict):
    for entry in js_result["epochs"]:
        errors = entry["feature_map_errors"]
        assert list(errors) == list(ACTIVATION_NAMES)
        assert max(errors.values()) < TOLERANCE, f"epoch {entry['epoch']}: {errors}"


def test_js_predictions_match_pytorch(js_result: dict, torch_logits: dict[int, np.ndarray]):
    for entry in js_result["epochs"]:
        theirs = torch_logits[entry["epoch"]]
        ours = np.asarray(entry["logits"])
        assert ours.shape == (100, 10)
        assert np.abs(ours - theirs).max() < TOLERANCE, f"epoch {entry['epoch']}"
        assert entry["predictions"] == theirs.argmax(axis=1).tolist(), f"epoch {entry['epoch']}"


def test_js_exports_preprocess_softmax_and_predict(node: str, short_run: Path, js_result: dict):
    script = f"""
import {{ readFileSync }} from "node:fs";
const data = JSON.parse(readFileSync({str(short_run / JSON_NAME)!r}, "utf8"));
const pixels = data.samples[30].image;
const weights = data.training_epochs.at(-1).weights;
const out = cnn.forward(weights, pixels);
console.log(JSON.stringify({{
  corners: cnn.preprocess([[0, 255]])[0][0],
  softmax: cnn.softmax([0, Math.log(3)]),
  probabilitySum: out.probabilities.reduce((a, b) => a + b, 0),
  shapes: ["conv1", "pool1", "conv2", "pool2"].map((name) => [
    out[name].length, out[name][0].length, out[name][0][0].length,
  ]),
  fc1: out.fc1.length,
  predicted: cnn.predict(weights, pixels),
}}));
"""
    result = run_module(node, script)
    assert result["corners"] == pytest.approx([-0.1307 / 0.3081, (1 - 0.1307) / 0.3081])
    assert result["softmax"] == pytest.approx([0.25, 0.75])
    assert result["probabilitySum"] == pytest.approx(1.0)
    assert result["shapes"] == [[4, 26, 26], [4, 13, 13], [8, 11, 11], [8, 5, 5]]
    assert result["fc1"] == 128
    assert result["predicted"] == js_result["epochs"][-1]["predictions"][30]


def test_check_script_without_a_path_prints_its_usage(node: str):
    done = subprocess.run(
        [node, str(JS_DIR / "check.mjs")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr == "usage: node js/check.mjs PATH/TO/pretrained_cnn_data.json\n"


def test_the_module_is_dependency_free():
    imports = [line for line in (JS_DIR / "cnn.mjs").read_text().splitlines() if "import " in line]
    assert all(line.lstrip().startswith(("*", "/")) for line in imports)  # in comments only
    check_imports = [
        line
        for line in (JS_DIR / "check.mjs").read_text().splitlines()
        if line.startswith("import")
    ]
    assert check_imports == [
        'import { readFileSync, statSync } from "node:fs";',
        'import { argmax, forward } from "./cnn.mjs";',
        'import { MAX_BYTES, parse, tooLarge, validate } from "./validate.mjs";',
    ]
    validate_imports = [
        line
        for line in (JS_DIR / "validate.mjs").read_text().splitlines()
        if line.startswith("import")
    ]
    assert validate_imports == ['import { argmax, forward } from "./cnn.mjs";']


def check_file(node: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [node, str(JS_DIR / "check.mjs"), str(path)], capture_output=True, text=True, timeout=300
    )


def edited(payload: dict, change) -> str:
    """The JSON text of a copy of `payload` that `change` modified."""
    copy = json.loads(json.dumps(payload))
    change(copy)
    return json.dumps(copy)


def edit_epochs(payload: dict, change) -> str:
    return edited(payload, lambda copy: change(copy["training_epochs"]))


def truncate_fc1_rows(epochs: list[dict]) -> None:
    """Every fc1 row of epoch 1 cut to 150 of its 200 weights."""
    weight = epochs[1]["weights"]["fc1"]["weight"]
    weight[:] = [row[:150] for row in weight]


def scale_fc1(epochs: list[dict]) -> None:
    """Epoch 2's fc1 weights doubled: right shapes, wrong numbers; its stored fc1 map disagrees."""
    weight = epochs[2]["weights"]["fc1"]["weight"]
    weight[:] = [[2 * value for value in row] for row in weight]


def as_fractions(epochs: list[dict]) -> None:
    """Every accuracy divided by 100, as a file written with fractions would hold them."""
    for entry in epochs:
        for key in ("train_accuracy", "test_accuracy", "validation_accuracy"):
            entry[key] /= 100


def set_key(path: tuple, value: object):
    """A change that sets the item at `path` (keys and positions) of the payload to `value`."""

    def change(payload: dict) -> None:
        *parents, last = path
        for key in parents:
            payload = payload[key]
        payload[last] = value

    return change


def mistake(epoch: int, position: int, key: str, value: object):
    return set_key(("training_epochs", epoch, "mistakes", position, key), value)


def own_label(payload: dict) -> None:
    """The last epoch's first mistake predicts its own label: not a mistake."""
    first = payload["training_epochs"][-1]["mistakes"][0]
    first["prediction"] = first["label"]


def add_mistake_sample(payload: dict) -> None:
    """mistake_samples gets test image 9999, which no epoch's mistakes name."""
    payload["mistake_samples"].append({**payload["mistake_samples"][-1], "index": 9999})


FC2 = ("training_epochs", 1, "weights", "fc2", "weight", 3, 4)
CONV1_SHAPE = ("architecture", "conv1", "output_shape")

# Damaged copies of the short run (epochs 0..2): what makes each, and how check.mjs's one line
# begins after "check.mjs: PATH: ".
DAMAGED = {
    "missing": (None, "cannot be read (ENOENT)"),
    "truncated": (lambda payload: json.dumps(payload)[:-100], "is not valid JSON ("),
    "BOM": (lambda payload: "\ufeff" + json.dumps(payload), "starts with a UTF-8 byte order mark"),
    "1e400": (
        lambda payload: json.dumps(payload).replace('"loss":', '"loss": 1e400, "x":', 1),
        "`training_epochs[0].loss` (epoch 0) is Infinity, not a finite number",
    ),
    "1e400 in metadata": (
        lambda payload: json.dumps(payload).replace('"lr": ', '"lr": 1e400, "x": ', 1),
        "`metadata.config.lr` is Infinity, not a finite number",
    ),
    "extra bias": (
        lambda payload: json.dumps(payload).replace('"bias": [', '"bias": [1e999, ', 1),
        "`training_epochs[0].weights.conv1.bias` (epoch 0) has 5 values where the network has 4",
    ),
    "1e308 weight": (
        lambda payload: edited(payload, set_key(FC2, 1e308)),
        "`training_epochs[1].weights.fc2.weight[3][4]` (epoch 1) is 1e+308, not a finite number "
        "in float32",
    ),
    "output_shape a string": (
        lambda payload: edited(payload, set_key(CONV1_SHAPE, "4x26x26")),
        '`architecture.conv1.output_shape` is "4x26x26", not a list [channels, height, width]',
    ),
    "output_shape a number": (
        lambda payload: edited(payload, set_key(CONV1_SHAPE, 4)),
        "`architecture.conv1.output_shape` is 4, not a list [channels, height, width]",
    ),
    "output_shape forged": (
        lambda payload: edited(payload, set_key(CONV1_SHAPE, [64, 99, 99])),
        "`architecture.conv1.output_shape` is [64,99,99], but a 3×3 convolution to 4 channels of "
        "[1,28,28] gives [4,26,26]",
    ),
    "hidden units 64": (
        lambda payload: edited(payload, set_key(("architecture", "fc1", "hidden_units"), 64)),
        "`training_epochs[0].weights.fc1.weight` (epoch 0) has 128 rows where the network has 64",
    ),
    "fractions": (
        lambda payload: edit_epochs(payload, as_fractions),
        "`training_epochs` has no accuracy above 1: fractions, where the file must hold percents",
    ),
    "loss 1e308": (
        lambda payload: edited(payload, set_key(("training_epochs", 1, "loss"), 1e308)),
        "`training_epochs[1].loss` (epoch 1) is 1e+308, not a finite number in float32",
    ),
    "negative loss": (
        lambda payload: edited(payload, set_key(("training_epochs", 1, "test_loss"), -0.5)),
        "`training_epochs[1].test_loss` (epoch 1) is -0.5, below 0",
    ),
    "accuracy 150": (
        lambda payload: edited(payload, set_key(("training_epochs", 2, "test_accuracy"), 150)),
        "`training_epochs[2].test_accuracy` (epoch 2) is 150, above 100",
    ),
    "epoch gone": (
        lambda payload: edit_epochs(payload, lambda epochs: epochs.pop(1)),
        "`training_epochs[1].epoch` is 2 after epoch 0; expected 1 (0..2, each once, in order)",
    ),
    "epoch twice": (
        lambda payload: edit_epochs(payload, lambda epochs: epochs.insert(1, epochs[1])),
        "`training_epochs[2].epoch` is 1 after epoch 1; expected 2 (0..2, each once, in order)",
    ),
    "epochs reversed": (
        lambda payload: edit_epochs(payload, list.reverse),
        "`training_epochs[0].epoch` is 2; expected 0 (0..2, each once, in order)",
    ),
    "fc1 rows cut": (
        lambda payload: edit_epochs(payload, truncate_fc1_rows),
        "`training_epochs[1].weights.fc1.weight[0]` (epoch 1) has 150 values where the "
        "network has 200",
    ),
    "fc1 weights changed": (
        lambda payload: edit_epochs(payload, scale_fc1),
        "`training_epochs[2].feature_maps.fc1` (epoch 2) differs by ",
    ),
    "repeated key": (
        lambda payload: json.dumps(payload).replace('{"samples":', '{"samples":[],"samples":', 1),
        'repeats the key "samples" in one object',
    ),
    "repeated key, escaped": (
        lambda payload: json.dumps(payload).replace('"loss":', '"loss": 1, "lo\\u0073s":', 1),
        'repeats the key "loss" in one object',
    ),
    "5,000 samples": (
        lambda payload: edited(payload, lambda copy: copy.update(samples=copy["samples"] * 50)),
        "`samples` holds 5000 items where it should hold 100",
    ),
    "deep nesting": (
        lambda payload: '{"samples":' + "[" * 100_000 + "]" * 100_000 + "}",
        "nests lists and objects over 16 deep (a valid file: 9)",
    ),
    "a million objects": (
        lambda payload: '{"samples":[' + "{}," * 1_000_000 + "{}]}",
        "holds more than 1,000,000 lists and objects; a valid file of 200 epochs holds about "
        "200,000",
    ),
    "a list, not an object": (
        lambda payload: "[" + "{}," * 10_000 + "{}]",
        "holds a JSON list, not an object",
    ),
    "UTF-16LE": (
        lambda payload: json.dumps(payload).encode("utf-16-le"),
        "is UTF-16 (little-endian) text; JSON must be UTF-8",
    ),
    "UTF-16BE with BOM": (
        lambda payload: json.dumps(payload).encode("utf-16"),
        "is UTF-16 (",
    ),
    "Latin-1": (
        lambda payload: json.dumps(payload).replace('"MNIST"', '"MNIST\xe9"').encode("latin-1"),
        "is not valid UTF-8",
    ),
    "old schema": (
        lambda payload: edited(payload, set_key(("metadata", "schema_version"), 2)),
        "`metadata.schema_version` is 2, not 3: another cnnlib wrote the file",
    ),
    "no mistakes": (
        lambda payload: edit_epochs(payload, lambda epochs: epochs[0].pop("mistakes")),
        "`training_epochs[0].mistakes` (epoch 0) is missing",
    ),
    "own label": (
        lambda payload: edited(payload, own_label),
        "`training_epochs[2].mistakes[0].prediction` (epoch 2) is ",
    ),
    "probability changed": (
        lambda payload: edited(payload, mistake(2, 0, "probability", 0.999)),
        "`training_epochs[2].mistakes[0]` (epoch 2) says 7 with probability 0.999; its weights "
        "say 7 with 0.16",
    ),
    "unsorted mistakes": (
        lambda payload: edited(payload, mistake(1, 1, "probability", 1.0)),
        "`training_epochs[1].mistakes[1].probability` (epoch 1) is above the one before",
    ),
    "mistake of an image not held": (
        lambda payload: edited(payload, mistake(0, 0, "index", 9999)),
        "`training_epochs[0].mistakes[0].index` (epoch 0) is 9999, an image that mistake_samples "
        "does not hold",
    ),
    "mistake_samples extra": (
        lambda payload: edited(payload, add_mistake_sample),
        "`mistake_samples` holds test image 9999, which no mistake names",
    ),
}


@pytest.mark.parametrize(("make", "reason"), DAMAGED.values(), ids=DAMAGED.keys())
def test_check_script_refuses_bad_files_in_one_line_naming_them(
    node: str, payload: dict, tmp_path: Path, make, reason: str
):
    path = tmp_path / "pretrained_cnn_data.json"
    if make is not None:
        content = make(payload)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    done = check_file(node, path)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"check.mjs: {path}: {reason}")
    assert done.stderr.count("\n") == 1
