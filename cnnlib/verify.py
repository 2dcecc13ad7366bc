"""The factory, verification: are the artifacts in a folder complete, intact and right? Ten
checks, one line each: the manifest lists exactly the set's files; the weight files are intact
snapshots of the model; the JSON is strict, fits the schema and has the model's architecture; its
epochs are 0..N; its weights equal the .pth tensors bit for bit; its samples and mistakes are the
vendored MNIST test images and the weights' own answers; a NumPy forward pass (cnnlib.reference)
reproduces its feature maps and PyTorch's logits; every epoch's test and validation metrics,
measured again, are the JSON's; the measured final accuracy reaches the threshold. A failed check
names the file at fault and never stops the others; verify certifies only what it computes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cnnlib import reference
from cnnlib.data import (
    DEFAULT_DATA_DIR,
    MEAN,
    RAW_FILES,
    STD,
    DataError,
    feature_map_index,
    held_out,
    sample_indices,
)
from cnnlib.export import (
    FINAL_WEIGHTS_NAME,
    JSON_NAME,
    MANIFEST_NAME,
    architecture,
    epoch_weights_name,
    model_architecture,
)
from cnnlib.model import ACTIVATION_NAMES, CNN
from cnnlib.reading import EXPECTED_SHAPES, SetReader, VerifyError, remembered
from cnnlib.train import evaluate, single_threaded

DEFAULT_MIN_ACCURACY = 95.0
# Feature maps and logits agree within 1e-4, relative to the largest value compared when that is
# above 1 (a diverged network's activations reach 1e9; float32 keeps 7 digits of them).
TOLERANCE = 1e-4
MAX_PROBLEMS_SHOWN = 4  # a failed check lists this many problems, then a count of the rest
# A measured accuracy may differ from the JSON's by this many points (10 of 10,000 images: a GPU
# adds in another order than the CPU), a loss by this much, relative above 1.
ACCURACY_TOLERANCE, LOSS_TOLERANCE = 0.1, 1e-3


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


def fail_if_any(problems: list[str]) -> None:
    """One VerifyError listing the problems: the first few, then how many more."""
    if problems:
        more = len(problems) - MAX_PROBLEMS_SHOWN
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
        raise VerifyError(shown + (f"; {more} more" if more > 0 else ""))


def difference(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    """The largest |ours - theirs|, and the largest allowed (TOLERANCE, relative above 1)."""
    return float(np.abs(ours - theirs).max()), TOLERANCE * max(1.0, float(np.abs(theirs).max()))


# ---------------------------------------------------------------------------------------------
# The checks, in the order they print. Each returns the figure for its line, or raises
# VerifyError naming the file.


def manifest_matches(artifacts: SetReader, data_root: Path) -> str:
    manifest = artifacts.manifest()
    listed, expected = manifest["files"], artifacts.names()[1:]
    problems = [f"{name}: not listed in {MANIFEST_NAME}" for name in expected if name not in listed]
    for name, entry in listed.items():
        if name not in expected:  # never read: a forged manifest may list thousands
            problems.append(f"{name[:80]}: listed in {MANIFEST_NAME}, but no set holds it")
            continue
        try:
            content = artifacts.read(name)
        except VerifyError as error:
            missing = str(error) == f"{name}: missing"
            problems.append(
                f"{name}: listed in {MANIFEST_NAME} but missing" if missing else str(error)
            )
            continue
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
    read_from = ""
    if artifacts.interrupted is not None:
        read_from = (
            f" (read from {artifacts.interrupted.relative_to(artifacts.out_dir)}: a run was "
            "killed while publishing this set; the next run into the folder finishes it)"
        )
    return f"{len(listed)} files match their size and sha-256; config as in {JSON_NAME}{read_from}"


def weight_files(artifacts: SetReader, data_root: Path) -> str:
    last = epoch_weights_name(artifacts.last_epoch())
    names = [epoch_weights_name(epoch) for epoch in range(artifacts.last_epoch() + 1)]
    problems = []
    for name in [*names, FINAL_WEIGHTS_NAME]:
        try:
            artifacts.checked_snapshot(name)
        except VerifyError as error:
            problems.append(str(error))
    fail_if_any(problems)
    final = artifacts.snapshot(FINAL_WEIGHTS_NAME)
    if any(not torch.equal(tensor, artifacts.snapshot(last)[key]) for key, tensor in final.items()):
        raise VerifyError(f"{FINAL_WEIGHTS_NAME}: differs from {last}")
    return (
        f"{len(names)} epoch files and {FINAL_WEIGHTS_NAME} intact, load with weights_only=True, "
        f"{len(EXPECTED_SHAPES)} float32 tensors each; final = epoch {artifacts.last_epoch()}"
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
    payload = artifacts.payload()
    pairs = [
        (epoch_weights_name(entry["epoch"]), f"epoch {entry['epoch']}", entry["weights"])
        for entry in payload["training_epochs"]
    ]
    pairs.append((FINAL_WEIGHTS_NAME, "final_weights", payload["final_weights"]))
    problems = []
    for name, where, weights in pairs:
        try:
            state = artifacts.snapshot(name)
        except VerifyError as error:
            problems.append(str(error))
            continue
        for key, tensor in state.items():
            layer, kind = key.split(".")
            stored = np.asarray(weights[layer][kind], dtype=np.float32)
            if not np.array_equal(stored.view(np.uint32), tensor.numpy().view(np.uint32)):
                problems.append(f"{name} and {JSON_NAME} ({where}) differ in {key}")
    fail_if_any(problems)
    return f"{len(pairs)} weight sets equal the .pth tensors bit for bit (float32)"


def are_test_images(images: list[dict], pixels: torch.Tensor, labels: torch.Tensor) -> bool:
    """Are these JSON images the test set's, pixel for pixel, with their labels?"""
    return all(
        image["label"] == int(labels[image["index"]])
        and np.array_equal(np.asarray(image["image"]), pixels[image["index"]].numpy())
        for image in images
    )


def samples_are_mnist(artifacts: SetReader, data_root: Path) -> str:
    pixels, labels = held_out(data_root)["test"]
    payload = artifacts.payload()
    samples, metadata = payload["samples"], payload["metadata"]
    wrong = [
        f"samples[{position}]"
        for position, (sample, index) in enumerate(
            zip(samples, sample_indices(labels), strict=True)
        )
        if sample["index"] != index or not are_test_images([sample], pixels, labels)
    ]
    if wrong:
        raise VerifyError(f"{JSON_NAME}: {', '.join(wrong[:5])} not the MNIST test images")
    if metadata["dataset"] != {"name": "MNIST", "md5": RAW_FILES}:
        raise VerifyError(f"{JSON_NAME}: metadata.dataset is not the vendored MNIST's {RAW_FILES}")
    if metadata["normalization"] != {"mean": MEAN, "std": STD}:
        raise VerifyError(f"{JSON_NAME}: metadata.normalization is not mean {MEAN}, std {STD}")
    if payload["feature_map_image"]["index"] != feature_map_index(labels):
        raise VerifyError(f"{JSON_NAME}: feature_map_image.index is not the first test-set 3")
    fail_if_any(mistake_problems(payload, pixels, labels))
    return f"{len(samples)} samples are the exact MNIST test pixels (10 per digit)"


def mistake_problems(payload: dict, pixels: torch.Tensor, labels: torch.Tensor) -> list[str]:
    """Each epoch's mistakes: distinct test images its weights answer wrongly with the stated
    probability, highest first; mistake_samples: the exact images they name, by index."""
    problems, named = [], set()
    for entry in payload["training_epochs"]:
        listed = entry["mistakes"]
        indices = [mistake["index"] for mistake in listed]
        named.update(indices)
        stated = [mistake["probability"] for mistake in listed]
        if stated != sorted(stated, reverse=True) or len(set(indices)) != len(indices):
            problems.append(f"{JSON_NAME}: epoch {entry['epoch']} mistakes not distinct, sorted")
        logits = reference.forward(entry["weights"], pixels[indices].numpy())["logits"]
        for mistake, ours in zip(listed, reference.softmax(logits), strict=True):
            probability = ours[mistake["prediction"]]
            if not (
                mistake["label"] == int(labels[mistake["index"]]) != mistake["prediction"]
                and abs(probability - mistake["probability"]) <= TOLERANCE
                and ours.max() - probability <= TOLERANCE
            ):
                problems.append(
                    f"{JSON_NAME}: epoch {entry['epoch']} test image {mistake['index']} is not "
                    "a mistake of that epoch's weights as stated"
                )
    images = payload["mistake_samples"]
    if [image["index"] for image in images] != sorted(named):
        problems.append(f"{JSON_NAME}: mistake_samples are not the images the mistakes name")
    elif not are_test_images(images, pixels, labels):
        problems.append(f"{JSON_NAME}: mistake_samples are not the MNIST test images")
    return problems


def feature_maps_reproduce(artifacts: SetReader, data_root: Path) -> str:
    index = artifacts.payload()["feature_map_image"]["index"]
    pixels = held_out(data_root)["test"][0][index : index + 1].numpy()
    problems, worst = [], 0.0
    for entry in artifacts.payload()["training_epochs"]:
        ours = reference.forward(entry["weights"], pixels)
        for name in ACTIVATION_NAMES:
            stored = np.asarray(entry["feature_maps"][name])
            if stored.shape != ours[name][0].shape:
                problems.append(
                    f"{JSON_NAME}: epoch {entry['epoch']} {name} has shape {stored.shape}"
                )
                continue
            error, allowed = difference(ours[name][0], stored)
            worst = max(worst, error * TOLERANCE / allowed)
            if error > allowed:
                problems.append(
                    f"{JSON_NAME}: epoch {entry['epoch']} feature map {name} is off by "
                    f"{error:.2e} from a NumPy forward pass (allowed {allowed:.1e})"
                )
    fail_if_any(problems)
    return (
        "NumPy forward pass reproduces every epoch's feature maps "
        f"(max error {worst:.1e}, relative above 1)"
    )


def predictions_reproduce(artifacts: SetReader, data_root: Path) -> str:
    entries, samples = artifacts.payload()["training_epochs"], artifacts.payload()["samples"]
    pixels = np.stack([np.asarray(sample["image"], dtype=np.uint8) for sample in samples])
    images = torch.from_numpy(reference.preprocess(pixels)).float()
    model = CNN().eval()
    problems, worst = [], 0.0
    for entry in entries:
        name = epoch_weights_name(entry["epoch"])
        try:
            model.load_state_dict(artifacts.snapshot(name))
        except VerifyError as error:
            problems.append(str(error))
            continue
        with single_threaded(), torch.inference_mode():
            theirs = model(images).numpy()
        ours = reference.forward(entry["weights"], pixels)["logits"]
        error, allowed = difference(ours, theirs)
        worst = max(worst, error * TOLERANCE / allowed)
        # a class differs only if PyTorch's pick is clearly below NumPy's best, not a tie
        picked = np.take_along_axis(ours, theirs.argmax(1)[:, None], axis=1)[:, 0]
        if error > allowed or (ours.max(1) - picked > allowed).any():
            problems.append(
                f"{JSON_NAME}: epoch {entry['epoch']} logits differ from PyTorch's on {name} "
                f"by {error:.2e}"
            )
    fail_if_any(problems)
    return (
        f"NumPy logits and classes match PyTorch's on {len(pixels)} samples x "
        f"{len(entries)} epochs (max error {worst:.1e}, relative above 1)"
    )


@remembered
def measured(artifacts: SetReader, data_root: Path, epoch: int) -> dict[str, tuple[float, float]]:
    """{'test': (loss, accuracy %), 'validation': ...} of epoch `epoch`'s snapshot (the final
    file for the last epoch), measured now on the vendored archives' images."""
    last = epoch == artifacts.last_epoch()
    model = CNN()
    model.load_state_dict(
        artifacts.snapshot(FINAL_WEIGHTS_NAME if last else epoch_weights_name(epoch))
    )
    with single_threaded():
        return {kind: evaluate(model, *images) for kind, images in held_out(data_root).items()}


def test_metrics(artifacts: SetReader, data_root: Path) -> str:
    entries = artifacts.payload()["training_epochs"]
    problems = []
    for entry in entries:
        for kind, (loss, accuracy) in measured(artifacts, data_root, entry["epoch"]).items():
            stated_accuracy, stated_loss = entry[f"{kind}_accuracy"], entry[f"{kind}_loss"]
            if abs(accuracy - stated_accuracy) > ACCURACY_TOLERANCE:
                problems.append(
                    f"{JSON_NAME}: epoch {entry['epoch']} states {kind} accuracy "
                    f"{stated_accuracy:.2f}%, its weights score {accuracy:.2f}%"
                )
            if abs(loss - stated_loss) > LOSS_TOLERANCE * max(1.0, abs(loss)):
                problems.append(
                    f"{JSON_NAME}: epoch {entry['epoch']} states {kind} loss {stated_loss:.4g}, "
                    f"its weights give {loss:.4g}"
                )
    fail_if_any(problems)
    return (
        f"epochs 0..{len(entries) - 1}: test and validation accuracy and loss measured on the "
        f"vendored images match the JSON's (within {ACCURACY_TOLERANCE:g} points, "
        f"{LOSS_TOLERANCE:g})"
    )


def accuracy(artifacts: SetReader, data_root: Path, min_accuracy: float) -> str:
    if not (isinstance(min_accuracy, (int, float)) and 0 <= min_accuracy <= 100):
        raise VerifyError(
            f"--min-accuracy must be a percentage from 0 to 100, got {min_accuracy!r}"
        )
    final = measured(artifacts, data_root, artifacts.last_epoch())["test"][1]
    if final < min_accuracy:
        raise VerifyError(
            f"{FINAL_WEIGHTS_NAME}: final test accuracy {final:.2f}% (measured) is below "
            f"{min_accuracy:g}%"
        )
    return f"final test accuracy {final:.2f}% (measured) >= {min_accuracy:g}%"


CHECKS: dict[str, Callable[..., str]] = {
    "manifest": manifest_matches,
    "weight files": weight_files,
    "JSON schema": json_schema,
    "JSON epochs": json_epochs,
    "JSON weights = .pth": json_weights_equal_pth,
    "samples": samples_are_mnist,
    "feature maps": feature_maps_reproduce,
    "predictions": predictions_reproduce,
    "test metrics": test_metrics,
    "accuracy": accuracy,
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
        options = {"min_accuracy": min_accuracy} if check is accuracy else {}
        try:
            report.checks.append(Check(name, True, check(artifacts, Path(data_root), **options)))
        except (VerifyError, DataError) as error:
            report.checks.append(Check(name, False, str(error)))
        except Exception as error:  # an unforeseen fault still fails its line, never the run
            report.checks.append(
                Check(name, False, f"cannot check ({type(error).__name__}: {error})")
            )
    return report
