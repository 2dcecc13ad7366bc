"""`verify`: passes on a fresh run, and fails on every fault with a message naming the file."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlib.__main__ import main
from cnnlib.data import DEFAULT_DATA_DIR, RAW_FILES
from cnnlib.export import FINAL_WEIGHTS_NAME, JSON_NAME, MANIFEST_NAME, epoch_weights_name
from cnnlib.model import CNN
from cnnlib.pipeline import regenerate
from cnnlib.reading import MAX_PTH_BYTES
from cnnlib.train import MAX_EPOCHS, EpochResult, predict
from cnnlib.verify import Report, verify
from tests import forked
from tests.conftest import SHORT, publish_unverified
from tests.test_data import poison_processed_cache

CHECK_NAMES = [
    "manifest",
    "weight files",
    "JSON schema",
    "JSON epochs",
    "JSON weights = .pth",
    "samples",
    "feature maps",
    "predictions",
    "test metrics",
    "accuracy",
]
EPOCH_1 = epoch_weights_name(1)


def failures(report: Report) -> dict[str, str]:
    """{check name: message} of the failed checks; every check must still have its line."""
    assert [check.name for check in report.checks] == CHECK_NAMES
    return {check.name: check.detail for check in report.checks if not check.passed}


def check_short(out: Path, min_accuracy: float = 0.0) -> dict[str, str]:
    return failures(verify(out, min_accuracy=min_accuracy))


def read_json(out: Path) -> dict:
    return json.loads((out / JSON_NAME).read_text())


def write_json(out: Path, payload: dict) -> None:
    (out / JSON_NAME).write_text(json.dumps(payload, separators=(",", ":")))


# ---------------------------------------------------------------------------------------------
# A complete run passes.


def test_a_fresh_regenerate_passes_every_check_and_says_so(tmp_path: Path):
    summary = regenerate(SHORT, tmp_path / "run", progress=False)
    assert summary.report.passed
    assert [check.name for check in summary.report.checks] == CHECK_NAMES
    assert "verify: 10/10 checks passed" in summary.lines()


def test_every_line_carries_its_figure(short_run: Path):
    lines = verify(short_run, min_accuracy=0.0).lines()
    assert lines == [line for line in lines if line.startswith("[ok] ")]
    text = "\n".join(lines)
    assert "[ok] manifest: 5 files match their size and sha-256" in text
    assert "3 epoch files and final_model_weights.pth intact" in text
    assert "epochs 0..2 in order" in text
    assert "4 weight sets equal the .pth tensors bit for bit" in text
    assert "100 samples are the exact MNIST test pixels" in text
    assert "on 100 samples x 3 epochs" in text


def test_cli_exits_0_when_all_pass_and_1_otherwise(
    short_run: Path, fresh_run: Path, capsys: pytest.CaptureFixture[str]
):
    assert main(["verify", str(short_run), "--min-accuracy", "0"]) == 0
    assert capsys.readouterr().out.endswith(f"all 10 checks passed in {short_run}\n")

    (fresh_run / EPOCH_1).unlink()
    assert main(["verify", str(fresh_run), "--min-accuracy", "0"]) == 1
    out = capsys.readouterr().out
    assert f"[FAIL] weight files: {EPOCH_1}: missing" in out
    assert out.endswith(f"NOT all 10 checks passed in {fresh_run}\n")


# ---------------------------------------------------------------------------------------------
# The JSON: truncated, NaN, tampered, extra keys, repeated keys, wrong order.


def test_truncated_json(fresh_run: Path):
    path = fresh_run / JSON_NAME
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[: size // 2])
    failed = check_short(fresh_run)
    assert failed["manifest"] == (
        f"{JSON_NAME}: {size // 2} bytes, {MANIFEST_NAME} says {size} (truncated?)"
    )
    assert failed["JSON schema"].startswith(f"{JSON_NAME}: not valid JSON, truncated or damaged")
    # the accuracy is measured on the .pth files, which are intact
    assert set(failed) == set(CHECK_NAMES) - {"weight files", "accuracy"}


def test_nan_in_json(fresh_run: Path):
    path = fresh_run / JSON_NAME
    text = path.read_text()
    start = text.index('"loss":') + len('"loss":')
    end = text.index(",", start)
    path.write_text(text[:start] + "NaN" + text[end:])
    failed = check_short(fresh_run)
    assert failed["JSON schema"] == f"{JSON_NAME}: holds NaN, which strict JSON does not allow"
    assert failed["manifest"].startswith(f"{JSON_NAME}: ")


def test_one_ulp_tampered_weight_in_json(fresh_run: Path):
    payload = read_json(fresh_run)
    row = payload["training_epochs"][1]["weights"]["fc1"]["weight"][3]
    row[7] = float(np.nextafter(np.float32(row[7]), np.float32(np.inf)))
    write_json(fresh_run, payload)
    failed = check_short(fresh_run)
    assert failed.pop("JSON weights = .pth") == (
        f"{EPOCH_1} and {JSON_NAME} (epoch 1) differ in fc1.weight"
    )
    assert failed.pop("manifest").startswith(f"{JSON_NAME}: ")
    assert failed == {}


def test_tampered_weight_is_caught_without_the_manifest_too(fresh_run: Path):
    (fresh_run / MANIFEST_NAME).unlink()
    payload = read_json(fresh_run)
    payload["final_weights"]["conv2"]["bias"][0] += 0.5
    write_json(fresh_run, payload)
    failed = check_short(fresh_run)
    assert failed == {
        "manifest": f"{MANIFEST_NAME}: missing",
        "JSON weights = .pth": (
            f"{FINAL_WEIGHTS_NAME} and {JSON_NAME} (final_weights) differ in conv2.bias"
        ),
    }


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (("training_epochs", 1, "weights", "conv1"), "training_epochs[1].weights.conv1"),
        (("training_epochs", 2), "training_epochs[2]"),
        ((), "top level"),
    ],
)
def test_extra_key_in_json(fresh_run: Path, where: tuple, message: str):
    payload = read_json(fresh_run)
    target = payload
    for step in where:
        target = target[step]
    target["extra"] = [0.0]
    write_json(fresh_run, payload)
    failed = check_short(fresh_run)
    assert failed["JSON schema"] == (
        f"{JSON_NAME}: {message} must not contain {{'extra'}} properties"
    )
    # The checks that read the JSON's content say it does not fit the schema, naming the file.
    assert all(failed[name].startswith(f"{JSON_NAME}: ") for name in CHECK_NAMES[2:-1])


def test_repeated_key_in_json(fresh_run: Path):
    path = fresh_run / JSON_NAME
    path.write_text(path.read_text().replace('{"samples":', '{"samples":[],"samples":', 1))
    failed = check_short(fresh_run)
    assert failed["JSON schema"] == f"{JSON_NAME}: repeats the key 'samples' in one object"


def test_epochs_out_of_order(fresh_run: Path):
    payload = read_json(fresh_run)
    epochs = payload["training_epochs"]
    epochs[1], epochs[2] = epochs[2], epochs[1]
    write_json(fresh_run, payload)
    failed = check_short(fresh_run)
    assert failed["JSON epochs"] == f"{JSON_NAME}: epochs are 0, 2, 1; expected 0..2"


def test_a_changed_sample_pixel(fresh_run: Path):
    payload = read_json(fresh_run)
    payload["samples"][42]["image"][14][14] ^= 1
    write_json(fresh_run, payload)
    failed = check_short(fresh_run)
    assert failed["samples"] == f"{JSON_NAME}: samples[42] not the MNIST test images"


def test_a_changed_feature_map(fresh_run: Path):
    payload = read_json(fresh_run)
    payload["training_epochs"][2]["feature_maps"]["pool2"][1][2][3] += 1e-3
    write_json(fresh_run, payload)
    failed = check_short(fresh_run)
    assert failed["feature maps"].startswith(
        f"{JSON_NAME}: epoch 2 feature map pool2 is off by 1.00e-03"
    )


def test_unreadable_json(fresh_run: Path):
    (fresh_run / JSON_NAME).unlink()
    (fresh_run / JSON_NAME).mkdir()
    failed = check_short(fresh_run)
    assert failed["JSON schema"].startswith(f"{JSON_NAME}: cannot be read")


# ---------------------------------------------------------------------------------------------
# The .pth files: flipped bytes, missing, extra key, final differs from the last epoch.


def flip_one_bit(path: Path, where: str) -> None:
    content = bytearray(path.read_bytes())
    index = {
        "zip header": 0,
        "tensor data": len(content) // 2,  # inside fc1.weight, the largest tensor
        "zip directory": content.rfind(b"PK\x05\x06") + 1,  # its end record's signature
    }[where]
    content[index] ^= 0x01
    path.write_bytes(bytes(content))


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("zip header", "damaged (zip member "),
        ("tensor data", "damaged (zip member "),
        ("zip directory", "not an intact .pth archive (BadZipFile)"),
    ],
)
def test_flipped_bit_in_pth(fresh_run: Path, where: str, message: str):
    flip_one_bit(fresh_run / EPOCH_1, where)
    failed = check_short(fresh_run)
    assert failed == {
        "manifest": f"{EPOCH_1}: sha-256 differs from {MANIFEST_NAME} (changed or damaged)",
        "weight files": failed["weight files"],
        "JSON weights = .pth": f"{EPOCH_1}: did not load (see 'weight files')",
        "predictions": f"{EPOCH_1}: did not load (see 'weight files')",
        "test metrics": f"{EPOCH_1}: did not load (see 'weight files')",
    }
    assert failed["weight files"].startswith(f"{EPOCH_1}: {message}")


def test_missing_epoch_file(fresh_run: Path):
    (fresh_run / EPOCH_1).unlink()
    failed = check_short(fresh_run)
    assert failed == {
        "manifest": f"{EPOCH_1}: listed in {MANIFEST_NAME} but missing",
        "weight files": f"{EPOCH_1}: missing",
        "JSON weights = .pth": f"{EPOCH_1}: did not load (see 'weight files')",
        "predictions": f"{EPOCH_1}: did not load (see 'weight files')",
        "test metrics": f"{EPOCH_1}: did not load (see 'weight files')",
    }


def test_missing_last_epoch_file_without_manifest(fresh_run: Path):
    (fresh_run / MANIFEST_NAME).unlink()
    (fresh_run / epoch_weights_name(2)).unlink()  # N comes from the JSON's config then
    failed = check_short(fresh_run)
    assert failed["weight files"] == f"{epoch_weights_name(2)}: missing"


def test_extra_key_in_pth(fresh_run: Path):
    state = torch.load(fresh_run / EPOCH_1, weights_only=True)
    state["conv3.weight"] = torch.zeros(2, 2)
    torch.save(state, fresh_run / EPOCH_1)
    failed = check_short(fresh_run)
    assert failed["weight files"] == (
        f"{EPOCH_1}: unexpected keys ['conv3.weight'], missing keys []"
    )
    assert failed["manifest"].startswith(f"{EPOCH_1}: ")


def test_wrong_dtype_in_pth(fresh_run: Path):
    state = torch.load(fresh_run / FINAL_WEIGHTS_NAME, weights_only=True)
    state["fc2.bias"] = state["fc2.bias"].double()
    torch.save(state, fresh_run / FINAL_WEIGHTS_NAME)
    failed = check_short(fresh_run)
    assert failed["weight files"] == f"{FINAL_WEIGHTS_NAME}: fc2.bias is not a float32 tensor"


def test_final_file_differs_from_last_epoch(fresh_run: Path):
    (fresh_run / MANIFEST_NAME).unlink()
    shutil.copyfile(fresh_run / EPOCH_1, fresh_run / FINAL_WEIGHTS_NAME)
    failed = check_short(fresh_run)
    assert failed["weight files"] == (f"{FINAL_WEIGHTS_NAME}: differs from {epoch_weights_name(2)}")


# ---------------------------------------------------------------------------------------------
# The manifest, the data, the threshold, a folder that is not there.


def test_manifest_mismatches_are_reported_by_file_name(fresh_run: Path):
    path = fresh_run / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    manifest["files"][FINAL_WEIGHTS_NAME]["sha256"] = "0" * 64
    manifest["config"]["seed"] = 7
    path.write_text(json.dumps(manifest))
    shutil.copyfile(fresh_run / EPOCH_1, fresh_run / epoch_weights_name(7))
    failed = check_short(fresh_run)
    assert failed == {
        "manifest": (
            f"{FINAL_WEIGHTS_NAME}: sha-256 differs from {MANIFEST_NAME} (changed or damaged); "
            f"{epoch_weights_name(7)}: not listed in {MANIFEST_NAME} (left from another run?); "
            f"{MANIFEST_NAME}: config differs from {JSON_NAME}'s metadata"
        )
    }


def test_a_missing_manifest_fails_only_its_own_line(fresh_run: Path):
    (fresh_run / MANIFEST_NAME).unlink()
    assert check_short(fresh_run) == {"manifest": f"{MANIFEST_NAME}: missing"}


def test_a_manifest_in_another_format(fresh_run: Path):
    (fresh_run / MANIFEST_NAME).write_text('{"files": []}')
    failed = check_short(fresh_run)
    assert failed == {"manifest": f"{MANIFEST_NAME}: not in the format `regenerate` writes"}


def test_accuracy_below_the_threshold(short_run: Path):
    final = read_json(short_run)["training_epochs"][-1]["test_accuracy"]
    failed = failures(verify(short_run, min_accuracy=99.5))
    assert failed == {
        "accuracy": f"{FINAL_WEIGHTS_NAME}: final test accuracy {final:.2f}% (measured) is below "
        "99.5%"
    }
    assert failures(verify(short_run, min_accuracy=final)) == {}


@pytest.mark.parametrize("threshold", [math.nan, -1.0, 101.0])
def test_a_nonsense_threshold_fails_the_accuracy_line(short_run: Path, threshold: float):
    failed = failures(verify(short_run, min_accuracy=threshold))
    assert failed == {
        "accuracy": f"--min-accuracy must be a percentage from 0 to 100, got {threshold!r}"
    }


def test_corrupt_mnist_file_fails_the_lines_that_need_it(short_run: Path, tmp_path: Path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES:
        shutil.copyfile(DEFAULT_DATA_DIR / "MNIST" / "raw" / f"{name}.gz", raw / f"{name}.gz")
    broken = raw / "t10k-images-idx3-ubyte"
    gz = (DEFAULT_DATA_DIR / "MNIST" / "raw" / f"{broken.name}.gz").read_bytes()
    (raw / f"{broken.name}.gz").write_bytes(gz[: len(gz) // 2])
    failed = failures(verify(short_run, min_accuracy=0.0, data_root=tmp_path))
    assert set(failed) == {"samples", "feature maps", "test metrics", "accuracy"}
    assert all(
        message.startswith(f"{raw / broken.name}.gz is truncated or corrupt")
        for message in failed.values()
    )


def test_a_folder_that_is_not_there_fails_every_line(tmp_path: Path):
    failed = check_short(tmp_path / "nothing")
    assert failed == {name: f"{tmp_path / 'nothing'} does not exist" for name in CHECK_NAMES}
    (tmp_path / "a-file").write_text("")
    failed = check_short(tmp_path / "a-file")
    assert failed == {name: f"{tmp_path / 'a-file'} is not a folder" for name in CHECK_NAMES}


@pytest.mark.parametrize(
    ("kind", "state"), [("missing", "does not exist"), ("file", "is not a folder")]
)
def test_the_command_says_in_one_line_that_there_is_no_folder(tmp_path: Path, kind, state):
    path = tmp_path / kind
    if kind == "file":
        path.write_text("")
    done = forked.run(["verify", str(path)])
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"python -m cnnlib verify: error: {path} {state}; name the folder regenerate wrote\n"
    )


# ---------------------------------------------------------------------------------------------
# Bounded: regular files inside DIR only, sizes capped, no huge epoch counts, strict numbers.


def rewrite_manifest(out: Path, change) -> None:
    path = out / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_a_manifest_claiming_millions_of_epochs_is_refused_at_once(fresh_run: Path):
    rewrite_manifest(fresh_run, lambda m: m["config"].update(epochs=3_000_000))
    failed = check_short(fresh_run)
    claim = f"{MANIFEST_NAME}: claims 3000000 epochs; a run makes at most {MAX_EPOCHS}"
    assert failed["weight files"] == claim
    assert failed["JSON epochs"] == claim


def test_a_fifo_instead_of_the_manifest_is_refused_without_waiting(fresh_run: Path):
    (fresh_run / MANIFEST_NAME).unlink()
    os.mkfifo(fresh_run / MANIFEST_NAME)  # reading one would wait for a writer forever
    done = forked.run(["verify", str(fresh_run), "--min-accuracy", "0"])
    assert done.returncode == 1
    assert f"[FAIL] manifest: {MANIFEST_NAME}: cannot be read (not a regular file)" in done.stdout


def test_files_the_manifest_names_outside_the_folder_are_never_read(fresh_run: Path, tmp_path):
    outside = tmp_path / "x"
    outside.write_bytes(b"secret")
    entry = {"bytes": 6, "sha256": hashlib.sha256(b"secret").hexdigest()}
    rewrite_manifest(
        fresh_run, lambda m: m["files"].update({"../x": entry, "/etc/hostname": entry})
    )
    failed = check_short(fresh_run)
    assert failed == {
        "manifest": (
            f"../x: listed in {MANIFEST_NAME}, but no set holds it; "
            f"/etc/hostname: listed in {MANIFEST_NAME}, but no set holds it"
        )
    }


def test_a_link_out_of_the_folder_is_not_followed(fresh_run: Path, short_run: Path, tmp_path):
    copy = tmp_path / "copy.json"
    shutil.copyfile(short_run / JSON_NAME, copy)  # the same bytes: only the place is wrong
    (fresh_run / JSON_NAME).unlink()
    (fresh_run / JSON_NAME).symlink_to(copy)
    failed = check_short(fresh_run)
    message = f"{JSON_NAME}: leads out of {fresh_run}; verify reads only inside it"
    assert failed["JSON schema"] == message
    assert failed["manifest"] == message


def test_an_oversized_weight_file_is_not_read(fresh_run: Path):
    with open(fresh_run / EPOCH_1, "r+b") as handle:
        handle.truncate(MAX_PTH_BYTES + 1)  # sparse: no disk used
    failed = check_short(fresh_run)
    assert failed["weight files"] == f"{EPOCH_1}: larger than the 1 MB verify reads"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda text: text.replace('"loss":', '"loss":1e400,"x":', 1),
            "holds the number 1e400, too large for a double",
        ),
        (
            lambda text: "\ufeff" + text,
            "starts with a UTF-8 byte order mark, which JSON does not allow",
        ),
    ],
    ids=["1e400", "BOM"],
)
def test_numbers_beyond_a_double_and_a_byte_order_mark_are_refused(fresh_run, damage, message):
    path = fresh_run / JSON_NAME
    path.write_text(damage(path.read_text()), encoding="utf-8")
    assert check_short(fresh_run)["JSON schema"] == f"{JSON_NAME}: {message}"


# ---------------------------------------------------------------------------------------------
# A diverged network: activations of 1e6 and more are compared relative to their size.


def test_huge_activations_are_compared_relative_to_their_size(tmp_path: Path, mnist, short_results):
    def scale(result: EpochResult) -> EpochResult:
        weights = {
            key: tensor * (300.0 if key.endswith("weight") else 1.0)
            for key, tensor in result.state_dict.items()
        }
        model = CNN()
        model.load_state_dict(weights)
        logits = predict(model, mnist.test_pixels)  # the mistakes are the scaled weights'
        return dataclasses.replace(result, state_dict=weights, test_logits=logits)

    scaled = [scale(result) for result in short_results]
    publish_unverified(scaled, mnist, SHORT, tmp_path / "huge")
    fc1 = read_json(tmp_path / "huge")["training_epochs"][2]["feature_maps"]["fc1"]
    assert max(map(abs, fc1)) > 1e6
    failed = failures(verify(tmp_path / "huge", min_accuracy=0.0))
    # Only the metrics, which belong to the unscaled weights, give the forgery away.
    assert list(failed) == ["test metrics"]
    assert failed["test metrics"].startswith(
        f"{JSON_NAME}: epoch 0 states test accuracy {short_results[0].test_accuracy:.2f}%"
    )


def test_a_learning_rate_of_10_still_makes_a_verified_set(fresh_run: Path):
    options = ["--lr", "10", "--epochs", "3", "--batches-per-epoch", "50", "--device", "cpu"]
    done = forked.run(["regenerate", "--out", str(fresh_run), "--quiet", *options])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify: 10/10 checks passed" in done.stdout
    maps = read_json(fresh_run)["training_epochs"][-1]["feature_maps"]
    assert max(np.abs(np.asarray(maps[name])).max() for name in maps) > 1e4  # it diverged


# ---------------------------------------------------------------------------------------------
# The samples are checked against the vendored archives, whatever the run loaded.


def test_samples_are_checked_against_the_archives_not_a_cache(
    tmp_path: Path, mnist, short_results, short_run: Path
):
    data_root = tmp_path / "data"
    (data_root / "MNIST" / "raw").mkdir(parents=True)
    for name in RAW_FILES:
        shutil.copy(DEFAULT_DATA_DIR / "MNIST" / "raw" / f"{name}.gz", data_root / "MNIST" / "raw")
    poison_processed_cache(data_root)  # what torchvision's class would load
    # A set of the true pixels passes there, though that cache holds others. (That a run made
    # from such a root loads the archives too is test_data.py's poisoned-cache test.)
    report = verify(short_run, min_accuracy=0.0, data_root=data_root)
    assert report.passed, report.lines()
    # A set made from inverted pixels fails, though they are what that cache holds.
    inverted = dataclasses.replace(mnist, test_pixels=255 - mnist.test_pixels)
    publish_unverified(short_results, inverted, SHORT, tmp_path / "inverted")
    failed = failures(verify(tmp_path / "inverted", min_accuracy=0.0, data_root=data_root))
    assert failed["samples"].startswith(f"{JSON_NAME}: samples[0], samples[1]")
