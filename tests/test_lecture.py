"""cnnlib.lecture: the notebooks' set-up, their self-checking claims, their source on screen."""

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
from cnnlib.lecture import plots
from cnnlib.lecture.plots import style
from cnnlib.train import ConfigError

DEFAULTS = {"epochs": 20, "batches_per_epoch": 100, "batch_size": 64, "lr": 1e-3, "seed": 42}


@pytest.fixture(autouse=True)
def not_strict_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(lecture.STRICT_ENV, raising=False)


def test_setup_returns_the_config_and_the_output_folder(tmp_path: Path) -> None:
    config, out = lecture.setup(str(tmp_path / "out"), **DEFAULTS, device="cpu")
    assert config == cnnlib.TrainConfig(device="cpu")
    assert out == tmp_path / "out"
    assert lecture.strict()


def test_setup_stops_at_a_wrong_parameter_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^epochs must be an integer >= 0, got -1$"):
        lecture.setup(tmp_path, **(DEFAULTS | {"epochs": -1}), device="cpu")


def test_a_true_claim_says_nothing(capsys: pytest.CaptureFixture) -> None:
    lecture.claim("two is more than one", 2 > 1)
    assert capsys.readouterr().out == ""


def test_a_false_claim_stops_the_lectures_own_run_naming_the_sentence(tmp_path: Path) -> None:
    lecture.setup(tmp_path, **DEFAULTS, device="auto")
    with pytest.raises(lecture.ClaimError) as failure:
        lecture.claim("the loss falls", False, "it rose from 0.1 to 0.2")
    assert str(failure.value) == (
        'the narration says "the loss falls", but this run disagrees: it rose from 0.1 to 0.2'
    )


def test_a_false_claim_is_a_note_for_other_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    lecture.setup(tmp_path, **(DEFAULTS | {"epochs": 3}), device="cpu")
    assert not lecture.strict()
    lecture.claim("the loss falls", False)
    assert capsys.readouterr().out == (
        'Note, for these parameters: the narration says "the loss falls", but this run disagrees\n'
    )


def test_the_environment_makes_every_claim_strict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lecture.setup(tmp_path, **(DEFAULTS | {"epochs": 3}), device="cpu")
    monkeypatch.setenv(lecture.STRICT_ENV, "1")
    with pytest.raises(lecture.ClaimError, match="the loss falls"):
        lecture.claim("the loss falls", False)


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
