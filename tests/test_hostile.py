"""Hostile files and careless users, the third round: links planted under the names of the next
temporaries, deeply nested or huge JSON, forged content with the manifest rehashed, a kill while
publishing over a set that shares its first epochs, a disk that fills exactly at publishing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlib.data import DEFAULT_DATA_DIR, MEAN, RAW_FILES
from cnnlib.export import FINAL_WEIGHTS_NAME, JSON_NAME, MANIFEST_NAME, epoch_weights_name
from cnnlib.files import atomic_write_bytes
from cnnlib.pipeline import regenerate, write_artifacts
from cnnlib.reading import VerifyError, strict_json
from cnnlib.store import SETS_DIR
from cnnlib.train import TrainConfig, train
from cnnlib.verify import verify
from tests import forked
from tests.conftest import SHORT, publish_unverified
from tests.test_faults import ENV, TIMEOUT, mounted_tmpfs, needs_root
from tests.test_verify import check_short, read_json, write_json

TINY = TrainConfig(epochs=1, batches_per_epoch=1, seed=7, device="cpu")
ONE_EPOCH = TrainConfig(epochs=1, batches_per_epoch=5, device="cpu")  # short_results[:2]
DEEP = b"[" * 2000 + b"]" * 2000


def rehash(out: Path, names: tuple[str, ...] = (JSON_NAME,)) -> None:
    """Make the manifest list the files as they are now: a forger's first step."""
    path = out / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    for name in names:
        content = (out / name).read_bytes()
        manifest["files"][name] = {
            "bytes": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        }
    path.unlink()  # a hard link into the record's set: write a file of its own
    path.write_text(json.dumps(manifest, indent=2))


# ---------------------------------------------------------------------------------------------
# Nothing outside DIR is written, whatever link waits under a temporary's name.


def test_a_link_under_the_next_temporary_name_is_never_written_through(tmp_path: Path):
    outside = tmp_path / "outside"
    outside.write_bytes(b"theirs")
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / f".published.json.{os.getpid()}.tmp").symlink_to(outside)
    atomic_write_bytes(folder / "published.json", b"ours")
    assert outside.read_bytes() == b"theirs"
    assert not (folder / "published.json").is_symlink()
    assert (folder / "published.json").read_bytes() == b"ours"


def test_a_run_writes_nothing_through_links_planted_in_its_folders(
    fresh_run: Path, tmp_path: Path, mnist, short_results
):
    outside = tmp_path / "outside"
    outside.write_bytes(b"theirs")
    for name in ("published.json", "current"):
        (fresh_run / SETS_DIR / f".{name}.{os.getpid()}.tmp").symlink_to(outside)
    write_artifacts(short_results, mnist, SHORT, fresh_run)
    assert outside.read_bytes() == b"theirs"
    assert not (fresh_run / SETS_DIR / "published.json").is_symlink()
    assert verify(fresh_run, min_accuracy=0.0).passed


# ---------------------------------------------------------------------------------------------
# Small hostile files: one line, never a traceback, never a folder that needs a hand to clear.


def test_a_deeply_nested_manifest_is_one_line_and_regenerate_replaces_it(fresh_run: Path):
    (fresh_run / MANIFEST_NAME).unlink()
    (fresh_run / MANIFEST_NAME).write_bytes(DEEP)
    done = forked.run(["verify", str(fresh_run), "--min-accuracy", "0"])
    assert done.returncode == 1 and done.stderr == ""
    assert f"[FAIL] manifest: {MANIFEST_NAME}: nested too deeply" in done.stdout
    assert "Recursion" not in done.stdout
    summary = regenerate(TINY, fresh_run, progress=False)
    assert summary.published and verify(fresh_run, min_accuracy=0.0).passed


def test_a_deeply_nested_record_does_not_stop_regenerate(fresh_run: Path):
    (fresh_run / SETS_DIR / "published.json").write_bytes(DEEP)
    summary = regenerate(TINY, fresh_run, progress=False)
    assert summary.published and verify(fresh_run, min_accuracy=0.0).passed


def test_a_deeply_nested_json_is_said_once(fresh_run: Path):
    (fresh_run / JSON_NAME).write_bytes(b'{"samples":' + DEEP + b"}")
    rehash(fresh_run)
    failed = check_short(fresh_run)
    assert failed.pop("JSON schema") == f"{JSON_NAME}: nested too deeply for a file cnnlib writes"
    assert set(failed.values()) == {f"{JSON_NAME}: did not load (see 'JSON schema')"}


def test_a_repeated_key_among_a_quarter_million_is_found_in_linear_time():
    keys = ",".join(f'"k{number}":0' for number in range(250_000))
    content = ("{" + keys + ',"k7":1}').encode()

    def too_slow(signum, frame):
        raise TimeoutError("the repeated-key check is not linear")

    previous = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(60)  # a quadratic check takes hours here
    try:
        with pytest.raises(VerifyError, match="repeats the key 'k7' in one object"):
            strict_json(content, MANIFEST_NAME)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_folder_the_reader_cannot_enter_fails_its_lines_in_one_line_each(fresh_run: Path):
    if os.geteuid() != 0:
        pytest.skip("dropping root's override of file modes needs root")
    fresh_run.chmod(0)  # as a folder written under umask 077 is to another user
    try:
        done = subprocess.run(
            ["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable]
            + ["-m", "cnnlib", "verify", str(fresh_run), "--min-accuracy", "0"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    finally:
        fresh_run.chmod(0o755)
    assert done.returncode == 1 and done.stderr == ""
    assert f"[FAIL] manifest: {MANIFEST_NAME}: cannot be read (Permission denied)" in done.stdout


# ---------------------------------------------------------------------------------------------
# Forged content, manifest rehashed: verify checks what the model, the data and the
# configuration determine.


@pytest.mark.parametrize(
    ("forge", "check", "message"),
    [
        (
            lambda p: p["architecture"]["conv1"].update(output_shape=[64, 99, 99]),
            "JSON schema",
            "architecture is not the model's",
        ),
        (
            lambda p: p["architecture"]["fc1"].update(hidden_units=4096),
            "JSON schema",
            "architecture is not the model's",
        ),
        (
            lambda p: p["model_architecture"]["fc1"].update(out_features=4096),
            "JSON schema",
            "model_architecture is not the model's",
        ),
        (
            lambda p: p["metadata"]["dataset"]["md5"].update(
                {name: "0" * 32 for name in RAW_FILES}
            ),
            "samples",
            "metadata.dataset is not the vendored MNIST's",
        ),
        (
            lambda p: p["metadata"]["normalization"].update(mean=0.5),
            "samples",
            f"metadata.normalization is not mean {MEAN}",
        ),
        (
            lambda p: [e.update(validation_accuracy=100.0) for e in p["training_epochs"]],
            "test metrics",
            "epoch 0 states validation accuracy 100.00%",
        ),
        (
            lambda p: p["training_epochs"][1].update(test_accuracy=99.9),
            "test metrics",
            "epoch 1 states test accuracy 99.90%",
        ),
    ],
    ids=["conv1-shape", "fc1-units", "fc1-features", "md5", "mean", "validation", "epoch-1"],
)
def test_forged_content_with_a_rehashed_manifest_fails(fresh_run: Path, forge, check, message):
    payload = read_json(fresh_run)
    forge(payload)
    write_json(fresh_run, payload)
    rehash(fresh_run)
    failed = check_short(fresh_run)
    assert message in failed[check]
    assert "manifest" not in failed


def test_a_middle_epoch_is_measured_too(tmp_path: Path, mnist):
    """Epochs 0 to 4; the forged one is neither the first, the last, the middle one (what an
    older verify measured besides them), nor an even one."""
    config = TrainConfig(epochs=4, batches_per_epoch=2, device="cpu")
    out = publish_unverified(train(config, mnist, progress=False), mnist, config, tmp_path / "run")
    payload = read_json(out)
    payload["training_epochs"][3]["test_accuracy"] = 99.9  # not 0, 2 or 4
    write_json(out, payload)
    rehash(out)
    assert "epoch 3 states test accuracy 99.90%" in check_short(out)["test metrics"]


def test_manifest_entries_beyond_the_set_are_refused_unread(fresh_run: Path):
    manifest = json.loads((fresh_run / MANIFEST_NAME).read_text())
    entry = manifest["files"][epoch_weights_name(1)]
    for epoch in range(3, 2003):
        os.link(fresh_run / epoch_weights_name(1), fresh_run / epoch_weights_name(epoch))
        manifest["files"][epoch_weights_name(epoch)] = entry
    (fresh_run / MANIFEST_NAME).unlink()
    (fresh_run / MANIFEST_NAME).write_text(json.dumps(manifest))
    failed = check_short(fresh_run)
    assert failed["manifest"].startswith(
        f"{epoch_weights_name(3)}: listed in {MANIFEST_NAME}, but no set holds it"
    )
    assert failed["manifest"].endswith("; 1996 more")


def test_nan_in_a_snapshot_is_named(fresh_run: Path):
    path = fresh_run / FINAL_WEIGHTS_NAME
    state = torch.load(path, weights_only=True)
    state["fc2.bias"][3] = float("nan")
    path.unlink()
    torch.save(state, path)
    rehash(fresh_run, (FINAL_WEIGHTS_NAME,))
    assert check_short(fresh_run)["weight files"] == (
        f"{FINAL_WEIGHTS_NAME}: fc2.bias holds NaN or infinity"
    )


# ---------------------------------------------------------------------------------------------
# No false failures: a kill while publishing over a set whose first epochs are the new one's.


def test_a_kill_while_publishing_over_a_shorter_run_of_the_same_seed_verifies(fresh_run: Path):
    from tests.test_faults import KILL_AT

    # SHORT's seed: its epochs 0..2 are the old set's, byte for byte; epoch 3 is new
    longer = ["--epochs", "3", "--batches-per-epoch", "5", "--device", "cpu"]
    arguments = [str(fresh_run), "replace", "epoch_3_weights.pth", "1", "after", *longer]
    done = forked.run(arguments, code=KILL_AT, env=ENV)
    assert done.returncode == -signal.SIGKILL, done.stderr
    report = verify(fresh_run, min_accuracy=0.0)
    assert report.passed, report.lines()
    assert "a run was killed while publishing this set" in report.lines()[0]


# ---------------------------------------------------------------------------------------------
# A disk that fills exactly at publishing: the old set stays, and the next run trains.


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MB tmpfs: room for two short sets."""
    with mounted_tmpfs(tmp_path, "8m") as mount:
        yield mount


@needs_root
def test_a_disk_full_at_publishing_leaves_nothing_to_publish_later(
    short_run: Path,
    tmpfs: Path,
    mnist,
    short_results,
    monkeypatch,
):
    from cnnlib import store

    out = Path(shutil.copytree(short_run, tmpfs / "run", symlinks=True))
    before = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}
    real_publish = store.publish

    def fill_then_publish(out_dir: Path, set_dir: Path) -> None:
        filler = tmpfs / "filler"
        with open(filler, "wb", buffering=0) as handle, pytest.raises(OSError):
            while True:
                handle.write(b"\0" * 4096)
        real_publish(out_dir, set_dir)

    monkeypatch.setattr(store, "publish", fill_then_publish)
    monkeypatch.setattr("cnnlib.pipeline.publish", fill_then_publish)
    with pytest.raises(OSError, match="No space left"):
        write_artifacts(short_results[:2], mnist, ONE_EPOCH, out)
    (tmpfs / "filler").unlink()
    assert not (out / SETS_DIR / "current").is_symlink()
    assert sorted(path.name for path in (out / SETS_DIR).iterdir()) == ["lock", "published.json"]
    assert {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()} == before
    assert verify(out, min_accuracy=0.0).passed


# ---------------------------------------------------------------------------------------------
# Any learning rate a student types is recorded exactly, and compared exactly.


@pytest.mark.parametrize("lr", [10**-2.5, 0.1 * 3, 3e-4, 0.0012345678901, 1e-320])
def test_any_learning_rate_is_accepted_and_recorded_exactly(lr: float):
    assert TrainConfig(lr=lr).lr == lr


def test_a_typed_learning_rate_round_trips_and_verify_compares_it_exactly(tmp_path: Path):
    from cnnlib.pipeline import ensure_artifacts

    config = TrainConfig(epochs=1, batches_per_epoch=2, lr=10**-2.5, device="cpu")
    out = ensure_artifacts(config, tmp_path / "run", progress=False)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["config"]["lr"] == 10**-2.5
    assert read_json(out)["metadata"]["config"]["lr"] == 10**-2.5
    assert verify(out, min_accuracy=0.0).passed
    before = (out / JSON_NAME).stat().st_mtime_ns
    ensure_artifacts(config, out, progress=False)  # the same config: reused
    assert (out / JSON_NAME).stat().st_mtime_ns == before
    # One ulp off in the JSON, manifest rehashed: the configurations differ, and verify says so.
    text = (out / JSON_NAME).read_text()
    nudged = repr(float(np.nextafter(10**-2.5, 1.0)))
    (out / JSON_NAME).unlink()
    (out / JSON_NAME).write_text(text.replace(f'"lr":{10**-2.5!r}', f'"lr":{nudged}'))
    rehash(out)
    assert check_short(out)["manifest"] == (
        f"{MANIFEST_NAME}: config differs from {JSON_NAME}'s metadata"
    )


def test_a_reader_waits_for_the_run_that_is_writing_and_then_reuses_its_set(tmp_path: Path):
    """As notebooks 03 and 04 do while 02 writes during `make data`: no BusyError."""
    from cnnlib.pipeline import ensure_artifacts
    from tests.test_faults import regenerate_command, sets_in

    out = tmp_path / "out"
    slow = TrainConfig(epochs=1, batches_per_epoch=300, seed=7, device="cpu")
    options = ["--epochs", "1", "--batches-per-epoch", "300", "--seed", "7", "--device", "cpu"]
    first = forked.start(regenerate_command(out, *options), env=ENV)
    while not sets_in(out):  # the first run holds the lock and is training
        assert first.poll() is None
        time.sleep(0.01)
    ensure_artifacts(slow, out, progress=False)
    assert first.wait(timeout=TIMEOUT) == 0
    assert sets_in(out) == [] and verify(out, min_accuracy=0.0).passed


def test_a_damaged_training_archive_stops_write_artifacts_before_staging(
    fresh_run: Path, tmp_path: Path, mnist, short_results
):
    """verify reads the validation images from the training archives: checked up front too."""
    from cnnlib.data import DataError

    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES:
        shutil.copy(DEFAULT_DATA_DIR / "MNIST" / "raw" / f"{name}.gz", raw)
    archive = raw / "train-labels-idx1-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:1000])
    with pytest.raises(DataError, match="is truncated or corrupt"):
        write_artifacts(short_results, mnist, SHORT, fresh_run, data_root=tmp_path / "data")
    assert list((fresh_run / SETS_DIR).glob("set-*")) == []
