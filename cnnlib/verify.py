"""The factory, verification: are the artifacts in a folder complete, intact and right? Ten
checks, one line each: the manifest lists exactly the set's files; the weight files are intact
snapshots of the model; the JSON is strict, fits the schema and has the model's architecture; its
epochs are 0..N; its weights equal the .pth tensors bit for bit; its samples and mistakes are the
vendored MNIST test images and the weights' own answers; a NumPy forward pass (cnnlib.reference)
reproduces its feature maps and PyTorch's logits; every epoch's test and validation metrics,
measured again, are the JSON's; the measured final accuracy reaches the threshold (the last five
are in `cnnlib.reproduce`). A failed check names the file at fault and never stops the others;
verify certifies only what it computes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cnnlib import reproduce
from cnnlib.data import DEFAULT_DATA_DIR, DataError
from cnnlib.export import (
    FINAL_WEIGHTS_NAME,
    JSON_NAME,
    MANIFEST_NAME,
    architecture,
    epoch_weights_name,
    model_architecture,
)
from cnnlib.model import CNN
from cnnlib.reading import EXPECTED_SHAPES, VerifyError, fail_if_any
from cnnlib.setreader import SetReader

DEFAULT_MIN_ACCURACY = 95.0


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class Report:
    directory: Path
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def lines(self) -> list[str]:
        return [f"[{'ok' if c.passed else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks]


def problem(read: Callable[[str], object], name: str) -> str | None:
    """The message of the VerifyError that read(name) raises, if any."""
    try:
        read(name)
    except VerifyError as error:
        return str(error)
    return None


# The checks, in the order they print: each returns the figure for its line, or raises
# VerifyError naming the file.


def manifest_matches(artifacts: SetReader, data_root: Path) -> str:
    manifest = artifacts.manifest()
    listed, expected = manifest["files"], artifacts.names()[1:]
    problems = [f"{name}: not listed in {MANIFEST_NAME}" for name in expected if name not in listed]
    for name, entry in listed.items():
        if name not in expected:  # never read: a forged manifest may list thousands
            problems.append(f"{name[:80]}: listed in {MANIFEST_NAME}, but no set holds it")
            continue
        if unread := problem(artifacts.read, name):
            missing = unread == f"{name}: missing"
            problems.append(f"{name}: listed in {MANIFEST_NAME} but missing" if missing else unread)
            continue
        content = artifacts.read(name)
        if len(content) != entry["bytes"]:
            truncated = " (truncated?)" if len(content) < entry["bytes"] else ""
            problems.append(
                f"{name}: {len(content)} bytes, {MANIFEST_NAME} says {entry['bytes']}{truncated}"
            )
        elif hashlib.sha256(content).hexdigest() != entry["sha256"]:
            problems.append(f"{name}: sha-256 differs from {MANIFEST_NAME} (changed or damaged)")
    problems += [
        f"{name}: not listed in {MANIFEST_NAME} (left from another run?)"
        for name in artifacts.present
        if name not in listed
    ]
    with suppress(VerifyError):  # a broken JSON is the JSON checks' to report
        if artifacts.payload()["metadata"]["config"] != manifest["config"]:
            problems.append(f"{MANIFEST_NAME}: config differs from {JSON_NAME}'s metadata")
    fail_if_any(problems)
    line = f"{len(listed)} files match their size and sha-256; config as in {JSON_NAME}"
    if artifacts.interrupted is None:
        return line
    return line + (
        f" (read from {artifacts.interrupted.relative_to(artifacts.out_dir)}: a run was "
        "killed while publishing this set; the next run into the folder finishes it)"
    )


def weight_files(artifacts: SetReader, data_root: Path) -> str:
    last = epoch_weights_name(artifacts.last_epoch())
    names = [epoch_weights_name(epoch) for epoch in range(artifacts.last_epoch() + 1)]
    fail_if_any(
        [problem(artifacts.checked_snapshot, name) for name in [*names, FINAL_WEIGHTS_NAME]]
    )
    final = artifacts.snapshot(FINAL_WEIGHTS_NAME)
    if any(not torch.equal(tensor, artifacts.snapshot(last)[key]) for key, tensor in final.items()):
        raise VerifyError(f"{FINAL_WEIGHTS_NAME}: differs from {last}")
    return (
        f"{len(names)} epoch files and {FINAL_WEIGHTS_NAME} intact, load with "
        f"weights_only=True, {len(EXPECTED_SHAPES)} float32 tensors each; "
        f"final = epoch {artifacts.last_epoch()}"
    )


def json_schema(artifacts: SetReader, data_root: Path) -> str:
    payload = artifacts.checked_payload()
    for key, derive in (("architecture", architecture), ("model_architecture", model_architecture)):
        if payload[key] != derive(CNN()):
            raise VerifyError(f"{JSON_NAME}: {key} is not the model's ({derive(CNN())})")
    size = len(artifacts.read(JSON_NAME))
    return f"strict JSON, valid against the schema, the model's shapes, {size / 1e6:.2f} MB"


def json_epochs(artifacts: SetReader, data_root: Path) -> str:
    numbers = [entry["epoch"] for entry in artifacts.payload()["training_epochs"]]
    expected = list(range(artifacts.last_epoch() + 1))
    if numbers != expected:
        shown = ", ".join(map(str, numbers[:6])) + (", ..." if len(numbers) > 6 else "")
        raise VerifyError(f"{JSON_NAME}: epochs are {shown}; expected 0..{expected[-1]}")
    return f"epochs 0..{expected[-1]} in order, each with weights"


def json_weights_equal_pth(artifacts: SetReader, data_root: Path) -> str:
    payload, problems = artifacts.payload(), []
    pairs = [
        (epoch_weights_name(entry["epoch"]), f"epoch {entry['epoch']}", entry["weights"])
        for entry in payload["training_epochs"]
    ]
    pairs.append((FINAL_WEIGHTS_NAME, "final_weights", payload["final_weights"]))
    for name, where, weights in pairs:
        for key, tensor in artifacts.snapshot(name).items():
            layer, kind = key.split(".")
            with np.errstate(over="ignore"):  # a value too large for float32 differs anyway
                stored = np.asarray(weights[layer][kind], dtype=np.float32)
            if not np.array_equal(stored.view(np.uint32), tensor.numpy().view(np.uint32)):
                problems.append(f"{name} and {JSON_NAME} ({where}) differ in {key}")
    fail_if_any(problems)
    return f"{len(pairs)} weight sets equal the .pth tensors bit for bit (float32)"


CHECKS: dict[str, Callable[..., str]] = {
    "manifest": manifest_matches,
    "weight files": weight_files,
    "JSON schema": json_schema,
    "JSON epochs": json_epochs,
    "JSON weights = .pth": json_weights_equal_pth,
    "samples": reproduce.samples_are_mnist,
    "feature maps": reproduce.feature_maps_reproduce,
    "predictions": reproduce.predictions_reproduce,
    "test metrics": reproduce.test_metrics,
    "accuracy": reproduce.accuracy,
}


def verify(
    out_dir: Path = DEFAULT_DATA_DIR,
    min_accuracy: float = DEFAULT_MIN_ACCURACY,
    data_root: Path = DEFAULT_DATA_DIR,
) -> Report:
    """Run every check on the artifacts in `out_dir`; a failed check does not stop the others."""
    report = Report(Path(out_dir))
    if not Path(out_dir).is_dir():
        state = "is not a folder" if Path(out_dir).exists() else "does not exist"
        report.checks = [Check(name, False, f"{out_dir} {state}") for name in CHECKS]
        return report
    artifacts = SetReader(out_dir)
    for name, check in CHECKS.items():
        options = {"min_accuracy": min_accuracy} if name == "accuracy" else {}
        try:
            report.checks.append(Check(name, True, check(artifacts, Path(data_root), **options)))
        except (VerifyError, DataError) as error:
            report.checks.append(Check(name, False, str(error)))
        except Exception as error:  # an unforeseen fault still fails its line, never the run
            report.checks.append(
                Check(name, False, f"cannot check ({type(error).__name__}: {error})")
            )
    return report
