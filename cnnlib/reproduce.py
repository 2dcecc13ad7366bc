"""The factory, verification's checks that compute again what the JSON states: its samples and
mistakes from the vendored MNIST and the weights, its feature maps and PyTorch's logits by a NumPy
forward pass (cnnlib.reference), every epoch's metrics, and the final accuracy."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from cnnlib import reference
from cnnlib.data import MEAN, RAW_FILES, STD, feature_map_index, held_out, sample_indices
from cnnlib.export import FINAL_WEIGHTS_NAME, JSON_NAME, epoch_weights_name
from cnnlib.model import ACTIVATION_NAMES, CNN
from cnnlib.reading import VerifyError, fail_if_any
from cnnlib.setreader import SetReader, remembered
from cnnlib.train import evaluate, single_threaded

TOLERANCE = 1e-4  # feature maps and logits agree this closely (see `agreement`)
# A measured accuracy may differ from the JSON's by this many points (10 of 10,000 images: a GPU
# adds in another order than the CPU), a loss by this much, relative above 1.
ACCURACY_TOLERANCE, LOSS_TOLERANCE = 0.1, 1e-3


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
    """VerifyError listing each (what, ours, theirs) whose largest |ours - theirs| is above
    TOLERANCE (times the largest |theirs| when that is above 1: a diverged network's values reach
    1e9, and float32 keeps 7 digits of them); else the largest error, relative above 1."""
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
        model.load_state_dict(artifacts.snapshot(name))
        with single_threaded(), torch.inference_mode():
            theirs = model(images).numpy()
        ours = reference.forward(entry["weights"], pixels)["logits"]
        comparisons.append((f"epoch {entry['epoch']}: PyTorch's logits on {name}", ours, theirs))
    worst = agreement(comparisons)
    return (
        f"NumPy logits match PyTorch's on {len(pixels)} samples x {len(entries)} epochs "
        f"(max error {worst:.1e})"
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
