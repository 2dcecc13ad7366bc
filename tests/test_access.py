"""Another user, a read-only clone: reading a set needs no lock and no write access; what must
write says where and why in one line. A real user (`student`, created here) on a real read-only
bind mount; the tests run as root, as CI does, and skip only where the kernel refuses the mount.

The user is given CAP_DAC_READ_SEARCH (read and search everywhere, write nowhere it may not):
this machine's Python lives in /root, which no other user can reach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlib.export import JSON_NAME
from tests.conftest import SHORT

STUDENT = "student"
ROOT = Path(__file__).resolve().parent.parent
AS_STUDENT = [
    "setpriv",
    f"--reuid={STUDENT}",
    f"--regid={STUDENT}",
    "--init-groups",
    "--inh-caps=+dac_read_search",
    "--ambient-caps=+dac_read_search",
]


@pytest.fixture(scope="module")
def student() -> str:
    if os.geteuid() != 0:
        pytest.skip("creating a user and mounting a file system need root")
    if subprocess.run(["id", STUDENT], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--create-home", STUDENT], check=True)
    return STUDENT


def as_student(*command: str, project: Path = ROOT) -> subprocess.CompletedProcess:
    """Run `command` as the student, in `project` (whose cnnlib it imports)."""
    return subprocess.run(
        [*AS_STUDENT, *command],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project), "HOME": f"/home/{STUDENT}"},
    )


@pytest.fixture
def read_only_clone(student: str, short_run: Path, tmp_path: Path):
    """A copy of the project's data folder, holding a set, on a read-only bind mount."""
    source, mounted = tmp_path / "clone", tmp_path / "read-only"
    shutil.copytree(short_run, source / "data", symlinks=True)
    mounted.mkdir()
    done = subprocess.run(["mount", "--bind", str(source), str(mounted)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"the kernel refused a bind mount: {done.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mounted)], check=True)
        yield mounted / "data"
    finally:
        subprocess.run(["umount", str(mounted)], check=True)


def listing(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


READ = f"""
from pathlib import Path
from cnnlib.store import check_writable
from cnnlib.pipeline import ensure_artifacts
from cnnlib.train import TrainConfig
from cnnlib.verify import verify
out = Path(OUT)
check_writable(out)  # what every notebook's first cell does
ensure_artifacts(TrainConfig(**{SHORT.as_dict()!r}), out)  # notebooks 03 and 04
print(verify(out, min_accuracy=0.0).passed)
"""


def test_another_user_reads_a_read_only_set_without_lock_or_write(read_only_clone: Path):
    before = listing(read_only_clone)
    done = as_student(sys.executable, "-c", READ.replace("OUT", repr(str(read_only_clone))))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "True\n"
    assert listing(read_only_clone) == before


def test_another_user_writing_into_a_read_only_clone_gets_one_line(read_only_clone: Path):
    done = as_student(
        sys.executable, "-m", "cnnlib", "regenerate", "--out", str(read_only_clone), "--quiet"
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (  # the first refusal the kernel gives: not the owner
        f"python -m cnnlib regenerate: error: --out {read_only_clone} cannot be written "
        "(Permission denied); choose a writable folder\n"
    )
    assert (read_only_clone / JSON_NAME).is_file()


SETUP = """
from cnnlib import lecture
from cnnlib.store import OutputError
arguments = (OUT, 1, 5, 64, 1e-3, 42, "cpu")
lecture.setup(*arguments)  # 01, 03 and 04 only read the set: no write access needed
try:
    lecture.setup(*arguments, writes=True)  # 02 writes it: told in its first cell
except OutputError as error:
    print(error)
"""


def test_notebook_02_stops_in_its_first_cell_where_it_cannot_write(read_only_clone: Path):
    before = listing(read_only_clone)
    done = as_student(sys.executable, "-c", SETUP.replace("OUT", repr(str(read_only_clone))))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == (  # the first refusal the kernel gives: not the owner
        f"output_dir {read_only_clone} cannot be written (Permission denied): this notebook "
        "writes the lecture's artifacts there; choose a writable folder "
        "(make data OUTPUT_DIR=...)\n"
    )
    assert listing(read_only_clone) == before


def test_make_data_in_a_read_only_clone_names_the_folder_and_the_fix(read_only_clone: Path):
    executed = read_only_clone.parent / "notebooks" / "executed"
    done = as_student(
        sys.executable, "notebooks/run.py", "--executed-dir", str(executed), "-p", "epochs", "1"
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"run.py: error: cannot write the executed notebooks into {executed} (Read-only file "
        "system); name a writable folder: make data EXECUTED_DIR=/tmp/executed\n"
    )


def copy_of_the_project(folder: Path) -> Path:
    """The files a clone of the project holds (git's tracked and unignored files), as they are in
    this working tree, copied into `folder`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
        cwd=ROOT,
    )
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():  # not one deleted in the working tree
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, folder / name)
    return folder


# Quick tests that read data/MNIST/raw and write into their own temporary folders only: MNIST
# loaded into memory, a damaged copy of its archives, a short run trained and copied (the
# fixtures most tests use).
QUICK_TESTS = [
    "tests/test_data.py::test_mnist_in_memory_has_the_official_shapes_and_class_counts",
    "tests/test_data.py::test_a_truncated_archive_is_one_clear_error_naming_it",
    "tests/test_pipeline.py::test_a_damaged_test_archive_stops_regenerate_before_any_training",
]


def test_another_user_runs_the_tests_in_a_read_only_clone(student: str, tmp_path: Path):
    clone = copy_of_the_project(tmp_path / "clone")
    subprocess.run(["chmod", "-R", "a-w", str(clone)], check=True)
    before = listing(clone)
    done = as_student(sys.executable, "-m", "pytest", "-q", "-n", "0", *QUICK_TESTS, project=clone)
    assert done.returncode == 0, done.stdout[-3000:]
    assert done.stdout.splitlines()[-1].startswith(f"{len(QUICK_TESTS)} passed in ")
    assert "warning" not in done.stdout
    # The notebooks write data/: the whole suite stops at once, saying so (issue 19: 102
    # failures).
    whole = as_student(sys.executable, "-m", "pytest", "-q", project=clone)
    assert whole.returncode == 4 and whole.stdout == ""
    assert whole.stderr.rstrip("\n") == (
        f"ERROR: {clone / 'data'} cannot be written, and the notebooks write the lecture's "
        "artifacts there; run the tests in a writable clone, or all but the notebooks: "
        "python -m pytest tests"
    )
    assert listing(clone) == before
    # make test would first create .venv in the clone: it says it cannot, and where to instead.
    make = as_student("make", "test", project=clone)
    assert make.returncode == 2
    assert make.stderr.splitlines()[0] == (
        "make: cannot create the environment .venv here (not writable for student); name a "
        "writable folder: make test VENV=/tmp/cnn-venv"
    )
    assert listing(clone) == before
