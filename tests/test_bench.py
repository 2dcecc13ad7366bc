"""The benchmark's own parts: the seed baseline runs, and the table and targets add up.

No timing is asserted here; `bench/run.py` measures, these tests only check that it can.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from cnnlib.export import load_schema
from tests.conftest import load_script

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"


bench = load_script(BENCH_DIR / "run.py", "bench_run")
seed = load_script(BENCH_DIR / "seed_baseline.py", "bench_seed_baseline")
lecture_size = load_script(BENCH_DIR / "lecture_size.py", "bench_lecture_size")


def test_seed_baseline_writes_the_contract_keys(tmp_path: Path) -> None:
    """The seed's whole run, on the first 300 test images (its full data path is the benchmark's
    job: ten walks over 10,000 images through the transform are minutes on a busy machine)."""
    out = tmp_path / "seed"
    config = bench.TrainConfig(epochs=1, batches_per_epoch=2)
    command = bench.seed_command(config, out)
    assert command[1] == str(BENCH_DIR / "seed_baseline.py")
    args = seed.build_parser().parse_args(command[2:])
    train_set, test_set = seed.load_datasets(args.data_root)
    seed.run(args, train_set, Subset(test_set, range(300)))

    payload = json.loads((out / "pretrained_cnn_data.json").read_text())
    # the contract as the original script wrote it: the mistakes gallery (schema 3) came later
    assert set(payload) == set(load_schema()["required"]) - {"mistake_samples"}
    assert [entry["epoch"] for entry in payload["training_epochs"]] == [0, 1]
    assert len(payload["samples"]) == 100
    assert payload["samples"][0]["label"] == 0 and payload["samples"][-1]["label"] == 9
    first = payload["samples"][0]
    pixels = np.asarray(first["image"], dtype=np.float32)  # denormalized floats, as the seed's
    assert pixels.shape == (28, 28)
    assert np.allclose(pixels * 255, test_set.data[first["index"]].numpy(), atol=1e-3)
    assert payload["feature_map_image"]["label"] == 3
    assert (out / "final_model_weights.pth").exists()
    assert sorted(path.name for path in (out / "epoch_weights").iterdir()) == [
        "epoch_0_weights.pth",
        "epoch_1_weights.pth",
    ]
    assert 0.0 <= bench.final_test_accuracy(out / "pretrained_cnn_data.json") <= 100.0


A = bench.Run(
    wall_s=100.0,
    cpu_s=180.0,
    peak_rss_bytes=1_200_000_000,
    json_bytes=26_000_000,
    test_accuracy=95.0,
)
B = bench.Run(
    wall_s=8.0, cpu_s=9.0, peak_rss_bytes=1_100_000_000, json_bytes=8_500_000, test_accuracy=96.0
)


def test_median_run_takes_each_metric_separately() -> None:
    runs = [
        bench.Run(3.0, 1.0, 30, 5, 90.0),
        bench.Run(1.0, 3.0, 10, 5, 92.0),
        bench.Run(2.0, 2.0, 20, 5, 91.0),
    ]
    assert bench.median_run(runs) == bench.Run(2.0, 2.0, 20, 5, 91.0)


def test_table_has_medians_and_ratios() -> None:
    lines = bench.table(A, B, repeats=3).splitlines()
    assert lines[0].startswith("| median of 3 | (a) seed approach | (b) cnnlib regenerate |")
    assert "| wall time | 100.0 s | 8.0 s | 12.50× |" in lines
    assert "| CPU time (user+sys) | 180.0 s | 9.0 s | 20.00× |" in lines
    assert "| peak resident memory | 1200.0 MB | 1100.0 MB | 1.09× |" in lines
    assert "| JSON size | 26.0 MB | 8.5 MB | 3.06× |" in lines
    assert "| final test accuracy | 95.00% | 96.00% | 0.99× |" in lines


def test_targets_pass_and_fail_on_the_thresholds() -> None:
    exact = bench.Float32Check(floats=10, not_shortest=[], weights_equal_pth=True)
    checks = bench.targets(A, B, exact, pipeline_s=11.0, loaded_s=12.0, same_bytes=True)
    checks = {check.name: check for check in checks}
    assert all(check.passed for check in checks.values())
    assert "12.5× faster" in checks["wall time"].detail
    assert "32.7% of (a)'s bytes" in checks["JSON size"].detail
    assert "1.50× its time alone" in checks["steady under load"].detail
    assert "1.38× (b)'s time" in checks["make data"].detail

    slow = bench.Run(
        wall_s=11.0,
        cpu_s=9.0,
        peak_rss_bytes=1_300_000_000,
        json_bytes=9_200_000,
        test_accuracy=96.0,
    )
    lossy = bench.Float32Check(
        floats=10, not_shortest=["0.10000000149011612"], weights_equal_pth=True
    )
    checks = bench.targets(A, slow, lossy, pipeline_s=17.0, loaded_s=17.0, same_bytes=False)
    checks = {check.name: check for check in checks}
    assert not any(check.passed for check in checks.values())
    assert "0.10000000149011612" in checks["float32-exact"].detail
    assert "DIFFERENT JSON bytes" in checks["reproducible"].detail


def test_wall_table_compares_with_regenerate_alone() -> None:
    lines = bench.wall_table(B, loaded_s=10.0, pipeline_s=12.0).splitlines()
    assert lines[2] == "| (b) cnnlib regenerate, alone | 8.0 | 1.00× |"
    assert lines[3] == "| (b) beside one CPU-bound competing process | 10.0 | 1.25× |"
    assert lines[4] == "| `make data` (the four notebooks, ending with verify) | 12.0 | 1.50× |"


def test_skipped_measurements_give_no_target() -> None:
    names = [check.name for check in bench.targets(A, B, float32=None, pipeline_s=None)]
    assert names == ["wall time", "peak memory", "JSON size"]


@pytest.mark.parametrize(
    ("token", "shortest"),
    [("0.1", True), ("1e-05", True), ("95.0", True), ("0.10000000149011612", False)],
)
def test_float32_check_on_a_tiny_run(tmp_path: Path, token: str, shortest: bool) -> None:
    weights = {"fc2.weight": torch.tensor([[0.1]], dtype=torch.float32)}
    torch.save(weights, tmp_path / "final_model_weights.pth")
    text = '{"final_weights": {"fc2": {"weight": [[0.1]]}}, "loss": ' + token + "}"
    (tmp_path / "pretrained_cnn_data.json").write_text(text)

    check = bench.check_float32(tmp_path)
    assert check.floats == 2
    assert check.weights_equal_pth
    assert check.passed is shortest


def test_the_pipeline_is_make_datas_command_with_the_configuration(tmp_path: Path) -> None:
    config = bench.TrainConfig(epochs=1, batches_per_epoch=5)
    command = bench.pipeline_command(config, tmp_path)
    assert command[1:4] == [str(bench.RUN_NOTEBOOKS), "--executed-dir", str(tmp_path)]
    assert command[4:10] == ["-p", "output_dir", str(tmp_path / "data"), "-p", "epochs", "1"]
    assert command[-3:] == ["-p", "device", "auto"]


def test_cores_busy_prints_a_line_a_second_then_the_output_and_passes_the_exit_status_on() -> None:
    cores_busy = BENCH_DIR / "cores_busy.py"
    command = "import time; time.sleep(2.2); print('the output'); raise SystemExit(3)"
    done = subprocess.run(
        [sys.executable, str(cores_busy), sys.executable, "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
    )
    *seconds, output = done.stdout.splitlines()
    assert done.returncode == 3
    assert output == "the output"
    assert len(seconds) >= 2
    for number, line in enumerate(seconds, start=1):
        second, busy = re.fullmatch(r" *(\d+) s  (\d+\.\d\d) cores busy", line).groups()
        assert int(second) == number and 0 <= float(busy) <= os.cpu_count()


def figure_cell(count: int) -> nbformat.NotebookNode:
    png = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}
    outputs = [nbformat.v4.new_output("display_data", data=png) for _ in range(count)]
    return nbformat.v4.new_code_cell("plot()", outputs=outputs)


def test_lecture_size_counts_exercises_and_optional_sections_apart_across_cells(
    tmp_path: Path,
) -> None:
    """Words leave out code, tags and symbols; "## Exercises" and "## Optional: ..." run to the
    next "## " heading across cells, and the figures inside them are off the path."""
    cells = [
        nbformat.v4.new_markdown_cell(
            '## Shapes\n\nA <span id="claim-x">3 × 3 kernel</span> → 26.'
        ),
        figure_cell(1),
        nbformat.v4.new_markdown_cell(
            "## Optional: Init scale\n\nSkip in a lecture.\n\n## Optional: More\n\nOne two."
        ),
        nbformat.v4.new_markdown_cell("Still optional here."),
        figure_cell(2),
        nbformat.v4.new_markdown_cell(
            "## Exercises\n\n1. Try it:\n   ```python\n   print(1 + 2)\n   ```"
        ),
        figure_cell(1),
        nbformat.v4.new_markdown_cell("## Key takeaways\n\n* Small kernels."),
        figure_cell(1),
    ]
    path = tmp_path / "01_model.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    assert lecture_size.measure(path) == {
        "narration": 10,  # Shapes A 3 3 kernel 26 Key takeaways Small kernels
        "figures": 2,
        "exercises": 4,  # Exercises 1. Try it:
        "optional": 14,  # Optional: Init scale Skip in a lecture. Optional: More One two. Still ...
        "off_figures": 3,
    }
