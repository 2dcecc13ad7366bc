"""The export: the demo's JSON contract, float32-exact compact numbers, and atomic replacement."""

import json
import math
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch

from cnnlib import reference
from cnnlib.data import RAW_FILES
from cnnlib.export import (
    FINAL_WEIGHTS_NAME,
    JSON_NAME,
    MANIFEST_NAME,
    NonFiniteError,
    dumps_float32,
    epoch_weights_name,
    load_schema,
    load_state_dict,
)
from cnnlib.model import CNN
from cnnlib.pipeline import write_artifacts
from cnnlib.store import SETS_DIR
from cnnlib.train import TrainConfig
from cnnlib.verify import verify
from tests.conftest import SHORT

LAYER_SHAPES = {
    "conv1": {"weight": (4, 1, 3, 3), "bias": (4,)},
    "conv2": {"weight": (8, 4, 3, 3), "bias": (8,)},
    "fc1": {"weight": (128, 200), "bias": (128,)},
    "fc2": {"weight": (10, 128), "bias": (10,)},
}
FEATURE_MAP_SHAPES = {
    "conv1": (4, 26, 26),
    "pool1": (4, 13, 13),
    "conv2": (8, 11, 11),
    "pool2": (8, 5, 5),
    "fc1": (128,),
}


@pytest.fixture(scope="module")
def payload(short_run) -> dict:
    return json.loads((short_run / JSON_NAME).read_text())


def test_the_schema_is_valid_and_the_json_conforms(payload):
    schema = load_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(payload, schema)


def test_the_schema_rejects_a_wrong_shape(payload):
    broken = json.loads(json.dumps(payload))
    broken["training_epochs"][1]["weights"]["conv1"]["bias"].append(0.5)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, load_schema())


def test_samples_are_ten_original_images_per_digit(payload, mnist):
    samples = payload["samples"]
    assert [sample["label"] for sample in samples] == [d for d in range(10) for _ in range(10)]
    for sample in samples:
        image = np.array(sample["image"])
        assert image.shape == (28, 28) and image.dtype.kind == "i"
        assert np.array_equal(image, mnist.test_pixels[sample["index"]].numpy())


def test_each_epoch_has_metrics_feature_maps_and_weights_of_the_right_shapes(
    payload, short_results
):
    epochs = payload["training_epochs"]
    assert [entry["epoch"] for entry in epochs] == [0, 1, 2]
    for entry, result in zip(epochs, short_results, strict=True):
        metrics = ("loss", "train_accuracy", "test_accuracy", "test_loss")
        for key in (*metrics, "validation_accuracy", "validation_loss"):
            assert np.float32(entry[key]) == np.float32(getattr(result, key))
        for name, shape in FEATURE_MAP_SHAPES.items():
            assert np.array(entry["feature_maps"][name]).shape == shape
        for layer, kinds in LAYER_SHAPES.items():
            for kind, shape in kinds.items():
                stored = np.array(entry["weights"][layer][kind], dtype=np.float32)
                assert stored.shape == shape
                assert np.array_equal(stored, result.state_dict[f"{layer}.{kind}"].numpy())
    assert payload["final_weights"] == epochs[-1]["weights"]


def test_architecture_blocks_describe_the_model(payload):
    architecture = payload["architecture"]
    assert architecture["input_shape"] == [1, 28, 28]
    assert architecture["conv1"] == {"channels": 4, "kernel_size": 3, "output_shape": [4, 26, 26]}
    assert architecture["pool1"] == {"channels": 4, "kernel_size": 2, "output_shape": [4, 13, 13]}
    assert architecture["conv2"] == {"channels": 8, "kernel_size": 3, "output_shape": [8, 11, 11]}
    assert architecture["pool2"] == {"channels": 8, "kernel_size": 2, "output_shape": [8, 5, 5]}
    assert architecture["flatten"] == {"output_features": 200}
    assert architecture["fc1"] == {"hidden_units": 128}
    assert architecture["output"] == {"classes": 10}
    layers = payload["model_architecture"]
    conv = {"kernel_size": 3, "stride": 1, "padding": 0}
    assert layers["conv1"] == {"in_channels": 1, "out_channels": 4, **conv}
    assert layers["conv2"] == {"in_channels": 4, "out_channels": 8, **conv}
    assert layers["pool1"] == layers["pool2"] == {"kernel_size": 2, "stride": 2}
    assert layers["fc1"] == {"in_features": 200, "out_features": 128}
    assert layers["fc2"] == {"in_features": 128, "out_features": 10}


def test_metadata_records_versions_config_checksums_and_the_feature_map_image(payload, mnist):
    metadata = payload["metadata"]
    assert metadata["schema_version"] == 3
    assert metadata["config"] == SHORT.as_dict()
    assert metadata["versions"]["torch"] == torch.__version__
    assert metadata["dataset"]["md5"] == RAW_FILES
    assert metadata["normalization"] == {"mean": 0.1307, "std": 0.3081}
    assert payload["feature_map_image"] == {"index": 18, "label": 3}


def test_every_float_is_the_shortest_text_of_its_float32(short_run):
    tokens: list[str] = []
    json.loads((short_run / JSON_NAME).read_text(), parse_float=tokens.append)
    assert len(tokens) > 100_000
    for token in tokens:
        value = np.float32(token)
        assert np.isfinite(value)
        assert str(value) == token  # numpy prints the shortest digits that round-trip


def test_json_is_compact(short_run):
    text = (short_run / JSON_NAME).read_text()
    assert "\n" not in text and ", " not in text and ": " not in text


def test_numpy_forward_from_the_json_reproduces_torch_logits(payload, mnist, short_results):
    pixels = np.array([sample["image"] for sample in payload["samples"]], dtype=np.uint8)
    images = mnist.test_images[[sample["index"] for sample in payload["samples"]]]
    model = CNN().eval()
    for entry, result in zip(payload["training_epochs"], short_results, strict=True):
        model.load_state_dict(result.state_dict)
        with torch.inference_mode():
            expected = model(images).numpy()
        logits = reference.forward(entry["weights"], pixels)["logits"]
        assert np.abs(logits - expected).max() < 1e-4


def test_nan_and_infinity_are_refused_with_the_place_named():
    with pytest.raises(NonFiniteError, match=r"pretrained_cnn_data\.json\.a\[1\] holds NaN"):
        dumps_float32({"a": [1.0, math.nan]})
    with pytest.raises(NonFiniteError, match=r"\.w\[0\] holds NaN or infinity"):
        dumps_float32({"w": np.array([[1.0, np.inf]], dtype=np.float32)})
    with pytest.raises(NonFiniteError):
        dumps_float32({"too_big_for_float32": 1e300})


def test_weight_files_load_safely_and_final_is_the_last_epoch(short_run):
    final = load_state_dict(short_run / FINAL_WEIGHTS_NAME)
    last = load_state_dict(short_run / epoch_weights_name(SHORT.epochs))
    assert all(torch.equal(final[key], last[key]) for key in last)
    manifest = json.loads((short_run / MANIFEST_NAME).read_text())
    assert manifest["config"] == SHORT.as_dict()
    assert len(manifest["files"]) == SHORT.epochs + 3  # epochs 0..N, final, JSON


def test_a_failed_export_leaves_the_previous_artifacts_untouched(fresh_run, mnist, short_results):
    before = {path: path.read_bytes() for path in fresh_run.rglob("*") if path.is_file()}
    diverged = short_results[:1] + [short_results[1]]
    diverged[1] = type(diverged[1])(**{**vars(diverged[1]), "loss": math.nan})
    with pytest.raises(NonFiniteError):
        write_artifacts(diverged, mnist, SHORT, fresh_run)
    after = {path: path.read_bytes() for path in fresh_run.rglob("*") if path.is_file()}
    assert after == before


def test_a_shorter_run_replaces_a_longer_one_completely(fresh_run, mnist, short_results):
    one_epoch = TrainConfig(epochs=1, batches_per_epoch=5, device="cpu")
    write_artifacts(short_results[:2], mnist, one_epoch, fresh_run)
    names = sorted(path.name for path in (fresh_run / "epoch_weights").iterdir())
    assert names == ["epoch_0_weights.pth", "epoch_1_weights.pth"]
    assert [path.name for path in fresh_run.iterdir() if path.name.startswith(".")] == [SETS_DIR]
    # published and verified: no staged set is left, only the lock and the record of the set
    assert sorted(path.name for path in (fresh_run / SETS_DIR).iterdir()) == [
        "lock",
        "published.json",
    ]


def test_the_default_run_reaches_95_percent_in_a_json_under_9_mb(default_run: Path):
    files = json.loads((default_run / MANIFEST_NAME).read_text())["files"]
    assert files[JSON_NAME]["bytes"] <= 9_000_000
    assert len([name for name in files if name.startswith("epoch_weights/")]) == 21
    final = json.loads((default_run / JSON_NAME).read_text())["training_epochs"][-1]
    assert final["test_accuracy"] >= 95.0
    report = verify(default_run, min_accuracy=95.0)
    assert report.passed, report.lines()
