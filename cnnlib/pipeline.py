"""The factory, the whole job in one call, one way: data -> train -> export -> store -> verify."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from cnnlib import export
from cnnlib.data import DEFAULT_DATA_DIR, Mnist, held_out, load_mnist
from cnnlib.reading import VerifyError
from cnnlib.setreader import SetReader
from cnnlib.store import dir_manifest, discard, locked, prepare_output, publish, staging
from cnnlib.train import EpochResult, TrainConfig, train_epochs
from cnnlib.verify import DEFAULT_MIN_ACCURACY, Report, verify

LONG_RUN_SECONDS = 180  # a run expected to take longer says so at the start, with its estimate


class SetRejected(RuntimeError):
    """A new set failed verify and was discarded; the message names the check and what DIR holds."""


@dataclass
class Summary:
    """What `regenerate` did: where, how well, how big, how long."""

    out_dir: Path
    final_test_accuracy: float
    files: dict[str, int]  # relative path -> bytes
    seconds: float
    report: Report
    published: bool  # False: the new set failed its checks, and DIR was left as it was
    kept: str  # what DIR holds if the new set is discarded, truthfully

    def lines(self) -> list[str]:
        weights = {name: size for name, size in self.files.items() if name.startswith("epoch_")}
        others = [name for name in self.files if name not in weights]
        folder = f"epoch_weights/ ({len(weights)} files)"
        passed = sum(check.passed for check in self.report.checks)
        failed = "" if self.report.passed else " -- FAILED, see above"
        lines = [
            f"final test accuracy: {self.final_test_accuracy:.2f}%",
            f"files in {self.out_dir}:",
            *[f"  {name:<34}{self.files[name] / 1e6:8.2f} MB" for name in others],
            f"  {folder:<34}{sum(weights.values()) / 1e6:8.2f} MB",
            f"verify: {passed}/{len(self.report.checks)} checks passed{failed}",
        ]
        if not self.published:
            lines.append(f"the new set was discarded: {self.kept}")
        return [*lines, f"wall time: {self.seconds:.1f} s"]


def default_min_accuracy(config: TrainConfig) -> float:
    """95% is promised for the default training length; shorter runs get integrity checks only."""
    full_length = TrainConfig(seed=config.seed, device=config.device)
    return DEFAULT_MIN_ACCURACY if config == full_length else 0.0


def announced(epochs: Iterable[EpochResult], config: TrainConfig, out_dir: Path) -> Iterator:
    """Training's epochs, passed on; after epoch 1, a run longer than LONG_RUN_SECONDS says so."""
    start = time.perf_counter()
    for result in epochs:
        if result.epoch == 0:
            untrained = time.perf_counter()
        elif result.epoch == 1:
            per_epoch = time.perf_counter() - untrained
            total = untrained - start + per_epoch * config.epochs
            hours, minutes = divmod(total / 60, 60)
            about = f"{hours:.0f} h {minutes:.0f} min" if hours >= 1 else f"{total / 60:.1f} min"
            if total > LONG_RUN_SECONDS:
                tqdm.write(
                    f"this run will take about {about}: {config.epochs} epochs of "
                    f"{per_epoch:.1f} s; Ctrl-C stops it and leaves {out_dir} as it was",
                    file=sys.stderr,
                )
        yield result


def stage(
    results: Iterable[EpochResult], data: Mnist, config: TrainConfig, out_dir: Path
) -> tuple[Path, dict[str, int], EpochResult]:
    """Write a new set beside the one DIR shows (the caller holds the lock), each epoch as
    `results` yields it; return its folder, {name: bytes} and the last epoch."""
    mistaken: set[int] = set()
    with staging(out_dir) as staged:
        with staged.stream(export.JSON_NAME) as write_json:
            write_json(export.json_start(data))
            for result in results:
                entry = export.epoch_entry(result, data)
                mistaken.update(mistake["index"] for mistake in entry["mistakes"])
                write_json(export.json_epoch(entry))
                weights = export.state_dict_bytes(result.state_dict)
                staged.write(export.epoch_weights_name(result.epoch), weights)
                last = result
            write_json(export.json_end(last, data, config, mistaken))
        staged.write(export.FINAL_WEIGHTS_NAME, export.state_dict_bytes(last.state_dict))
        return staged.folder, staged.seal(config.as_dict()), last


def write_set(
    results: Iterable[EpochResult],
    data: Mnist,
    config: TrainConfig,
    out_dir: Path,
    data_root: Path,
    min_accuracy: float,
) -> Summary:
    """Stage `results` as a new set of `out_dir` (prepared), verify it, and publish it only if
    every check but the accuracy threshold passed, else discard it."""
    start = time.perf_counter()
    held_out(data_root)  # the archives verify reads, checked before any training (DataError)
    with locked(out_dir):
        had_set = dir_manifest(out_dir) is not None
        kept = f"{out_dir} still holds the previous set" if had_set else f"{out_dir} holds no set"
        set_dir, files, last = stage(results, data, config, out_dir)
        try:
            report = verify(set_dir, min_accuracy=min_accuracy, data_root=data_root)
        except BaseException:  # Ctrl-C while verifying: the staged set goes
            discard(set_dir)
            raise
        report.directory = out_dir
        published = all(check.passed for check in report.checks if check.name != "accuracy")
        if published:
            publish(out_dir, set_dir)
        else:
            discard(set_dir)
    seconds = time.perf_counter() - start
    return Summary(out_dir, last.test_accuracy, files, seconds, report, published, kept)


def write_artifacts(
    results: Iterable[EpochResult],
    data: Mnist,
    config: TrainConfig,
    out_dir: Path,
    force: bool = False,
    data_root: Path = DEFAULT_DATA_DIR,
) -> dict[str, int]:
    """Write `results` as a new set of `out_dir`, verify it, then publish it; return {path: bytes}.
    SetRejected, `out_dir` left as it was, when it fails a check but the accuracy threshold."""
    out_dir = Path(out_dir)
    prepare_output(out_dir, force)
    summary = write_set(results, data, config, out_dir, data_root, min_accuracy=0.0)
    if not summary.published:
        failed = next(check for check in summary.report.checks if not check.passed)
        raise SetRejected(
            f"the new set failed verify ({failed.name}: {failed.detail}) and was discarded; "
            f"{summary.kept}"
        )
    return summary.files


def regenerate(
    config: TrainConfig = TrainConfig(),
    out_dir: Path = DEFAULT_DATA_DIR,
    data_root: Path = DEFAULT_DATA_DIR,
    progress: bool = True,
    min_accuracy: float | None = None,
    force: bool = False,
) -> Summary:
    """Train from scratch, then as `write_artifacts`, but a set that fails verify is reported in the
    Summary (`published` False)."""
    out_dir = Path(out_dir)
    prepare_output(out_dir, force)  # before the data is read: a wrong folder, at once
    data = load_mnist(data_root)
    epochs = announced(train_epochs(config, data, progress), config, out_dir)
    if min_accuracy is None:
        min_accuracy = default_min_accuracy(config)
    return write_set(epochs, data, config, out_dir, data_root, min_accuracy)


def unchanged_since_written(out_dir: Path, config: TrainConfig) -> bool:
    """Does `out_dir` show a complete set written for `config`, each file the bytes its manifest
    lists? (Whether it is right is `verify`'s question.)"""
    artifacts = SetReader(out_dir)
    with suppress(VerifyError):
        manifest = artifacts.manifest()
        return (
            artifacts.interrupted is None  # the files DIR shows are a mix until finished
            and manifest.get("schema_version") == export.SCHEMA_VERSION  # not an older cnnlib's
            and manifest["config"] == config.as_dict()
            and artifacts.consistent()
        )
    return False


def ensure_artifacts(
    config: TrainConfig = TrainConfig(),
    out_dir: Path = DEFAULT_DATA_DIR,
    data_root: Path = DEFAULT_DATA_DIR,
    progress: bool = True,
) -> Path:
    """Reuse the set in `out_dir` when it is complete, written for `config` and unchanged since;
    otherwise regenerate it. Lets any notebook run on its own."""
    out_dir = Path(out_dir)
    if not unchanged_since_written(out_dir, config):
        prepare_output(out_dir)
        # A run writing DIR (notebook 02 in `make data`) is waited for; a killed run's half-done
        # publish is finished.
        with locked(out_dir, wait=True):
            reuse = unchanged_since_written(out_dir, config)
        if not reuse:
            regenerate(config, out_dir, data_root, progress)
    return out_dir
