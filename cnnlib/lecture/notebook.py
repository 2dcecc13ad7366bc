"""The lecture's tools: what every notebook does first (check its parameters and its output
folder, set the figures' style) and cnnlib's own source shown on screen."""

from __future__ import annotations

import inspect
from pathlib import Path

from IPython.display import Markdown

from cnnlib.lecture import claims
from cnnlib.lecture.plots import use_lecture_style
from cnnlib.store import check_writable
from cnnlib.train import TrainConfig


def setup(
    output_dir: str | Path,
    epochs: int,
    batches_per_epoch: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: str,
) -> tuple[TrainConfig, Path]:
    """Check the parameters (a wrong one stops here, with one line) and the output folder;
    large fonts for the figures. Returns the training configuration and the output folder."""
    config = TrainConfig(
        epochs=epochs,
        batches_per_epoch=batches_per_epoch,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
    )
    output_dir = Path(output_dir)
    check_writable(output_dir)
    use_lecture_style()
    claims.describe_run(config)
    return config, output_dir


def show_source(obj: object) -> Markdown:
    """cnnlib's own code for a class or function, as a highlighted code block: the one source of
    truth, shown the same in JupyterLab, in an HTML export and on GitHub."""
    return Markdown(f"```python\n{inspect.getsource(obj)}```")
