"""Run the lecture notebooks in order through papermill, all with the same parameters.

`make data` calls it. `python notebooks/run.py -p epochs 5` overrides a parameter, as papermill's
own `-p` does. Executed copies go to notebooks/executed/ (git-ignored), the artifacts to the
notebooks' `output_dir` (data/ unless overridden). Notebook 04 ends with `cnnlib.verify`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import papermill

NOTEBOOKS_DIR = Path(__file__).resolve().parent


def parameter_value(text: str) -> object:
    """'5' -> 5, '1e-3' -> 0.001, 'True' -> True, 'cpu' -> 'cpu', as papermill's own -p reads."""
    literals = {"True": True, "False": False, "None": None}
    if text in literals:
        return literals[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def run_notebook(notebook: Path, parameters: dict[str, object], executed_dir: Path) -> None:
    start = time.perf_counter()
    papermill.execute_notebook(
        notebook,
        executed_dir / notebook.name,
        parameters=parameters,
        cwd=NOTEBOOKS_DIR,
        progress_bar=False,
    )
    print(f"{notebook.name}: done in {time.perf_counter() - start:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override a notebook parameter",
    )
    parser.add_argument(
        "--executed-dir",
        type=Path,
        default=NOTEBOOKS_DIR / "executed",
        help="where the executed copies go (notebooks/executed/)",
    )
    args = parser.parse_args(argv)
    parameters = {name: parameter_value(text) for name, text in args.parameter}
    args.executed_dir.mkdir(parents=True, exist_ok=True)
    for notebook in sorted(NOTEBOOKS_DIR.glob("0*.ipynb")):
        try:
            run_notebook(notebook, parameters, args.executed_dir)
        except papermill.PapermillExecutionError as error:
            where = f"{notebook.name} stopped in cell {error.exec_count}"
            print(f"{where}: {error.ename}: {error.evalue}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
