"""cnnlib.lecture.features (what conv1's filters do, in numbers); notebook 03's figures (the epoch
explorer's slider and its in-place redraw, the static figure that stands in for it); and 03
stopping at a sentence that its own run contradicts."""

from __future__ import annotations

from pathlib import Path

import ipywidgets
import numpy as np
import pytest
import torch

from cnnlib.lecture import features, plots
from cnnlib.lecture.features import REFERENCE_KERNELS

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "03_feature_maps.ipynb"

# A 28x28 "digit": a bright square on a dark background.
SQUARE = torch.zeros(28, 28)
SQUARE[8:20, 8:20] = 1.0


def test_correlation_ignores_scale_and_offset_but_not_sign() -> None:
    a = torch.randn(26, 26, generator=torch.Generator().manual_seed(0))
    assert features.correlation(a, 3 * a + 5) == pytest.approx(1.0)
    assert features.correlation(a, -a) == pytest.approx(-1.0)
    assert features.correlation(a, torch.ones(26, 26)) == 0.0  # a flat map follows nothing


def test_map_correlations_is_a_symmetric_matrix_with_ones_on_its_diagonal() -> None:
    maps = torch.stack([SQUARE, 2 * SQUARE, SQUARE.T.flip(0), -SQUARE])
    matrix = features.map_correlations(maps)
    assert matrix.shape == (4, 4)
    assert torch.allclose(matrix, matrix.T)
    assert torch.allclose(matrix.diagonal(), torch.ones(4, dtype=matrix.dtype))
    assert matrix[0, 1] == pytest.approx(1.0) and matrix[0, 3] == pytest.approx(-1.0)


def test_reference_responses_are_conv1_sized_and_find_the_square_and_its_edges() -> None:
    responses = features.reference_responses(SQUARE.unsqueeze(0))
    assert {name: tuple(r.shape) for name, r in responses.items()} == {
        name: (26, 26) for name in REFERENCE_KERNELS
    }
    # Output (y, x) sees input rows y..y+2 and columns x..x+2.
    assert responses["stroke"][12, 12] == pytest.approx(1.0)  # inside the square
    assert responses["vertical edge"][12, 6] == 3.0  # dark on the left, bright on the right
    assert responses["vertical edge"][12, 18] == -3.0  # bright on the left, dark on the right
    assert responses["horizontal edge"][6, 12] == 3.0  # dark above, bright below
    assert responses["vertical edge"][6, 12] == 0.0


def test_a_filter_is_summarized_by_its_kernel_and_by_the_map_it_follows() -> None:
    kernels = torch.stack(
        [REFERENCE_KERNELS["stroke"], -REFERENCE_KERNELS["horizontal edge"]]
    ).unsqueeze(1)
    maps = torch.nn.functional.conv2d(SQUARE.reshape(1, 1, 28, 28), kernels)[0]
    stroke, edge = features.summarize_filters(kernels, maps, SQUARE)

    assert (stroke.channel, stroke.best, stroke.r["stroke"]) == (0, "stroke", pytest.approx(1.0))
    assert stroke.total == pytest.approx(1.0)
    assert stroke.detects == (
        "the bright stroke: a slightly blurred copy of the digit (r = +1.00 with the stroke map)"
    )
    assert (edge.total, edge.left_right, edge.top_bottom) == (0.0, 0.0, -6.0)
    assert edge.best == "horizontal edge"
    assert edge.detects.startswith("horizontal edges, bright above and dark below (r = -1.00")


def test_drift_separates_a_change_of_scale_from_a_change_of_pattern() -> None:
    weights = torch.tensor([3.0, 4.0])
    assert features.drift(weights, weights) == features.Drift(change=0.0, cosine=1.0, scale=1.0)
    assert features.drift(weights, 2 * weights) == features.Drift(change=1.0, cosine=1.0, scale=2.0)
    turned = features.drift(weights, torch.tensor([-4.0, 3.0]))
    assert (turned.cosine, turned.scale) == (0.0, 1.0)
    assert turned.change == pytest.approx(2**0.5)


def test_drift_of_a_rescaled_or_flipped_random_pattern() -> None:
    pattern = torch.randn(4, 3)
    assert features.drift(pattern, 3 * pattern) == features.Drift(
        change=pytest.approx(2.0), cosine=pytest.approx(1.0), scale=pytest.approx(3.0)
    )
    assert features.drift(pattern, -pattern).cosine == pytest.approx(-1.0)


# --- the figures ------------------------------------------------------------------------------


def test_numbers_in_cells_are_readable_and_never_minus_zero() -> None:
    kernels = torch.tensor([[[[-1.0, -0.001, 0.2], [0.0, 0.5, 1.0], [0.3, 0.3, 0.3]]]] * 4)
    figure = plots.conv1_filters({0: kernels})
    texts = {text.get_text(): text.get_color() for text in figure.axes[0].texts}
    assert "-0.00" not in texts and "0.00" in texts
    assert texts["-1.00"] == "white"  # on the darkest blue
    assert texts["1.00"] == texts["0.20"] == "black"  # on the lightest orange, on a gray-orange


def epochs_of_activations(epochs: int) -> dict[int, dict[str, torch.Tensor]]:
    """Made-up activations of the CNN's shapes, different at every epoch."""
    generator = torch.Generator().manual_seed(1)
    shapes = {
        "conv1": (4, 26, 26),
        "pool1": (4, 13, 13),
        "conv2": (8, 11, 11),
        "pool2": (8, 5, 5),
        "fc1": (128,),
        "logits": (10,),
    }
    return {
        epoch: {
            name: torch.randn(shape, generator=generator).abs() for name, shape in shapes.items()
        }
        for epoch in range(epochs + 1)
    }


def test_the_static_stand_in_for_the_slider_follows_every_layer_through_every_epoch() -> None:
    activations = epochs_of_activations(3)
    figure = plots.every_epoch(activations, label=3)
    layers_ax, probability_ax = figure.axes
    lines = {line.get_label(): line.get_ydata() for line in layers_ax.get_lines()}
    assert list(lines) == list(activations[3])  # conv1 ... logits
    assert all(len(r) == 4 and r[-1] == pytest.approx(1.0) for r in lines.values())
    heights = [bar.get_height() for bar in probability_ax.patches]
    expected = [float(activations[epoch]["logits"].softmax(-1)[3]) for epoch in range(4)]
    np.testing.assert_allclose(heights, expected, rtol=1e-6)


@pytest.fixture(scope="module")
def explorer() -> plots.EpochExplorer:
    return plots.EpochExplorer(SQUARE, epochs_of_activations(20), label=3)


def test_the_slider_leaves_at_least_15_pixels_per_epoch(explorer: plots.EpochExplorer) -> None:
    slider, _ = explorer.widget(ahead=False).children
    assert (slider.min, slider.max, slider.value) == (0, 20, 20)
    width = int(slider.layout.width.removesuffix("px"))
    assert width >= 15 * 20 + 160  # the steps, plus the label and the readout beside the track


def test_moving_the_slider_puts_that_epochs_values_into_the_same_figure(
    explorer: plots.EpochExplorer,
) -> None:
    slider, picture = explorer.widget(ahead=False).children  # no rendering in the background
    assert isinstance(picture, ipywidgets.Image)
    before, first_image = picture.value, explorer.images["conv1"][0]

    slider.value = 4

    assert bytes(picture.value) != bytes(before)
    assert bytes(picture.value).startswith(b"\x89PNG")
    assert explorer.images["conv1"][0] is first_image  # updated in place, not rebuilt
    expected = explorer.activations[4]["conv1"][0].numpy()
    np.testing.assert_array_equal(first_image.get_array(), expected)
    heights = [bar.get_height() for bar in explorer.bars]
    np.testing.assert_allclose(heights, explorer.activations[4]["logits"].softmax(-1).numpy())
    assert explorer.bar_ax.get_title().startswith("epoch 4: ")


def test_output_correlation_averages_over_maps_and_takes_vectors_whole() -> None:
    maps = torch.stack([SQUARE, SQUARE.T.flip(1)])
    assert features.output_correlation(maps, 2 * maps) == pytest.approx(1.0)
    assert features.output_correlation(maps, torch.stack([SQUARE, -maps[1]])) == pytest.approx(0.0)
    units = torch.tensor([0.0, 1.0, 2.0])
    assert features.output_correlation(units, -units) == pytest.approx(-1.0)


def test_rendering_ahead_fills_every_epochs_picture(explorer: plots.EpochExplorer) -> None:
    explorer.render_all()
    assert sorted(explorer.frames) == list(range(21))
    assert len(set(explorer.frames.values())) == 21
