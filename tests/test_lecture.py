"""cnnlib.lecture: the notebooks' set-up, their source on screen, the figures' pixels (the
claims: tests/test_claims.py)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib as mpl
import numpy as np
import PIL.Image
import pytest
from matplotlib.figure import Figure

import cnnlib
from cnnlib import lecture
from cnnlib.lecture import claims, plots
from cnnlib.lecture.plots import style
from cnnlib.train import ConfigError

DEFAULTS = {"epochs": 20, "batches_per_epoch": 100, "batch_size": 64, "lr": 1e-3, "seed": 42}


@pytest.fixture(autouse=True)
def not_strict_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(claims.STRICT_ENV, raising=False)


def test_setup_returns_the_config_and_the_output_folder(tmp_path: Path) -> None:
    config, out = lecture.setup(str(tmp_path / "out"), **DEFAULTS, device="cpu")
    assert config == cnnlib.TrainConfig(device="cpu")
    assert out == tmp_path / "out"
    assert claims.strict()


@pytest.mark.parametrize("writes", [False, True])
def test_setup_stops_at_a_wrong_parameter_with_one_line(tmp_path: Path, writes: bool) -> None:
    with pytest.raises(ConfigError, match=r"^epochs must be an integer >= 0, got -1$"):
        lecture.setup(tmp_path / "out", **(DEFAULTS | {"epochs": -1}), device="cpu", writes=writes)
    assert not (tmp_path / "out").exists()  # checked before anything is written


def test_show_source_is_cnnlibs_own_code() -> None:
    code = lecture.show_source(cnnlib.CNN)
    assert code.data.startswith("```python\nclass CNN(nn.Module):")
    assert code.data.endswith("```")
    assert "def forward(self, x: torch.Tensor) -> torch.Tensor:" in code.data


def test_figures_are_shown_at_twice_their_pixel_density_in_full_colour() -> None:
    figure = Figure(figsize=(4, 3), dpi=72)
    figure.subplots().imshow(np.linspace(-1, 1, 100_000).reshape(250, 400), cmap=style.SIGNED)
    png, size = plots.retina_png(figure)
    image = PIL.Image.open(io.BytesIO(png))
    assert image.mode == "RGB" and len(image.getcolors(100_000)) > 256
    assert (image.width // 2, image.height // 2) == (size["width"], size["height"])
    assert size["width"] <= 4 * 72 and size["height"] <= 3 * 72  # shown at the figure's own size


def test_a_figure_is_drawn_once_unless_something_lies_beyond_its_edge(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inside, outside = (Figure(figsize=(4, 3), dpi=72, layout="constrained") for _ in range(2))
    for figure in (inside, outside):
        figure.subplots().plot([0, 1], [0, 1], label="a line")
    inside.legend(loc="outside right upper")  # the layout makes room for it
    outside.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))  # past the right edge
    saved = []
    savefig = Figure.savefig
    monkeypatch.setattr(
        Figure, "savefig", lambda self, *a, **k: saved.append(self) or savefig(self, *a, **k)
    )
    widths = [plots.retina_png(figure)[1]["width"] for figure in (inside, outside)]
    assert saved == [outside]  # only the figure with a legend past its edge took two draws
    margins = 2 * mpl.rcParams["savefig.pad_inches"]
    assert widths[0] <= (4 + margins) * 72 < widths[1]  # its picture grew to hold the legend
