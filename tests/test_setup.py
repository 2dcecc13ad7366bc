"""The set-up a newcomer relies on: pyproject, environment.yml, Makefile, README and CI agree."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENVIRONMENT = yaml.safe_load((ROOT / "environment.yml").read_text())
MAKEFILE = (ROOT / "Makefile").read_text()


def _conda_and_pip() -> tuple[list[str], list[str]]:
    conda = [item for item in ENVIRONMENT["dependencies"] if isinstance(item, str)]
    pip = next(item["pip"] for item in ENVIRONMENT["dependencies"] if isinstance(item, dict))
    return conda, pip


def test_environment_yml_creates_python_311_with_pip():
    conda, _ = _conda_and_pip()
    assert "python=3.11" in conda and "pip" in conda
    minimum = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, minimum.split("."))) <= (3, 11)


def test_environment_yml_installs_the_project_with_every_extra():
    _, pip = _conda_and_pip()
    installs = [line for line in pip if line.startswith("-e")]
    assert len(installs) == 1
    extras = re.search(r"\[(.*)\]", installs[0]).group(1).split(",")
    assert sorted(extras) == sorted(PYPROJECT["project"]["optional-dependencies"])


def test_environment_yml_pins_the_same_torch_as_the_makefile():
    _, pip = _conda_and_pip()
    pins = sorted(line for line in pip if line.startswith(("torch==", "torchvision==")))
    makefile_pins = re.search(r"^TORCH \?= (.*)$", MAKEFILE, re.MULTILINE).group(1).split()
    assert pins == sorted(makefile_pins) == ["torch==2.14.1", "torchvision==0.29.1"]


def test_pyproject_declares_the_libraries_the_issue_names():
    names = {
        re.split(r"[<>=\[ ]", requirement)[0]
        for requirement in PYPROJECT["project"]["dependencies"]
    }
    assert {"torch", "torchvision", "numpy", "pillow", "matplotlib", "tqdm"} <= names
    extras = {
        re.split(r"[<>=\[ ]", requirement)[0]
        for requirement in PYPROJECT["project"]["optional-dependencies"]["dev"]
    }
    assert {"jupyterlab", "ipykernel", "ipywidgets", "papermill", "nbval", "pytest"} <= extras


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make data" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.strip().splitlines()[-1] == "make test"
