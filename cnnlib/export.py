"""The factory, stage 4, export: what an artifact set holds and how it is encoded. The names of
its files, `pretrained_cnn_data.json` (the exact contract the browser demo reads; its schema ships
beside this module) built from the training results, and the weight snapshots as bytes. Where the
files go, and how a set replaces the last one, is `cnnlib.store`'s job."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterable
from importlib import metadata as package_metadata
from importlib import resources
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from cnnlib.data import MEAN, RAW_FILES, STD, Mnist, feature_map_index, normalize, sample_indices
from cnnlib.model import ACTIVATION_NAMES, CNN
from cnnlib.train import EpochResult, TrainConfig, resolve_device

SCHEMA_VERSION = 3  # 2: validation_loss and validation_accuracy; 3: mistakes, mistake_samples
MAX_MISTAKES = 10  # each epoch's most confident mistakes on the test set, for the demo's gallery
JSON_NAME = "pretrained_cnn_data.json"
FINAL_WEIGHTS_NAME = "final_model_weights.pth"
EPOCH_WEIGHTS_DIR = "epoch_weights"
MANIFEST_NAME = "manifest.json"
EPOCH_FILE_PATTERN = r"epoch_\d+_weights\.pth"
TOP_LEVEL = (JSON_NAME, FINAL_WEIGHTS_NAME, EPOCH_WEIGHTS_DIR, MANIFEST_NAME)  # manifest last


def epoch_weights_name(epoch: int) -> str:
    return f"{EPOCH_WEIGHTS_DIR}/epoch_{epoch}_weights.pth"


def load_schema() -> dict:
    """The JSON Schema of `pretrained_cnn_data.json`, as shipped inside the package."""
    return json.loads(resources.files("cnnlib").joinpath("schema.json").read_text())


def load_state_dict(path: Path | BinaryIO) -> dict[str, torch.Tensor]:
    """Load a `.pth` snapshot without ever unpickling code (weights_only=True)."""
    return torch.load(path, map_location="cpu", weights_only=True)


# ---------------------------------------------------------------------------------------------
# Strict, compact JSON: every float in the shortest form that parses back to the same float32.


class NonFiniteError(ValueError):
    """A NaN or infinity that strict JSON cannot hold."""


def _float32_text(values: np.ndarray, where: str) -> list[str]:
    with np.errstate(over="ignore"):  # too large for float32 becomes infinity: refused below
        values = np.asarray(values, dtype=np.float32).ravel()
    if not np.isfinite(values).all():
        raise NonFiniteError(
            f"{where} holds NaN or infinity, which strict JSON cannot store "
            "(did training diverge? try a smaller lr)"
        )
    return [str(value) for value in values]  # numpy prints the shortest round-tripping digits


def _encode_array(array: np.ndarray, where: str, out: list[str]) -> None:
    if array.ndim > 1:
        _encode(list(array), where, out)  # a list of rows, each one dimension less
    elif array.dtype.kind == "f":
        text = _float32_text(array, where)
        out.append("[" + ",".join(text) + "]" if array.ndim else text[0])
    else:
        out.append(json.dumps(array.tolist(), separators=(",", ":")))


def _encode(value: object, where: str, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append("{")
        for number, (key, item) in enumerate(value.items()):
            out.append(("," if number else "") + json.dumps(key) + ":")
            _encode(item, f"{where}.{key}", out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for number, item in enumerate(value):
            if number:
                out.append(",")
            _encode(item, f"{where}[{number}]", out)
        out.append("]")
    elif isinstance(value, torch.Tensor):
        _encode_array(value.detach().cpu().numpy(), where, out)
    elif isinstance(value, (np.ndarray, np.generic)) or type(value) is float:
        _encode_array(np.asarray(value), where, out)
    elif value is None or isinstance(value, (bool, int, str)):
        out.append(json.dumps(value))
    else:
        raise TypeError(f"{where}: cannot write a {type(value).__name__} to JSON")


def dumps_float32(value: object, name: str = JSON_NAME) -> str:
    """Compact strict JSON; floats as float32 in their shortest exact form; NaN/inf refused."""
    out: list[str] = []
    _encode(value, name, out)
    return "".join(out)


def _widened(value: object) -> object:
    if isinstance(value, float):
        return float(np.float32(value))  # the float64 that the float32 converts to, exactly
    if isinstance(value, list):
        return [_widened(item) for item in value]
    if isinstance(value, dict):
        return {key: _widened(item) for key, item in value.items()}
    return value


def json_bytes(value: object) -> int:
    """Bytes a parsed JSON value takes written compactly (no spaces): its share of a file."""
    return len(json.dumps(value, separators=(",", ":")))


def dumps_float64(value: object) -> str:
    """Compact JSON of parsed JSON `value`, every float written as the float64 its float32 widens
    to, as `json.dumps(tensor.tolist())` writes weights: 0.41788855 becomes 0.4178885519504547.
    The longer text that `dumps_float32` avoids (notebook 04 measures the difference)."""
    return json.dumps(_widened(value), separators=(",", ":"))


# ---------------------------------------------------------------------------------------------
# The payload: what the demo reads, built from the training results.


def weights_by_layer(state_dict: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """{'conv1.weight': w, ...} -> {'conv1': {'weight': w, 'bias': b}, ...}."""
    layers: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state_dict.items():
        layer, kind = key.split(".")
        layers.setdefault(layer, {})[kind] = tensor
    return layers


def feature_maps(
    state_dict: dict[str, torch.Tensor], image: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The drawn activations of one normalized image [1, 28, 28] under the given weights."""
    model = CNN()
    model.load_state_dict(state_dict)
    with torch.inference_mode():
        activations = model.activations(image.unsqueeze(0))
    return {name: activations[name][0] for name in ACTIVATION_NAMES}


def architecture(model: CNN) -> dict[str, object]:
    """The layer-by-layer shapes the demo lays out."""
    with torch.inference_mode():
        shapes = {
            name: list(tensor.shape[1:])
            for name, tensor in model.activations(torch.zeros(1, 1, 28, 28)).items()
        }
    layers = {
        "conv1": (model.conv1.out_channels, model.conv1.kernel_size[0]),
        "pool1": (model.conv1.out_channels, model.pool1.kernel_size),
        "conv2": (model.conv2.out_channels, model.conv2.kernel_size[0]),
        "pool2": (model.conv2.out_channels, model.pool2.kernel_size),
    }
    return {
        "input_shape": [1, 28, 28],
        **{
            name: {"channels": channels, "kernel_size": kernel, "output_shape": shapes[name]}
            for name, (channels, kernel) in layers.items()
        },
        "flatten": {"output_features": model.fc1.in_features},
        "fc1": {"hidden_units": model.fc1.out_features},
        "output": {"classes": model.fc2.out_features},
    }


def model_architecture(model: CNN) -> dict[str, object]:
    """Each layer's hyper-parameters, as PyTorch holds them."""

    def conv(layer: torch.nn.Conv2d) -> dict[str, int]:
        return {
            "in_channels": layer.in_channels,
            "out_channels": layer.out_channels,
            "kernel_size": layer.kernel_size[0],
            "stride": layer.stride[0],
            "padding": layer.padding[0],
        }

    def pool(layer: torch.nn.MaxPool2d) -> dict[str, int]:
        return {"kernel_size": layer.kernel_size, "stride": layer.stride}

    def linear(layer: torch.nn.Linear) -> dict[str, int]:
        return {"in_features": layer.in_features, "out_features": layer.out_features}

    return {
        "conv1": conv(model.conv1),
        "pool1": pool(model.pool1),
        "conv2": conv(model.conv2),
        "pool2": pool(model.pool2),
        "fc1": linear(model.fc1),
        "fc2": linear(model.fc2),
    }


def versions() -> dict[str, str]:
    return {
        "cnnlib": package_metadata.version("cnnlib"),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": package_metadata.version("torchvision"),  # without importing it (1 s)
        "numpy": np.__version__,
    }


def test_images(data: Mnist, indices: Iterable[int]) -> list[dict[str, object]]:
    """Test-set images by index: original pixels, with labels."""
    return [
        {"image": data.test_pixels[index], "label": int(data.test_labels[index]), "index": index}
        for index in indices
    ]


def samples(data: Mnist) -> list[dict[str, object]]:
    """The demo's 100 test images: the first ten of each digit."""
    return test_images(data, sample_indices(data.test_labels))


def mistakes(
    state_dict: dict[str, torch.Tensor], images: torch.Tensor, labels: torch.Tensor
) -> list[dict[str, object]]:
    """The MAX_MISTAKES test images the weights get wrong with the highest probability, highest
    first: one batched forward pass over the whole test set."""
    model = CNN().eval()
    model.load_state_dict(state_dict)
    with torch.inference_mode():
        probability, prediction = model(images).softmax(dim=1).max(dim=1)
    wrong = (prediction != labels).nonzero()[:, 0]
    worst = wrong[probability[wrong].sort(descending=True, stable=True).indices[:MAX_MISTAKES]]
    return [
        {
            "index": index,
            "label": int(labels[index]),
            "prediction": int(prediction[index]),
            "probability": probability[index],
        }
        for index in worst.tolist()
    ]


def epoch_entry(
    result: EpochResult, image: torch.Tensor, data: Mnist, images: torch.Tensor
) -> dict[str, object]:
    """One element of `training_epochs`: the metrics, feature maps, most confident mistakes
    (on the normalized test `images`) and weights of one epoch."""
    return {
        "epoch": result.epoch,
        "loss": result.loss,
        "train_accuracy": result.train_accuracy,
        "test_accuracy": result.test_accuracy,
        "test_loss": result.test_loss,
        "validation_accuracy": result.validation_accuracy,
        "validation_loss": result.validation_loss,
        "feature_maps": feature_maps(result.state_dict, image),
        "mistakes": mistakes(result.state_dict, images, data.test_labels),
        "weights": weights_by_layer(result.state_dict),
    }


def payload_end(
    last: EpochResult, data: Mnist, config: TrainConfig, mistaken: Iterable[int]
) -> dict[str, object]:
    """What follows `training_epochs` in the JSON; `mistaken`: the test images that the epochs'
    mistakes name."""
    image_index = feature_map_index(data.test_labels)
    return {
        "mistake_samples": test_images(data, sorted(mistaken)),
        "architecture": architecture(CNN()),
        "model_architecture": model_architecture(CNN()),
        "final_weights": weights_by_layer(last.state_dict),
        "feature_map_image": {"index": image_index, "label": int(data.test_labels[image_index])},
        "metadata": {
            "schema_version": SCHEMA_VERSION,
            "versions": versions(),
            "config": config.as_dict(),
            "device": resolve_device(config.device).type,
            "dataset": {"name": "MNIST", "md5": RAW_FILES},
            "normalization": {"mean": MEAN, "std": STD},
        },
    }


def state_dict_bytes(state_dict: dict[str, torch.Tensor]) -> bytes:
    """A snapshot as the bytes of its `.pth` file (`torch.save`)."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    return buffer.getvalue()


# `pretrained_cnn_data.json` in three kinds of piece, written as the epochs arrive (memory does
# not grow with their number): json_start, then json_epoch for each epoch, then json_end.


def feature_map_input(data: Mnist) -> torch.Tensor:
    """The normalized test image [1, 28, 28] whose feature maps the demo draws."""
    index = feature_map_index(data.test_labels)
    return normalize(data.test_pixels[index : index + 1])[0]


def json_start(data: Mnist) -> str:
    return (
        '{"samples":'
        + dumps_float32(samples(data), f"{JSON_NAME}.samples")
        + ',"training_epochs":['
    )


def json_epoch(entry: dict[str, object]) -> str:
    """One epoch's element of `training_epochs` (an `epoch_entry`), a comma before all but
    epoch 0's."""
    where = f"{JSON_NAME}.training_epochs[{entry['epoch']}]"
    return ("," if entry["epoch"] else "") + dumps_float32(entry, where)


def json_end(last: EpochResult, data: Mnist, config: TrainConfig, mistaken: Iterable[int]) -> str:
    """The end of the JSON; the configuration's floats exactly as Python writes them (`lr` may be
    any number a student types), the rest in float32 text."""
    end = payload_end(last, data, config, mistaken)
    metadata = json.dumps(end.pop("metadata"), separators=(",", ":"))
    return "]," + dumps_float32(end)[1:-1] + ',"metadata":' + metadata + "}"
