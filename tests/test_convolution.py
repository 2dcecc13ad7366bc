"""cnnlib.lecture.convolution: receptive fields checked against the network itself, shifted
images."""

from __future__ import annotations

import pytest
import torch

import cnnlib
from cnnlib.lecture.convolution import SPATIAL_LAYERS, receptive_field, shift


@pytest.fixture(scope="module")
def model() -> cnnlib.CNN:
    torch.manual_seed(0)
    return cnnlib.CNN().eval()


@pytest.mark.parametrize(
    ("layer", "row", "column", "rows", "columns"),
    [
        ("conv1", 0, 0, (0, 3), (0, 3)),
        ("conv1", 8, 5, (8, 11), (5, 8)),
        ("pool1", 4, 4, (8, 12), (8, 12)),
        ("conv2", 4, 4, (8, 16), (8, 16)),
        ("pool2", 2, 3, (8, 18), (12, 22)),
        ("pool2", 4, 4, (16, 26), (16, 26)),
    ],
)
def test_receptive_fields_grow_3_4_8_10(model, layer, row, column, rows, columns) -> None:
    assert receptive_field(model, layer, row, column) == (slice(*rows), slice(*columns))


def _unit(model: cnnlib.CNN, image: torch.Tensor, layer: str, row: int, column: int) -> float:
    with torch.inference_mode():
        return float(model.activations(image[None])[layer][0, 0, row, column])


@pytest.mark.parametrize("layer", SPATIAL_LAYERS)
def test_only_the_pixels_of_the_receptive_field_change_a_unit(model, layer) -> None:
    generator = torch.Generator().manual_seed(1)
    image = torch.randn(1, 28, 28, generator=generator)
    size = model.activations(image[None])[layer].shape[-1]
    row, column = size // 2, size // 2 - 1
    rows, columns = receptive_field(model, layer, row, column)
    before = _unit(model, image, layer, row, column)

    outside = torch.randn(1, 28, 28, generator=generator)
    outside[:, rows, columns] = image[:, rows, columns]
    assert _unit(model, outside, layer, row, column) == before

    # Tight: new pixels on each edge of the window (first/last row, first/last column) matter.
    edges = [(rows.start, columns), (rows.stop - 1, columns), (rows, columns.start)]
    edges.append((rows, columns.stop - 1))
    for edge in edges:
        changed = [image.clone() for _ in range(10)]  # a max-pool may ignore one change: try ten
        for candidate in changed:
            candidate[(0, *edge)] = 5 * torch.randn(
                candidate[(0, *edge)].shape, generator=generator
            )
        assert any(_unit(model, c, layer, row, column) != before for c in changed), edge


def test_receptive_field_names_the_layers_it_knows(model) -> None:
    with pytest.raises(ValueError, match=r"^layer must be one of conv1, pool1, conv2, pool2, got"):
        receptive_field(model, "fc1", 0, 0)


def test_shift_moves_the_pixels_and_fills_the_edge() -> None:
    image = torch.arange(1.0, 17.0).view(1, 4, 4)
    right = shift(image, 0, 2, fill=0.0)
    assert right[0].tolist() == [
        [0, 0, 1, 2],
        [0, 0, 5, 6],
        [0, 0, 9, 10],
        [0, 0, 13, 14],
    ]
    up_left = shift(image, -1, -3, fill=-1.0)
    assert up_left[0].tolist() == [[8, -1, -1, -1], [12, -1, -1, -1], [16, -1, -1, -1]] + [
        [-1, -1, -1, -1]
    ]
    assert shift(image, 0, 9, fill=0.0).eq(0).all()
    assert shift(image, 0, 0, fill=0.0).equal(image)


def test_conv1_maps_shift_with_the_digit_by_the_same_two_pixels(model) -> None:
    data = cnnlib.load_mnist()
    image = data.test_images[18]
    moved = shift(image, 0, 2, fill=float(image.min()))
    with torch.inference_mode():
        maps, moved_maps = model.conv1(image), model.conv1(moved)
    expected = shift(maps, 0, 2, fill=float("nan"))
    inside = ~expected.isnan()
    assert inside.sum() == 4 * 26 * 24
    assert torch.allclose(moved_maps[inside], expected[inside], atol=1e-6, rtol=0)
