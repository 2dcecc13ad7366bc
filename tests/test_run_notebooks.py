"""notebooks/run.py, the script behind `make data`: parameter names checked before anything runs,
kernels reached over Unix sockets. (tests/test_notebooks.py runs all four notebooks through it.)"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import load_script

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture(scope="module")
def run_py():
    return load_script(NOTEBOOKS_DIR / "run.py", "run_notebooks")


def test_an_unknown_parameter_name_stops_make_data_with_one_line(tmp_path: Path) -> None:
    command = [sys.executable, str(NOTEBOOKS_DIR / "run.py"), "--executed-dir", str(tmp_path)]
    done = subprocess.run(
        [*command, "-p", "epoch", "2", "-p", "output_dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "run.py: error: unknown parameter 'epoch'; the notebooks take batch_size, "
        "batches_per_epoch, device, epochs, lr, output_dir, seed"
    ]
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == []


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
    run_py, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
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
