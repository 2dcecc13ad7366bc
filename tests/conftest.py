"""Shared fixtures: the MNIST data in memory, and one short training run written to disk."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cnnlib.data import Mnist, load_mnist
from cnnlib.export import write_artifacts
from cnnlib.train import EpochResult, TrainConfig, train


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """nbval's notebook cells first, and all in one pytest-xdist worker (`--dist loadgroup`), in
    order: 02 writes data/, which 03 and 04 read. Everything else spreads over the workers."""
    notebooks = [item for item in items if item.path.suffix == ".ipynb"]
    for item in notebooks:
        item.add_marker(pytest.mark.xdist_group("notebooks"))
    items[:] = notebooks + [item for item in items if item.path.suffix != ".ipynb"]


# Short enough for a test suite, long enough to move the weights: 2 epochs of 5 batches.
SHORT = TrainConfig(epochs=2, batches_per_epoch=5, device="cpu")


@pytest.fixture(scope="session")
def mnist() -> Mnist:
    return load_mnist()


@pytest.fixture(scope="session")
def short_results(mnist: Mnist) -> list[EpochResult]:
    return train(SHORT, mnist, progress=False)


@pytest.fixture(scope="session")
def short_run(tmp_path_factory: pytest.TempPathFactory, mnist: Mnist, short_results) -> Path:
    """A complete artifact set from SHORT; copy it (see `fresh_run`) before damaging it."""
    out = tmp_path_factory.mktemp("short_run")
    write_artifacts(short_results, mnist, SHORT, out)
    return out


@pytest.fixture
def fresh_run(short_run: Path, tmp_path: Path) -> Path:
    """A private copy of the short run, free to be modified by one test."""
    return Path(shutil.copytree(short_run, tmp_path / "run"))
