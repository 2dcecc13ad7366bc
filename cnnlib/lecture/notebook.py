"""The lecture's tools: what every notebook does first (check its parameters and its output
folder, set the figures' style) and cnnlib's own source shown on screen."""

from __future__ import annotations

import inspect
from pathlib import Path

from IPython.display import Markdown

from cnnlib.data import DEFAULT_DATA_DIR, held_out
from cnnlib.lecture import claims
from cnnlib.lecture.plots import live_frontend, use_lecture_style
from cnnlib.store import OutputError, check_writable, prepare_output
from cnnlib.train import TrainConfig


def setup(
    output_dir: str | Path,
    epochs: int,
    batches_per_epoch: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: str,
    writes: bool = False,
    data_root: Path = DEFAULT_DATA_DIR,
) -> tuple[TrainConfig, Path]:
    """Check the parameters (a wrong one stops here, with one line) and the output folder (that
    it can be written, and the vendored MNIST archives intact, for the notebook that `writes` the
    set there: before any training); large fonts for the figures. Returns the training
    configuration and the output folder."""
    config = TrainConfig(
        epochs=epochs,
        batches_per_epoch=batches_per_epoch,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
    )
    output_dir = Path(output_dir)
    if writes:
        ready_to_write(output_dir)
        held_out(data_root)  # the archives verify reads at the end: intact before training
    else:
        check_writable(output_dir)
    use_lecture_style()
    claims.describe_run(config, live=live_frontend())
    return config, output_dir


def ready_to_write(output_dir: Path) -> None:
    """Prepare `output_dir` for a new set; where it cannot be written, one line that says so."""
    try:
        prepare_output(output_dir)
    except OSError as error:
        raise OutputError(
            f"output_dir {output_dir} cannot be written ({error.strerror or error}): this "
            "notebook writes the lecture's artifacts there; choose a writable folder "
            "(make data OUTPUT_DIR=...)"
        ) from None


def show_source(obj: object) -> Markdown:
    """cnnlib's own code for a class or function, as a highlighted code block: the one source of
    truth, shown the same in JupyterLab, in an HTML export and on GitHub."""
    return Markdown(f"```python\n{inspect.getsource(obj)}```")
