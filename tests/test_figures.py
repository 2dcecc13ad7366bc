"""The lecture's figures fit for a projector, checked on the PNG the notebooks show (retina_png)
and on the Figure: gray stays gray, colour bars are smooth, feature-map columns line up, lines and
right/wrong are told apart without colour, numbers in cells are large enough."""

from __future__ import annotations

import io
import itertools

import matplotlib as mpl
import numpy as np
import PIL.Image
import pytest
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import cnnlib
from cnnlib.data import feature_map_index
from cnnlib.lecture import plots
from cnnlib.lecture.plots import style
from tests.test_feature_maps import SQUARE, epochs_of_activations

DISPLAY_DPI = 72  # LECTURE_STYLE: a point is a pixel at the size the notebook shows a figure


@pytest.fixture(autouse=True)
def lecture_style():
    with mpl.rc_context():
        plots.use_lecture_style()
        yield


def png_pixels(png: bytes) -> np.ndarray:
    return np.asarray(PIL.Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def png_box(figure: Figure, ax: Axes, inset: int = 4) -> tuple[slice, slice]:
    """Rows and columns of `ax`'s inside in the picture retina_png makes of `figure` (the same
    drawing at twice the dpi, cut to its content plus savefig.pad_inches), `inset` pixels in."""
    scale = 2 * figure.dpi
    with style._drawn(figure, scale) as canvas:
        content = figure.get_tightbbox(canvas.get_renderer()).frozen()
        box = ax.get_window_extent().frozen()  # in pixels at this dpi, not later
        height = figure.bbox.height
    pad = mpl.rcParams["savefig.pad_inches"]
    left, top = round((content.x0 - pad) * scale), height - round((content.y1 + pad) * scale)
    rows = slice(round(height - box.y1 - top) + inset, round(height - box.y0 - top) - inset)
    columns = slice(round(box.x0 - left) + inset, round(box.x1 - left) - inset)
    return rows, columns


@pytest.fixture(scope="module")
def network_figure(mnist) -> Figure:
    """01's whole-network figure of the first test 3 (many gray levels), untrained weights."""
    torch.manual_seed(0)
    model = cnnlib.CNN()
    image = mnist.test_images[feature_map_index(mnist.test_labels)]
    with torch.inference_mode():
        activations = {k: v[0] for k, v in model.activations(image[None]).items()}
    return plots.network(image, activations, "untrained network")


@pytest.fixture(scope="module")
def network_png(network_figure: Figure) -> bytes:
    """The PNG that the notebook shows of that figure (made once: the tests only read it)."""
    png, _ = plots.retina_png(network_figure)
    return png


def bar_strip(figure: Figure, bar: Axes, pixels: np.ndarray) -> np.ndarray:
    """The colours along a colour bar in the PNG, from its smallest value to its largest."""
    rows, columns = png_box(figure, bar, inset=3)
    if rows.stop - rows.start > columns.stop - columns.start:  # upright: largest at the top
        return pixels[rows, (columns.start + columns.stop) // 2][::-1]
    return pixels[(rows.start + rows.stop) // 2, columns]


def test_a_gray_digit_has_no_tinted_pixel_in_the_png(
    network_figure: Figure, network_png: bytes
) -> None:
    figure = network_figure
    digit_ax = figure.axes[0]
    assert digit_ax.get_title() == "input 1×28×28"
    rows, columns = png_box(figure, digit_ax)
    panel = png_pixels(network_png)[rows, columns]
    assert panel.size > 100_000 and len(np.unique(panel[..., 0])) > 3  # the digit, several grays
    tinted = (panel.max(axis=-1) - panel.min(axis=-1)) > 0
    assert int(tinted.sum()) == 0


def test_colour_bars_follow_their_colour_map_without_steps(
    network_figure: Figure, network_png: bytes
) -> None:
    figure = network_figure
    bars = [ax for ax in figure.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 5  # conv1, pool1, conv2, pool2, fc1
    pixels = png_pixels(network_png)
    for bar, cmap in zip(bars[:2], (style.SIGNED, style.POSITIVE), strict=True):
        strip = bar_strip(figure, bar, pixels)
        expected = mpl.colormaps[cmap](np.linspace(0, 1, len(strip)))[:, :3] * 255
        assert np.abs(strip - expected).max() <= 12  # the right colours, smallest first
        changes = np.flatnonzero(np.abs(np.diff(strip, axis=0)).sum(axis=1) > 0)
        longest_run = np.diff(np.concatenate([[0], changes, [len(strip)]])).max()
        assert longest_run <= len(strip) / 256 + 2  # no steps beyond the map's own 256 entries


def test_a_quantized_png_would_fail_both_checks(network_figure: Figure, network_png: bytes) -> None:
    """The two checks above can fail: the old 256-colour PNG tinted grays and stepped bars."""
    figure = network_figure
    quantized = PIL.Image.open(io.BytesIO(network_png)).convert("RGB").quantize(256).convert("RGB")
    pixels = np.asarray(quantized).astype(int)
    rows, columns = png_box(figure, figure.axes[0])
    panel = pixels[rows, columns]
    assert ((panel.max(axis=-1) - panel.min(axis=-1)) > 0).sum() > 100
    bar = next(ax for ax in figure.axes if ax.get_label() == "<colorbar>")
    strip = bar_strip(figure, bar, pixels)
    changes = np.flatnonzero(np.abs(np.diff(strip, axis=0)).sum(axis=1) > 0)
    assert np.diff(np.concatenate([[0], changes, [len(strip)]])).max() > len(strip) / 256 + 2


def test_feature_map_columns_sit_at_the_same_x_in_every_row() -> None:
    maps = torch.rand(4, 26, 26, generator=torch.Generator().manual_seed(0))
    # colour bars of very different tick-label widths: 0.001, 1 and 10,000
    by_epoch = {0: maps * 1e-3, 2: maps - 0.5, 20: (maps - 0.5) * 2e4}
    figure = plots.feature_maps(by_epoch, "conv1", SQUARE)
    figure.canvas = FigureCanvasAgg(figure)
    figure.canvas.draw()
    tiles = [ax for ax in figure.axes if ax.get_label() != "<colorbar>" and ax.images]
    tiles = [ax for ax in tiles if ax.get_title() != "input"]
    assert len(tiles) == 12
    x0 = np.array([ax.get_window_extent().x0 for ax in tiles]).reshape(3, 4)
    assert np.abs(x0 - x0[0]).max() < 0.5


def test_one_scale_for_every_epoch_shows_the_contrast_grow_under_one_colour_bar() -> None:
    maps = torch.rand(4, 26, 26, generator=torch.Generator().manual_seed(0)) - 0.5
    by_epoch = {0: maps, 2: 2 * maps, 20: 3 * maps}
    own = plots.feature_maps(by_epoch, "conv1", SQUARE)
    one = plots.feature_maps(by_epoch, "conv1", SQUARE, one_scale=True)
    assert len([ax for ax in own.axes if not ax.images]) == 3  # a colour bar per row
    assert len([ax for ax in one.axes if not ax.images]) == 1  # one for all
    tiles = [ax for ax in one.axes if ax.images and ax.get_title() != "input"]
    largest = 3 * float(maps.abs().max())
    limits = {ax.images[0].get_clim() for ax in tiles}
    assert len(limits) == 1 and limits.pop() == pytest.approx((-largest, largest))


def test_post_relu_maps_are_one_sided_and_signed_maps_centred_on_zero() -> None:
    figure = plots.feature_maps({0: torch.rand(4, 13, 13)}, "pool1", SQUARE)
    tile = next(ax for ax in figure.axes if ax.get_title() == "#0")
    assert tile.images[0].get_cmap().name == style.POSITIVE and tile.images[0].get_clim()[0] == 0
    figure = plots.feature_maps({0: torch.rand(4, 26, 26) - 0.5}, "conv1", SQUARE)
    tile = next(ax for ax in figure.axes if ax.get_title() == "#0")
    low, high = tile.images[0].get_clim()
    assert tile.images[0].get_cmap().name == style.SIGNED and low == -high


@pytest.mark.parametrize("name", [style.SIGNED, style.POSITIVE])
def test_both_colour_maps_grow_lighter_with_the_value_so_grayscale_keeps_the_order(name) -> None:
    """Dark blue, gray 0, light orange; black 0 to light orange: greyscale-safe, and the stops
    are where the demo puts them (tests/test_demo.py compares them with demo/views.mjs)."""
    rgb = mpl.colormaps[name](np.linspace(0, 1, 41))[:, :3]
    lightness = rgb @ np.array([0.2126, 0.7152, 0.0722])
    assert (np.diff(lightness) > 0.005).all()
    stops = style.SIGNED_STOPS if name == style.SIGNED else style.POSITIVE_STOPS
    ends = np.round(mpl.colormaps[name]([0.0, 1.0])[:, :3] * 255)
    assert ends.tolist() == [list(stops[0][1]), list(stops[-1][1])]


def test_a_blue_white_red_map_is_not_grayscale_safe() -> None:
    """The lightness check above can fail: RdBu_r, white at zero, is lighter at 0 than at +1."""
    lightness = mpl.colormaps["RdBu_r"](np.linspace(0, 1, 41))[:, :3] @ [0.2126, 0.7152, 0.0722]
    assert not (np.diff(lightness) > 0.005).all()


def test_weight_change_lines_differ_by_marker_and_dash() -> None:
    changes = {layer: [3.0, 2.0, 1.0] for layer in ("conv1", "conv2", "fc1", "fc2")}
    lines = plots.weight_changes(changes).axes[0].get_lines()
    assert len({line.get_marker() for line in lines}) == 4
    assert len({line.get_linestyle() for line in lines}) == 4


def test_every_layers_line_differs_and_conv1_is_drawn_on_top() -> None:
    figure = plots.every_epoch(epochs_of_activations(3), label=3)
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert len({line.get_marker() for line in lines.values()}) == len(lines)
    assert lines["conv1"].get_zorder() > max(
        line.get_zorder() for name, line in lines.items() if name != "conv1"
    )


def test_a_layer_is_drawn_alike_in_every_figure() -> None:
    changes = {layer: [3.0, 2.0, 1.0] for layer in ("conv1", "conv2", "fc1", "fc2")}
    weights = plots.weight_changes(changes).axes[0].get_lines()
    outputs = plots.every_epoch(epochs_of_activations(3), label=3).axes[0].get_lines()
    looks = {line.get_label(): (line.get_marker(), line.get_linestyle()) for line in outputs}
    for line in weights:
        if line.get_label() in looks:
            assert (line.get_marker(), line.get_linestyle()) == looks[line.get_label()]
    assert {"conv1", "conv2", "fc1"} <= looks.keys()


def test_a_wrong_answer_is_crossed_out_not_only_red() -> None:
    logits = torch.zeros(10)
    logits[5] = 3.0  # predicts 5 for a 3
    figure = plots.predictions({0: logits}, label=3)
    bars = figure.axes[0].patches
    assert bars[5].get_hatch() and not bars[3].get_hatch()
    legend = figure.legends[0]
    assert any(patch.get_hatch() for patch in legend.get_patches())
    right = torch.zeros(10)
    right[3] = 3.0
    assert not any(bar.get_hatch() for bar in plots.predictions({0: right}, 3).axes[0].patches)


def test_the_explorers_wrong_bar_is_crossed_out() -> None:
    activations = epochs_of_activations(2)
    for epoch in activations:
        activations[epoch]["logits"] = torch.arange(10.0)  # always 9, never the 3
    explorer = plots.EpochExplorer(SQUARE, activations, label=3)
    assert explorer.bars[9].get_hatch() and not explorer.bars[3].get_hatch()


def test_each_confusion_matrix_has_its_own_scale_and_colour_bar() -> None:
    few = torch.eye(10, dtype=torch.long) * 90
    few[3, 5] = 4
    many = few.clone()
    many[3, 5], many[4, 9] = 60, 30
    figure = plots.confusion_matrices({"epoch 1": many, "epoch 20": few})
    images = [ax.images[0] for ax in figure.axes if ax.images and ax.get_label() != "<colorbar>"]
    assert [image.get_clim() for image in images] == [(0, 60), (0, 4)]
    assert sum(ax.get_label() == "<colorbar>" for ax in figure.axes) == 2


def annotation_sizes(figure: Figure) -> list[float]:
    return [text.get_fontsize() for ax in figure.axes for text in ax.texts]


@pytest.mark.parametrize(
    "make",
    [
        lambda: plots.conv1_filters({0: torch.randn(4, 1, 3, 3), 20: torch.randn(4, 1, 3, 3)}),
        lambda: plots.correlation_matrices({0: torch.eye(4), 20: torch.eye(4)}),
        lambda: plots.confusion_matrices({"epoch 1": torch.eye(10, dtype=torch.long) * 1000}),
        lambda: plots.convolution(torch.zeros(28, 28), torch.eye(3), torch.zeros(26, 26), 3, 3),
    ],
    ids=["conv1 kernels", "correlations", "confusion", "convolution"],
)
def test_numbers_in_cells_are_at_least_14_pixels_at_display_size(make) -> None:
    figure = make()
    assert figure.dpi == DISPLAY_DPI  # shown at its own size: 1 pt = 1 px
    sizes = annotation_sizes(figure)
    assert sizes and min(sizes) >= 14


def test_filter_roles_numbers_are_at_least_14_pixels() -> None:
    from cnnlib.lecture import features

    kernels = torch.randn(4, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    maps = torch.nn.functional.conv2d(SQUARE[None, None], kernels)[0]
    summaries = features.summarize_filters(kernels, maps, SQUARE)
    sizes = annotation_sizes(plots.filter_roles(SQUARE, kernels, maps, summaries))
    assert len(sizes) == 36 and min(sizes) >= 14


def test_the_receptive_field_figure_has_a_colour_bar_for_every_map() -> None:
    model = cnnlib.CNN()
    activations = model.activations(torch.zeros(1, 1, 28, 28))
    units = {"conv1": (8, 8), "pool1": (4, 4), "conv2": (4, 4), "pool2": (2, 2)}
    fields = {
        name: cnnlib.lecture.convolution.receptive_field(model, name, *u)
        for name, u in units.items()
    }
    maps = {name: activations[name][0, 0] + 0.5 for name in units}
    figure = plots.receptive_fields(torch.zeros(1, 28, 28), maps, units, fields)
    bars = [ax for ax in figure.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 4
    cmaps = [ax.images[0].get_cmap().name for ax in figure.axes[:8:2] if ax.images]
    assert set(cmaps) <= {style.SIGNED, style.POSITIVE, style.DIGIT}


def results_of(values: list[float]) -> list:
    from cnnlib.train import EpochResult

    no_logits = torch.zeros(0, 10)  # the curves read the metrics only
    return [
        EpochResult(
            epoch, 1.0 / (epoch + 1), value, 0.5, value + 0.5, 0.6, value - 0.5, {}, no_logits
        )
        for epoch, value in enumerate(values)
    ]


def test_training_curves_show_train_against_validation_when_asked() -> None:
    results = results_of([10.0, 90.0, 95.0, 97.0])
    figure = plots.training_curves(results, held_out="validation")
    accuracy_ax = figure.axes[1]
    labels = [line.get_label() for line in accuracy_ax.get_lines() if line.get_label()[0] != "_"]
    assert labels == ["train (the epoch's batches)", "validation (5,000 held-out training images)"]
    assert accuracy_ax.get_title() == "Accuracy: 96.50% on the validation set at the end"
    assert "test" not in " ".join(text.get_text() for ax in figure.axes for text in ax.texts)
    assert (
        plots.training_curves(results)
        .axes[1]
        .get_title()
        .endswith("97.50% on the test set at the end")
    )
    with pytest.raises(ValueError, match="held_out must be one of test, validation, got 'train'"):
        plots.training_curves(results, held_out="train")


def test_the_standard_error_of_an_accuracy() -> None:
    from cnnlib.lecture.evaluate import standard_error

    assert standard_error(98.0, 10_000) == pytest.approx(0.14)
    assert standard_error(50.0, 100) == pytest.approx(5.0)
    assert standard_error(100.0, 10_000) == 0.0


def drawn_labels(figure: Figure) -> list[tuple[Axes, str, mpl.transforms.Bbox]]:
    """Every number written on the axes of a drawn figure, with its box in display pixels."""
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    return [
        (ax, text.get_text(), text.get_window_extent(renderer))
        for ax in figure.axes
        for text in ax.texts
    ]


def crosses(box: mpl.transforms.Bbox, ax: Axes) -> list[str]:
    """The lines of `ax` that run through `box` (sampled along each segment, in display pixels)."""
    hit = []
    for line in ax.get_lines():
        points = line.get_transform().transform(line.get_xydata())
        for start, end in itertools.pairwise(points):
            samples = start + np.linspace(0, 1, 200)[:, None] * (end - start)
            if box.padded(-1).count_contains(samples):
                hit.append(line.get_label())
                break
    return hit


@pytest.mark.parametrize(
    "changed",
    [{}, {"adam_0_1_64": 40.0, "sgd_0_01_64": 94.0}, {"adam_1e_05_64": 11.0}],
    ids=["measured", "crossing", "low-start"],
)
def test_the_grids_numbers_sit_inside_their_panel_off_every_line_and_off_each_other(
    changed: dict,
) -> None:
    from tests.test_claims import grid

    labels = drawn_labels(plots.hyperparameters(grid(**changed)))
    assert len(labels) == 13
    for ax, text, box in labels:
        assert ax.bbox.contains(box.x0, box.y0) and ax.bbox.contains(box.x1, box.y1), text
        assert not crosses(box, ax), (text, crosses(box, ax))
    for (_, one, a), (_, other, b) in itertools.combinations(labels, 2):
        assert not a.overlaps(b), (one, other)


def test_the_sample_grid_labels_each_row_once(mnist) -> None:
    images = mnist.train_images[:20, 0]
    figure = plots.digit_grid(images, row_labels=["first", "second"])
    assert [ax.get_title() for ax in figure.axes] == [""] * 20
    assert [ax.get_ylabel() for ax in figure.axes if ax.get_ylabel()] == ["first", "second"]
    titled = plots.digit_grid(images[:3], ["a", "b", "c"], columns=2)
    assert [ax.get_title() for ax in titled.axes] == ["a", "b", "c", ""]
    assert not titled.axes[3].axison  # the grid's empty place draws nothing


def test_a_paired_comparison_counts_the_images_that_flip() -> None:
    from cnnlib.lecture.evaluate import paired

    before = torch.tensor([True] * 90 + [False] * 10)
    after = torch.cat([torch.tensor([False] * 30 + [True] * 60), torch.tensor([True] * 10)])
    assert paired(before, after) == (30, 10, pytest.approx(-20 / 40**0.5))
    assert paired(before, before) == (0, 0, 0.0)


def test_the_overfitting_figure_marks_the_lowest_validation_loss() -> None:
    curve = {2: (1.0, 0.9), 4: (0.3, 0.5), 6: (0.1, 0.45), 8: (0.03, 0.5)}
    (ax,) = plots.overfitting(curve, images=500).axes
    training, validation, marker = ax.get_lines()
    assert list(training.get_ydata()) == [1.0, 0.3, 0.1, 0.03]
    assert list(validation.get_ydata()) == [0.9, 0.5, 0.45, 0.5]
    assert list(marker.get_xdata()) == [6, 6] and marker.get_label().endswith("epoch 6")
    assert ax.get_yscale() == "log"
