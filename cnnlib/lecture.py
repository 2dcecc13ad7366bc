"""What every lecture notebook does: set up from its parameters, check the claims its narration
makes against the numbers of the run, and show cnnlib's own source on screen."""

from __future__ import annotations

import dataclasses
import inspect
import os
from pathlib import Path

from IPython.display import Markdown

from cnnlib import plots
from cnnlib.export import check_writable
from cnnlib.train import TrainConfig

# Set to 1 to make every claim strict, whatever the parameters (the tests use it).
STRICT_ENV = "CNNLIB_STRICT_CLAIMS"


class ClaimError(AssertionError):
    """A sentence of the narration that the run's own numbers contradict."""


_run = {"lecture_default": True}  # set by `setup`: is this the run the narration describes?


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
    plots.use_lecture_style()
    _run["lecture_default"] = is_lecture_default(config)
    return config, output_dir


def is_lecture_default(config: TrainConfig) -> bool:
    """The run the narration describes: the default configuration, on whatever device."""
    return dataclasses.replace(config, device="auto") == TrainConfig()


def strict() -> bool:
    """Claims fail the notebook for the lecture's own run (or when STRICT_ENV is set to 1)."""
    return _run["lecture_default"] or os.environ.get(STRICT_ENV) == "1"


def claim(sentence: str, holds: bool, evidence: str = "") -> None:
    """Check one sentence of the narration against this run's numbers.

    For the lecture's own run a false sentence stops the notebook, naming the sentence; for a run
    with other parameters (a shorter training, say) it prints a note instead, since the narration
    describes the lecture's run.
    """
    if holds:
        return
    message = f'the narration says "{sentence}", but this run disagrees'
    message += f": {evidence}" if evidence else ""
    if strict():
        raise ClaimError(message)
    print(f"Note, for these parameters: {message}")


def show_source(obj: object) -> Markdown:
    """cnnlib's own code for a class or function, as a highlighted code block: the one source of
    truth, shown the same in JupyterLab, in an HTML export and on GitHub."""
    return Markdown(f"```python\n{inspect.getsource(obj)}```")
