"""The figures of notebooks 01 and 04 (cnnlib.lecture.plots): what they draw, checked on the
Figure."""

from __future__ import annotations

import torch
from matplotlib.patches import Rectangle

import cnnlib
from cnnlib.lecture import plots
from cnnlib.lecture.convolution import receptive_field, shift
from cnnlib.lecture.plots import export as plots_export
from cnnlib.lecture.plots import style


def test_numbers_that_round_to_zero_lose_their_minus_sign() -> None:
    assert style.number_text(-0.001, "{:.2f}") == "0.00"
    assert style.number_text(-0.5, "{:.2f}") == "-0.50"
    assert style.number_text(-0.0, "{:g}") == "0"


def test_kernel_values_are_white_on_dark_cells_and_black_on_light_ones() -> None:
    kernel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    image = torch.zeros(28, 28)
    figure = plots.convolution(image, kernel, torch.zeros(26, 26), 3, 4)
    texts = {text.get_text(): text.get_color() for text in figure.axes[1].texts}
    assert texts == {"-2": "white", "-1": "white", "0": "black", "1": "black", "2": "black"}


def test_weight_sharing_bars_are_on_a_log_axis_with_their_counts() -> None:
    figure = plots.weight_sharing({"conv1": 40, "dense": 2_122_640})
    ax = figure.axes[0]
    assert ax.get_xscale() == "log"
    assert [text.get_text() for text in ax.texts] == ["40", "2,122,640"]


def test_receptive_fields_box_the_pixels_each_unit_sees() -> None:
    model = cnnlib.CNN()
    image = torch.zeros(1, 28, 28)
    activations = model.activations(image[None])
    units = {"conv1": (8, 8), "pool1": (4, 4), "conv2": (4, 4), "pool2": (2, 2)}
    fields = {name: receptive_field(model, name, *unit) for name, unit in units.items()}
    maps = {name: activations[name][0, 0] for name in units}
    figure = plots.receptive_fields(image, maps, units, fields)
    bottom = [ax for ax in figure.axes if ax.get_xlabel().startswith("it sees")]
    boxes = [
        (patch.get_x(), patch.get_width())
        for ax in bottom
        for patch in ax.patches
        if isinstance(patch, Rectangle)
    ]
    assert boxes == [(7.5, 3), (7.5, 4), (7.5, 8), (7.5, 10)]
    assert bottom[-1].get_xlabel() == "it sees 10×10 input pixels"


def test_translation_reports_the_largest_difference_and_greys_the_border() -> None:
    maps = torch.randn(26, 26)
    moved = shift(maps, 0, 2, fill=0.0)
    difference = moved - shift(maps, 0, 2, fill=float("nan"))
    figure = plots.translation((torch.zeros(28, 28),) * 2, (maps, moved), difference, columns=2)
    labels = [ax.get_xlabel() for ax in figure.axes]
    assert "largest |difference|: 0\nblank: not comparable" in labels


def test_sizes_are_written_in_the_unit_that_fits() -> None:
    assert plots_export._size_text(8_510_000) == "8.51 MB"
    assert plots_export._size_text(4_321) == "4.3 kB"
    assert plots_export._size_text(30) == "30 bytes"
