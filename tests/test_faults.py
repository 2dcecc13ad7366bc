"""Faults: `regenerate` killed by SIGKILL leaves only complete artifacts; no unsafe .pth loading.

Each kill is a real SIGKILL to a real `python -m cnnlib regenerate` process. Most are sent by
the process to itself at an exact point of its writing (see KILL_AT), so that each phase is hit
whatever the machine's speed; two come from outside: after a delay, and when staging begins.
"""

from __future__ import annotations

import ast
import hashlib
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnlib.data import REPO_DIR
from cnnlib.export import (
    FINAL_WEIGHTS_NAME,
    JSON_NAME,
    MANIFEST_NAME,
    STAGING_PREFIX,
    epoch_weights_name,
    load_state_dict,
)
from cnnlib.verify import verify

# The new run differs from the old set (conftest's SHORT: 2 epochs, seed 42), so a mix would
# show. It writes 5 files: epochs 0 and 1, the final weights, the JSON, then the manifest.
NEW_RUN = ["--epochs", "1", "--batches-per-epoch", "1", "--seed", "7", "--device", "cpu"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # quicker for so small a run; the same for all
TIMEOUT = 300
# "writing" finds the path of the file being synced through /proc, which Linux has.
NEEDS_PROC = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")

# `python -m cnnlib regenerate --out OUT ...`, but the process sends itself SIGKILL right after
# the COUNT-th file of a KIND inside OUT: "writing" kills once a staged file's bytes are on disk
# but before its rename (os.fsync), "placed" once a file is renamed to its final name.
KILL_AT = """
import os, signal, sys
from cnnlib.__main__ import main

out, kind, count, staging = sys.argv[1:5]
out, count = os.path.realpath(out), int(count)
real_fsync, real_replace = os.fsync, os.replace
seen = 0

def count_and_maybe_die(path):
    global seen
    if os.path.realpath(path).startswith(out + os.sep):
        seen += 1
        if seen == count:
            os.kill(os.getpid(), signal.SIGKILL)

def fsync(fd):
    real_fsync(fd)
    if kind == "writing":
        count_and_maybe_die(os.readlink(f"/proc/self/fd/{fd}"))

def replace(source, target):
    real_replace(source, target)
    if kind == "placed" and staging not in str(target):
        count_and_maybe_die(target)

os.fsync, os.replace = fsync, replace
sys.exit(main(["regenerate", "--out", out, "--quiet", *sys.argv[5:]]))
"""


def digests(out: Path) -> dict[str, str]:
    """{relative path: sha-256} of every file under a final name (hidden staging files aside)."""
    return {
        path.relative_to(out).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(out.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(out).parts)
    }


def regenerate_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "cnnlib", "regenerate", "--out", str(out), "--quiet", *NEW_RUN]


def kill_at(out: Path, kind: str, count: int) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", KILL_AT, str(out), kind, str(count), STAGING_PREFIX]
    return subprocess.run(
        [*command, *NEW_RUN], capture_output=True, text=True, timeout=TIMEOUT, env=ENV
    )


def sigkill_from_outside(out: Path, when: str, delay: float) -> int:
    """Start a run; SIGKILL it after `delay` seconds ("delay") or as soon as its staging folder
    appears ("staging"); return its exit status (0 if it finished first)."""
    process = subprocess.Popen(
        regenerate_command(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV
    )
    deadline = time.monotonic() + (delay if when == "delay" else TIMEOUT)
    while process.poll() is None and time.monotonic() < deadline:
        if when == "staging" and any(out.glob(f"{STAGING_PREFIX}*")):
            break
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    return process.wait(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def new_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], float]:
    """The files an uninterrupted run with NEW_RUN writes (by digest), and its seconds."""
    out = tmp_path_factory.mktemp("new_set")
    start = time.monotonic()
    done = subprocess.run(
        regenerate_command(out), capture_output=True, text=True, timeout=TIMEOUT, env=ENV
    )
    assert done.returncode == 0, done.stderr
    assert "verify: 9/9 checks passed" in done.stdout
    return digests(out), time.monotonic() - start


def assert_only_complete_artifacts(out: Path, *complete_sets: dict[str, str]) -> None:
    """Every file under a final name is byte for byte a file of a complete set; where the
    manifest is, the files are exactly its set, and verify passes on them."""
    present = digests(out)
    for name, digest in present.items():
        assert digest in {files.get(name) for files in complete_sets}, f"{name} is incomplete"
    if MANIFEST_NAME in present:
        (manifest_set,) = [s for s in complete_sets if s[MANIFEST_NAME] == present[MANIFEST_NAME]]
        assert present == manifest_set
        assert verify(out, min_accuracy=0.0).passed


# ---------------------------------------------------------------------------------------------
# Killed mid-run: only complete files under final names, and a manifest only with its full set.


@pytest.mark.parametrize(
    ("kind", "count", "new_files"),
    [
        # The JSON is written in the hidden staging folder, not renamed: all is still old.
        pytest.param("writing", 4, set(), marks=NEEDS_PROC),
        # Epochs 0 and 1 of the new set are in place; the rest is still the old set.
        ("placed", 2, {epoch_weights_name(0), epoch_weights_name(1)}),
        # All in place but the manifest; the old epoch 2 would go just before it.
        (
            "placed",
            4,
            {epoch_weights_name(0), epoch_weights_name(1), FINAL_WEIGHTS_NAME, JSON_NAME},
        ),
    ],
)
def test_killed_while_writing_over_a_complete_set(
    fresh_run: Path,
    new_set: tuple[dict[str, str], float],
    kind: str,
    count: int,
    new_files: set[str],
):
    old = digests(fresh_run)
    done = kill_at(fresh_run, kind, count)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert_only_complete_artifacts(fresh_run, old, new_set[0])
    present = digests(fresh_run)
    assert {name for name, digest in present.items() if digest != old[name]} == new_files
    if new_files:  # the old manifest went before the first rename: the set reads as incomplete
        assert set(present) == set(old) - {MANIFEST_NAME}
    else:
        assert present == old


def test_killed_while_writing_into_an_empty_folder(
    tmp_path: Path, new_set: tuple[dict[str, str], float]
):
    out = tmp_path / "empty"
    done = kill_at(out, "placed", 2)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert_only_complete_artifacts(out, new_set[0])
    assert set(digests(out)) == {epoch_weights_name(0), epoch_weights_name(1)}


@pytest.mark.parametrize("when", ["delay", "staging"])
def test_sigkill_from_outside_leaves_complete_artifacts(
    fresh_run: Path, new_set: tuple[dict[str, str], float], when: str
):
    old = digests(fresh_run)
    status = sigkill_from_outside(fresh_run, when, delay=0.8 * new_set[1])
    assert status in (0, -signal.SIGKILL)
    assert_only_complete_artifacts(fresh_run, old, new_set[0])
    if status == 0:
        assert digests(fresh_run) == new_set[0]


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
    assert failed["weight files"].startswith(
        f"{epoch_weights_name(1)}: torch.load(weights_only=True) fails (UnpicklingError: "
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
    for path in sorted((REPO_DIR / "cnnlib").glob("*.py")):
        calls, imported = calls_and_imports(path)
        unsafe += [f"{path.name}: imports {name}" for name in imported if "pickle" in name]
        unsafe += [f"{path.name}: imports {name}" for name in imported if name.endswith(".load")]
        for call in calls:
            if ast.unparse(call.func) in ("torch.load", "torch.serialization.load"):
                loads.append(call)
                flag = {keyword.arg: keyword.value for keyword in call.keywords}.get("weights_only")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    unsafe.append(f"{path.name}:{call.lineno}: {ast.unparse(call)}")
    assert loads, "cnnlib.export.load_state_dict should call torch.load"
    assert unsafe == []
