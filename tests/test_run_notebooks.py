"""notebooks/run.py, the script behind `make data`: parameter names checked before anything runs,
kernels reached over Unix sockets. (tests/test_notebooks.py runs all four notebooks through it.)"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.conftest import load_script

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture(scope="module")
def run_py():
    return load_script(NOTEBOOKS_DIR / "run.py", "run_notebooks")


@pytest.fixture
def as_run_py(monkeypatch: pytest.MonkeyPatch) -> None:
    """sys.argv as `python notebooks/run.py` has it, for run.py's main() called here."""
    monkeypatch.setattr(sys, "argv", [str(NOTEBOOKS_DIR / "run.py")])


def test_an_unknown_parameter_name_stops_make_data_with_one_line(
    run_py, as_run_py, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    arguments = ["--executed-dir", str(tmp_path), "-p", "epoch", "2"]
    assert run_py.main([*arguments, "-p", "output_dir", str(tmp_path / "out")]) == 2
    assert capsys.readouterr() == (
        "",
        "run.py: error: unknown parameter 'epoch'; the notebooks take batch_size, "
        "batches_per_epoch, device, epochs, lr, output_dir, seed\n",
    )
    assert list(tmp_path.iterdir()) == []  # no executed notebook, no output folder


def test_the_parameters_are_those_of_the_notebooks(run_py) -> None:
    notebooks = sorted(NOTEBOOKS_DIR.glob("0*.ipynb"))
    assert run_py.notebook_parameters(notebooks) == {
        "output_dir",
        "epochs",
        "batches_per_epoch",
        "batch_size",
        "lr",
        "seed",
        "device",
    }


def test_kernels_talk_over_unix_sockets_not_tcp(
    run_py, tmp_path: Path, capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_py, "WARM_UP", "import os")  # the sockets, not what a kernel imports
    runner = run_py.Runner({}, tmp_path / "executed", tmp_path)
    try:
        kernel = runner.start_kernel("01_model")
        info = json.loads(Path(kernel.connection_file).read_text())
        assert (info["transport"], info["ip"]) == ("ipc", str(tmp_path / "01_model"))
        sockets = sorted(tmp_path.glob("01_model-*"))
        assert len(sockets) == 5  # shell, iopub, stdin, control, heartbeat
        assert all(stat.S_ISSOCK(path.stat().st_mode) for path in sockets)
        # Not the training notebook: it yields the CPU to the training (nice, and its autogroup).
        pid = kernel.provisioner.pid
        assert os.getpriority(os.PRIO_PROCESS, pid) == run_py.OTHERS_NICE
        autogroup = Path(f"/proc/{pid}/autogroup")
        if autogroup.exists():
            assert autogroup.read_text().endswith(f" nice {run_py.OTHERS_NICE}\n")
    finally:
        runner.stop()
    assert not list(tmp_path.glob("01_model-*"))
    assert runner.start_kernel("02_training") is None  # stopped: no more kernels
    assert "TCP" not in capfd.readouterr().err


def test_the_warm_up_imports_modules_that_exist(run_py) -> None:
    for name in run_py.WARM_UP.removeprefix("import ").split(", "):
        importlib.import_module(name)


def test_a_failed_warm_up_is_an_error_naming_it(run_py, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(run_py, "WARM_UP", "import cnnlib.no_such_module")
    runner = run_py.Runner({}, tmp_path / "executed", tmp_path)
    try:
        with pytest.raises(run_py.WarmUpError, match="No module named 'cnnlib.no_such_module'"):
            runner.start_kernel("01_model")
    finally:
        runner.stop()


# ---------------------------------------------------------------------------------------------
# Stopped or killed: every kernel ends, nothing is left behind, nothing is published later.

LONG_TRAINING = ["-p", "epochs", "20", "-p", "batches_per_epoch", "850"]


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (the kernels run.py started)."""
    children = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                children.append(int(stat_file.parent.name))
    return children


def alive(pid: int) -> bool:
    with suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return False


def wait_until(condition, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


@pytest.fixture
def long_run(tmp_path: Path, request: pytest.FixtureRequest):
    """run.py with a long training, in a session of its own (as a terminal's job), with its own
    temporary folder; returns the process, once its kernels run, and its output folder. The
    folder has a short path (tmp_path/tmp links to it): a kernel's Unix socket path must fit in
    107 bytes, and pytest's folders can be longer than that."""
    short = Path(tempfile.mkdtemp(prefix="cnnlib-test-"))
    request.addfinalizer(lambda: shutil.rmtree(short, ignore_errors=True))
    (tmp_path / "tmp").symlink_to(short)
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, str(NOTEBOOKS_DIR / "run.py"), "--executed-dir", str(tmp_path / "exec")]
        + ["-p", "output_dir", str(out), *LONG_TRAINING],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "TMPDIR": str(short)},
    )

    def kernels_run() -> bool:  # 02's, and 03's and 04's, which wait for 02's artifacts
        assert process.poll() is None, process.communicate()[1][-2000:]
        return len(children_of(process.pid)) >= 3

    try:
        wait_until(kernels_run, "the kernels run", timeout=600)
        yield process, out
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)


def descendants(pid: int) -> list[int]:
    """Every process below `pid`: for make, its shell, run.py and run.py's kernels."""
    found, parents = [], [pid]
    while parents:
        children = children_of(parents.pop())
        found += children
        parents += children
    return found


def kernels_below(pid: int) -> list[int]:
    kernels = []
    for child in descendants(pid):
        with suppress(OSError):
            if b"ipykernel_launcher" in Path(f"/proc/{child}/cmdline").read_bytes():
                kernels.append(child)
    return kernels


def this_environment(folder: Path) -> Path:
    """A VENV for make that is the environment running the tests: its bin/python runs this
    interpreter, and its stamp, newer than pyproject.toml, tells make to install nothing."""
    (folder / "bin").mkdir(parents=True)
    python = folder / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    python.chmod(0o755)
    (folder / ".installed").touch()
    return folder


@pytest.mark.parametrize(
    ("signum", "to_the_group", "make_says"),
    [
        (signal.SIGINT, True, "Interrupt"),  # Ctrl-C: the terminal signals make's process group
        (signal.SIGHUP, True, "Hangup"),  # the terminal closed (make added "wait: No child ...")
        (signal.SIGTERM, False, "Terminated"),  # `kill` of make alone (run.py went on, published)
    ],
    ids=["Ctrl-C", "terminal closed", "kill make"],
)
def test_a_stop_ends_make_data_within_seconds_with_one_line_and_leaves_nothing_behind(
    fresh_run: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    signum: signal.Signals,
    to_the_group: bool,
    make_says: str,
):
    """A real `make data` in a session of its own (a terminal's job: make leads its process
    group), stopped once its kernels run: run.py's line, then make's own, every process gone, no
    socket or connection file left, the previous set byte for byte."""
    short = Path(tempfile.mkdtemp(prefix="cnnlib-test-"))  # (a socket path fits 107 bytes)
    request.addfinalizer(lambda: shutil.rmtree(short, ignore_errors=True))
    runtime = tmp_path / "runtime"  # Jupyter's folder of connection files
    runtime.mkdir()
    before = {path: path.read_bytes() for path in fresh_run.rglob("*") if path.is_file()}
    environment = {name: value for name, value in os.environ.items() if "MAKE" not in name}
    environment |= {"TMPDIR": str(short), "JUPYTER_RUNTIME_DIR": str(runtime), "LC_ALL": "C"}
    process = subprocess.Popen(
        ["make", "data", f"VENV={this_environment(tmp_path / 'venv')}"]
        + [f"OUTPUT_DIR={fresh_run}", f"EXECUTED_DIR={tmp_path / 'executed'}"]
        + ["PARAMS=-p epochs 1 -p batches_per_epoch 5"],
        cwd=NOTEBOOKS_DIR.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=environment,
    )

    def kernels_run() -> bool:  # 02's, and the first others, still warming up
        assert process.poll() is None, process.communicate()[1][-2000:]
        return len(kernels_below(process.pid)) >= 3

    try:
        wait_until(kernels_run, "the kernels run", timeout=600)  # a loaded machine: minutes
        processes = descendants(process.pid)
        if to_the_group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=10)
        wait_until(lambda: not any(alive(pid) for pid in processes), "all have ended", 10)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)
    assert process.returncode == -signum  # make stopped by the signal, as it should
    assert "Traceback" not in stdout + stderr
    run_py_line, make_line = stderr.splitlines()  # run.py's line, then make's own
    assert run_py_line == (
        f"run.py: stopped by {signum.name}; every kernel ended, {fresh_run} was left as it was"
    )
    assert re.fullmatch(rf"make: \*\*\* \[Makefile:\d+: data\] {make_says}", make_line)
    assert list(short.iterdir()) == []  # no socket folder, no connection file
    assert list(runtime.iterdir()) == []
    assert {path: path.read_bytes() for path in fresh_run.rglob("*") if path.is_file()} == before


def signal_mask(pid: int, field: str) -> set[int]:
    """The signals in one mask of /proc/PID/status: SigBlk (blocked), SigIgn, SigCgt (caught)."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    mask = int(next(line for line in lines if line.startswith(f"{field}:")).split()[1], 16)
    return {signum for signum in range(1, 65) if mask >> (signum - 1) & 1}


@contextmanager
def run_py_alone(tmp_path: Path, **options: object) -> Iterator[subprocess.Popen]:
    """run.py on a long run into tmp_path/out, in a session of its own, for the block; then it
    and every process of its session are killed."""
    process = subprocess.Popen(
        [sys.executable, str(NOTEBOOKS_DIR / "run.py"), "--executed-dir", str(tmp_path / "exec")]
        + ["-p", "output_dir", str(tmp_path / "out"), *LONG_TRAINING],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **options,
    )
    try:
        yield process
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGHUP], ids=["Ctrl-C", "terminal closed"]
)
def test_a_stop_while_run_py_imports_is_its_one_line(tmp_path: Path, signum: signal.Signals):
    """Ctrl-C or a hangup in the first second of `make data`, while run.py imports papermill:
    the signal waits for main(), which says its one line and ends by it (no traceback; run.py
    dying at once, beside make, raced make's own handling of the signal)."""

    def importing() -> bool:  # run.py itself (not the fork before it), its stop signals blocked
        with suppress(OSError):
            command = Path(f"/proc/{process.pid}/cmdline").read_bytes()
            script = str(NOTEBOOKS_DIR / "run.py").encode()
            return script in command and signum in signal_mask(process.pid, "SigBlk")
        return False

    with run_py_alone(tmp_path) as process:
        wait_until(importing, "run.py blocks its stop signals", timeout=60)
        os.killpg(process.pid, signum)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == -signum
    assert not (tmp_path / "out").exists()
    assert (stdout, stderr) == ("", f"run.py: stopped by {signum.name}\n")


def test_under_nohup_a_hangup_does_not_stop_make_data(tmp_path: Path):
    """`nohup make data` (over ssh, say) ignores SIGHUP, and run.py leaves it ignored: closing the
    terminal does not stop the run; Ctrl-C still does."""

    def handling_ctrl_c() -> bool:  # main() has installed its handlers
        with suppress(OSError, StopIteration):
            return signal.SIGINT in signal_mask(process.pid, "SigCgt") - signal_mask(
                process.pid, "SigBlk"
            )
        return False

    nohup = {"preexec_fn": lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)}
    with run_py_alone(tmp_path, **nohup) as process:
        wait_until(handling_ctrl_c, "run.py handles Ctrl-C", timeout=60)
        assert signal.SIGHUP in signal_mask(process.pid, "SigIgn")  # not caught: never delivered
        os.killpg(process.pid, signal.SIGHUP)  # the terminal closed
        os.killpg(process.pid, signal.SIGINT)  # then Ctrl-C: the one that stops it
        _, stderr = process.communicate(timeout=60)
    assert stderr.startswith("run.py: stopped by SIGINT"), stderr[-2000:]
    assert process.returncode == -signal.SIGINT


def test_the_kernels_die_with_a_killed_run_py_and_publish_nothing(long_run):
    process, out = long_run
    kernels = children_of(process.pid)
    process.kill()
    process.wait(timeout=60)
    wait_until(lambda: not any(alive(pid) for pid in kernels), "the kernels are gone", 30)
    assert not (out / "manifest.json").exists()


def test_the_next_run_removes_the_socket_folder_a_killed_run_left(run_py, tmp_path: Path):
    gone = tmp_path / f"{run_py.SOCKETS_PREFIX}999999999-abc"
    mine = tmp_path / f"{run_py.SOCKETS_PREFIX}{os.getpid()}-abc"
    other = tmp_path / "cnnlib-kernels-notours"
    for folder in (gone, mine, other):
        folder.mkdir()
        (folder / "01_model.json").write_text("{}")
    run_py.remove_stale_socket_folders(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([mine.name, other.name])


def test_kernels_start_where_home_cannot_be_written(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path\n"
        "from tests.conftest import load_script\n"
        f"run_py = load_script(Path({str(NOTEBOOKS_DIR / 'run.py')!r}), 'run_notebooks')\n"
        f"sockets = Path({str(tmp_path)!r})\n"
        "run_py.writable_home_or_temporary(sockets)\n"
        "runner = run_py.Runner({}, sockets / 'executed', sockets)\n"
        "try:\n"
        "    kernel = runner.start_kernel('01_model')\n"
        "    print(kernel.is_alive())\n"
        "finally:\n"
        "    runner.stop()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HOME": "/proc"},  # e44c7ae: FileNotFoundError: '/proc/.ipython'
        cwd=NOTEBOOKS_DIR.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "True\n"
    assert (tmp_path / "ipython").is_dir()


def test_an_executed_folder_that_cannot_be_written_is_one_line(
    run_py, as_run_py, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert run_py.main(["--executed-dir", str(blocker / "x")]) == 2
    assert capsys.readouterr() == (
        "",
        f"run.py: error: cannot write the executed notebooks into {blocker / 'x'} (Not a "
        "directory); name a writable folder: make data EXECUTED_DIR=/tmp/executed\n",
    )
