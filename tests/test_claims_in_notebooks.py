"""A claim in 04's narration that a run contradicts stops the notebook, naming the sentence, when
claims are strict (tests/test_notebooks.py runs the notebooks with other parameters, not strict:
there the same claim prints a note and the notebook runs on)."""

from __future__ import annotations

from pathlib import Path

import papermill
import pytest

from cnnlib import lecture

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "04_export.ipynb"
# Two snapshots (epochs 0 and 1) of tiny training: too few for "almost all of the file is weights".
TINY = {"epochs": 1, "batches_per_epoch": 2, "batch_size": 8, "seed": 3, "device": "cpu"}
SENTENCE = "Almost all of the file is training_epochs, and inside it the weights"


@pytest.fixture(autouse=True)
def headless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)


def test_a_contradicted_sentence_stops_a_strict_run_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(lecture.STRICT_ENV, "1")
    with pytest.raises(papermill.PapermillExecutionError) as failure:
        papermill.execute_notebook(
            NOTEBOOK,
            tmp_path / NOTEBOOK.name,
            parameters={"output_dir": str(tmp_path / "data"), **TINY},
            cwd=NOTEBOOK.parent,
            progress_bar=False,
        )
    assert failure.value.ename == "ClaimError"
    assert failure.value.evalue.startswith(f'the narration says "{SENTENCE}", but this run')
