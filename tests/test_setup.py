"""The set-up a newcomer relies on: pyproject, environment.yml, Makefile, README and CI agree."""

import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.browser import CHROMIUM

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENVIRONMENT = yaml.safe_load((ROOT / "environment.yml").read_text())
MAKEFILE = (ROOT / "Makefile").read_text()
LAB_SETTINGS = "notebooks/jupyterlab-overrides.json"  # copied into the venv by `make setup`


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


def test_pyproject_license_is_an_spdx_string_that_setuptools_takes_without_warning(tmp_path):
    assert PYPROJECT["project"]["license"] == "MIT"
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "cnnlib", tmp_path / "cnnlib")
    build_metadata = (
        "import tempfile, warnings\n"
        "warnings.simplefilter('error')\n"  # setuptools' deprecations become failures
        "from setuptools import build_meta\n"
        "build_meta.prepare_metadata_for_build_wheel(tempfile.mkdtemp())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", build_metadata],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# `make data OUTPUT_DIR=...`: the real make and shell, with run.py's interpreter replaced by one
# that prints the arguments it gets (the notebooks themselves are tested elsewhere).

ECHO_ARGUMENTS = "#!/bin/sh\nprintf '%s\\n' \"$@\"\n"


@pytest.fixture
def make_data(tmp_path: Path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    project = tmp_path / "project"
    (project / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(ROOT / "Makefile", project / "Makefile")
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    (project / "notebooks").mkdir()
    shutil.copy(ROOT / LAB_SETTINGS, project / LAB_SETTINGS)
    (project / ".venv" / ".installed").touch()  # set-up done: newer than pyproject.toml
    python = project / ".venv" / "bin" / "python"
    python.write_text(ECHO_ARGUMENTS)
    python.chmod(0o755)

    def run(output_dir: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["make", "-s", "data", f"OUTPUT_DIR={output_dir}"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return project, run


@pytest.mark.parametrize(
    "output_dir",
    ["my data", "it's", 'say "cheese"', "`touch pwned`", "$(shell touch pwned)", "$HOME", "/abs/x"],
)
def test_make_data_passes_any_output_dir_to_run_py_unchanged(make_data, output_dir: str):
    project, run = make_data
    done = run(output_dir)
    assert done.returncode == 0, done.stderr
    expected = output_dir if output_dir.startswith("/") else f"{project}/{output_dir}"
    assert done.stdout.splitlines() == [
        "notebooks/run.py",
        "--executed-dir",
        "notebooks/executed",
        "-p",
        "output_dir",
        expected,
    ]
    assert not (project / "pwned").exists()


def test_make_test_and_ci_install_the_browser_with_one_script():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash .ci/install-tools" in ci
    assert '@if [ "$$(id -u)" = 0 ]; then bash .ci/install-tools; fi' in MAKEFILE
    script = (ROOT / ".ci" / "install-tools").read_text()
    assert "chromium" in script and "apt-get install" in script


def test_make_data_refuses_an_empty_output_dir_in_one_line(make_data):
    _, run = make_data
    done = run("")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.endswith(
        ": *** OUTPUT_DIR is empty; name a folder, e.g. OUTPUT_DIR=data.  Stop.\n"
    )


# Two browser tests that need nothing but the browser.
BROWSER_TESTS = [
    "tests/test_demo.py::test_opened_as_a_file_it_says_what_to_run",
    "tests/test_demo.py::test_served_with_demo_as_the_root_it_says_what_to_run",
]
SKIPPED_LINE = (
    "2 browser tests skipped: no Chromium at /usr/bin/chromium; "
    "`sudo bash .ci/install-tools` installs it (`make test` runs it when root)"
)


def browser_tests(tmp_path: Path, without_chromium: bool) -> subprocess.CompletedProcess:
    """Run BROWSER_TESTS outside CI; `without_chromium`: in a mount namespace whose /usr/bin
    lacks it (an overlay with a whiteout in its place), as on a machine without Chromium."""
    command = [sys.executable, "-m", "pytest", "-q", "-n", "0", *BROWSER_TESTS]
    if without_chromium:
        whiteout = tmp_path / "whiteout"
        whiteout.mkdir()
        os.mknod(whiteout / CHROMIUM.name, stat.S_IFCHR, os.makedev(0, 0))
        folder = CHROMIUM.parent
        hide = f'mount -t overlay overlay -o lowerdir={whiteout}:{folder} {folder} && exec "$@"'
        command = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            hide,
            "sh",
            *command,
        ]
    environment = {name: value for name, value in os.environ.items() if name != "CI"}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=ROOT, env=environment
    )


def test_without_chromium_the_run_ends_naming_the_skipped_browser_tests_and_the_fix(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("hiding Chromium in a mount namespace needs root")
    done = browser_tests(tmp_path, without_chromium=True)
    if "mount" in done.stderr:
        pytest.skip(f"the kernel refused the overlay: {done.stderr.strip()}")
    assert done.returncode == 0, done.stdout[-2000:]
    lines = done.stdout.splitlines()
    assert lines.count(SKIPPED_LINE) == 1
    assert re.fullmatch(r"2 skipped in [0-9.]+s", lines[-1])


def test_with_chromium_no_browser_test_skips_and_nothing_is_said(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    done = browser_tests(tmp_path, without_chromium=False)
    assert done.returncode == 0, done.stdout[-2000:]
    lines = done.stdout.splitlines()
    assert "browser tests skipped" not in done.stdout
    assert re.fullmatch(r"2 passed in [0-9.]+s", lines[-1])
