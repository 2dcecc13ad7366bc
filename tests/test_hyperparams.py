"""cnnlib.lecture.hyperparams: the grid of short trainings, scored on the validation set, cached
by its configuration; and its figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from matplotlib.lines import Line2D

from cnnlib.lecture import hyperparams, plots
from cnnlib.lecture.hyperparams import Cell


def test_a_cell_is_seeded_and_scored_on_the_5000_validation_images(mnist) -> None:
    first = hyperparams.train_cell(mnist, "SGD", 0.1, 32, steps=5)
    assert first == hyperparams.train_cell(mnist, "SGD", 0.1, 32, steps=5)
    assert (first.optimizer, first.lr, first.batch_size, first.steps) == ("SGD", 0.1, 32, 5)
    right = first.validation_accuracy * 5_000 / 100
    assert right == pytest.approx(round(right))
    assert first != hyperparams.train_cell(mnist, "Adam", 0.1, 32, steps=5)


def test_the_grid_is_each_optimizer_at_each_rate_and_three_batch_sizes() -> None:
    settings = hyperparams.grid_settings()
    assert len(settings) == len(set(settings)) == 2 * 5 + 2
    assert {lr for _, lr, _ in settings} == {1e-5, 1e-4, 1e-3, 1e-2, 1e-1}
    assert {size for name, lr, size in settings if (name, lr) == ("Adam", 1e-3)} == {16, 64, 128}


def test_the_grid_is_computed_once_then_read_from_its_cache(mnist, tmp_path: Path) -> None:
    cells = hyperparams.hyperparameter_grid(mnist, steps=2, cache_dir=tmp_path, progress=False)
    assert len(cells) == len(hyperparams.grid_settings())
    (path,) = tmp_path.iterdir()
    assert path == hyperparams.cache_path(hyperparams.grid_key(steps=2), tmp_path)
    # read back, not retrained: no data needed, the same cells
    assert hyperparams.hyperparameter_grid(None, steps=2, cache_dir=tmp_path) == cells
    assert hyperparams.cache_path(hyperparams.grid_key(steps=3), tmp_path) != path


@pytest.mark.parametrize("damage", ["{not json", '{"key": {}, "cells": []}'])
def test_a_damaged_or_foreign_cache_file_is_ignored(tmp_path: Path, damage: str) -> None:
    key = hyperparams.grid_key(steps=2)
    path = hyperparams.cache_path(key, tmp_path)
    path.write_text(damage)
    assert hyperparams.read_cached(path, key) is None
    good = {"key": key, "cells": [vars(Cell("Adam", 1e-3, 64, 2, 50.0, 1.0))]}
    path.write_text(json.dumps(good))
    assert hyperparams.read_cached(path, key) == [Cell("Adam", 1e-3, 64, 2, 50.0, 1.0)]


def made_up_grid() -> list[Cell]:
    accuracy = {1e-5: 20.0, 1e-4: 80.0, 1e-3: 94.0, 1e-2: 95.0, 1e-1: 10.0}
    return [
        Cell(name, lr, size, 300, accuracy[lr] - (30 if name == "SGD" else 0), 1.0)
        for name, lr, size in hyperparams.grid_settings()
    ]


def test_best_and_find() -> None:
    cells = made_up_grid()
    assert hyperparams.best_cell(cells).lr == 1e-2
    assert hyperparams.find(cells, "SGD", 1e-3).validation_accuracy == 64.0


def test_the_figure_tells_the_optimizers_apart_without_colour_and_labels_every_point() -> None:
    figure = plots.hyperparameters(made_up_grid())
    lr_ax, batch_ax = figure.axes
    lines = {line.get_label(): line for line in lr_ax.get_lines() if line.get_label()[0] != "_"}
    adam, sgd = lines["Adam"], lines["SGD"]
    assert adam.get_marker() != sgd.get_marker() and adam.get_linestyle() != sgd.get_linestyle()
    assert list(adam.get_xdata()) == [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
    assert [t.get_text() for t in lr_ax.get_xticklabels()] == [
        "1e-5",
        "1e-4",
        "1e-3",
        "1e-2",
        "1e-1",
    ]
    written = [text for text in lr_ax.texts if text.get_text() == "94.0"]
    assert written and all(text.get_fontsize() >= 14 for text in lr_ax.texts)
    assert list(batch_ax.get_lines()[0].get_xdata()) == [16, 64, 128]
    assert any(isinstance(h, Line2D) for h in figure.legends[0].legend_handles)


def test_learning_rates_are_written_as_the_lecture_writes_them() -> None:
    assert plots.training.rate_text(0.001) == "1e-3"
    assert plots.training.rate_text(5e-4) == "5e-4"
    assert plots.training.rate_text(0.1) == "1e-1"
