"""Faults: killed, interrupted, concurrent or cramped runs leave the old complete set or the new
one; files that cnnlib did not write are never touched; no unsafe .pth loading.

Each kill is a real SIGKILL to a real `python -m cnnlib regenerate` process (forked with its
imports done: tests/forked.py). Most are sent by the process to itself at an exact point of its
writing (see KILL_AT), so that each phase is hit whatever the machine's speed; others come from
outside: after a delay, and when staging begins.
Disks are real too: a tmpfs too small for two sets, a read-only bind mount (as root).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from cnnlib.data import REPO_DIR
from cnnlib.export import (
    EPOCH_WEIGHTS_DIR,
    JSON_NAME,
    MANIFEST_NAME,
    epoch_weights_name,
    load_state_dict,
)
from cnnlib.pipeline import ensure_artifacts, write_artifacts
from cnnlib.setreader import SetReader
from cnnlib.store import SETS_DIR, OutputError, check_writable
from cnnlib.train import TrainConfig
from cnnlib.verify import verify
from tests import forked
from tests.conftest import SHORT

# The new run differs from the old set (conftest's SHORT: 2 epochs, seed 42), so a mix would
# show. It writes 5 files: epochs 0 and 1, the JSON, the final weights, then the manifest.
NEW_RUN = ["--epochs", "1", "--batches-per-epoch", "1", "--seed", "7", "--device", "cpu"]
NEW_CONFIG = TrainConfig(epochs=1, batches_per_epoch=1, seed=7, device="cpu")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # quicker for so small a run; the same for all
TIMEOUT = 300
PROG = "python -m cnnlib regenerate: error: "
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a file system needs root")

# `python -m cnnlib regenerate --out OUT ...`, but the process sends itself SIGKILL at the COUNT-th
# call of os.FUNCTION on a path inside OUT whose name is NAME (any name if NAME is "*"), WHEN
# "before" or "after" the call.
KILL_AT = """
import os, signal, sys
from cnnlib.__main__ import main

out, function, name, count, when = sys.argv[1:6]
out, count = os.path.realpath(out), int(count)
real = getattr(os, function)
seen = 0

def path_of(argument):
    if isinstance(argument, int):  # os.fsync(fd): the file's path, through /proc
        return os.readlink(f"/proc/self/fd/{argument}")
    return os.path.abspath(argument)

def hooked(*args, **kwargs):
    global seen
    path = path_of(args[-1] if function == "replace" else args[0])
    ours = path.startswith(out + os.sep) and name in ("*", os.path.basename(path))
    seen += ours
    if ours and seen == count and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    result = real(*args, **kwargs)
    if ours and seen == count and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
    return result

setattr(os, function, hooked)
sys.exit(main(["regenerate", "--out", out, "--quiet", *sys.argv[6:]]))
"""

# The same, but the process stops itself (SIGSTOP) there instead: it goes on when sent SIGCONT.
STOP_AT = KILL_AT.replace("signal.SIGKILL", "signal.SIGSTOP")


def digests(out: Path) -> dict[str, str]:
    """{artifact name: sha-256} of what DIR shows under the artifact names (through links)."""
    paths = [path for path in out.iterdir() if path.is_file() and path.name[0] != "."]
    paths += [path for path in (out / EPOCH_WEIGHTS_DIR).glob("*") if path.is_file()]
    return {
        path.relative_to(out).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(paths)
    }


def reader_digests(out: Path) -> dict[str, str]:
    """{artifact name: sha-256} of the set that cnnlib's reader reads in DIR."""
    artifacts = SetReader(out)
    names = [*artifacts.manifest()["files"], MANIFEST_NAME]
    return {name: hashlib.sha256(artifacts.read(name)).hexdigest() for name in sorted(names)}


def regenerate_command(out: Path, *extra: str) -> list[str]:
    """The arguments of `python -m cnnlib regenerate --out OUT --quiet EXTRA...`."""
    return ["regenerate", "--out", str(out), "--quiet", *extra]


def cnnlib_regenerate(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return forked.run(regenerate_command(out, *extra), env=ENV)


def kill_at(out: Path, function: str, name: str, count: int, when: str):
    arguments = [str(out), function, name, str(count), when, *NEW_RUN]
    return forked.run(arguments, code=KILL_AT, env=ENV)


def sets_in(out: Path) -> list[str]:
    return sorted(path.name for path in (out / SETS_DIR).glob("set-*"))


@pytest.fixture(scope="module")
def new_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], float]:
    """The files an uninterrupted run with NEW_RUN writes (by digest), and its seconds."""
    out = tmp_path_factory.mktemp("new_set")
    start = time.monotonic()
    done = cnnlib_regenerate(out, *NEW_RUN)
    assert done.returncode == 0, done.stderr
    assert "verify: 10/10 checks passed" in done.stdout
    return digests(out), time.monotonic() - start


def assert_old_or_new(out: Path, old: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    """DIR shows exactly the complete old set or the complete new one, and it verifies."""
    present = digests(out)
    assert present in (old, new)
    assert verify(out, min_accuracy=0.0).passed
    return present


# ---------------------------------------------------------------------------------------------
# Killed at any point: the old set or the new one, never a mix; the next run cleans up.


@pytest.mark.parametrize(
    ("function", "name", "count", "when", "expected"),
    [
        ("fsync", "*", 2, "after", "old"),  # staging: epoch 1's file is on disk
        ("fsync", MANIFEST_NAME, 1, "after", "old"),  # the new set is staged, whole
        ("replace", "current", 1, "before", "old"),  # just before its publish begins
        ("replace", "current", 1, "after", "old"),  # publish begun, DIR not changed yet
        ("replace", "epoch_1_weights.pth", 1, "after", "new"),  # the first file switched
        ("replace", JSON_NAME, 1, "after", "new"),  # all but the manifest switched
        ("replace", MANIFEST_NAME, 1, "after", "new"),  # DIR's manifest, the last switch
        ("unlink", "current", 1, "after", "new"),  # published; the staged folder is still there
    ],
)
def test_killed_while_writing_over_a_complete_set(
    fresh_run: Path, new_set, function: str, name: str, count: int, when: str, expected: str
):
    """What a reader of cnnlib (verify, a notebook's ensure_artifacts) gets is the old set or
    the new one; the next run into the folder finishes a publish that was begun."""
    old = digests(fresh_run)
    done = kill_at(fresh_run, function, name, count, when)
    assert done.returncode == -signal.SIGKILL, done.stderr
    report = verify(fresh_run, min_accuracy=0.0)
    assert report.passed, report.lines()
    assert reader_digests(fresh_run) == {"old": old, "new": new_set[0]}[expected]
    ensure_artifacts(NEW_CONFIG, fresh_run, progress=False)  # finishes it, or trains anew
    assert digests(fresh_run) == new_set[0]


def test_the_run_after_a_killed_one_removes_its_leftovers(fresh_run: Path, new_set):
    assert kill_at(fresh_run, "fsync", "*", 3, "after").returncode == -signal.SIGKILL
    assert len(sets_in(fresh_run)) == 1  # the killed run's half set, beside DIR's set
    done = cnnlib_regenerate(fresh_run, *NEW_RUN)
    assert done.returncode == 0, done.stderr
    assert digests(fresh_run) == new_set[0]
    assert sorted(path.name for path in (fresh_run / SETS_DIR).iterdir()) == [
        "lock",
        "published.json",
    ]


def test_killed_while_publishing_into_an_empty_folder(tmp_path: Path, new_set):
    out = tmp_path / "empty"
    done = kill_at(out, "replace", "epoch_0_weights.pth", 1, "after")  # DIR's first file
    assert done.returncode == -signal.SIGKILL, done.stderr
    present = digests(out)
    assert list(present) == [epoch_weights_name(0)]  # no manifest: no set for a plain reader
    report = verify(out, min_accuracy=0.0)
    assert report.passed, report.lines()
    assert "a run was killed while publishing this set" in report.lines()[0]
    ensure_artifacts(NEW_CONFIG, out, progress=False)
    assert digests(out) == new_set[0]


@pytest.mark.parametrize("when", ["delay", "staging"])
def test_sigkill_from_outside_leaves_the_old_or_the_new_set(fresh_run: Path, new_set, when: str):
    old = digests(fresh_run)
    process = forked.start(regenerate_command(fresh_run, *NEW_RUN), env=ENV)
    deadline = time.monotonic() + (0.8 * new_set[1] if when == "delay" else TIMEOUT)
    while process.poll() is None and time.monotonic() < deadline:
        if when == "staging" and sets_in(fresh_run):
            break
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=TIMEOUT) in (0, -signal.SIGKILL)
    assert_old_or_new(fresh_run, old, new_set[0])


def test_ctrl_c_leaves_the_old_set_and_says_so(fresh_run: Path):
    old = digests(fresh_run)
    long_run = ["--epochs", "3", "--batches-per-epoch", "850", "--device", "cpu"]
    process = forked.start(regenerate_command(fresh_run, *long_run), env=ENV)
    while not sets_in(fresh_run):  # training has begun, into a new set
        assert process.poll() is None
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 1
    assert stderr == f"{PROG}interrupted; {fresh_run} was left as it was\n"
    assert digests(fresh_run) == old and sets_in(fresh_run) == []


# ---------------------------------------------------------------------------------------------
# Two runs at once: the second one stops at once, and the first one ends normally.


def process_state(pid: int) -> str:
    """The state letter of /proc/PID/stat: "T" once a process is stopped by a signal."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return "gone"
    return stat.rsplit(")", 1)[1].split()[0]  # after "PID (NAME)", which may hold spaces


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_writes(
    fresh_run: Path, new_set
):
    # The first run stops itself (SIGSTOP) just before its first fsync in DIR: it holds the lock
    # and is writing its staged set, for as long as the test needs.
    arguments = [str(fresh_run), "fsync", "*", "1", "before", *NEW_RUN]
    first = forked.start(arguments, code=STOP_AT, env=ENV)
    try:
        while process_state(first.pid) != "T":
            assert first.poll() is None, "the first run ended before it stopped"
            time.sleep(0.01)
        assert len(sets_in(fresh_run)) == 1  # the first run's staged set
        second = cnnlib_regenerate(fresh_run, *NEW_RUN)
        assert first.poll() is None
        assert second.returncode == 1 and second.stdout == ""
        assert second.stderr == (
            f"{PROG}another run is writing {fresh_run}; wait for it to end, or choose another "
            "--out\n"
        )
        first.send_signal(signal.SIGCONT)
        stdout, stderr = first.communicate(timeout=TIMEOUT)
    finally:
        first.send_signal(signal.SIGKILL)  # only if a failed assertion left it stopped
    assert first.returncode == 0, stderr
    assert "verify: 10/10 checks passed" in stdout
    assert verify(fresh_run, min_accuracy=0.0).passed
    assert digests(fresh_run) == new_set[0]  # the first run's set


# ---------------------------------------------------------------------------------------------
# Disks: full, read-only.


@contextmanager
def mounted_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of `size` (say "3m") at folder/tmpfs, for the block."""
    mount = folder / "tmpfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 3 MB tmpfs: room for one short set (2.1 MB), not for a second one beside it."""
    with mounted_tmpfs(tmp_path, "3m") as mount:
        yield mount


@needs_root
def test_a_full_disk_is_one_line_and_leaves_the_old_set(short_run: Path, tmpfs: Path):
    out = Path(shutil.copytree(short_run, tmpfs / "run", symlinks=True))
    old = digests(out)
    done = cnnlib_regenerate(out, *NEW_RUN)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"{PROG}cannot write {out} (No space left on device); {out} was left as it was\n"
    )
    assert digests(out) == old and sets_in(out) == sets_in(short_run)
    assert verify(out, min_accuracy=0.0).passed


@needs_root
def test_a_read_only_folder_is_one_line_before_any_work(fresh_run: Path, tmp_path: Path):
    mounted = tmp_path / "read-only"
    mounted.mkdir()
    subprocess.run(["mount", "--bind", "-o", "ro", str(fresh_run), str(mounted)], check=True)
    try:
        done = cnnlib_regenerate(mounted, *NEW_RUN)
    finally:
        subprocess.run(["umount", str(mounted)], check=True)
    assert done.returncode == 2
    assert done.stderr == (
        f"{PROG}--out {mounted} cannot be written (Read-only file system); "
        "choose a writable folder\n"
    )


# ---------------------------------------------------------------------------------------------
# Files that cnnlib did not write: never replaced, deleted, written through, or hidden.


def test_a_folder_of_someone_elses_files_is_refused_unless_forced(
    tmp_path: Path, mnist, short_results
):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    (out / ".staging-1").mkdir()  # a hidden folder that looks like an old staging folder
    (out / ".staging-1" / "notes.tex").write_text("more work")
    done = cnnlib_regenerate(out, *NEW_RUN)
    assert done.returncode == 2
    assert done.stderr == (
        f"{PROG}{out} holds files that cnnlib did not write (thesis.tex) and no artifact set; "
        "choose an empty or new folder, or pass --force to write beside them "
        "(they are never touched)\n"
    )
    assert sorted(path.name for path in out.iterdir()) == [".staging-1", "thesis.tex"]
    write_artifacts(short_results, mnist, SHORT, out, force=True)
    write_artifacts(short_results, mnist, SHORT, out)  # a set of ours is there now
    assert (out / "thesis.tex").read_text() == "years of work"
    assert (out / ".staging-1" / "notes.tex").read_text() == "more work"
    assert verify(out, min_accuracy=0.0).passed


def test_a_file_of_someone_else_among_the_epochs_is_never_deleted(fresh_run: Path):
    best = fresh_run / EPOCH_WEIGHTS_DIR / "epoch_best_weights.pth"
    best.write_bytes(b"my best")
    done = cnnlib_regenerate(fresh_run, *NEW_RUN)
    assert done.returncode == 2
    assert done.stderr == (
        f"{PROG}{best} was not written by cnnlib; move it away or choose another --out\n"
    )
    assert best.read_bytes() == b"my best"


def test_a_symlink_out_of_the_folder_is_never_written_through(tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "epoch_0_weights.pth").write_bytes(b"not ours")
    out = tmp_path / "out"
    out.mkdir()
    (out / EPOCH_WEIGHTS_DIR).symlink_to(elsewhere)
    with pytest.raises(OutputError, match="is a symbolic link cnnlib did not make"):
        check_writable(out)
    assert (elsewhere / "epoch_0_weights.pth").read_bytes() == b"not ours"
    assert sorted(path.name for path in out.iterdir()) == [EPOCH_WEIGHTS_DIR]


def test_a_set_written_by_an_older_cnnlib_is_replaced_and_only_its_files_go(
    short_run: Path, tmp_path: Path, mnist, short_results
):
    old = Path(shutil.copytree(short_run, tmp_path / "old"))  # links become plain files
    shutil.rmtree(old / SETS_DIR)
    (old / "notes.txt").write_text("mine")
    one_epoch = TrainConfig(epochs=1, batches_per_epoch=5, device="cpu")
    write_artifacts(short_results[:2], mnist, one_epoch, old)
    assert (old / "notes.txt").read_text() == "mine"
    assert sorted(path.name for path in (old / EPOCH_WEIGHTS_DIR).iterdir()) == [
        epoch_weights_name(0).split("/")[1],
        epoch_weights_name(1).split("/")[1],
    ]
    assert verify(old, min_accuracy=0.0).passed


# ---------------------------------------------------------------------------------------------
# No .pth is ever loaded in a way that could run pickled code.


class RunsCode:
    """Unpickling this calls exec(): what a malicious .pth file can do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def test_a_malicious_pth_is_refused_without_running_its_code(tmp_path: Path):
    marker, path = tmp_path / "code-ran", tmp_path / "malicious.pth"
    torch.save({"conv1.weight": RunsCode(marker)}, path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_state_dict(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the control: an unsafe load does run it
    assert marker.read_text() == "ran"


def test_verify_refuses_a_malicious_pth_without_running_its_code(fresh_run: Path, tmp_path: Path):
    marker = tmp_path / "code-ran"
    torch.save({"conv1.weight": RunsCode(marker)}, fresh_run / epoch_weights_name(1))
    report = verify(fresh_run, min_accuracy=0.0)
    failed = {check.name: check.detail for check in report.checks if not check.passed}
    assert failed["weight files"] == (
        f"{epoch_weights_name(1)}: refused: this file contains code, not just tensors "
        "(torch.load with weights_only=True)"
    )
    assert not marker.exists()


def calls_and_imports(path: Path) -> tuple[list[ast.Call], list[str]]:
    """Every call in a module, and the names of every module it imports from."""
    tree = ast.parse(path.read_text(), filename=str(path))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    imported += [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    ]
    return calls, imported


def test_every_torch_load_in_cnnlib_passes_weights_only_true():
    loads, unsafe = [], []
    paths = sorted((REPO_DIR / "cnnlib").rglob("*.py"))  # every module, the lecture's too
    assert REPO_DIR / "cnnlib" / "lecture" / "plots" / "style.py" in paths
    for path in paths:
        name = path.relative_to(REPO_DIR)
        calls, imported = calls_and_imports(path)
        unsafe += [f"{name}: imports {module}" for module in imported if "pickle" in module]
        unsafe += [f"{name}: imports {module}" for module in imported if module.endswith(".load")]
        for call in calls:
            if ast.unparse(call.func) in ("torch.load", "torch.serialization.load"):
                loads.append(call)
                flag = {keyword.arg: keyword.value for keyword in call.keywords}.get("weights_only")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    unsafe.append(f"{name}:{call.lineno}: {ast.unparse(call)}")
    assert loads, "cnnlib.export.load_state_dict should call torch.load"
    assert unsafe == []


def test_a_forged_manifest_cannot_make_cnnlib_delete_other_files(
    fresh_run: Path, mnist, short_results
):
    victim = fresh_run / "victim.txt"
    victim.write_text("keep me")
    path = fresh_run / MANIFEST_NAME  # the link to the current set's manifest
    manifest = json.loads(path.read_text())
    for name in ("../../victim.txt", f"{EPOCH_WEIGHTS_DIR}/../../../victim.txt"):
        manifest["files"][name] = {"bytes": 7, "sha256": "0" * 64}
    path.write_text(json.dumps(manifest))
    write_artifacts(short_results, mnist, SHORT, fresh_run)  # replaces, then removes that set
    assert victim.read_text() == "keep me"
    assert verify(fresh_run, min_accuracy=0.0).passed
