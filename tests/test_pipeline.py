"""The pipeline: `ensure_artifacts` reuses a complete matching set and regenerates anything else."""

from pathlib import Path

from cnnlib.export import JSON_NAME, MANIFEST_NAME
from cnnlib.pipeline import default_min_accuracy, ensure_artifacts
from cnnlib.train import TrainConfig
from tests.conftest import SHORT


def test_a_complete_set_from_the_same_config_is_reused(fresh_run: Path):
    before = (fresh_run / JSON_NAME).stat().st_mtime_ns
    ensure_artifacts(SHORT, fresh_run, progress=False)
    assert (fresh_run / JSON_NAME).stat().st_mtime_ns == before


def test_a_damaged_manifest_means_regenerate(fresh_run: Path, short_run: Path):
    (fresh_run / MANIFEST_NAME).write_text("{not json")
    ensure_artifacts(SHORT, fresh_run, progress=False)
    assert (fresh_run / MANIFEST_NAME).read_bytes() == (short_run / MANIFEST_NAME).read_bytes()


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
