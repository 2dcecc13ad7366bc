"""Stage 5, the whole job in one call: data, training, export, then verification."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from cnnlib.data import DEFAULT_DATA_DIR, load_mnist
from cnnlib.export import MANIFEST_NAME, check_writable, write_artifacts
from cnnlib.train import TrainConfig, train
from cnnlib.verify import DEFAULT_MIN_ACCURACY, Report, verify


@dataclass
class Summary:
    """What `regenerate` did: where, how well, how big, how long."""

    out_dir: Path
    final_test_accuracy: float
    files: dict[str, int]  # relative path -> bytes
    seconds: float
    report: Report

    def lines(self) -> list[str]:
        weights = {name: size for name, size in self.files.items() if name.startswith("epoch_")}
        others = {name: size for name, size in self.files.items() if name not in weights}
        lines = [
            f"final test accuracy: {self.final_test_accuracy:.2f}%",
            f"files in {self.out_dir}:",
        ]
        lines += [f"  {name:<34}{size / 1e6:8.2f} MB" for name, size in others.items()]
        lines.append(
            f"  {'epoch_weights/ (' + str(len(weights)) + ' files)':<34}"
            f"{sum(weights.values()) / 1e6:8.2f} MB"
        )
        passed = sum(check.passed for check in self.report.checks)
        lines.append(
            f"verify: {passed}/{len(self.report.checks)} checks passed"
            + ("" if self.report.passed else " -- FAILED, see above")
        )
        lines.append(f"wall time: {self.seconds:.1f} s")
        return lines


def default_min_accuracy(config: TrainConfig) -> float:
    """95% is promised for the default training length; shorter runs get integrity checks only."""
    full_length = TrainConfig(seed=config.seed, device=config.device)
    return DEFAULT_MIN_ACCURACY if config == full_length else 0.0


def train_and_export(
    config: TrainConfig, out_dir: Path, data_root: Path, progress: bool
) -> tuple[float, dict[str, int]]:
    """Load, train, write; return the final test accuracy and the files written.

    The data and the snapshots are freed on return, before `verify` reads the files back.
    """
    data = load_mnist(data_root)
    results = train(config, data, progress=progress)
    return results[-1].test_accuracy, write_artifacts(results, data, config, out_dir)


def regenerate(
    config: TrainConfig = TrainConfig(),
    out_dir: Path = DEFAULT_DATA_DIR,
    data_root: Path = DEFAULT_DATA_DIR,
    progress: bool = True,
    min_accuracy: float | None = None,
) -> Summary:
    """Train from scratch, write every artifact into `out_dir`, then verify them."""
    start = time.perf_counter()
    check_writable(out_dir)
    final_test_accuracy, files = train_and_export(config, out_dir, data_root, progress)
    if min_accuracy is None:
        min_accuracy = default_min_accuracy(config)
    report = verify(out_dir, min_accuracy=min_accuracy, data_root=data_root)
    return Summary(Path(out_dir), final_test_accuracy, files, time.perf_counter() - start, report)


def made_with(config: TrainConfig, out_dir: Path) -> bool:
    """Does the manifest in `out_dir` say its artifacts come from `config`?"""
    try:
        manifest = json.loads((Path(out_dir) / MANIFEST_NAME).read_text())
        return manifest["config"] == config.as_dict()
    except (OSError, ValueError, KeyError, TypeError):  # absent, damaged or foreign: no
        return False


def ensure_artifacts(
    config: TrainConfig = TrainConfig(),
    out_dir: Path = DEFAULT_DATA_DIR,
    data_root: Path = DEFAULT_DATA_DIR,
    progress: bool = True,
) -> Path:
    """Reuse the artifacts in `out_dir` when they are complete and come from `config`;
    otherwise regenerate them. Lets any notebook run on its own."""
    if made_with(config, out_dir) and verify(out_dir, min_accuracy=0.0, data_root=data_root).passed:
        return Path(out_dir)
    regenerate(config, out_dir, data_root, progress)
    return Path(out_dir)
