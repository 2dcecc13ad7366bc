"""Run the lecture notebooks through papermill, all with the same parameters.

`make data` calls it. `python notebooks/run.py -p epochs 5` overrides a parameter, as papermill's
own `-p` does; a name that no notebook takes stops it before anything runs. Executed copies go to
notebooks/executed/ (git-ignored), the artifacts to the notebooks' `output_dir` (data/ unless
overridden). Notebook 04 ends with `cnnlib.verify`.

The notebooks run side by side where they can: 01 beside 02 (the training), 03 and 04 as soon as 02
has published the artifacts they read (while 02 goes on with its last figures). Every kernel
starts early and imports what the notebooks import (silently, so no cell or execution count
changes), so a notebook that has to wait starts warm; all but the training notebook's run at a
lower CPU priority, so that they use what the training leaves idle instead of slowing it.
The kernels talk to this process over Unix sockets (IPC), not over TCP ports, in a folder of their
own with their connection files. Ctrl-C, SIGTERM or a hangup stops every kernel at once, removes
that folder, prints one line and ends by that signal (so make says "Interrupt", not "Error 130");
a kernel whose run.py was killed (SIGKILL) dies with it (Linux's parent-death signal), so it can
never publish artifacts after the run was reported failed.
"""

from __future__ import annotations

import argparse
import ast
import ctypes
import os
import queue
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill, terminal closed

if __name__ == "__main__":
    # Until main() installs its handlers, these signals wait (blocked), so one that comes in the
    # second the imports below take stops run.py as any other: its one line, no traceback. (Dying
    # at once, beside make, races make's own handling: "make: *** wait: No child processes".)
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

import papermill  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

NOTEBOOKS_DIR = Path(__file__).resolve().parent
TRAINING = "02_training.ipynb"  # writes the artifacts
READS_ARTIFACTS = ("03_feature_maps.ipynb", "04_export.ipynb")  # wait for TRAINING
MANIFEST = "manifest.json"  # published last: a new one means a complete new set of artifacts
# What every notebook's first code cell imports: the seconds a kernel can spend while it waits.
WARM_UP = "import matplotlib.pyplot, cnnlib, cnnlib.lecture, cnnlib.lecture.plots, cnnlib.reference"
KERNEL_START_S = 120
POLL_S = 0.1  # how often a waiting notebook looks for the training notebook's artifacts
# The other notebooks' kernels yield the CPU to the training notebook's: they fill what it leaves
# idle instead of slowing it down (make data: 28.5 s before, 25 s after, bench/README.md).
OTHERS_NICE = 10
SOCKETS_PREFIX = "cnnlib-kernels-"  # + run.py's process id: the folder of the kernels' sockets
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


class Stopped(Exception):
    """run.py got SIGINT (Ctrl-C), SIGTERM or SIGHUP."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def raise_stopped(signum: int, frame: object) -> None:
    raise Stopped(signum)


def die_with_parent() -> None:
    """In a kernel's process, before it runs: be killed when run.py dies, even by SIGKILL
    (Linux only; elsewhere ipykernel's own parent polling ends it within a second)."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def remove_stale_socket_folders(temporary: Path) -> None:
    """Remove the kernels' socket folders that killed runs of run.py left (their process is
    gone), only our own: every run removes its own on its way out."""
    for folder in temporary.glob(f"{SOCKETS_PREFIX}*"):
        match = re.fullmatch(rf"{SOCKETS_PREFIX}(\d+)-\w+", folder.name)
        ours = folder.stat().st_uid == os.getuid()
        if match and ours and not pid_running(int(match[1])):
            shutil.rmtree(folder, ignore_errors=True)


def pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def writable_home_or_temporary(sockets: Path) -> None:
    """IPython keeps its profile in ~/.ipython: where HOME cannot be written, the kernels get
    folders in `sockets` (removed at the end) for it and for matplotlib's cache."""
    try:  # what IPython does first; writable access cannot tell (root, /proc)
        (Path.home() / ".ipython").mkdir(exist_ok=True)
        return
    except OSError:
        pass
    for variable, name in (("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "matplotlib")):
        if variable not in os.environ:
            (sockets / name).mkdir()
            os.environ[variable] = str(sockets / name)


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


def notebook_parameters(notebooks: list[Path]) -> set[str]:
    """Every name that some notebook's parameters cell defines."""
    return {name for notebook in notebooks for name in papermill.inspect_notebook(notebook)}


def output_dir(parameters: dict[str, object]) -> Path:
    """Where the notebooks write and read the artifacts: the output_dir parameter, else the
    default of the training notebook's parameters cell (relative to the notebooks folder)."""
    if "output_dir" in parameters:
        return NOTEBOOKS_DIR / str(parameters["output_dir"])
    default = papermill.inspect_notebook(NOTEBOOKS_DIR / TRAINING)["output_dir"]["default"]
    return NOTEBOOKS_DIR / ast.literal_eval(default)


def published(folder: Path) -> tuple[int, int] | None:
    """Which set of artifacts `folder` shows: its manifest's file (each publish puts a new one
    in place, made at another time), or None."""
    try:
        manifest = os.stat(folder / MANIFEST)
    except OSError:
        return None
    return (manifest.st_ino, manifest.st_ctime_ns)


def yield_cpu(pid: int) -> None:
    """Give process `pid` (just started, so its threads to come inherit it) a lower CPU priority,
    nice OTHERS_NICE. Linux also weighs each session as a group ("autogroup"), and every kernel
    runs in a session of its own, so the group's priority is lowered too where there is one."""
    os.setpriority(os.PRIO_PROCESS, pid, OTHERS_NICE)
    with suppress(OSError):  # no autogroups here (macOS, or a Linux built without them)
        Path(f"/proc/{pid}/autogroup").write_text(str(OTHERS_NICE))


class WarmUpError(RuntimeError):
    """WARM_UP failed in a kernel: the notebooks would fail the same way."""


def warm_up(kernel: KernelManager) -> None:
    """Run WARM_UP in the kernel, silently (no output, no execution count); return when it is
    done or the kernel has died (`Runner.stop` ends kernels). WarmUpError if it failed."""
    client = kernel.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=KERNEL_START_S)
        request = client.execute(WARM_UP, silent=True)
        while kernel.is_alive():
            try:
                reply = client.get_shell_msg(timeout=1)
            except queue.Empty:
                continue
            if reply["parent_header"].get("msg_id") == request:
                if reply["content"]["status"] == "error":
                    content = reply["content"]
                    raise WarmUpError(f"{WARM_UP!r}: {content['ename']}: {content['evalue']}")
                return
    finally:
        client.stop_channels()


class Runner:
    """Runs each notebook in a thread of its own, in its own kernel, in dependency order.

    Each kernel is a Python kernel in the notebooks folder, reached over Unix sockets in
    `socket_dir`, started early and warmed up with WARM_UP. `stop()` ends every kernel.
    """

    def __init__(self, parameters: dict[str, object], executed_dir: Path, socket_dir: Path):
        self.parameters, self.executed_dir, self.socket_dir = parameters, executed_dir, socket_dir
        self.artifacts = output_dir(parameters)
        self.set_before = published(self.artifacts)  # the set the training notebook replaces
        self.training_kernel_started = threading.Event()
        self.training: Future[float | None] | None = None
        self.kernels: list[KernelManager] = []
        self.lock = threading.Lock()  # guards `kernels` and `stopped`
        self.stopped = False

    def start_kernel(self, name: str) -> KernelManager | None:
        """A warm kernel for notebook `name`, or None once `stop()` has been called."""
        with self.lock:
            if self.stopped:
                return None
            kernel = KernelManager(
                kernel_name="python3",
                transport="ipc",
                ip=str(self.socket_dir / name),
                connection_file=str(self.socket_dir / f"{name}.json"),
            )
            kernel.start_kernel(cwd=str(NOTEBOOKS_DIR), preexec_fn=die_with_parent)
            if f"{name}.ipynb" == TRAINING:  # the longest path: launched first, full priority
                self.training_kernel_started.set()  # the others launch theirs now
            else:
                yield_cpu(kernel.provisioner.pid)
            self.kernels.append(kernel)
        warm_up(kernel)
        return kernel

    def shut_down(self, kernel: KernelManager) -> None:
        with self.lock:
            if kernel.has_kernel:
                kernel.shutdown_kernel(now=True)

    def stop(self) -> None:
        """End every kernel, running or not; start no more."""
        with self.lock:
            self.stopped = True
        for kernel in self.kernels:
            self.shut_down(kernel)

    def kill(self) -> None:
        """End every kernel now, from the main thread while the others may be waiting on them:
        SIGKILL to each kernel's process group, without waiting for any lock or reply."""
        self.stopped = True
        for kernel in list(self.kernels):
            process = getattr(kernel.provisioner, "process", None)
            if process is not None and process.poll() is None:  # alive: its pid is still its own
                with suppress(OSError):
                    os.killpg(process.pid, signal.SIGKILL)  # it leads a session of its own

    def artifacts_ready(self) -> bool:
        """Wait until the training notebook has published a new set of artifacts (True) or has
        ended without one (True if it succeeded, False if it failed)."""
        if self.training is None:
            return True
        while not self.training.done():
            if published(self.artifacts) != self.set_before:
                return True
            time.sleep(POLL_S)
        return self.training.exception() is None

    def run(self, notebook: Path) -> float | None:
        """Execute `notebook`; its wall time in seconds, or None when it was not run (the
        training notebook failed, or the run was stopped)."""
        start = time.perf_counter()
        if notebook.name == TRAINING:
            try:
                kernel = self.start_kernel(notebook.stem)
            finally:
                self.training_kernel_started.set()  # (already, unless it failed to launch)
        else:
            self.training_kernel_started.wait()
            kernel = self.start_kernel(notebook.stem)
        if kernel is None:
            return None
        try:
            if notebook.name in READS_ARTIFACTS and not self.artifacts_ready():
                return None
            papermill.execute_notebook(
                notebook,
                self.executed_dir / notebook.name,
                parameters=self.parameters,
                cwd=NOTEBOOKS_DIR,
                progress_bar=False,
                km=kernel,
            )
        finally:
            self.shut_down(kernel)
        return time.perf_counter() - start


def failure_line(notebook: Path, error: Exception) -> str:
    if isinstance(error, papermill.PapermillExecutionError):
        return f"{notebook.name} stopped in cell {error.exec_count}: {error.ename}: {error.evalue}"
    return f"{notebook.name} failed: {type(error).__name__}: {error}"


def run_all(notebooks: list[Path], parameters: dict[str, object], executed_dir: Path) -> int:
    """Run every notebook; one line each, in lecture order. The first failure (in lecture
    order) stops the others and is the last line: exit status 1. SIGINT, SIGTERM or SIGHUP
    stop every kernel at once: one line, exit status 128 + the signal's number (the process
    then ends by that signal)."""
    temporary = Path(tempfile.gettempdir())
    remove_stale_socket_folders(temporary)
    sockets = Path(tempfile.mkdtemp(prefix=f"{SOCKETS_PREFIX}{os.getpid()}-", dir=temporary))
    writable_home_or_temporary(sockets)
    runner = Runner(parameters, executed_dir, sockets)
    pool = ThreadPoolExecutor(max_workers=len(notebooks))
    try:
        futures: dict[Path, Future[float | None]] = {}
        for notebook in notebooks:  # the training first: it takes longest
            if notebook.name == TRAINING:
                futures[notebook] = runner.training = pool.submit(runner.run, notebook)
        if runner.training is None:
            runner.training_kernel_started.set()
        for notebook in notebooks:
            if notebook.name != TRAINING:
                futures[notebook] = pool.submit(runner.run, notebook)
        for notebook in notebooks:
            try:
                seconds = futures[notebook].result()
            except Stopped:
                raise
            except Exception as error:  # the notebook's own error, or its kernel died
                print(failure_line(notebook, error), file=sys.stderr)
                return 1
            print(f"{notebook.name}: done in {seconds:.1f} s", flush=True)
    except Stopped as stop:
        for signum in STOP_SIGNALS:  # a second Ctrl-C changes nothing now
            signal.signal(signum, signal.SIG_IGN)
        runner.kill()
        state = (
            "holds a new set"
            if published(runner.artifacts) != runner.set_before
            else ("was left as it was")
        )
        print(
            f"run.py: stopped by {stop}; every kernel ended, {runner.artifacts} {state}",
            file=sys.stderr,
        )
        return 128 + stop.signum
    finally:
        runner.kill()  # the threads still waiting on a kernel are not waited for
        pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(sockets, ignore_errors=True)
    return 0


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
    notebooks = sorted(NOTEBOOKS_DIR.glob("0*.ipynb"))
    known = notebook_parameters(notebooks)
    unknown = sorted(set(parameters) - known)
    if unknown:
        print(
            f"{parser.prog}: error: unknown parameter {', '.join(map(repr, unknown))}; "
            f"the notebooks take {', '.join(sorted(known))}",
            file=sys.stderr,
        )
        return 2
    executed_dir = args.executed_dir.resolve()
    try:
        executed_dir.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=executed_dir).close()
    except OSError as error:
        print(
            f"{parser.prog}: error: cannot write the executed notebooks into {executed_dir} "
            f"({error.strerror}); name a writable folder: make data EXECUTED_DIR=/tmp/executed",
            file=sys.stderr,
        )
        return 2
    os.chdir(NOTEBOOKS_DIR)  # once for every thread: papermill changes into it for each notebook
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) != signal.SIG_IGN:  # `nohup make data`: a hangup stays ignored
            signal.signal(signum, raise_stopped)
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # one that came meanwhile: now
        return run_all(notebooks, parameters, executed_dir)
    except Stopped as stop:  # before any kernel started
        print(f"{parser.prog}: stopped by {stop}", file=sys.stderr)
        return 128 + stop.signum


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    if status - 128 in STOP_SIGNALS:  # stopped: end by that signal, as make and a shell expect
        signal.signal(status - 128, signal.SIG_DFL)
        os.kill(os.getpid(), status - 128)
    os._exit(status)  # threads still waiting on a stopped kernel are not waited for
