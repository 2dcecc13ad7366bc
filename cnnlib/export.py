"""The factory, export: a set's file names, `pretrained_cnn_data.json` (the contract the demo reads;
`schema.json` beside this module) and the weight snapshots as bytes."""

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
from torch import nn

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
METRICS = ("loss", "train_accuracy", "test_accuracy", "test_loss")
METRICS += ("validation_accuracy", "validation_loss")  # each epoch's, in the JSON's order
LAYER_FIELDS = {  # what model_architecture records of each kind of layer
    nn.Conv2d: ("in_channels", "out_channels", "kernel_size", "stride", "padding"),
    nn.MaxPool2d: ("kernel_size", "stride"),
    nn.Linear: ("in_features", "out_features"),
}


class NonFiniteError(ValueError):
    """A NaN or infinity that strict JSON cannot hold."""


def epoch_weights_name(epoch: int) -> str:
    return f"{EPOCH_WEIGHTS_DIR}/epoch_{epoch}_weights.pth"


def load_schema() -> dict:
    """The JSON Schema of `pretrained_cnn_data.json`, as shipped inside the package."""
    return json.loads(resources.files("cnnlib").joinpath("schema.json").read_text())


def load_state_dict(path: Path | BinaryIO) -> dict[str, torch.Tensor]:
    """Load a `.pth` snapshot without ever unpickling code (weights_only=True)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def state_dict_bytes(state_dict: dict[str, torch.Tensor]) -> bytes:
    """A snapshot as the bytes of its `.pth` file (`torch.save`)."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    return buffer.getvalue()


def float32_values(value: object, where: str) -> object:
    """`value` as JSON values, every float (in tensors and arrays too) as float32 in its shortest
    exact text: 0.41788855, not 0.4178885519504547. NonFiniteError names where NaN or inf is."""
    if isinstance(value, dict):
        return {key: float32_values(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, list | tuple) or (isinstance(value, np.ndarray) and value.ndim > 1):
        return [float32_values(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if not (isinstance(value, np.ndarray | np.generic) or type(value) is float):
        return value
    array = np.asarray(value)
    if array.dtype.kind != "f":
        return array.tolist()
    with np.errstate(over="ignore"):  # too large for float32 becomes infinity: refused below
        array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise NonFiniteError(
            f"{where} holds NaN or infinity, which strict JSON cannot store "
            "(did training diverge? try a smaller lr)"
        )
    shortest = [float(str(number)) for number in array.ravel()]  # numpy's shortest float32 text
    return np.array(shortest).reshape(array.shape).tolist()


def dumps_float32(value: object, name: str = JSON_NAME) -> str:
    """Compact strict JSON, floats as float32 in their shortest exact form; NaN/inf refused."""
    return json.dumps(float32_values(value, name), separators=(",", ":"), allow_nan=False)


def weights_by_layer(state_dict: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """{'conv1.weight': w, ...} -> {'conv1': {'weight': w, 'bias': b}, ...}."""
    layers: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state_dict.items():
        layer, kind = key.split(".")
        layers.setdefault(layer, {})[kind] = tensor
    return layers


def number(value: int | tuple[int, ...]) -> int:
    """A square layer's size: PyTorch holds a convolution's as (3, 3), a pooling's as 2."""
    return value[0] if isinstance(value, tuple) else value


def architecture(model: CNN) -> dict[str, object]:
    """The layer-by-layer shapes the demo lays out."""
    with torch.inference_mode():
        activations = model.activations(torch.zeros(1, 1, 28, 28))
    layers = {
        name: {
            "channels": activations[name].shape[1],
            "kernel_size": number(getattr(model, name).kernel_size),
            "output_shape": list(activations[name].shape[1:]),
        }
        for name in ("conv1", "pool1", "conv2", "pool2")
    }
    return {
        "input_shape": [1, 28, 28],
        **layers,
        "flatten": {"output_features": model.fc1.in_features},
        "fc1": {"hidden_units": model.fc1.out_features},
        "output": {"classes": model.fc2.out_features},
    }


def model_architecture(model: CNN) -> dict[str, object]:
    """Each layer's hyper-parameters, as PyTorch holds them."""
    return {
        name: {field: number(getattr(layer, field)) for field in LAYER_FIELDS[type(layer)]}
        for name, layer in model.named_children()
    }


def test_images(data: Mnist, indices: Iterable[int]) -> list[dict[str, object]]:
    return [
        {"image": data.test_pixels[index], "label": int(data.test_labels[index]), "index": index}
        for index in indices
    ]


def confident_mistakes(logits: torch.Tensor, labels: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of up to `count` wrongly classified images, the most confident mistake first."""
    confidence, predicted = logits.softmax(dim=1).max(dim=1)
    wrong = (predicted != labels).nonzero().flatten()
    order = confidence[wrong].argsort(descending=True, stable=True)
    return wrong[order[:count]]


def mistakes(logits: torch.Tensor, labels: torch.Tensor) -> list[dict[str, object]]:
    """The MAX_MISTAKES test images that `logits` get wrong with the highest probability,
    highest first."""
    probability, prediction = logits.softmax(dim=1).max(dim=1)
    return [
        {
            "index": index,
            "label": int(labels[index]),
            "prediction": int(prediction[index]),
            "probability": probability[index],
        }
        for index in confident_mistakes(logits, labels, MAX_MISTAKES).tolist()
    ]


# `pretrained_cnn_data.json` is written in pieces as the epochs arrive (memory does not grow with
# their number): json_start, then json_epoch for each epoch's entry, then json_end.


def epoch_entry(result: EpochResult, data: Mnist) -> dict[str, object]:
    """One epoch's element of `training_epochs`: metrics, feature maps, mistakes and weights."""
    model = CNN()
    model.load_state_dict(result.state_dict)
    index = feature_map_index(data.test_labels)
    with torch.inference_mode():
        activations = model.activations(normalize(data.test_pixels[index : index + 1]))
    return {
        "epoch": result.epoch,
        **{name: getattr(result, name) for name in METRICS},
        "feature_maps": {name: activations[name][0] for name in ACTIVATION_NAMES},
        "mistakes": mistakes(result.test_logits, data.test_labels),
        "weights": weights_by_layer(result.state_dict),
    }


def json_start(data: Mnist) -> bytes:
    samples = test_images(data, sample_indices(data.test_labels))
    text = dumps_float32(samples, f"{JSON_NAME}.samples")
    return ('{"samples":' + text + ',"training_epochs":[').encode()


def json_epoch(entry: dict[str, object]) -> bytes:
    """One epoch's element of `training_epochs`, a comma before all but epoch 0's."""
    where = f"{JSON_NAME}.training_epochs[{entry['epoch']}]"
    return (("," if entry["epoch"] else "") + dumps_float32(entry, where)).encode()


def json_end(last: EpochResult, data: Mnist, config: TrainConfig, mistaken: Iterable[int]) -> bytes:
    """The rest of the JSON; `mistaken`: the test images the epochs' mistakes name. The config's
    floats as Python writes them (`lr` may be any number a student types), the rest as float32."""
    index = feature_map_index(data.test_labels)
    end = {
        "mistake_samples": test_images(data, sorted(mistaken)),
        "architecture": architecture(CNN()),
        "model_architecture": model_architecture(CNN()),
        "final_weights": weights_by_layer(last.state_dict),
        "feature_map_image": {"index": index, "label": int(data.test_labels[index])},
    }
    versions = {
        "cnnlib": package_metadata.version("cnnlib"),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": package_metadata.version("torchvision"),  # without importing it (1 s)
        "numpy": np.__version__,
    }
    metadata = {
        "schema_version": SCHEMA_VERSION,
        "versions": versions,
        "config": config.as_dict(),
        "device": resolve_device(config.device).type,
        "dataset": {"name": "MNIST", "md5": RAW_FILES},
        "normalization": {"mean": MEAN, "std": STD},
    }
    metadata_text = json.dumps(metadata, separators=(",", ":"))
    return ("]," + dumps_float32(end)[1:-1] + ',"metadata":' + metadata_text + "}").encode()
