"""The lecture's tools: the claims a notebook's narration makes, checked against the numbers of
the run the notebook just made."""

from __future__ import annotations

import dataclasses
import os

from cnnlib.train import TrainConfig

# Set to 1 to make every claim strict, whatever the parameters (the tests use it).
STRICT_ENV = "CNNLIB_STRICT_CLAIMS"


class ClaimError(AssertionError):
    """A sentence of the narration that the run's own numbers contradict."""


_run = {"lecture_default": True}  # set by `describe_run`: the run the narration describes?


def is_lecture_default(config: TrainConfig) -> bool:
    """The run the narration describes: the default configuration, on whatever device."""
    return dataclasses.replace(config, device="auto") == TrainConfig()


def describe_run(config: TrainConfig) -> None:
    """Tell the claims which run the notebook makes (`notebook.setup` does, from its parameters)."""
    _run["lecture_default"] = is_lecture_default(config)


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
