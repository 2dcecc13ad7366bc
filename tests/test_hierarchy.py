"""cnnlib.lecture.hierarchy: the patches and digits that excite conv2's channels and fc1's units
most over a whole set of images; and their figures."""

from __future__ import annotations

import pytest
import torch

from cnnlib.lecture import hierarchy, plots
from cnnlib.lecture.plots.hierarchy import SHOWN
from cnnlib.model import CNN


@pytest.fixture(scope="module")
def seen(mnist) -> tuple[CNN, torch.Tensor, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = CNN().eval()
    pixels = mnist.test_pixels[:600]
    layers = ("conv2", "pool2", "fc1")
    return model, pixels, hierarchy.dataset_activations(model, pixels, layers)


def test_dataset_activations_equal_the_models_own_one_image_at_a_time(seen) -> None:
    model, pixels, activations = seen
    assert {name: tuple(values.shape) for name, values in activations.items()} == {
        "conv2": (600, 8, 11, 11),
        "pool2": (600, 8, 5, 5),
        "fc1": (600, 128),
    }
    one = hierarchy.dataset_activations(model, pixels[417:418], ["fc1"])["fc1"][0]
    torch.testing.assert_close(activations["fc1"][417], one)


@pytest.mark.parametrize(("layer", "size"), [("pool2", 10), ("conv2", 8)])
def test_each_patch_is_the_units_receptive_field_and_gives_its_value_alone(
    seen, layer: str, size: int
) -> None:
    model, pixels, activations = seen
    tops = hierarchy.top_patches(model, activations[layer], pixels, layer, k=5)
    assert [top.channel for top in tops] == list(range(8))
    for top in tops:
        assert top.patches.shape == (5, size, size) and top.patches.dtype == torch.uint8
        assert len(set(top.images.tolist())) == 5  # five different digits
        assert (top.values[:-1] >= top.values[1:]).all()  # strongest first
        maps = activations[layer][top.images, top.channel]
        assert torch.equal(maps[torch.arange(5), top.rows, top.columns], top.values)
        assert (maps.flatten(1).max(1).values == top.values).all()  # each image's best unit
        # nothing outside the patch can change the unit: the network on the patch alone agrees
        alone = torch.stack(
            [hierarchy.activation_of_patch(model, patch, layer) for patch in top.patches]
        )
        torch.testing.assert_close(alone[:, top.channel], top.values, atol=1e-5, rtol=1e-5)
        # and a patch from another window would not
        row, column = int(top.rows[0]), int(top.columns[0])
        shifted = pixels[
            top.images[0], 4 * row + 1 : 4 * row + 1 + size, 4 * column : 4 * column + size
        ]
        if layer == "pool2" and shifted.shape == (size, size):
            other = hierarchy.activation_of_patch(model, shifted, layer)[top.channel]
            assert abs(float(other - top.values[0])) > 1e-4


def test_no_other_image_excites_the_channel_more(seen) -> None:
    model, pixels, activations = seen
    (top, *_) = hierarchy.top_patches(model, activations["pool2"], pixels, k=3)
    best_per_image = activations["pool2"][:, 0].flatten(1).max(1).values
    assert float(best_per_image.max()) == float(top.values[0])
    assert (best_per_image > top.values[-1]).sum() <= 2


def test_fc1_units_their_top_digits_and_how_alike_their_labels_are(seen, mnist) -> None:
    _, _, activations = seen
    fc1 = activations["fc1"]
    units = hierarchy.selective_units(fc1, count=4)
    assert units == sorted(units) and len(set(units)) == 4
    assert min(fc1[:, units].std(0)) >= fc1.std(0).sort(descending=True).values[3]
    tops = hierarchy.top_images(fc1, units, k=6)
    assert all(
        fc1[indices, unit].min() >= fc1[:, unit].sort(descending=True).values[5]
        for unit, indices in tops.items()
    )


def test_labels_of_the_strongest_images_how_many_digits_and_the_largest_share() -> None:
    labels = torch.tensor([3, 3, 3, 5, 1, 2])
    activations = torch.tensor(
        [[6.0, 0.0], [5.0, 1.0], [4.0, 2.0], [3.0, 3.0], [2.0, 4.0], [1.0, 5.0]]
    )
    rows = hierarchy.top_labels(activations, labels, k=4)
    assert rows.tolist() == [[3, 3, 3, 5], [2, 1, 5, 3]]
    assert hierarchy.different_digits(rows).tolist() == [2, 4]
    assert hierarchy.largest_share(rows).tolist() == [0.75, 0.25]
    maps = torch.zeros(6, 2, 5, 5)
    maps[:, :, 2, 3] = activations
    assert torch.equal(hierarchy.strongest_per_image(maps), activations)


def test_random_labels_are_drawn_without_replacement_and_repeatably() -> None:
    labels = torch.arange(10)
    drawn = hierarchy.random_labels(labels, draws=50, k=8, seed=1)
    assert drawn.shape == (50, 8)
    assert (hierarchy.different_digits(drawn) == 8).all()  # each draw: 8 different images
    assert torch.equal(drawn, hierarchy.random_labels(labels, draws=50, k=8, seed=1))
    assert not torch.equal(drawn, hierarchy.random_labels(labels, draws=50, k=8, seed=2))


def test_the_figures_have_a_tile_per_patch_or_digit_titled_with_its_label(seen, mnist) -> None:
    model, pixels, activations = seen
    tops = hierarchy.top_patches(model, activations["pool2"], pixels, k=4)
    figure = plots.strongest_patches(tops, mnist.test_labels)
    assert len(figure.axes) == 8 * 4
    first = tops[0]
    assert figure.axes[0].get_title() == f"from a {int(mnist.test_labels[first.images[0]])}"
    assert figure.axes[0].get_ylabel() == "#0"
    digits = hierarchy.top_images(activations["fc1"], [3, 7], k=5)
    figure = plots.strongest_digits(pixels, digits, mnist.test_labels)
    assert len(figure.axes) == 2 * SHOWN  # the four strongest of each unit
    assert figure.axes[SHOWN].get_ylabel() == "unit 7"
