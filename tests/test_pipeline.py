"""The pipeline: `ensure_artifacts` reuses a complete matching set and regenerates anything else;
epochs go to disk as they come; a long run says so at its start."""

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from cnnlib.data import DEFAULT_DATA_DIR, RAW_FILES, prepare_raw_files
from cnnlib.export import JSON_NAME, MANIFEST_NAME, epoch_weights_name
from cnnlib.pipeline import default_min_accuracy, ensure_artifacts, regenerate
from cnnlib.store import SETS_DIR, write_artifacts
from cnnlib.train import TrainConfig
from cnnlib.verify import verify
from tests.conftest import SHORT


def test_a_complete_set_from_the_same_config_is_reused(fresh_run: Path):
    before = (fresh_run / JSON_NAME).stat().st_mtime_ns
    ensure_artifacts(SHORT, fresh_run, progress=False)
    assert (fresh_run / JSON_NAME).stat().st_mtime_ns == before


def test_a_damaged_manifest_means_regenerate(fresh_run: Path, short_run: Path):
    (fresh_run / MANIFEST_NAME).write_text("{not json")
    ensure_artifacts(SHORT, fresh_run, progress=False)
    assert (fresh_run / MANIFEST_NAME).read_bytes() == (short_run / MANIFEST_NAME).read_bytes()


def test_a_file_changed_since_it_was_written_means_regenerate(fresh_run: Path, short_run: Path):
    snapshot = fresh_run / epoch_weights_name(SHORT.epochs)
    content = bytearray(snapshot.read_bytes())
    content[-100] ^= 1  # same size, one bit off: only its sha-256 can tell
    snapshot.write_bytes(content)
    ensure_artifacts(SHORT, fresh_run, progress=False)
    assert snapshot.read_bytes() == (short_run / epoch_weights_name(SHORT.epochs)).read_bytes()
    assert verify(fresh_run, min_accuracy=0).passed


def test_another_config_means_regenerate(fresh_run: Path):
    other = TrainConfig(epochs=1, batches_per_epoch=2, device="cpu")
    ensure_artifacts(other, fresh_run, progress=False)
    assert sorted(path.name for path in (fresh_run / "epoch_weights").iterdir()) == [
        "epoch_0_weights.pth",
        "epoch_1_weights.pth",
    ]


def test_95_percent_is_expected_from_the_default_length_only():
    assert default_min_accuracy(TrainConfig()) == 95.0
    assert default_min_accuracy(TrainConfig(seed=3, device="cpu")) == 95.0
    assert default_min_accuracy(SHORT) == 0.0


def test_each_epoch_is_on_disk_before_the_next_one_is_trained(tmp_path: Path, mnist, short_results):
    out, checked = tmp_path / "out", []

    def epochs():
        for result in short_results:
            if result.epoch > 0:
                (staging,) = (out / SETS_DIR).glob("set-*")
                assert (staging / epoch_weights_name(result.epoch - 1)).is_file()
                assert (staging / JSON_NAME).stat().st_size > 0
                checked.append(result.epoch)
            yield result

    write_artifacts(epochs(), mnist, SHORT, out)
    assert checked == [1, 2]
    assert verify(out, min_accuracy=0.0).passed


def test_a_long_run_says_so_up_front_even_when_quiet(tmp_path: Path):
    out = tmp_path / "out"
    long_run = ["--epochs", "200", "--batches-per-epoch", "300", "--device", "cpu", "--quiet"]
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnlib", "regenerate", "--out", str(out), *long_run],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    notice = process.stderr.readline()  # after two epochs of 200
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=300)
    assert re.fullmatch(
        r"this run will take about (\d+\.\d min|\d+ h \d+ min): 200 epochs of \d+\.\d s; "
        rf"Ctrl-C stops it and leaves {re.escape(str(out))} as it was\n",
        notice,
    )
    assert process.returncode == 1 and stdout == ""
    assert stderr == f"python -m cnnlib regenerate: error: interrupted; {out} was left as it was\n"
    assert not (out / JSON_NAME).exists() and list((out / SETS_DIR).glob("set-*")) == []


def test_a_new_set_that_fails_its_checks_never_replaces_the_old_one(fresh_run: Path, tmp_path):
    # Training reads the intact extracted files; verify reads the archives, one of them damaged.
    data_root = tmp_path / "data"
    raw = data_root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    prepare_raw_files(DEFAULT_DATA_DIR)
    for name in RAW_FILES:
        for file_name in (name, f"{name}.gz"):
            shutil.copy(DEFAULT_DATA_DIR / "MNIST" / "raw" / file_name, raw)
    archive = raw / "t10k-images-idx3-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:1000])
    before = {path: path.read_bytes() for path in fresh_run.rglob("*") if path.is_file()}
    other = TrainConfig(epochs=1, batches_per_epoch=2, device="cpu")
    summary = regenerate(other, fresh_run, data_root=data_root, progress=False)
    assert not summary.report.passed and not summary.published
    assert f"the new set was discarded: {fresh_run} still holds the previous one" in (
        summary.lines()
    )
    after = {path: path.read_bytes() for path in fresh_run.rglob("*") if path.is_file()}
    assert after == before
