"""The factory, verification: ten checks, one line each, that the artifacts in a folder are
complete and intact, and that what the JSON states is what the model, the vendored MNIST and the
weights give when computed again. A failed check names the file at fault and never stops the
others; verify certifies only what it computes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
from cnnlib.reading import EXPECTED_SHAPES, VerifyError, fail_if_any
from cnnlib.setreader import SetReader
from cnnlib.train import evaluate, single_threaded

DEFAULT_MIN_ACCURACY = 95.0
TOLERANCE = 1e-4  # feature maps and logits agree this closely (see `agreement`)
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


# The checks, in the order they print: each returns the figure for its line, or raises
# VerifyError naming the file.


def manifest_matches(artifacts: SetReader, data_root: Path) -> str:
    problems = artifacts.mismatches()
    with suppress(VerifyError):  # a broken JSON is the JSON checks' to report
        if artifacts.payload()["metadata"]["config"] != artifacts.manifest()["config"]:
            problems.append(f"{MANIFEST_NAME}: config differs from {JSON_NAME}'s metadata")
    fail_if_any(problems)
    files = len(artifacts.manifest()["files"])
    line = f"{files} files match their size and sha-256; config as in {JSON_NAME}"
    if artifacts.interrupted is None:
        return line
    return line + (
        f" (read from {artifacts.interrupted.relative_to(artifacts.out_dir)}: a run was "
        "killed while publishing this set; the next run into the folder finishes it)"
    )


def weight_files(artifacts: SetReader, data_root: Path) -> str:
    names = [epoch_weights_name(epoch) for epoch in range(artifacts.last_epoch() + 1)]
    problems = []
    for name in [*names, FINAL_WEIGHTS_NAME]:
        try:
            artifacts.checked(name)
        except VerifyError as error:
            problems.append(str(error))
    fail_if_any(problems)
    final, last = artifacts.loaded(FINAL_WEIGHTS_NAME), artifacts.loaded(names[-1])
    if any(not torch.equal(tensor, last[key]) for key, tensor in final.items()):
        raise VerifyError(f"{FINAL_WEIGHTS_NAME}: differs from {names[-1]}")
    return (
        f"{len(names)} epoch files and {FINAL_WEIGHTS_NAME} intact, load with "
        f"weights_only=True, {len(EXPECTED_SHAPES)} float32 tensors each; "
        f"final = epoch {artifacts.last_epoch()}"
    )


def json_schema(artifacts: SetReader, data_root: Path) -> str:
    payload = artifacts.checked(JSON_NAME)
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
        for key, tensor in artifacts.loaded(name).items():
            layer, kind = key.split(".")
            with np.errstate(over="ignore"):  # a value too large for float32 differs anyway
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


def agreement(comparisons: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> float:
    """The largest |ours - theirs| of the (what, ours, theirs), relative above 1 (a diverged
    network's values reach 1e9; float32 keeps 7 digits); VerifyError above TOLERANCE."""
    problems, worst = [], 0.0
    for what, ours, theirs in comparisons:
        if np.shape(ours) != np.shape(theirs):
            problems.append(f"{JSON_NAME}: {what} has shape {np.shape(theirs)}")
            continue
        error = float(np.abs(ours - theirs).max())
        allowed = TOLERANCE * max(1.0, float(np.abs(theirs).max()))
        worst = max(worst, error * TOLERANCE / allowed)
        if error > allowed:
            problems.append(f"{JSON_NAME}: {what} is off by {error:.2e} (allowed {allowed:.1e})")
    fail_if_any(problems)
    return worst


def feature_maps_reproduce(artifacts: SetReader, data_root: Path) -> str:
    index = artifacts.payload()["feature_map_image"]["index"]
    pixels = held_out(data_root)["test"][0][index : index + 1].numpy()
    comparisons = []
    for entry in artifacts.payload()["training_epochs"]:
        ours = reference.forward(entry["weights"], pixels)
        for name in ACTIVATION_NAMES:
            what = f"epoch {entry['epoch']} feature map {name}"
            comparisons.append((what, ours[name][0], entry["feature_maps"][name]))
    worst = agreement(comparisons)
    return f"NumPy forward pass reproduces every epoch's feature maps (max error {worst:.1e})"


def predictions_reproduce(artifacts: SetReader, data_root: Path) -> str:
    entries, samples = artifacts.payload()["training_epochs"], artifacts.payload()["samples"]
    pixels = np.stack([np.asarray(sample["image"], dtype=np.uint8) for sample in samples])
    images = torch.from_numpy(reference.preprocess(pixels)).float()
    model, comparisons = CNN().eval(), []
    for entry in entries:
        name = epoch_weights_name(entry["epoch"])
        model.load_state_dict(artifacts.loaded(name))
        with single_threaded(), torch.inference_mode():
            theirs = model(images).numpy()
        ours = reference.forward(entry["weights"], pixels)["logits"]
        comparisons.append((f"epoch {entry['epoch']}: PyTorch's logits on {name}", ours, theirs))
    worst = agreement(comparisons)
    return (
        f"NumPy logits match PyTorch's on {len(pixels)} samples x {len(entries)} epochs "
        f"(max error {worst:.1e})"
    )


def measured(artifacts: SetReader, data_root: Path, epoch: int) -> dict[str, tuple[float, float]]:
    """{'test': (loss, accuracy %), 'validation': ...} of epoch `epoch`'s snapshot (the final
    file for the last epoch), measured now on the vendored archives' images; once per epoch."""

    def measure() -> dict[str, tuple[float, float]]:
        last = epoch == artifacts.last_epoch()
        model = CNN()
        model.load_state_dict(
            artifacts.loaded(FINAL_WEIGHTS_NAME if last else epoch_weights_name(epoch))
        )
        with single_threaded():
            return {kind: evaluate(model, *images) for kind, images in held_out(data_root).items()}

    return artifacts.once(("measured", epoch), measure)


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
