"""The lecture's tools, hyperparameters shown: a small grid of short trainings (learning rate x
optimizer, and a few batch sizes), each scored on the validation set, never on the test set.

The grid is computed once (on one thread, about a second a cell) and kept as a small JSON file
in `data/.cache/`, named by a hash of everything that decides it, so a notebook reads it back
instead of training again; `make data` or the first notebook run on a fresh clone computes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from cnnlib.data import (
    DEFAULT_DATA_DIR,
    SPLIT_SEED,
    VALIDATION_SIZE,
    Mnist,
    load_mnist,
    validation_split,
)
from cnnlib.files import atomic_write_bytes
from cnnlib.lecture.experiments import train_model
from cnnlib.model import CNN
from cnnlib.train import TrainConfig, evaluate, single_threaded

LEARNING_RATES = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
OPTIMIZERS = ("Adam", "SGD")  # SGD: plain, no momentum, as in the textbook update w -= lr * grad
BATCH_SIZES = (16, 64, 128)  # at the lecture's optimizer and learning rate, Adam and 1e-3
DEFAULT_BATCH_SIZE = 64
STEPS = 300  # per cell: a few hundred steps show which settings learn, at a second a cell
GRID_SEED = 0
CACHE_DIR = DEFAULT_DATA_DIR / ".cache"


@dataclass(frozen=True)
class Cell:
    """One short training of the grid and its score on the validation set."""

    optimizer: str
    lr: float
    batch_size: int
    steps: int
    validation_accuracy: float  # percent of the 5,000 held-out training images
    validation_loss: float


def grid_settings() -> list[tuple[str, float, int]]:
    """(optimizer, lr, batch size) of every cell: each optimizer at each learning rate with the
    default batch size, then the other batch sizes at Adam and 1e-3."""
    cells = [(name, lr, DEFAULT_BATCH_SIZE) for name in OPTIMIZERS for lr in LEARNING_RATES]
    cells += [("Adam", 1e-3, size) for size in BATCH_SIZES if size != DEFAULT_BATCH_SIZE]
    return cells


def train_cell(
    data: Mnist,
    optimizer: str,
    lr: float,
    batch_size: int,
    steps: int = STEPS,
    seed: int = GRID_SEED,
) -> Cell:
    """Train a fresh CNN for `steps` steps with these settings and score it on the validation
    set: one epoch of the lecture's own loop (`experiments.train_model`), the same shuffles."""
    config = TrainConfig(
        epochs=1, batches_per_epoch=steps, batch_size=batch_size, lr=lr, seed=seed, device="cpu"
    )
    model = train_model(CNN, config, data, optimizer=optimizer)
    held_out = validation_split(len(data.train_labels))[1]
    with single_threaded():
        loss, accuracy = evaluate(model, data.train_pixels[held_out], data.train_labels[held_out])
    return Cell(optimizer, lr, batch_size, steps, accuracy, loss)


def grid_key(steps: int = STEPS, seed: int = GRID_SEED) -> dict[str, object]:
    """Everything that decides the grid's numbers (the machine aside)."""
    return {
        "cells": grid_settings(),
        "steps": steps,
        "seed": seed,
        "validation": {"size": VALIDATION_SIZE, "split_seed": SPLIT_SEED},
        "torch": torch.__version__,
        "loop": "cnnlib.train.fit, epoch 1 of its shuffles",  # how a cell trains
    }


def cache_path(key: dict[str, object], cache_dir: Path = CACHE_DIR) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"hyperparameter-grid-{digest}.json"


def read_cached(path: Path, key: dict[str, object]) -> list[Cell] | None:
    """The cells stored at `path` for exactly `key`, or None (missing, damaged, another key)."""
    try:
        stored = json.loads(path.read_text())
        if stored["key"] != json.loads(json.dumps(key)):
            return None
        return [Cell(**cell) for cell in stored["cells"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def hyperparameter_grid(
    data: Mnist | None = None,
    steps: int = STEPS,
    seed: int = GRID_SEED,
    cache_dir: Path = CACHE_DIR,
    progress: bool = True,
) -> list[Cell]:
    """Every cell of the grid, read from the cache when it holds this grid, else trained now
    (`data` loaded if not given) and cached for next time."""
    key = grid_key(steps, seed)
    path = cache_path(key, cache_dir)
    cells = read_cached(path, key)
    if cells is not None:
        return cells
    data = data if data is not None else load_mnist()
    settings = grid_settings()
    cells = [
        train_cell(data, *setting, steps=steps, seed=seed)
        for setting in tqdm(settings, desc="hyperparameter grid", unit="cell", disable=not progress)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"key": key, "cells": [asdict(cell) for cell in cells]}
    atomic_write_bytes(path, json.dumps(content, indent=1).encode())
    return cells


def best_cell(cells: list[Cell]) -> Cell:
    """The cell with the highest validation accuracy (the first of equals)."""
    return max(cells, key=lambda cell: cell.validation_accuracy)


def find(
    cells: list[Cell], optimizer: str, lr: float, batch_size: int = DEFAULT_BATCH_SIZE
) -> Cell:
    """The cell of these settings."""
    return next(
        cell
        for cell in cells
        if (cell.optimizer, cell.lr, cell.batch_size) == (optimizer, lr, batch_size)
    )
