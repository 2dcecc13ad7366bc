"""Verification: are the artifacts in a folder complete, intact and right? One line per check.

`python -m cnnlib verify [DIR]`, and the end of every `regenerate`, run these checks in order:

    manifest             every artifact has the size and sha-256 that manifest.json records
    weight files         epochs 0..N and the final file: intact, load with weights_only=True,
                         exactly the model's keys, shapes and dtype; final = epoch N
    JSON schema          pretrained_cnn_data.json parses strictly and fits cnnlib/schema.json
    JSON epochs          epochs 0..N, in order
    JSON weights = .pth  every JSON weight equals its .pth tensor bit for bit, as float32
    samples              the 100 samples are the exact MNIST test pixels, as the vendored
                         archives data/MNIST/raw/*.gz hold them (never a run's cache)
    feature maps         a plain-NumPy forward pass (cnnlib.reference) reproduces them
    predictions          ... and PyTorch's logits on the 100 samples, within 1e-4 (relative
                         to the largest value when that is above 1)
    accuracy             the final test accuracy reaches the threshold

A failed check names the file at fault and never stops the others: every check prints its line,
and the command exits 0 only when all of them pass. verify reads only regular files inside DIR,
each of a bounded size, and at most MAX_EPOCHS + 1 epochs.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import stat
import zipfile
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import fastjsonschema
import numpy as np
import torch

from cnnlib import reference
from cnnlib.data import (
    DEFAULT_DATA_DIR,
    DataError,
    feature_map_index,
    read_split,
    sample_indices,
    vendored_file,
)
from cnnlib.export import (
    EPOCH_WEIGHTS_DIR,
    FINAL_WEIGHTS_NAME,
    JSON_NAME,
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    current_set,
    epoch_weights_name,
    is_set_path,
    link_target,
    load_schema,
    load_state_dict,
)
from cnnlib.model import ACTIVATION_NAMES, CNN
from cnnlib.train import MAX_EPOCHS, TrainConfig, single_threaded

DEFAULT_MIN_ACCURACY = 95.0
# Feature maps and logits agree within 1e-4, relative to the largest value compared when that
# is above 1 (a diverged network's activations can reach 1e9; float32 keeps 7 digits of them).
TOLERANCE = 1e-4
# verify reads no file larger than these; a .pth snapshot is about 0.11 MB, the JSON about
# 0.43 MB per epoch.
MAX_PTH_BYTES = 1_000_000
MAX_JSON_BYTES = 2_000_000 + 600_000 * (MAX_EPOCHS + 1)
UTF8_BOM = b"\xef\xbb\xbf"
CHECK_NAMES = [
    "manifest",
    "weight files",
    "JSON schema",
    "JSON epochs",
    "JSON weights = .pth",
    "samples",
    "feature maps",
    "predictions",
    "accuracy",
]
EXPECTED_SHAPES = {name: tuple(tensor.shape) for name, tensor in CNN().state_dict().items()}
MAX_PROBLEMS_SHOWN = 4  # a failed check lists this many problems, then a count of the rest


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


def fail_if_any(problems: list[str]) -> None:
    """Raise one VerifyError listing the problems: the first few, then how many more."""
    if problems:
        more = len(problems) - MAX_PROBLEMS_SHOWN
        raise VerifyError(
            "; ".join(problems[:MAX_PROBLEMS_SHOWN]) + (f"; {more} more" if more > 0 else "")
        )


# ---------------------------------------------------------------------------------------------
# Reading files: every failure becomes a VerifyError that names the file.


def strict_json(content: bytes, name: str) -> dict:
    """Parse a JSON object as strictly as the standard and as JavaScript's JSON.parse: UTF-8
    without a byte order mark, no NaN or Infinity, no number too large for a double, no repeated
    keys."""

    def refuse_constant(constant: str) -> None:
        raise VerifyError(f"{name}: holds {constant}, which strict JSON does not allow")

    def finite_float(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise VerifyError(f"{name}: holds the number {text[:30]}, too large for a double")
        return value

    def refuse_repeated_keys(pairs: list[tuple[str, object]]) -> dict:
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            repeated = sorted({key for key in keys if keys.count(key) > 1})
            raise VerifyError(f"{name}: repeats the key {repeated[0]!r} in one object")
        return dict(pairs)

    if content.startswith(UTF8_BOM):
        raise VerifyError(f"{name}: starts with a UTF-8 byte order mark, which JSON does not allow")
    try:
        value = json.loads(
            content.decode("utf-8"),
            parse_constant=refuse_constant,
            parse_float=finite_float,
            object_pairs_hook=refuse_repeated_keys,
        )
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise VerifyError(f"{name}: not valid JSON, truncated or damaged ({error})") from None
    if not isinstance(value, dict):
        raise VerifyError(f"{name}: holds a JSON {type(value).__name__}, not an object")
    return value


@cache
def schema_validator() -> Callable[[object], object]:
    """The package's JSON Schema, compiled once per process."""
    return fastjsonschema.compile(load_schema())


def schema_message(error: fastjsonschema.JsonSchemaValueException) -> str:
    """fastjsonschema calls the document "data" ("data.samples[3] must be ..."); drop that."""
    message = error.message[:300]
    if message.startswith("data."):
        return message.removeprefix("data.")
    return "top level " + message.removeprefix("data ")


def read_state_dict(content: bytes, name: str) -> dict[str, torch.Tensor]:
    """Load one `.pth` snapshot safely and check it against the model's keys, shapes and dtype."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            damaged_member = archive.testzip()  # checks the CRC-32 of every member
    except Exception as error:  # a damaged zip surfaces as many error types
        raise VerifyError(f"{name}: not an intact .pth archive ({type(error).__name__})") from None
    if damaged_member is not None:
        raise VerifyError(
            f"{name}: damaged (zip member {damaged_member!r} does not read back intact)"
        )
    try:
        state = load_state_dict(io.BytesIO(content))  # weights_only=True: never runs pickled code
    except Exception as error:  # an unsafe or damaged pickle surfaces as many error types
        if type(error).__name__ == "UnpicklingError":
            raise VerifyError(
                f"{name}: refused: this file contains code, not just tensors "
                "(torch.load with weights_only=True)"
            ) from None
        reason = (str(error).strip().splitlines() or [""])[0][:120]
        raise VerifyError(
            f"{name}: torch.load(weights_only=True) fails ({type(error).__name__}: {reason})"
        ) from None
    if not isinstance(state, dict):
        raise VerifyError(f"{name}: holds a {type(state).__name__}, not a state dict")
    unexpected = sorted(set(state) - set(EXPECTED_SHAPES))
    missing = [key for key in EXPECTED_SHAPES if key not in state]
    if unexpected or missing:
        raise VerifyError(f"{name}: unexpected keys {unexpected}, missing keys {missing}")
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor) or tensor.dtype != torch.float32:
            raise VerifyError(f"{name}: {key} is not a float32 tensor")
        if tuple(tensor.shape) != EXPECTED_SHAPES[key]:
            raise VerifyError(
                f"{name}: {key} has shape {tuple(tensor.shape)}, expected {EXPECTED_SHAPES[key]}"
            )
    return state


def difference(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    """The largest |ours - theirs|, and the largest allowed: TOLERANCE, times the largest
    |theirs| when that is above 1 (float32 keeps about 7 significant digits of any value)."""
    return float(np.abs(ours - theirs).max()), TOLERANCE * max(1.0, float(np.abs(theirs).max()))


def manifest_problem(content: bytes, name: str, entry: dict) -> str | None:
    """What is wrong with one listed file, or None when its size and sha-256 match."""
    if len(content) != entry["bytes"]:
        truncated = " (truncated?)" if len(content) < entry["bytes"] else ""
        return f"{name}: {len(content)} bytes, {MANIFEST_NAME} says {entry['bytes']}{truncated}"
    if hashlib.sha256(content).hexdigest() != entry["sha256"]:
        return f"{name}: sha-256 differs from {MANIFEST_NAME} (changed or damaged)"
    return None


def is_manifest(value: dict) -> bool:
    """Has `value` the shape `regenerate` writes: {'config': {...}, 'files': {name: entry}}?"""
    files = value.get("files")
    return (
        isinstance(value.get("config"), dict)
        and isinstance(value["config"].get("epochs"), int)
        and value["config"]["epochs"] >= 0
        and isinstance(files, dict)
        and all(
            isinstance(entry, dict)
            and isinstance(entry.get("bytes"), int)
            and isinstance(entry.get("sha256"), str)
            for entry in files.values()
        )
    )


# ---------------------------------------------------------------------------------------------
# The checks. Each returns the figure for its line, or raises VerifyError naming the file.


class Verifier:
    """The checks on one folder; what they share (manifest, JSON, snapshots) is read once."""

    def __init__(self, out_dir: Path, data_root: Path, min_accuracy: float) -> None:
        self.out_dir = Path(out_dir)
        self.real_dir = self.out_dir.resolve()
        self.pinned = current_set(self.out_dir)  # one set throughout, even if a run switches
        self.data_root = Path(data_root)
        self.min_accuracy = min_accuracy
        self._cache: dict[str, object] = {}

    def _once(self, key: str, compute: Callable[[], object]) -> object:
        """compute() on the first call, its value or VerifyError remembered for the next ones."""
        if key not in self._cache:
            try:
                self._cache[key] = compute()
            except VerifyError as error:
                self._cache[key] = error
        value = self._cache[key]
        if isinstance(value, VerifyError):
            raise VerifyError(str(value))
        return value

    # Reading: regular files inside DIR only, each of a bounded size ---------------------------

    def locate(self, name: str) -> Path:
        """Where the artifact `name` is: through DIR's link, in the set pinned at the start."""
        top = name.split("/")[0]
        entry = self.out_dir / top
        if self.pinned and entry.is_symlink() and os.readlink(entry) == link_target(top):
            return self.pinned / name
        return self.out_dir / name

    def read(self, name: str, limit: int) -> bytes:
        """The content of the artifact `name`; VerifyError if it is missing, not a regular file,
        outside DIR (through a link) or larger than `limit` bytes."""
        real = self.locate(name).resolve()
        if not real.is_relative_to(self.real_dir):
            raise VerifyError(f"{name}: leads out of {self.out_dir}; verify reads only inside it")
        try:
            # O_NONBLOCK: a FIFO opens at once (and is refused below) instead of waiting
            descriptor = os.open(real, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise VerifyError(f"{name}: missing") from None
        except OSError as error:
            raise VerifyError(f"{name}: cannot be read ({error.strerror or error})") from None
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise VerifyError(f"{name}: cannot be read (not a regular file)")
        with os.fdopen(descriptor, "rb") as handle:
            content = handle.read(limit + 1)
        if len(content) > limit:
            raise VerifyError(f"{name}: larger than the {limit / 1e6:g} MB verify reads")
        return content

    def limit(self, name: str) -> int:
        """How many bytes verify reads of the artifact `name`."""
        if name == JSON_NAME:
            return MAX_JSON_BYTES
        return MAX_MANIFEST_BYTES if name == MANIFEST_NAME else MAX_PTH_BYTES

    # What the checks share -------------------------------------------------------------------

    def manifest(self) -> dict:
        def read() -> dict:
            manifest = strict_json(self.read(MANIFEST_NAME, MAX_MANIFEST_BYTES), MANIFEST_NAME)
            if not is_manifest(manifest):
                raise VerifyError(f"{MANIFEST_NAME}: not in the format `regenerate` writes")
            return manifest

        return self._once("manifest", read)

    def payload(self) -> dict:
        """The parsed JSON, valid against the schema (the checks below rely on its shape)."""

        def read() -> dict:
            payload = strict_json(self.read(JSON_NAME, MAX_JSON_BYTES), JSON_NAME)
            try:
                schema_validator()(payload)
            except fastjsonschema.JsonSchemaValueException as error:
                raise VerifyError(f"{JSON_NAME}: {schema_message(error)}") from None
            return payload

        return self._once("payload", read)

    def last_epoch(self) -> int:
        """N, the last epoch: as the manifest's config says, else the JSON's, else the default.
        VerifyError when it is more than any run can make (a damaged or forged manifest)."""
        last, source = TrainConfig().epochs, "the default"
        with suppress(VerifyError):
            last, source = self.payload()["metadata"]["config"]["epochs"], JSON_NAME
        with suppress(VerifyError):
            last, source = self.manifest()["config"]["epochs"], MANIFEST_NAME
        if last > MAX_EPOCHS:
            raise VerifyError(f"{source}: claims {last} epochs; a run makes at most {MAX_EPOCHS}")
        return last

    def snapshots(self) -> dict[str, dict[str, torch.Tensor] | VerifyError]:
        """Every expected `.pth`, by name: its state dict, or the VerifyError saying what is off."""

        def load_all() -> dict[str, dict[str, torch.Tensor] | VerifyError]:
            names = [epoch_weights_name(epoch) for epoch in range(self.last_epoch() + 1)]
            loaded: dict[str, dict[str, torch.Tensor] | VerifyError] = {}
            for name in [*names, FINAL_WEIGHTS_NAME]:
                try:
                    loaded[name] = read_state_dict(self.read(name, MAX_PTH_BYTES), name)
                except VerifyError as error:
                    loaded[name] = error
            return loaded

        return self._once("snapshots", load_all)

    def snapshot(self, name: str) -> dict[str, torch.Tensor]:
        state = self.snapshots().get(name)
        if not isinstance(state, dict):
            raise VerifyError(f"{name}: did not load (see 'weight files')")
        return state

    def test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The MNIST test pixels and labels, read from the vendored archives themselves (never
        from what a run loaded or cached); DataError names a missing or corrupt archive."""

        def load() -> tuple[torch.Tensor, torch.Tensor]:
            try:
                return read_split(self.data_root, "t10k", read=vendored_file)
            except DataError as error:
                raise VerifyError(str(error)) from None

        return self._once("test_set", load)

    # The checks, in the order they print ----------------------------------------------------

    def manifest_matches(self) -> str:
        manifest = self.manifest()
        listed: dict[str, dict] = manifest["files"]
        expected = [*self.snapshots(), JSON_NAME]
        problems = [
            f"{name}: not listed in {MANIFEST_NAME}" for name in expected if name not in listed
        ]
        for name, entry in listed.items():
            if not is_set_path(name):
                problems.append(f"{name[:80]}: listed in {MANIFEST_NAME}, but no set holds it")
                continue
            try:
                problem = manifest_problem(self.read(name, self.limit(name)), name, entry)
            except VerifyError as error:
                missing = str(error) == f"{name}: missing"
                problem = (
                    f"{name}: listed in {MANIFEST_NAME} but missing" if missing else str(error)
                )
            if problem:
                problems.append(problem)
        present = sorted(
            f"{EPOCH_WEIGHTS_DIR}/{path.name}"
            for path in self.locate(EPOCH_WEIGHTS_DIR).glob("*.pth")
        )
        problems += [
            f"{name}: not listed in {MANIFEST_NAME} (left from another run?)"
            for name in present
            if name not in listed
        ]
        with suppress(VerifyError):  # a broken JSON is the JSON checks' to report
            if self.payload()["metadata"]["config"] != manifest["config"]:
                problems.append(f"{MANIFEST_NAME}: config differs from {JSON_NAME}'s metadata")
        fail_if_any(problems)
        return f"{len(listed)} files match their size and sha-256; config as in {JSON_NAME}"

    def weight_files(self) -> str:
        snapshots = self.snapshots()
        fail_if_any([str(state) for state in snapshots.values() if isinstance(state, VerifyError)])
        last = epoch_weights_name(self.last_epoch())
        final = self.snapshot(FINAL_WEIGHTS_NAME)
        if any(not torch.equal(tensor, self.snapshot(last)[key]) for key, tensor in final.items()):
            raise VerifyError(f"{FINAL_WEIGHTS_NAME}: differs from {last}")
        return (
            f"{len(snapshots) - 1} epoch files and {FINAL_WEIGHTS_NAME} intact, load with "
            f"weights_only=True, {len(EXPECTED_SHAPES)} float32 tensors each; "
            f"final = epoch {self.last_epoch()}"
        )

    def json_schema(self) -> str:
        self.payload()
        size = len(self.read(JSON_NAME, MAX_JSON_BYTES))
        return f"strict JSON, valid against the schema, {size / 1e6:.2f} MB"

    def json_epochs(self) -> str:
        numbers = [entry["epoch"] for entry in self.payload()["training_epochs"]]
        expected = list(range(self.last_epoch() + 1))
        if numbers != expected:
            shown = ", ".join(map(str, numbers[:6])) + (", ..." if len(numbers) > 6 else "")
            raise VerifyError(f"{JSON_NAME}: epochs are {shown}; expected 0..{expected[-1]}")
        return f"epochs 0..{expected[-1]} in order, each with weights"

    def json_weights_equal_pth(self) -> str:
        payload = self.payload()
        pairs = [
            (epoch_weights_name(entry["epoch"]), f"epoch {entry['epoch']}", entry["weights"])
            for entry in payload["training_epochs"]
        ]
        pairs.append((FINAL_WEIGHTS_NAME, "final_weights", payload["final_weights"]))
        problems = []
        for name, where, weights in pairs:
            try:
                state = self.snapshot(name)
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

    def samples_are_mnist(self) -> str:
        pixels, labels = self.test_set()
        samples = self.payload()["samples"]
        indices = sample_indices(labels)
        wrong = [
            f"samples[{position}]"
            for position, (sample, index) in enumerate(zip(samples, indices, strict=True))
            if sample["index"] != index
            or sample["label"] != int(labels[index])
            or not np.array_equal(np.asarray(sample["image"]), pixels[index].numpy())
        ]
        if wrong:
            raise VerifyError(f"{JSON_NAME}: {', '.join(wrong[:5])} not the MNIST test images")
        image = self.payload()["feature_map_image"]
        if image["index"] != feature_map_index(labels):
            raise VerifyError(f"{JSON_NAME}: feature_map_image.index is not the first test-set 3")
        return f"{len(samples)} samples are the exact MNIST test pixels (10 per digit)"

    def feature_maps_reproduce(self) -> str:
        index = self.payload()["feature_map_image"]["index"]
        pixels = self.test_set()[0][index : index + 1].numpy()
        problems, worst = [], 0.0
        for entry in self.payload()["training_epochs"]:
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

    def predictions_reproduce(self) -> str:
        entries = self.payload()["training_epochs"]
        pixels = np.stack(
            [np.asarray(s["image"], dtype=np.uint8) for s in self.payload()["samples"]]
        )
        images = torch.from_numpy(reference.preprocess(pixels)).float()
        model = CNN().eval()
        problems, worst = [], 0.0
        for entry in entries:
            try:
                model.load_state_dict(self.snapshot(epoch_weights_name(entry["epoch"])))
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
                    f"{JSON_NAME}: epoch {entry['epoch']} logits differ from PyTorch's on "
                    f"{epoch_weights_name(entry['epoch'])} by {error:.2e}"
                )
        fail_if_any(problems)
        return (
            f"NumPy logits and classes match PyTorch's on {len(pixels)} samples x "
            f"{len(entries)} epochs (max error {worst:.1e}, relative above 1)"
        )

    def accuracy(self) -> str:
        if not (isinstance(self.min_accuracy, (int, float)) and 0 <= self.min_accuracy <= 100):
            raise VerifyError(
                f"--min-accuracy must be a percentage from 0 to 100, got {self.min_accuracy!r}"
            )
        final = self.payload()["training_epochs"][-1]["test_accuracy"]
        if final < self.min_accuracy:
            raise VerifyError(
                f"{JSON_NAME}: final test accuracy {final:.2f}% is below {self.min_accuracy:g}%"
            )
        return f"final test accuracy {final:.2f}% >= {self.min_accuracy:g}%"

    def checks(self) -> list[tuple[str, Callable[[], str]]]:
        return list(
            zip(
                CHECK_NAMES,
                [
                    self.manifest_matches,
                    self.weight_files,
                    self.json_schema,
                    self.json_epochs,
                    self.json_weights_equal_pth,
                    self.samples_are_mnist,
                    self.feature_maps_reproduce,
                    self.predictions_reproduce,
                    self.accuracy,
                ],
                strict=True,
            )
        )


def unchanged_since_written(out_dir: Path, config: TrainConfig) -> bool:
    """Does `out_dir` show a set that cnnlib wrote for `config`, complete, every file still the
    bytes its manifest lists? That is all that reusing a set needs, and takes milliseconds; that
    what was written is right is `verify`'s question (a second), which `regenerate` asks before
    it publishes a set and notebook 04 asks at its end."""
    verifier = Verifier(out_dir, DEFAULT_DATA_DIR, min_accuracy=0.0)
    if verifier.pinned is None:  # not a set cnnlib published: an older layout, or a copy
        return False
    names = [epoch_weights_name(epoch) for epoch in range(config.epochs + 1)]
    try:
        manifest = verifier.manifest()
        listed: dict[str, dict] = manifest["files"]
        return (
            manifest["config"] == config.as_dict()
            and set(listed) == {*names, FINAL_WEIGHTS_NAME, JSON_NAME}
            and not any(
                manifest_problem(verifier.read(name, verifier.limit(name)), name, entry)
                for name, entry in listed.items()
            )
        )
    except VerifyError:
        return False


def verify(
    out_dir: Path = DEFAULT_DATA_DIR,
    min_accuracy: float = DEFAULT_MIN_ACCURACY,
    data_root: Path = DEFAULT_DATA_DIR,
) -> Report:
    """Run every check on the artifacts in `out_dir`; a failed check does not stop the others."""
    report = Report(Path(out_dir))
    if not Path(out_dir).is_dir():
        state = "is not a folder" if Path(out_dir).exists() else "does not exist"
        report.checks = [Check(name, False, f"{out_dir} {state}") for name in CHECK_NAMES]
        return report
    for name, check in Verifier(out_dir, data_root, min_accuracy).checks():
        try:
            report.checks.append(Check(name, True, check()))
        except VerifyError as error:
            report.checks.append(Check(name, False, str(error)))
        except Exception as error:  # an unforeseen fault still fails its line, never the run
            report.checks.append(
                Check(name, False, f"cannot check ({type(error).__name__}: {error})")
            )
    return report
