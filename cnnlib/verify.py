"""Verification: are the artifacts in a folder complete, intact and right? One check per line."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import fastjsonschema
import numpy as np
import torch
import torchvision

from cnnlib import reference
from cnnlib.data import DEFAULT_DATA_DIR, feature_map_index, prepare_raw_files, sample_indices
from cnnlib.export import (
    EPOCH_WEIGHTS_DIR,
    FINAL_WEIGHTS_NAME,
    JSON_NAME,
    MANIFEST_NAME,
    epoch_weights_name,
    load_schema,
    load_state_dict,
)
from cnnlib.model import ACTIVATION_NAMES, CNN

DEFAULT_MIN_ACCURACY = 95.0
TOLERANCE = 1e-4
EXPECTED_SHAPES = {name: tuple(tensor.shape) for name, tensor in CNN().state_dict().items()}


class VerifyError(Exception):
    """One failed check; the message names the file and what is wrong."""


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
        return [
            f"[{'ok' if check.passed else 'FAIL'}] {check.name}: {check.detail}"
            for check in self.checks
        ]


def _strict_json(path: Path) -> dict:
    def refuse(constant: str) -> None:
        raise VerifyError(f"{path.name}: holds {constant}, which strict JSON does not allow")

    try:
        return json.loads(path.read_bytes(), parse_constant=refuse)
    except FileNotFoundError:
        raise VerifyError(f"{path.name}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise VerifyError(f"{path.name}: not valid JSON, truncated or damaged ({error})") from None


class _Verifier:
    """Holds what the checks share (parsed JSON, loaded snapshots) so each is read once."""

    def __init__(self, out_dir: Path, data_root: Path, min_accuracy: float) -> None:
        self.out_dir, self.data_root, self.min_accuracy = (
            Path(out_dir),
            Path(data_root),
            min_accuracy,
        )
        self.manifest: dict | None = None
        self.payload: dict | None = None
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}
        self.test_set: torchvision.datasets.MNIST | None = None

    def manifest_matches(self) -> str:
        self.manifest = _strict_json(self.out_dir / MANIFEST_NAME)
        listed = self.manifest["files"]
        for name, entry in listed.items():
            path = self.out_dir / name
            if not path.exists():
                raise VerifyError(f"{name}: listed in {MANIFEST_NAME} but missing")
            if hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
                raise VerifyError(
                    f"{name}: sha-256 differs from {MANIFEST_NAME} (changed or damaged)"
                )
        present = {
            f"{EPOCH_WEIGHTS_DIR}/{path.name}"
            for path in (self.out_dir / EPOCH_WEIGHTS_DIR).glob("*.pth")
        }
        unexpected = sorted(present - set(listed))
        if unexpected:
            raise VerifyError(
                f"{unexpected[0]}: not listed in {MANIFEST_NAME} (left from another run?)"
            )
        return f"{len(listed)} files match their sha-256"

    def _epochs(self) -> int:
        if self.manifest is not None:
            return self.manifest["config"]["epochs"]
        return self._payload()["metadata"]["config"]["epochs"]

    def _payload(self) -> dict:
        if self.payload is None:
            self.payload = _strict_json(self.out_dir / JSON_NAME)
        return self.payload

    def _load(self, name: str) -> dict[str, torch.Tensor]:
        path = self.out_dir / name
        if not path.exists():
            raise VerifyError(f"{name}: missing")
        try:
            state = load_state_dict(path)
        except Exception as error:  # a damaged zip or pickle surfaces as many error types
            raise VerifyError(f"{name}: cannot be loaded safely ({type(error).__name__})") from None
        shapes = {key: tuple(tensor.shape) for key, tensor in state.items()}
        if shapes != EXPECTED_SHAPES:
            extra = sorted(set(shapes) - set(EXPECTED_SHAPES))
            raise VerifyError(
                f"{name}: keys or shapes differ from the model's"
                + (f" (unexpected key {extra[0]!r})" if extra else "")
            )
        return state

    def weight_files(self) -> str:
        epochs = self._epochs()
        self.snapshots = {
            epoch: self._load(epoch_weights_name(epoch)) for epoch in range(epochs + 1)
        }
        final = self._load(FINAL_WEIGHTS_NAME)
        if any(not torch.equal(final[key], self.snapshots[epochs][key]) for key in final):
            raise VerifyError(f"{FINAL_WEIGHTS_NAME}: differs from {epoch_weights_name(epochs)}")
        return (
            f"{epochs + 1} epoch files and {FINAL_WEIGHTS_NAME} load with weights_only=True, "
            f"{len(EXPECTED_SHAPES)} tensors each; final = epoch {epochs}"
        )

    def json_schema(self) -> str:
        payload = self._payload()
        try:
            fastjsonschema.validate(load_schema(), payload)
        except fastjsonschema.JsonSchemaValueException as error:
            raise VerifyError(f"{JSON_NAME}: {error.message[:200]}") from None
        size = (self.out_dir / JSON_NAME).stat().st_size
        return f"strict JSON, valid against the schema, {size / 1e6:.2f} MB"

    def json_epochs(self) -> str:
        numbers = [entry["epoch"] for entry in self._payload()["training_epochs"]]
        expected = list(range(self._epochs() + 1))
        if numbers != expected:
            raise VerifyError(
                f"{JSON_NAME}: epochs are {numbers[:5]}..., expected 0..{expected[-1]}"
            )
        return f"epochs 0..{expected[-1]} in order, each with weights"

    def json_weights_equal_pth(self) -> str:
        if not self.snapshots:
            raise VerifyError("no .pth snapshots to compare with (see the check above)")
        entries = self._payload()["training_epochs"]
        snapshots = [*self.snapshots.items(), (len(entries) - 1, self._load(FINAL_WEIGHTS_NAME))]
        sources = [*entries, {"weights": self._payload()["final_weights"]}]
        for (epoch, state), entry in zip(snapshots, sources, strict=True):
            for key, tensor in state.items():
                layer, kind = key.split(".")
                stored = np.asarray(entry["weights"][layer][kind], dtype=np.float32)
                if not np.array_equal(stored.view(np.uint32), tensor.numpy().view(np.uint32)):
                    where = "final_weights" if "epoch" not in entry else f"epoch {epoch}"
                    raise VerifyError(f"{JSON_NAME}: {where} {key} differs from its .pth")
        return f"{len(snapshots)} weight sets equal the .pth tensors bit for bit (float32)"

    def _test_set(self) -> torchvision.datasets.MNIST:
        if self.test_set is None:
            prepare_raw_files(self.data_root)
            self.test_set = torchvision.datasets.MNIST(self.data_root, train=False, download=False)
        return self.test_set

    def samples_are_mnist(self) -> str:
        test = self._test_set()
        indices = sample_indices(test.targets)
        samples = self._payload()["samples"]
        for position, (sample, index) in enumerate(zip(samples, indices, strict=True)):
            pixels = np.asarray(sample["image"])
            if (
                sample.get("index") != index
                or sample["label"] != int(test.targets[index])
                or not np.array_equal(pixels, test.data[index].numpy())
            ):
                raise VerifyError(
                    f"{JSON_NAME}: samples[{position}] is not MNIST test image {index}"
                )
        image = self._payload()["feature_map_image"]
        if image["index"] != feature_map_index(test.targets):
            raise VerifyError(f"{JSON_NAME}: feature_map_image.index is not the first test-set 3")
        return f"{len(samples)} samples are the exact MNIST test pixels (10 per digit)"

    def feature_maps_reproduce(self) -> str:
        index = self._payload()["feature_map_image"]["index"]
        pixels = self._test_set().data[index : index + 1].numpy()
        worst = 0.0
        for entry in self._payload()["training_epochs"]:
            ours = reference.forward(entry["weights"], pixels)
            for name in ACTIVATION_NAMES:
                error = float(np.abs(ours[name][0] - np.asarray(entry["feature_maps"][name])).max())
                worst = max(worst, error)
                if error > TOLERANCE:
                    raise VerifyError(
                        f"{JSON_NAME}: epoch {entry['epoch']} feature map {name} is off "
                        f"by {error:.2e} from a NumPy forward pass"
                    )
        return f"NumPy forward pass reproduces every epoch's feature maps (max error {worst:.1e})"

    def predictions_reproduce(self) -> str:
        pixels = np.stack(
            [np.asarray(sample["image"], dtype=np.uint8) for sample in self._payload()["samples"]]
        )
        images = torch.from_numpy(reference.preprocess(pixels)).float()
        model = CNN().eval()
        worst = 0.0
        for entry, (epoch, state) in zip(
            self._payload()["training_epochs"], self.snapshots.items(), strict=True
        ):
            model.load_state_dict(state)
            with torch.inference_mode():
                theirs = model(images).numpy()
            ours = reference.forward(entry["weights"], pixels)["logits"]
            error = float(np.abs(ours - theirs).max())
            worst = max(worst, error)
            if error > TOLERANCE or not np.array_equal(ours.argmax(1), theirs.argmax(1)):
                raise VerifyError(
                    f"{JSON_NAME}: epoch {epoch} logits differ from PyTorch's by {error:.2e}"
                )
        return (
            f"NumPy logits match PyTorch's on {len(pixels)} samples x {len(self.snapshots)} "
            f"epochs (max error {worst:.1e})"
        )

    def accuracy(self) -> str:
        final = self._payload()["training_epochs"][-1]["test_accuracy"]
        if final < self.min_accuracy:
            raise VerifyError(
                f"{JSON_NAME}: final test accuracy {final:.2f}% is below {self.min_accuracy:g}%"
            )
        return f"final test accuracy {final:.2f}% >= {self.min_accuracy:g}%"


def verify(
    out_dir: Path = DEFAULT_DATA_DIR,
    min_accuracy: float = DEFAULT_MIN_ACCURACY,
    data_root: Path = DEFAULT_DATA_DIR,
) -> Report:
    """Run every check on the artifacts in `out_dir`; a failed check does not stop the others."""
    verifier = _Verifier(out_dir, data_root, min_accuracy)
    checks: list[tuple[str, Callable[[], str]]] = [
        ("manifest", verifier.manifest_matches),
        ("weight files", verifier.weight_files),
        ("JSON schema", verifier.json_schema),
        ("JSON epochs", verifier.json_epochs),
        ("JSON weights = .pth", verifier.json_weights_equal_pth),
        ("samples", verifier.samples_are_mnist),
        ("feature maps", verifier.feature_maps_reproduce),
        ("predictions", verifier.predictions_reproduce),
        ("accuracy", verifier.accuracy),
    ]
    report = Report(Path(out_dir))
    for name, check in checks:
        try:
            report.checks.append(Check(name, True, check()))
        except VerifyError as error:
            report.checks.append(Check(name, False, str(error)))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
            report.checks.append(
                Check(name, False, f"cannot check ({type(error).__name__}: {error})")
            )
    return report
