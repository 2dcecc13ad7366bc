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
        'import { readFileSync } from "node:fs";',
        'import { argmax, forward } from "./cnn.mjs";',
        'import { validate } from "./validate.mjs";',
    ]
    validate_imports = [
        line
        for line in (JS_DIR / "validate.mjs").read_text().splitlines()
        if line.startswith("import")
    ]
    assert validate_imports == ['import { forward } from "./cnn.mjs";']


def check_file(node: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [node, str(JS_DIR / "check.mjs"), str(path)], capture_output=True, text=True, timeout=300
    )


def edit_epochs(payload: dict, change) -> dict:
    edited = json.loads(json.dumps(payload))
    change(edited["training_epochs"])
    return edited


def truncate_fc1_rows(epochs: list[dict]) -> None:
    """Every fc1 row of epoch 1 cut to 150 of its 200 weights."""
    weight = epochs[1]["weights"]["fc1"]["weight"]
    weight[:] = [row[:150] for row in weight]


def scale_fc1(epochs: list[dict]) -> None:
    """Epoch 2's fc1 weights doubled: right shapes, wrong numbers; its stored fc1 map disagrees."""
    weight = epochs[2]["weights"]["fc1"]["weight"]
    weight[:] = [[2 * value for value in row] for row in weight]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (None, "cannot be read (ENOENT)"),
        (lambda payload: json.dumps(payload)[:-100], "not valid JSON ("),
        (lambda payload: "\ufeff" + json.dumps(payload), "starts with a UTF-8 byte order mark"),
        (
            lambda payload: json.dumps(payload).replace('"loss":', '"loss": 1e400, "x":', 1),
            'holds a number too large for a double at "loss" (read as Infinity)',
        ),
        (
            lambda payload: json.dumps(payload).replace('"bias": [', '"bias": [1e999, ', 1),
            "holds a number too large for a double",
        ),
        (
            lambda payload: json.dumps(edit_epochs(payload, lambda epochs: epochs.pop(1))),
            "`training_epochs` holds epochs 0, 2; expected 0..2, each once, in order",
        ),
        (
            lambda payload: json.dumps(
                edit_epochs(payload, lambda epochs: epochs.insert(1, epochs[1]))
            ),
            "`training_epochs` holds epochs 0, 1, 1, 2; expected 0..2, each once, in order",
        ),
        (
            lambda payload: json.dumps(edit_epochs(payload, truncate_fc1_rows)),
            "`training_epochs[1].weights.fc1.weight[0]` (epoch 1) has 150 values where the "
            "network has 200",
        ),
        (
            lambda payload: json.dumps(edit_epochs(payload, scale_fc1)),
            "`training_epochs[2].feature_maps.fc1` (epoch 2) differs by ",
        ),
    ],
    ids=[
        "missing",
        "truncated",
        "BOM",
        "1e400",
        "Infinity weight",
        "epoch gone",
        "epoch twice",
        "fc1 rows cut",
        "fc1 weights changed",
    ],
)
def test_check_script_refuses_bad_files_in_one_line_naming_them(
    node: str, payload: dict, tmp_path: Path, make, reason: str
):
    path = tmp_path / "pretrained_cnn_data.json"
    if make is not None:
        path.write_text(make(payload), encoding="utf-8")
    done = check_file(node, path)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"check.mjs: {path}: {reason}")
    assert done.stderr.count("\n") == 1
