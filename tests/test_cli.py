"""The command line: `python -m cnnlib regenerate` runs, and bad values stop it before any work.
The first test starts the command as a user types it; the others fork it with its imports done
(tests/forked.py), the same `main` a second sooner."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnlib.export import JSON_NAME
from tests import forked


def cnnlib(*args: str) -> subprocess.CompletedProcess:
    return forked.run(list(args))


def test_regenerate_writes_verifies_and_summarizes(tmp_path: Path):
    out = tmp_path / "artifacts"
    options = ["--out", str(out), "--epochs", "1", "--batches-per-epoch", "3", "--quiet"]
    done = subprocess.run(
        [sys.executable, "-m", "cnnlib", "regenerate", *options],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # --quiet: no progress bar
    assert "final test accuracy:" in done.stdout
    assert "verify: 10/10 checks passed" in done.stdout
    assert f"{JSON_NAME}" in done.stdout and "wall time:" in done.stdout
    assert (out / JSON_NAME).exists()
    assert sorted(path.name for path in (out / "epoch_weights").iterdir()) == [
        "epoch_0_weights.pth",
        "epoch_1_weights.pth",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "-1"], "epochs must be an integer >= 0, got -1"),
        (["--batch-size", "0"], "batch_size must be an integer >= 1, got 0"),
        (["--batches-per-epoch", "0"], "batches_per_epoch must be an integer >= 1, got 0"),
        (["--lr", "-0.1"], "lr must be a positive finite number, got -0.1"),
        (["--lr", "1e308"], "lr must be at most 10, got 1e+308"),
        (["--seed", str(2**64)], f"seed must be at most 2**64 - 1 = {2**64 - 1}, got {2**64}"),
        (["--epochs", "100000"], "epochs must be at most 200 (the JSON grows by about 0.43 MB"),
        (["--out", ""], "argument --out: an empty path is not a folder"),
        (["--seed", "-1"], "seed must be an integer >= 0, got -1"),
        (["--device", "tpu"], "device must be one of auto, cpu, cuda, got 'tpu'"),
        (["--epochs", "ten"], "argument --epochs: invalid int value: 'ten'"),
        (["--out", "/proc/no-such-place"], "--out /proc/no-such-place cannot be written"),
        (["--out", "/dev/null"], "--out /dev/null cannot be written (not a folder)"),
        (["--min-accuracy", "200"], "argument --min-accuracy: a percentage from 0 to 100"),
        (["--min-accuracy", "nan"], "argument --min-accuracy: a percentage from 0 to 100"),
    ],
)
def test_bad_values_stop_before_any_work_with_one_line_and_exit_2(args, message, tmp_path):
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "never")]
    done = cnnlib("regenerate", *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and message in done.stderr
    assert done.stderr.startswith("python -m cnnlib regenerate: error: ")
    assert not (tmp_path / "never").exists()


def test_an_output_path_that_is_a_file_is_refused(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = cnnlib("regenerate", "--out", str(blocker))
    assert done.returncode == 2
    assert f"--out {blocker} cannot be written" in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_for_where_there_is_none(tmp_path: Path):
    done = cnnlib("regenerate", "--device", "cuda", "--out", str(tmp_path / "never"))
    assert done.returncode == 2
    assert "CUDA is not available here" in done.stderr


def test_an_unknown_command_is_one_line_and_exit_2():
    done = cnnlib("train-faster")
    assert done.returncode == 2 and done.stderr.count("\n") == 1


def test_a_copy_installed_without_the_repository_says_so_in_one_line(tmp_path: Path):
    """`pip install .` (not -e) puts cnnlib into site-packages, without data/ and MNIST."""
    root = Path(__file__).resolve().parent.parent
    source = tmp_path / "source"
    shutil.copytree(root / "cnnlib", source / "cnnlib")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, source / name)
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--target", str(site), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    for command in (["verify"], ["regenerate", "--epochs", "0"]):
        done = subprocess.run(
            [sys.executable, "-m", "cnnlib", *command],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(site)},
        )
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr == (
            f"python -m cnnlib: error: cnnlib runs from its repository, not from {site} (a "
            "`pip install .`, which copies no data/): in a clone, run `make setup` "
            "(pip install -e .)\n"
        )
    assert not (site / "data").exists()
