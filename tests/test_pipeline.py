"""The pipeline: `ensure_artifacts` reuses a complete matching set and regenerates anything else;
epochs go to disk as they come; a long run says so at its start."""

import dataclasses
import json
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from cnnlib.data import DEFAULT_DATA_DIR, RAW_FILES, DataError
from cnnlib.export import JSON_NAME, MANIFEST_NAME, epoch_weights_name
from cnnlib.pipeline import (
    SetRejected,
    default_min_accuracy,
    ensure_artifacts,
    regenerate,
    unchanged_since_written,
    write_artifacts,
)
from cnnlib.store import SETS_DIR
from cnnlib.train import TrainConfig
from cnnlib.verify import verify
from tests import forked
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


# `python -m cnnlib ...` where any run expected to take more than a second counts as long: the
# notice comes after epoch 1 of a run of small epochs on any machine, however fast.
LONG_AFTER_ONE_SECOND = """
import sys
from cnnlib import pipeline
from cnnlib.__main__ import main

pipeline.LONG_RUN_SECONDS = 1
sys.exit(main(sys.argv[1:]))
"""


def test_a_long_run_says_so_up_front_even_when_quiet(tmp_path: Path):
    out = tmp_path / "out"
    long_run = ["--epochs", "200", "--batches-per-epoch", "5", "--device", "cpu", "--quiet"]
    process = forked.start(["regenerate", "--out", str(out), *long_run], LONG_AFTER_ONE_SECOND)
    while "\n" not in process.err.read_text():  # the notice, after two epochs of 200
        assert process.poll() is None, process.err.read_text()
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate()
    notice, rest = stderr.split("\n", 1)
    assert re.fullmatch(
        r"this run will take about (\d+\.\d min|\d+ h \d+ min): 200 epochs of \d+\.\d s; "
        rf"Ctrl-C stops it and leaves {re.escape(str(out))} as it was",
        notice,
    )
    assert process.returncode == 1 and stdout == ""
    assert rest == f"python -m cnnlib regenerate: error: interrupted; {out} was left as it was\n"
    assert not (out / JSON_NAME).exists() and list((out / SETS_DIR).glob("set-*")) == []


def files_in(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def artifacts_only(files: dict[Path, bytes]) -> dict[Path, bytes]:
    return {path: content for path, content in files.items() if SETS_DIR not in path.parts}


def test_a_damaged_test_archive_stops_regenerate_before_any_training(fresh_run: Path, tmp_path):
    data_root = tmp_path / "data"
    raw = data_root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES:
        shutil.copyfile(DEFAULT_DATA_DIR / "MNIST" / "raw" / f"{name}.gz", raw / f"{name}.gz")
    archive = raw / "t10k-images-idx3-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:1000])
    before = files_in(fresh_run)
    other = TrainConfig(epochs=1, batches_per_epoch=2, device="cpu")
    with pytest.raises(DataError, match=f"^{re.escape(str(archive))} is truncated or corrupt"):
        regenerate(other, fresh_run, data_root=data_root, progress=False)
    assert files_in(fresh_run) == before
    assert list((fresh_run / SETS_DIR).glob("set-*")) == []  # no set was begun


@pytest.mark.parametrize("had_set", [True, False])
def test_a_new_set_that_fails_verify_is_never_published_and_the_message_is_true(
    fresh_run: Path, tmp_path: Path, mnist, short_results, had_set: bool
):
    out = fresh_run if had_set else tmp_path / "empty"
    out.mkdir(exist_ok=True)
    before = files_in(out)
    inverted = dataclasses.replace(mnist, test_pixels=255 - mnist.test_pixels)
    with pytest.raises(SetRejected) as rejected:
        write_artifacts(short_results, inverted, SHORT, out)
    kept = f"{out} still holds the previous set" if had_set else f"{out} holds no set"
    assert str(rejected.value).startswith(
        f"the new set failed verify (samples: {JSON_NAME}: samples[0], samples[1]"
    )
    assert str(rejected.value).endswith(f") and was discarded; {kept}")
    assert artifacts_only(files_in(out)) == artifacts_only(before)
    assert list((out / SETS_DIR).glob("set-*")) == []


def test_a_set_written_by_an_older_cnnlib_is_not_reused(fresh_run: Path) -> None:
    """A set without this cnnlib's schema version (say, one written before the validation split)
    is trained again by the notebooks, not reused for the same configuration."""
    assert unchanged_since_written(fresh_run, SHORT)
    manifest_path = fresh_run / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    del manifest["schema_version"]
    manifest_path.write_text(json.dumps(manifest))
    assert not unchanged_since_written(fresh_run, SHORT)
