"""`python -m cnnlib ...` for the tests that start it dozens of times (kills, races, faults), forked
from a server process that imported cnnlib and PyTorch once (multiprocessing's forkserver): each
start skips the 3 to 4 s of CPU that importing torch and torch._dynamo costs. The child is a real
process of its own that runs the command line's `main`, gets real signals, and exits as
`python -m cnnlib` does. (tests/test_cli.py starts the command itself, as a user types it.)"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
from contextlib import suppress
from pathlib import Path

FORKSERVER = multiprocessing.get_context("forkserver")
# What cnnlib/__main__.py imports (itself is run afresh, as `python -m` runs it), and
# torch._dynamo, what creating an optimizer imports (1.5 s of CPU).
FORKSERVER.set_forkserver_preload(["cnnlib.pipeline", "cnnlib.verify", "torch._dynamo", __name__])
# What `python -m cnnlib` runs: the package's __main__.py as the main module.
COMMAND = "import runpy\nrunpy.run_module('cnnlib', run_name='__main__', alter_sys=True)"
TIMEOUT = 300


def child(code: str, argv: list[str], env: dict[str, str], out: str, err: str) -> None:
    """In the forked process: what a fresh `python -c CODE ARGV...` starts with, then CODE."""
    os.environ.clear()
    os.environ.update(env)
    for descriptor, path in ((1, out), (2, err)):
        os.dup2(os.open(path, os.O_WRONLY), descriptor)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C: KeyboardInterrupt
    multiprocessing.set_start_method("fork", force=True)  # Linux's default, as in a new process
    sys.argv = ["-c", *argv]
    exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})


class Process:
    """A started command, with the part of subprocess.Popen's interface the tests use; its
    stdout and stderr are read once it has ended."""

    def __init__(self, args: list[str], code: str, env: dict[str, str] | None) -> None:
        self.folder = tempfile.TemporaryDirectory()
        self.out, self.err = Path(self.folder.name, "out"), Path(self.folder.name, "err")
        self.out.touch()
        self.err.touch()
        arguments = (code, list(args), dict(env or os.environ), str(self.out), str(self.err))
        self.process = FORKSERVER.Process(target=child, args=arguments)
        self.process.start()
        self.pid = self.process.pid

    @property
    def returncode(self) -> int | None:
        """The exit status; minus the signal's number if a signal ended it (as Popen's)."""
        return self.process.exitcode

    def poll(self) -> int | None:
        return self.process.exitcode

    def send_signal(self, signal_number: int) -> None:
        """As Popen's: nothing once the process has ended."""
        if self.poll() is None:
            with suppress(ProcessLookupError):  # it ended just now
                os.kill(self.pid, signal_number)

    def wait(self, timeout: float | None = TIMEOUT) -> int:
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired(["cnnlib"], timeout)
        return self.process.exitcode

    def communicate(self, timeout: float | None = TIMEOUT) -> tuple[str, str]:
        self.wait(timeout)
        return self.out.read_text(), self.err.read_text()


def start(args: list[str], code: str = COMMAND, env: dict[str, str] | None = None) -> Process:
    """Start `python -m cnnlib ARGS...` (or `python -c CODE ARGS...`)."""
    return Process(args, code, env)


def run(
    args: list[str], code: str = COMMAND, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run it to its end, as subprocess.run with capture_output and text."""
    process = start(args, code, env)
    stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)
