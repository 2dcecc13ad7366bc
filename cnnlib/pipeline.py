"""The factory, the whole job in one call: data, training, export, then verification."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from cnnlib.data import DEFAULT_DATA_DIR, Mnist, load_mnist, read_split, vendored_file
from cnnlib.export import (
    FINAL_WEIGHTS_NAME,
    JSON_NAME,
    epoch_entry,
    epoch_weights_name,
    feature_map_input,
    json_end,
    json_epoch,
    json_start,
    state_dict_bytes,
)
from cnnlib.store import dir_manifest, discard, locked, prepare_output, publish, staging
from cnnlib.train import EpochResult, TrainConfig, train_epochs
from cnnlib.verify import DEFAULT_MIN_ACCURACY, Report, unchanged_since_written, verify

LONG_RUN_SECONDS = 180  # a run expected to take longer says so, with its estimate, at the start


@dataclass
class Summary:
    """What `regenerate` did: where, how well, how big, how long."""

    out_dir: Path
    final_test_accuracy: float
    files: dict[str, int]  # relative path -> bytes
    seconds: float
    report: Report
    published: bool  # False: the new set failed its checks, and DIR was left as it was
    had_set: bool = True  # did DIR hold a set before?

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
        if not self.published:
            lines.append(f"the new set was discarded: {kept(self.out_dir, self.had_set)}")
        lines.append(f"wall time: {self.seconds:.1f} s")
        return lines


class SetRejected(RuntimeError):
    """A new set failed verify and was discarded; the message names the check and what DIR
    still holds."""


def kept(out_dir: Path, had_set: bool) -> str:
    """What a folder holds after its new set was discarded, truthfully."""
    return f"{out_dir} still holds the previous set" if had_set else f"{out_dir} holds no set"


def default_min_accuracy(config: TrainConfig) -> float:
    """95% is promised for the default training length; shorter runs get integrity checks only."""
    full_length = TrainConfig(seed=config.seed, device=config.device)
    return DEFAULT_MIN_ACCURACY if config == full_length else 0.0


def duration(seconds: float) -> str:
    """3725 -> 'about 1 h 2 min', 150 -> 'about 2.5 min'."""
    if seconds >= 3600:
        return f"about {seconds // 3600:.0f} h {seconds % 3600 // 60:.0f} min"
    return f"about {seconds / 60:.1f} min"


class Watch:
    """Passes training's epochs on. Remembers the last one's test accuracy, and as soon as the
    first trained epoch is timed, says how long the whole run will take if that is long."""

    def __init__(self, config: TrainConfig, out_dir: Path) -> None:
        self.config = config
        self.out_dir = out_dir
        self.final_test_accuracy = 0.0

    def follow(self, epochs: Iterable[EpochResult]) -> Iterator[EpochResult]:
        start = time.perf_counter()
        for result in epochs:
            self.final_test_accuracy = result.test_accuracy
            if result.epoch == 0:
                untrained = time.perf_counter()
            elif result.epoch == 1:
                per_epoch = time.perf_counter() - untrained
                self.announce(untrained - start + per_epoch * self.config.epochs, per_epoch)
            yield result

    def announce(self, total: float, per_epoch: float) -> None:
        if total > LONG_RUN_SECONDS:
            tqdm.write(
                f"this run will take {duration(total)}: {self.config.epochs} epochs of "
                f"{per_epoch:.1f} s; Ctrl-C stops it and leaves {self.out_dir} as it was",
                file=sys.stderr,
            )


def check_data(data_root: Path) -> None:
    """DataError, before any training, when the vendored archives that `verify` reads are
    missing or damaged (training may read intact extracted copies beside them)."""
    for split in ("train", "t10k"):
        read_split(data_root, split, read=vendored_file)


def stage(
    results: Iterable[EpochResult], data: Mnist, config: TrainConfig, out_dir: Path
) -> tuple[Path, dict[str, int]]:
    """Write a new set beside the one DIR shows, each epoch as `results` yields it (training, when
    it is `train_epochs`: this loop drives it); return the set's folder and {name: bytes}. The
    caller holds the lock."""
    image, mistaken = feature_map_input(data), set()
    with staging(out_dir) as staged:
        with staged.stream(JSON_NAME) as write_json:
            write_json(json_start(data).encode())
            for result in results:
                entry = epoch_entry(result, image, data, data.test_images)
                mistaken.update(mistake["index"] for mistake in entry["mistakes"])
                write_json(json_epoch(entry).encode())
                staged.write(epoch_weights_name(result.epoch), state_dict_bytes(result.state_dict))
                last = result
            write_json(json_end(last, data, config, mistaken).encode())
        staged.write(FINAL_WEIGHTS_NAME, state_dict_bytes(last.state_dict))
        return staged.folder, staged.seal(config.as_dict())


def verify_then_publish(
    set_dir: Path, out_dir: Path, data_root: Path, min_accuracy: float
) -> tuple[Report, bool]:
    """Verify a staged set and publish it only if every check but the accuracy threshold
    passed; else discard it. The caller holds the lock. Returns the report and whether the set
    was published."""
    try:
        report = verify(set_dir, min_accuracy=min_accuracy, data_root=data_root)
        report.directory = out_dir
        intact = all(check.passed for check in report.checks if check.name != "accuracy")
    except BaseException:  # Ctrl-C while verifying: the staged set goes
        discard(set_dir)
        raise
    if intact:
        publish(out_dir, set_dir)
    else:
        discard(set_dir)
    return report, intact


def write_artifacts(
    results: Iterable[EpochResult],
    data: Mnist,
    config: TrainConfig,
    out_dir: Path,
    force: bool = False,
    data_root: Path = DEFAULT_DATA_DIR,
) -> dict[str, int]:
    """Write every artifact into `out_dir` as a new set, verify it, and only then make it the
    set `out_dir` shows; return {relative path: size in bytes}. `results` may be a generator:
    each epoch is written away as it arrives. SetRejected, `out_dir` left as it was, when the
    new set fails a check other than the accuracy threshold."""
    out_dir = Path(out_dir)
    prepare_output(out_dir, force)
    check_data(data_root)
    with locked(out_dir):
        had_set = dir_manifest(out_dir) is not None
        set_dir, files = stage(results, data, config, out_dir)
        report, published = verify_then_publish(set_dir, out_dir, data_root, min_accuracy=0.0)
    if not published:
        failed = next(check for check in report.checks if not check.passed)
        raise SetRejected(
            f"the new set failed verify ({failed.name}: {failed.detail}) and was discarded; "
            f"{kept(out_dir, had_set)}"
        )
    return files


def regenerate(
    config: TrainConfig = TrainConfig(),
    out_dir: Path = DEFAULT_DATA_DIR,
    data_root: Path = DEFAULT_DATA_DIR,
    progress: bool = True,
    min_accuracy: float | None = None,
    force: bool = False,
) -> Summary:
    """Train from scratch, write every artifact as a new set, verify it, and only then make it
    the set `out_dir` shows. A set that fails a check other than the accuracy threshold is
    discarded, and `out_dir` keeps its previous set."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    if min_accuracy is None:
        min_accuracy = default_min_accuracy(config)
    prepare_output(out_dir, force)
    check_data(data_root)
    with locked(out_dir):
        had_set = dir_manifest(out_dir) is not None
        data = load_mnist(data_root)
        watch = Watch(config, out_dir)
        set_dir, files = stage(
            watch.follow(train_epochs(config, data, progress)), data, config, out_dir
        )
        del data  # freed before verify reads the files back
        report, published = verify_then_publish(set_dir, out_dir, data_root, min_accuracy)
    seconds = time.perf_counter() - start
    return Summary(out_dir, watch.final_test_accuracy, files, seconds, report, published, had_set)


def ensure_artifacts(
    config: TrainConfig = TrainConfig(),
    out_dir: Path = DEFAULT_DATA_DIR,
    data_root: Path = DEFAULT_DATA_DIR,
    progress: bool = True,
) -> Path:
    """Reuse the artifacts in `out_dir` when they are a complete set written for `config`,
    unchanged since; otherwise regenerate them. Lets any notebook run on its own."""
    out_dir = Path(out_dir)
    if unchanged_since_written(out_dir, config):
        return out_dir
    prepare_output(out_dir)
    # A run writing DIR (notebook 02 during `make data`) is waited for; a publish that a killed
    # run left half done is finished.
    with locked(out_dir, wait=True):
        reuse = unchanged_since_written(out_dir, config)
    if not reuse:
        regenerate(config, out_dir, data_root, progress)
    return out_dir
