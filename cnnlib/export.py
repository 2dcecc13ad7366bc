"""Stage 4, export: weight snapshots, `pretrained_cnn_data.json` and a manifest, written atomically.

The JSON is the exact contract the browser demo reads; its schema ships beside this module.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib import metadata as package_metadata
from importlib import resources
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from cnnlib.data import MEAN, STD, Mnist, feature_map_index, sample_indices
from cnnlib.files import (
    atomic_write_bytes,
    exclusive_lock,
    is_stale_temporary,
    point_link,
    remove_listed,
    remove_stale_temporaries,
)
from cnnlib.model import ACTIVATION_NAMES, CNN
from cnnlib.train import EpochResult, TrainConfig, resolve_device

SCHEMA_VERSION = 1
JSON_NAME = "pretrained_cnn_data.json"
FINAL_WEIGHTS_NAME = "final_model_weights.pth"
EPOCH_WEIGHTS_DIR = "epoch_weights"
MANIFEST_NAME = "manifest.json"
EPOCH_FILE_PATTERN = r"epoch_\d+_weights\.pth"
TOP_LEVEL = (JSON_NAME, FINAL_WEIGHTS_NAME, EPOCH_WEIGHTS_DIR, MANIFEST_NAME)  # manifest last
SETS_DIR = ".cnnlib"  # hidden: the lock file, the sets, and `current`, a link to the one in use
CURRENT = "current"
LOCK_NAME = "lock"
MNIST_DIR = "MNIST"  # the dataset's folder when DIR is the data folder: torchvision's, not ours
MAX_MANIFEST_BYTES = 1_000_000
OUR_FILE = re.compile(
    "|".join([EPOCH_FILE_PATTERN, *map(re.escape, (JSON_NAME, FINAL_WEIGHTS_NAME, MANIFEST_NAME))])
)


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


def samples(data: Mnist) -> list[dict[str, object]]:
    """The demo's 100 test images: the first ten of each digit, original pixels, with labels."""
    return [
        {"image": data.test_pixels[index], "label": int(data.test_labels[index]), "index": index}
        for index in sample_indices(data.test_labels)
    ]


def epoch_entry(result: EpochResult, image: torch.Tensor) -> dict[str, object]:
    """One element of `training_epochs`: the metrics, feature maps and weights of one epoch."""
    return {
        "epoch": result.epoch,
        "loss": result.loss,
        "train_accuracy": result.train_accuracy,
        "test_accuracy": result.test_accuracy,
        "test_loss": result.test_loss,
        "feature_maps": feature_maps(result.state_dict, image),
        "weights": weights_by_layer(result.state_dict),
    }


def payload_end(last: EpochResult, data: Mnist, config: TrainConfig) -> dict[str, object]:
    """What follows `training_epochs` in the JSON."""
    image_index = feature_map_index(data.test_labels)
    return {
        "architecture": architecture(CNN()),
        "model_architecture": model_architecture(CNN()),
        "final_weights": weights_by_layer(last.state_dict),
        "feature_map_image": {"index": image_index, "label": int(data.test_labels[image_index])},
        "metadata": {
            "schema_version": SCHEMA_VERSION,
            "versions": versions(),
            "config": config.as_dict(),
            "device": resolve_device(config.device).type,
            "dataset": {"name": "MNIST", "md5": data.checksums},
            "normalization": {"mean": MEAN, "std": STD},
        },
    }


# ---------------------------------------------------------------------------------------------
# Writing. A set is built in a hidden folder of its own, DIR/.cnnlib/set-*, one epoch at a time;
# DIR/.cnnlib/current is a symbolic link to the set in use, and DIR's four artifact names are
# links through it. Publishing a set is one atomic step, re-pointing `current`: at every instant
# DIR shows the complete old set or the complete new one. A lock file keeps one writer per DIR.


class OutputError(ValueError):
    """A folder `regenerate` must not write into; the message says why and what to do."""


def state_dict_bytes(state_dict: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    return buffer.getvalue()


def link_target(name: str) -> str:
    """Where DIR/NAME points: through `current`, relative, so that DIR can be moved or copied."""
    return f"{SETS_DIR}/{CURRENT}/{name}"


def is_our_file(name: str) -> bool:
    """Is `name` the name of a file that a set holds?"""
    return OUR_FILE.fullmatch(name) is not None


def is_set_path(path: str) -> bool:
    """Is `path` where a set holds one of its files? (A manifest may be damaged or forged:
    cnnlib reads or deletes only such paths, never `../x` or `/etc/hostname`.)"""
    if path in (JSON_NAME, FINAL_WEIGHTS_NAME, MANIFEST_NAME):
        return True
    folder, _, name = path.partition("/")
    return folder == EPOCH_WEIGHTS_DIR and re.fullmatch(EPOCH_FILE_PATTERN, name) is not None


def read_manifest(path: Path) -> dict | None:
    """The manifest at `path` when it is one of ours, else None."""
    try:
        manifest = json.loads(path.read_bytes()[:MAX_MANIFEST_BYTES])
        files = manifest["files"]
        if isinstance(manifest["config"], dict) and all(isinstance(n, str) for n in files):
            return manifest
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _our_names(folder: Path) -> list[str]:
    """What this project wrote into a set folder: what its manifest lists, or, for a set that
    never got one (its run was killed), the names it writes and their temporaries."""
    manifest = read_manifest(folder / MANIFEST_NAME)
    if manifest is not None:
        return [name for name in [*manifest["files"], MANIFEST_NAME] if is_set_path(name)]
    return [
        path.relative_to(folder).as_posix()
        for path in [*folder.glob("*"), *folder.glob(f"{EPOCH_WEIGHTS_DIR}/*")]
        if is_our_file(path.name) or is_stale_temporary(path, is_our_file)
    ]


def legacy_manifest(out_dir: Path) -> dict | None:
    """The manifest of a set written straight into DIR by an older cnnlib, if DIR holds one."""
    path = out_dir / MANIFEST_NAME
    if path.is_symlink() or not path.is_file():
        return None
    return read_manifest(path)


def current_set(out_dir: Path) -> Path | None:
    """The set folder DIR/.cnnlib/current points to, if it is one of ours."""
    link = Path(out_dir) / SETS_DIR / CURRENT
    if not link.is_symlink():
        return None
    target = os.readlink(link)
    if not re.fullmatch(r"set-[0-9a-z-]+", target) or not (link.parent / target).is_dir():
        return None
    return link.parent / target


def refuse_others(out_dir: Path, force: bool = False) -> None:
    """OutputError, one line, unless every artifact name in DIR is ours and, when DIR holds other
    files, it holds a set of ours too (or `force`): cnnlib never replaces, deletes or writes
    through what it did not write."""
    sets = out_dir / SETS_DIR
    if sets.is_symlink() or (sets.exists() and not sets.is_dir()):
        raise OutputError(f"{sets} is not a folder cnnlib made; move it away")
    legacy = legacy_manifest(out_dir)
    listed = {name for name in legacy["files"] if is_set_path(name)} if legacy else set()
    current = current_set(out_dir)
    if current is not None:
        theirs = set(_files_in(current)) - set(_our_names(current))
        if theirs:
            name = sorted(theirs)[0]
            raise OutputError(
                f"{out_dir / name} was not written by cnnlib and would be hidden by a new set; "
                "move it out of the folder"
            )
    for name in TOP_LEVEL:
        entry = out_dir / name
        if not (entry.is_symlink() or entry.exists()):
            continue
        if entry.is_symlink():
            if os.readlink(entry) == link_target(name):
                continue
            raise OutputError(
                f"{entry} is a symbolic link cnnlib did not make, and cnnlib never writes through "
                "one; remove the link or choose another --out"
            )
        if name == EPOCH_WEIGHTS_DIR and entry.is_dir():
            theirs = [path for path in _files_in(entry, name) if path not in listed]
        else:
            theirs = [] if name in listed or (legacy and name == MANIFEST_NAME) else [name]
        if theirs:
            raise OutputError(
                f"{out_dir / theirs[0]} was not written by cnnlib; move it away or choose "
                "another --out"
            )
    ours = {*TOP_LEVEL, SETS_DIR, MNIST_DIR}
    others = sorted(e.name for e in out_dir.iterdir() if e.name not in ours and e.name[0] != ".")
    if others and not (force or legacy or current):
        raise OutputError(
            f"{out_dir} holds files that cnnlib did not write ({', '.join(others[:3])}"
            f"{', ...' if len(others) > 3 else ''}) and no artifact set; choose an empty or new "
            "folder, or pass --force to write beside them (they are never touched)"
        )


def _files_in(folder: Path, prefix: str = "") -> list[str]:
    """Relative paths of every file or link below `folder`, without following links."""
    return sorted(
        (f"{prefix}/" if prefix else "") + path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_symlink() or not path.is_dir()
    )


def check_writable(out_dir: Path, force: bool = False) -> None:
    """Fail early, with one line: OSError when `out_dir` cannot be written, OutputError when it
    holds files that are not ours (see `refuse_others`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    refuse_others(out_dir, force)
    (out_dir / SETS_DIR).mkdir(exist_ok=True)
    os.close(os.open(out_dir / SETS_DIR / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644))


@contextmanager
def locked(out_dir: Path) -> Iterator[None]:
    """Be the only process writing artifacts into `out_dir` for the block (after check_writable).
    A second one stops at once with BusyError: "another run is writing DIR"."""
    message = f"another run is writing {out_dir}; wait for it to end, or choose another --out"
    with exclusive_lock(Path(out_dir) / SETS_DIR / LOCK_NAME, message):
        yield


def discard(set_dir: Path) -> list[str]:
    """Remove a set folder of ours, only the files we wrote; return what was left (not ours)."""
    return remove_listed(set_dir, _our_names(set_dir))


def stage_artifacts(
    results: Iterable[EpochResult], data: Mnist, config: TrainConfig, out_dir: Path
) -> tuple[Path, dict[str, int]]:
    """Write a whole set into a new hidden set folder of `out_dir`, each epoch as it arrives
    (memory does not grow with the number of epochs); return the folder and {name: bytes}.

    Nothing in `out_dir` changes for a reader until `publish`. On any error the folder is
    removed again. The caller holds the lock (`locked`).
    """
    sets = Path(out_dir) / SETS_DIR
    for stale in sets.glob("set-*"):  # left by a killed run: the lock says none is running
        if stale != current_set(out_dir):
            discard(stale)
    remove_stale_temporaries(sets, {CURRENT}.__contains__)
    remove_stale_temporaries(out_dir, set(TOP_LEVEL).__contains__)
    set_dir = sets / f"set-{time.time_ns():x}-{os.getpid()}"
    (set_dir / EPOCH_WEIGHTS_DIR).mkdir(parents=True)
    files: dict[str, dict[str, object]] = {}

    def write(name: str, content: bytes) -> None:
        atomic_write_bytes(set_dir / name, content)
        files[name] = {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}

    try:
        json_digest, json_size = hashlib.sha256(), 0
        with open(set_dir / JSON_NAME, "wb") as handle:

            def emit(text: str) -> None:
                nonlocal json_size
                content = text.encode()
                handle.write(content)
                json_digest.update(content)
                json_size += len(content)

            image = data.test_images[feature_map_index(data.test_labels)]
            emit('{"samples":' + dumps_float32(samples(data), f"{JSON_NAME}.samples"))
            emit(',"training_epochs":[')
            last = None
            for result in results:
                where = f"{JSON_NAME}.training_epochs[{result.epoch}]"
                emit(("," if last else "") + dumps_float32(epoch_entry(result, image), where))
                write(epoch_weights_name(result.epoch), state_dict_bytes(result.state_dict))
                last = result
            emit("]," + dumps_float32(payload_end(last, data, config))[1:])
            handle.flush()
            os.fsync(handle.fileno())
        write(FINAL_WEIGHTS_NAME, state_dict_bytes(last.state_dict))
        files[JSON_NAME] = {"bytes": json_size, "sha256": json_digest.hexdigest()}
        manifest = {"config": config.as_dict(), "files": dict(sorted(files.items()))}
        write(MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())
    except BaseException:  # an error, Ctrl-C: nothing of this set stays behind
        discard(set_dir)
        raise
    return set_dir, {name: entry["bytes"] for name, entry in files.items()}


def publish(out_dir: Path, set_dir: Path) -> list[str]:
    """Make a staged set the one `out_dir` shows, in one atomic step; remove the previous set
    (only the files it lists). Returns the files left behind because cnnlib did not write them.

    A folder written by an older cnnlib, files straight in DIR, is converted: each of its listed
    files is replaced by its link (that step is not atomic across the files)."""
    out_dir = Path(out_dir)
    previous = current_set(out_dir)
    legacy = legacy_manifest(out_dir)
    point_link(out_dir / SETS_DIR / CURRENT, set_dir.name)
    if legacy is not None:
        old_epochs = out_dir / EPOCH_WEIGHTS_DIR
        if old_epochs.is_dir() and not old_epochs.is_symlink():
            listed = [name for name in legacy["files"] if is_set_path(name) and "/" in name]
            remove_listed(old_epochs, [name.split("/", 1)[1] for name in listed])
    for name in TOP_LEVEL:  # the manifest's link last: no manifest, no set
        point_link(out_dir / name, link_target(name))
    return discard(previous) if previous is not None and previous != set_dir else []


def write_artifacts(
    results: Iterable[EpochResult],
    data: Mnist,
    config: TrainConfig,
    out_dir: Path,
    force: bool = False,
) -> dict[str, int]:
    """Write every artifact into `out_dir`, replacing the set there as one atomic step; return
    {relative path: size in bytes}. `results` may be a generator: each epoch is written away as
    it arrives."""
    check_writable(out_dir, force)
    with locked(out_dir):
        set_dir, files = stage_artifacts(results, data, config, out_dir)
        publish(out_dir, set_dir)
    return files
