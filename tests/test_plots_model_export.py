"""The figures of notebooks 01 and 04 (cnnlib.lecture.plots): what they draw, checked on the
Figure."""

from __future__ import annotations

import numpy as np
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


def test_translation_shows_one_row_of_both_maps_coinciding_and_no_empty_panel() -> None:
    maps = torch.randn(26, 26)
    moved = shift(maps, 0, 2, fill=0.0)
    difference = moved - shift(maps, 0, 2, fill=float("nan"))
    figure = plots.translation((torch.rand(28, 28),) * 2, (maps, moved), difference, columns=2)
    panels = [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 5 and all(ax.images or ax.lines for ax in panels)
    assert all(float(ax.images[0].get_array().std()) > 0 for ax in panels if ax.images)
    profile = next(ax for ax in panels if ax.lines and not ax.images)
    assert profile.get_xlabel().endswith("all 4 maps: 0")
    _, moved_line, dots = profile.lines
    row = int(profile.get_title().split()[1])
    known = dots.get_xdata() < 26
    assert np.array_equal(dots.get_ydata()[known], moved_line.get_ydata()[dots.get_xdata()[known]])
    assert np.array_equal(moved_line.get_ydata(), moved[row].numpy())


def test_the_convolution_output_is_drawn_at_its_size_under_the_windows_centres() -> None:
    kernel = torch.ones(3, 3)
    figure = plots.convolution(torch.rand(28, 28), kernel, torch.rand(26, 26), 5, 7)
    left, _, right = (ax for ax in figure.axes if ax.get_label() != "<colorbar>")
    assert right.images[0].get_extent() == [0.5, 26.5, 26.5, 0.5]
    assert right.get_xlim() == left.get_xlim() and right.get_ylim() == left.get_ylim()
    (window,), (cell,) = left.patches, right.patches
    assert (cell.get_x(), cell.get_y()) == (window.get_x() + 1, window.get_y() + 1)


def test_the_whole_network_fits_a_projector_and_draws_fc1_as_one_column() -> None:
    torch.manual_seed(0)
    activations = {k: v[0] for k, v in cnnlib.CNN().activations(torch.rand(1, 1, 28, 28)).items()}
    figure = plots.network(torch.rand(1, 28, 28), activations, "untrained network")
    width, height = figure.get_size_inches()
    assert width / height >= 16 / 9 - 0.05 and height <= 9.5
    column = next(ax for ax in figure.axes if ax.images and ax.images[0].get_array().shape[1] == 1)
    assert column.images[0].get_array().shape == (128, 1)


def test_sizes_are_written_in_the_unit_that_fits() -> None:
    assert plots_export._size_text(8_510_000) == "8.51 MB"
    assert plots_export._size_text(4_321) == "4.3 kB"
    assert plots_export._size_text(30) == "30 bytes"


def test_the_one_mistake_among_the_samples_is_framed_in_red_and_named() -> None:
    labels = np.arange(20) % 10
    predicted = labels.copy()
    predicted[13] = 5
    figure = plots.sample_predictions(np.zeros((20, 28, 28)), predicted, labels)
    assert figure._suptitle.get_text() == "19 of 20 read right; the mistake is framed in red"
    framed = [ax for ax in figure.axes if ax.spines["top"].get_linewidth() == 5]
    assert [ax.get_title() for ax in framed] == ["read 5, is 3"]
    assert figure.axes[12].get_title() == "2"
