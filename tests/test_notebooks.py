"""The lecture notebooks: papermill overrides, a notebook run on its own, nonsense parameters,
and what the committed copies may contain. (nbval runs the notebooks themselves, see pyproject.)"""

from __future__ import annotations

import ast
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

import cnnlib
from cnnlib import lecture
from cnnlib.lecture import claims
from tests.conftest import load_script

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("0*.ipynb"))
NAMES = ["01_model", "02_training", "03_feature_maps", "04_export"]
PARAMETERS = {"output_dir", "epochs", "batches_per_epoch", "batch_size", "lr", "seed", "device"}
# The least training every cell runs with: one epoch (two snapshots) of two batches of eight.
TINY = {"epochs": 1, "batches_per_epoch": 2, "batch_size": 8, "device": "cpu"}
READ_ARTIFACTS = ("03_feature_maps", "04_export")  # written by 02, or else by themselves
MAX_BYTES = 2_000_000  # per committed notebook: full-colour figures (issue 17) made 03 1.8 MB
TIMING = re.compile(r"\d\d:\d\d(<|&lt;)|\d(it|batch|cell)/s|s/(it|batch)")
PRIVATE_PATHS = (str(NOTEBOOKS_DIR.parent), "/home/", "/tmp/", "/root/", "/Users/", "C:\\")


def run(notebook: Path, out_dir: Path, **parameters: object) -> nbformat.NotebookNode:
    """Execute with papermill, headless, from the notebooks folder (as `make data` does)."""
    return papermill.execute_notebook(
        notebook,
        out_dir / notebook.name,
        parameters=parameters,
        cwd=NOTEBOOKS_DIR,
        progress_bar=False,
    )


def images(notebook: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


@pytest.fixture(autouse=True)
def headless(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernels started here must not believe that JupyterLab started them."""
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)


def test_the_four_notebooks_are_there_in_lecture_order() -> None:
    assert [path.stem for path in NOTEBOOKS] == NAMES


def run_all(tmp_path: Path, **parameters: object) -> subprocess.CompletedProcess:
    """`make data` with PARAMS: notebooks/run.py, executed copies into tmp_path."""
    options = [part for name, value in parameters.items() for part in ("-p", name, str(value))]
    command = [sys.executable, str(NOTEBOOKS_DIR / "run.py"), "--executed-dir", str(tmp_path)]
    return subprocess.run([*command, *options], capture_output=True, text=True, timeout=900)


def test_an_override_runs_all_four_into_a_verified_artifact_set(tmp_path: Path) -> None:
    """The smallest run make data takes: all four notebooks, every cell; the sentences it
    contradicts are warnings, and the notebooks go on (a live lecture's kernel too: see
    test_claims.py, test_setup_in_a_jupyterlab_kernel_makes_a_false_claim_warn)."""
    artifacts = tmp_path / "artifacts"
    done = run_all(tmp_path, output_dir=artifacts, **TINY)
    assert done.returncode == 0, done.stderr
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == [
        f"{name}.ipynb" for name in NAMES
    ]
    executed = [nbformat.read(tmp_path / path.name, as_version=4) for path in NOTEBOOKS]

    report = cnnlib.verify(artifacts, min_accuracy=0)
    assert report.passed, "\n".join(report.lines())
    manifest = json.loads((artifacts / "manifest.json").read_text())
    assert manifest["config"] == cnnlib.TrainConfig(**TINY).as_dict()
    assert len(list((artifacts / "epoch_weights").glob("*.pth"))) == TINY["epochs"] + 1
    # Headless, the feature-map slider falls back to one static figure of every epoch.
    explorer = next(cell for cell in executed[2].cells if "show_epoch_explorer" in cell.source)
    assert sum("image/png" in output.get("data", {}) for output in explorer.outputs) == 1
    assert all(images(notebook) >= 3 for notebook in executed)
    for notebook, name in zip(executed, NAMES, strict=True):
        if name in CONTRADICTED_BY_TINY:
            assert any(CONTRADICTED_BY_TINY[name] in text for text in warnings(notebook))


def warnings(notebook: nbformat.NotebookNode) -> list[str]:
    """What the notebook's claims printed: a sentence that does not hold for this run."""
    return [
        output["text"]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.get("name") == "stderr" and "does not hold" in output.get("text", "")
    ]


def test_a_nonsense_override_stops_make_data_with_one_line(tmp_path: Path) -> None:
    done = run_all(tmp_path, output_dir=tmp_path / "out", device="tpu")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "01_model.ipynb stopped in cell 3: ConfigError: "
        "device must be one of auto, cpu, cuda, got 'tpu'"
    )
    assert not (tmp_path / "out").exists()


# Sentences about the lecture's own run that the override's tiny run contradicts: each is a
# warning in its notebook, and the notebook goes on.
CONTRADICTED_BY_TINY = {
    # Two batches of eight leave almost all of the training set unused.
    "02_training": 'the narration says "about 8% of the 55,000 are never used, as many as '
    'independent shuffles predict", but this run disagrees: 54,984 of 55,000 never drawn',
    # Two snapshots of tiny training: too few for "almost all of the file is weights".
    "04_export": 'the narration says "Almost all of the file is training_epochs, and inside it '
    'the weights", but this run',
}
# Strict claims (as headless runs have them): a sentence the run contradicts stops the notebook.
CONTRADICTED = [
    (
        # Another seed's random conv1 filters start with other jobs than the lecture's.
        "03_feature_maps",
        TINY | {"seed": 7},
        'the narration says "In this run two filters follow the stroke, one its negative (the '
        "background), and the fourth hori",
    ),
]


@pytest.mark.parametrize(("name", "parameters", "message"), CONTRADICTED)
def test_a_claim_the_run_contradicts_stops_the_notebook_naming_its_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, parameters: dict, message: str
) -> None:
    monkeypatch.setenv(claims.STRICT_ENV, "1")
    out = tmp_path / "never_written"
    with pytest.raises(papermill.PapermillExecutionError) as failure:
        run(NOTEBOOKS_DIR / f"{name}.ipynb", tmp_path, output_dir=str(out), **parameters)

    assert failure.value.ename == "ClaimError"
    assert failure.value.evalue.startswith(message)
    assert "lecture.check(" in failure.value.source
    if name in READ_ARTIFACTS:  # run on its own, it first trained and wrote what it reads
        assert cnnlib.verify(out, min_accuracy=0).passed


# --- the committed notebooks, as stored: no kernel needed -----------------------------------


@pytest.fixture(params=NAMES)
def committed(request: pytest.FixtureRequest) -> tuple[Path, nbformat.NotebookNode]:
    path = NOTEBOOKS_DIR / f"{request.param}.ipynb"
    return path, nbformat.read(path, as_version=4)


def test_committed_notebook_opens_with_the_shared_parameters(committed) -> None:
    _, notebook = committed
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    assigned = {target.id for node in ast.parse(tagged[0].source).body for target in node.targets}
    assert assigned == PARAMETERS
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    after = code[code.index(tagged[0]) + 1]
    # The cell papermill runs right after the parameters it injects: imports, then every parameter
    # checked, in lecture.setup's order (a nonsense one stops the notebook there with one line,
    # before anything is written: test_lecture.py; through make data: the nonsense override).
    source = "\n".join(line for line in after.source.splitlines() if not line.startswith("%"))
    body = ast.parse(source).body
    imports = [node for node in body if isinstance(node, ast.Import | ast.ImportFrom)]
    setup = body[len(imports)]
    assert body[: len(imports)] == imports
    assert ast.unparse(setup).startswith("config, output_dir = lecture.setup(")
    names = list(inspect.signature(lecture.setup).parameters)[: len(PARAMETERS)]
    assert [ast.unparse(argument) for argument in setup.value.args] == names
    assert set(names) == PARAMETERS


def test_committed_notebook_carries_clean_outputs_of_a_default_run(committed) -> None:
    path, notebook = committed
    assert path.stat().st_size <= MAX_BYTES
    assert "papermill" not in notebook.metadata
    text = []
    for cell in (cell for cell in notebook.cells if cell.cell_type == "code"):
        assert cell.execution_count is not None, f"not executed: {cell.source[:60]!r}"
        assert not {"papermill", "execution"} & set(cell.metadata)
        for output in cell.outputs:
            assert output.output_type != "error"
            assert output.get("name") != "stderr", output.get("text")
            text.append(output.get("text", "") + str(output.get("data", {}).get("text/plain", "")))
    text.append(json.dumps(notebook.metadata.get("widgets", {})))
    everything = "\n".join(text)
    assert not TIMING.search(everything), TIMING.search(everything)
    assert not [private for private in PRIVATE_PATHS if private in everything]


def test_committed_notebook_reads_as_a_lecture(committed) -> None:
    _, notebook = committed
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds[0] == "markdown" and notebook.cells[0].source.startswith("# 0")
    assert kinds.count("markdown") >= 8
    assert images(notebook) >= 3
    assert any("nbval-check-output" in cell.metadata.get("tags", []) for cell in notebook.cells)
    assert not any("NBVAL" in cell.source for cell in notebook.cells)  # tags, not comments


@pytest.fixture(scope="module")
def refresh():
    """notebooks/refresh.py, the script behind `make notebooks`."""
    return load_script(NOTEBOOKS_DIR / "refresh.py", "refresh")


def test_refresh_strips_the_timing_of_a_progress_bar(refresh) -> None:
    bar = "\u20072100/2100\u2007[03:19&lt;00:00,\u200711.35batch/s,\u2007epoch=20,\u2007loss=0.060]"
    assert refresh.without_timing(bar) == "\u20072100/2100\u2007[epoch=20,\u2007loss=0.060]"
    assert refresh.without_timing("0/2100 [00:00<?, ?batch/s]") == "0/2100 "
    assert refresh.without_timing("7/9 [01:02:03<00:01,  2.50s/batch]") == "7/9 "


def test_refresh_merges_the_pieces_of_a_print(refresh) -> None:
    pieces = [
        nbformat.v4.new_output("stream", name="stdout", text="same prediction"),
        nbformat.v4.new_output("stream", name="stdout", text="\n"),
        nbformat.v4.new_output("stream", name="stderr", text="warning\n"),
    ]
    merged = refresh.merged_streams(pieces)
    assert [(output.name, output.text) for output in merged] == [
        ("stdout", "same prediction\n"),
        ("stderr", "warning\n"),
    ]
