"""The benchmark, in one command: the seed's approach (a) against `python -m cnnlib regenerate` (b).

    .venv/bin/python bench/run.py                      # the full benchmark (~10 min on 2 cores)
    .venv/bin/python bench/run.py --repeats 1 --epochs 1 --batches-per-epoch 5 --skip-notebooks

Each approach runs as a real subprocess with the same training configuration, `--repeats` times,
(a) and (b) taking turns so that a busy machine slows both alike. Per run it measures the wall
time, the CPU time (user + system, from the child's rusage), the peak resident memory (the
child's ru_maxrss), the size of `pretrained_cnn_data.json` and the final test accuracy in it.
Then (b) runs again beside one CPU-bound competing process that the benchmark starts and stops
(a lecturer's laptop is never idle), and `make data`'s notebooks run end to end. It prints a
Markdown table of the medians and the ratios, checks the targets of the issue, and saves the
table and every raw number, with the date, the machine and its load, to `bench/results/`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from cnnlib.__main__ import add_training_arguments, config_from_args
from cnnlib.export import FINAL_WEIGHTS_NAME, JSON_NAME, load_state_dict
from cnnlib.train import TrainConfig

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
NOTEBOOK_DIR = REPO_DIR / "notebooks"
RESULTS_DIR = BENCH_DIR / "results"
RUN_NOTEBOOKS = NOTEBOOK_DIR / "run.py"  # what `make data` runs

MIN_SPEEDUP = 10.0
MAX_JSON_SHARE = 0.35
MAX_PIPELINE_RATIO = 1.5  # `make data` against (b), same run
MAX_LOADED_RATIO = 1.5  # (b) beside one competing process against (b) alone
COMPETITOR = "while True: pass"  # one CPU-bound process, as a busy laptop has


class BenchError(RuntimeError):
    """A benchmarked command failed; the message holds the end of its output."""


@dataclass(frozen=True)
class Run:
    """What one run of (a) or (b) cost and produced."""

    wall_s: float
    cpu_s: float  # user + system time of the child process
    peak_rss_bytes: int  # the child's maximum resident set size
    json_bytes: int
    test_accuracy: float  # percent, the last epoch's, as written in the JSON


@dataclass(frozen=True)
class Float32Check:
    """Are the floats in a JSON file exactly float32 values, each in its shortest text?"""

    floats: int  # float tokens in the file
    not_shortest: list[str]  # tokens that are not the shortest text of a float32 (a few shown)
    weights_equal_pth: bool  # `final_weights` equal the final .pth tensors bit for bit

    @property
    def passed(self) -> bool:
        return not self.not_shortest and self.weights_equal_pth


@dataclass(frozen=True)
class Target:
    name: str
    passed: bool
    detail: str


# ---------------------------------------------------------------------------------------------
# Measuring one run


def config_arguments(config: TrainConfig) -> list[str]:
    """The command-line options both (a) and (b) take for one training configuration."""
    return [
        f"--epochs={config.epochs}",
        f"--batches-per-epoch={config.batches_per_epoch}",
        f"--batch-size={config.batch_size}",
        f"--lr={config.lr}",
        f"--seed={config.seed}",
    ]


def seed_command(config: TrainConfig, out_dir: Path) -> list[str]:
    script = str(BENCH_DIR / "seed_baseline.py")
    return [sys.executable, script, "--quiet", f"--out={out_dir}", *config_arguments(config)]


def cnnlib_command(config: TrainConfig, out_dir: Path) -> list[str]:
    return [
        *(sys.executable, "-m", "cnnlib", "regenerate", "--quiet", f"--out={out_dir}"),
        *config_arguments(config),
        f"--device={config.device}",
    ]


def run_measured(command: list[str], log: Path) -> tuple[float, os.struct_rusage]:
    """Run `command` to the end; return its wall time and its own resource usage.

    os.wait4 reports the rusage of exactly this child (and the children it waited for), so
    other work on the machine does not leak into the CPU time or the peak memory.
    """
    with open(log, "wb") as output:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO_DIR, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if process.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise BenchError(f"{' '.join(command)} exited with {process.returncode}:\n{tail}")
    return wall, usage


def final_test_accuracy(json_path: Path) -> float:
    return float(json.loads(json_path.read_bytes())["training_epochs"][-1]["test_accuracy"])


def measure(command: list[str], out_dir: Path) -> Run:
    """One run of (a) or (b) writing into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    wall, usage = run_measured(command, out_dir.parent / f"{out_dir.name}.log")
    json_path = out_dir / JSON_NAME
    return Run(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_bytes=usage.ru_maxrss * 1024,  # Linux reports kibibytes
        json_bytes=json_path.stat().st_size,
        test_accuracy=final_test_accuracy(json_path),
    )


# ---------------------------------------------------------------------------------------------
# Float32 exactness of (b)'s JSON


def check_float32(out_dir: Path, shown: int = 5) -> Float32Check:
    """Check every float in `out_dir`'s JSON the way a browser reads it.

    A browser parses each number as a double, then keeps it as a float32 (a Float32Array). For
    every float token t, let f = float32(double(t)); t passes when it is exactly the shortest
    text of f (NumPy's `str` of a float32 is the shortest string that reads back as f). Then t
    loses nothing of f and carries no extra digits. That f is the model's own value is checked
    on `final_weights`, against the tensors of the final .pth snapshot, bit for bit.
    """
    tokens = 0
    not_shortest: list[str] = []

    def parse_float(token: str) -> np.float32:
        nonlocal tokens
        tokens += 1
        value = np.float32(float(token))
        if str(value) != token and len(not_shortest) < shown:
            not_shortest.append(token)
        return value

    payload = json.loads((out_dir / JSON_NAME).read_bytes(), parse_float=parse_float)

    def stored_bits(key: str) -> np.ndarray:
        layer, kind = key.split(".")  # 'fc1.weight' -> final_weights.fc1.weight
        return np.asarray(payload["final_weights"][layer][kind], np.float32).view(np.uint32)

    final = load_state_dict(out_dir / FINAL_WEIGHTS_NAME)
    weights_equal = all(
        np.array_equal(stored_bits(key), tensor.numpy().view(np.uint32))
        for key, tensor in final.items()
    )
    return Float32Check(tokens, not_shortest, weights_equal)


# ---------------------------------------------------------------------------------------------
# The papermill pipeline


def pipeline_command(config: TrainConfig, work_dir: Path) -> list[str]:
    """`make data`: notebooks/run.py with the configuration, into a folder of its own.

    Artifacts and executed notebooks go to `work_dir`, so each timed run starts from nothing, as
    on a fresh clone. Notebook 04 ends with `cnnlib.verify`, so a failed check fails the run.
    """
    options = [("output_dir", work_dir / "data"), *config.as_dict().items()]
    parameters = [part for name, value in options for part in ("-p", name, str(value))]
    return [sys.executable, str(RUN_NOTEBOOKS), "--executed-dir", str(work_dir), *parameters]


def time_pipeline(config: TrainConfig, work_dir: Path) -> float:
    """Wall time of one whole pipeline run."""
    work_dir.mkdir(parents=True)
    wall, _ = run_measured(pipeline_command(config, work_dir), work_dir / "pipeline.log")
    return wall


# ---------------------------------------------------------------------------------------------
# Medians, the table and the targets


def median_run(runs: list[Run]) -> Run:
    """Each metric's median over the runs (metric by metric, so not one particular run)."""
    medians = {
        field.name: statistics.median(getattr(run, field.name) for run in runs)
        for field in fields(Run)
    }
    return Run(**medians)


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def format_bytes(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


def table(a: Run, b: Run, repeats: int) -> str:
    """The Markdown table of medians and ratios."""
    rows = [
        ("wall time", f"{a.wall_s:.1f} s", f"{b.wall_s:.1f} s", ratio(a.wall_s, b.wall_s)),
        ("CPU time (user+sys)", f"{a.cpu_s:.1f} s", f"{b.cpu_s:.1f} s", ratio(a.cpu_s, b.cpu_s)),
        (
            "peak resident memory",
            format_bytes(a.peak_rss_bytes),
            format_bytes(b.peak_rss_bytes),
            ratio(a.peak_rss_bytes, b.peak_rss_bytes),
        ),
        (
            "JSON size",
            format_bytes(a.json_bytes),
            format_bytes(b.json_bytes),
            ratio(a.json_bytes, b.json_bytes),
        ),
        (
            "final test accuracy",
            f"{a.test_accuracy:.2f}%",
            f"{b.test_accuracy:.2f}%",
            ratio(a.test_accuracy, b.test_accuracy),
        ),
    ]
    lines = [
        f"| median of {repeats} | (a) seed approach | (b) cnnlib regenerate | (a)/(b) |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {left} | {right} | {value:.2f}× |" for name, left, right, value in rows]
    return "\n".join(lines)


def wall_table(b: Run, loaded_s: float | None, pipeline_s: float | None) -> str:
    """(b)'s wall time beside a competing process and inside `make data`, against (b) alone."""
    rows = [("(b) cnnlib regenerate, alone", b.wall_s)]
    if loaded_s is not None:
        rows.append(("(b) beside one CPU-bound competing process", loaded_s))
    if pipeline_s is not None:
        rows.append(("`make data` (the four notebooks, ending with verify)", pipeline_s))
    lines = ["| median wall time | s | ×(b) alone |", "|---|---:|---:|"]
    lines += [f"| {name} | {value:.1f} | {ratio(value, b.wall_s):.2f}× |" for name, value in rows]
    return "\n".join(lines)


def targets(
    a: Run,
    b: Run,
    float32: Float32Check | None,
    pipeline_s: float | None = None,
    loaded_s: float | None = None,
    same_bytes: bool | None = None,
) -> list[Target]:
    """The issue's targets; a skipped measurement gives no target line."""
    speedup = ratio(a.wall_s, b.wall_s)
    share = ratio(b.json_bytes, a.json_bytes)
    result = [
        Target(
            "wall time",
            speedup >= MIN_SPEEDUP,
            f"(b) is {speedup:.1f}× faster than (a) (target ≥ {MIN_SPEEDUP:g}×)",
        ),
        Target(
            "peak memory",
            b.peak_rss_bytes <= a.peak_rss_bytes,
            f"(b) {format_bytes(b.peak_rss_bytes)} vs (a) {format_bytes(a.peak_rss_bytes)} "
            "(target: (b) ≤ (a))",
        ),
        Target(
            "JSON size",
            share <= MAX_JSON_SHARE,
            f"(b)'s JSON is {share:.1%} of (a)'s bytes (target ≤ {MAX_JSON_SHARE:.0%})",
        ),
    ]
    if float32 is not None:
        detail = (
            f"{float32.floats:,} floats in (b)'s JSON, each the shortest text of a float32"
            if not float32.not_shortest
            else f"not the shortest float32 text: {', '.join(float32.not_shortest)}"
        )
        detail += (
            "; final_weights equal the final .pth bit for bit"
            if float32.weights_equal_pth
            else "; final_weights DIFFER from the final .pth"
        )
        result.append(Target("float32-exact", float32.passed, detail))
    if loaded_s is not None:
        slowdown = ratio(loaded_s, b.wall_s)
        result.append(
            Target(
                "steady under load",
                slowdown <= MAX_LOADED_RATIO,
                f"(b) beside one competing process takes {slowdown:.2f}× its time alone "
                f"(target ≤ {MAX_LOADED_RATIO:g}×)",
            )
        )
    if pipeline_s is not None:
        slowdown = ratio(pipeline_s, b.wall_s)
        result.append(
            Target(
                "make data",
                slowdown <= MAX_PIPELINE_RATIO,
                f"the notebooks end to end take {slowdown:.2f}× (b)'s time "
                f"(target ≤ {MAX_PIPELINE_RATIO:g}×)",
            )
        )
    if same_bytes is not None:
        result.append(
            Target(
                "reproducible",
                same_bytes,
                "every run of (b), alone and beside the competing process, wrote "
                + ("the same JSON bytes" if same_bytes else "DIFFERENT JSON bytes"),
            )
        )
    return result


def format_targets(checks: list[Target]) -> str:
    return "\n".join(
        f"- [{'ok' if check.passed else 'MISSED'}] {check.name}: {check.detail}" for check in checks
    )


# ---------------------------------------------------------------------------------------------
# Machine, results, command line


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, object]:
    return {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def describe(measured_at: datetime, info: dict[str, object], loads: dict[str, float]) -> str:
    """Date, machine and how busy it was at each step (other processes slow every measurement)."""
    steps = ", ".join(f"{value:.1f} {step}" for step, value in loads.items())
    gpu = "a GPU" if torch.cuda.is_available() else "no GPU"
    return (
        f"Measured {measured_at:%Y-%m-%d %H:%M %Z} on {info['cpu']}, {info['cores']} cores, "
        f"{info['memory_gib']} GiB, {gpu}, Python {info['python']}, torch {info['torch']}; "
        f"1-min load average (`uptime`): {steps}"
    )


def save_results(results_dir: Path, report: str, raw: dict[str, object]) -> Path:
    """bench/results/<date>.md (what was printed) and <date>.json (every number)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = results_dir / f"bench-{raw['measured_at'].replace(':', '')}"
    stem.with_suffix(".md").write_text(report + "\n")
    stem.with_suffix(".json").write_text(json.dumps(raw, indent=2) + "\n")
    return stem.with_suffix(".md")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each approach (3)")
    add_training_arguments(parser, device="cpu")  # the device is (b)'s; (a) runs on the CPU
    parser.add_argument("--skip-notebooks", action="store_true", help="no papermill timing")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return parser


def measure_both(config: TrainConfig, repeats: int, work: Path) -> dict[str, list[Run]]:
    """(a) and (b) in turns, so that a machine that gets busier slows both alike."""
    runs: dict[str, list[Run]] = {"a": [], "b": []}
    for repeat in range(1, repeats + 1):
        for label, command in (("a", seed_command), ("b", cnnlib_command)):
            out_dir = work / f"{label}{repeat}"
            runs[label].append(measure(command(config, out_dir), out_dir))
            progress(f"({label}) run {repeat}/{repeats}: {runs[label][-1].wall_s:.1f} s")
    return runs


def measure_loaded(config: TrainConfig, repeats: int, work: Path) -> list[Run]:
    """(b) beside one CPU-bound process that runs from before (b) starts until after it ends."""
    competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR])
    try:
        runs = []
        for repeat in range(1, repeats + 1):
            out_dir = work / f"loaded{repeat}"
            runs.append(measure(cnnlib_command(config, out_dir), out_dir))
            progress(
                f"(b) beside a competing process, run {repeat}/{repeats}: {runs[-1].wall_s:.1f} s"
            )
    finally:
        competitor.kill()
        competitor.wait()
    return runs


def json_digest(out_dir: Path) -> str:
    return hashlib.sha256((out_dir / JSON_NAME).read_bytes()).hexdigest()


@dataclass(frozen=True)
class PipelineTiming:
    runs: list[float]  # wall time of each whole run; empty when skipped or failed
    line: str  # what the report says about it
    failed: bool = False

    @property
    def median(self) -> float | None:
        return statistics.median(self.runs) if self.runs else None


def measure_pipeline(config: TrainConfig, repeats: int, work: Path) -> PipelineTiming:
    """Time the papermill pipeline `repeats` times; a failing notebook is reported, not raised."""
    notebooks = sorted(NOTEBOOK_DIR.glob("0*.ipynb"))
    runs: list[float] = []
    try:
        for repeat in range(1, repeats + 1):
            runs.append(time_pipeline(config, work / f"pipeline{repeat}"))
            progress(f"papermill pipeline run {repeat}/{repeats}: {runs[-1]:.1f} s")
    except BenchError as error:
        return PipelineTiming([], f"papermill pipeline: FAILED, {error}", failed=True)
    return PipelineTiming(
        runs,
        f"papermill pipeline (`make data`: {len(notebooks)} notebooks, ending with verify), "
        f"median of {len(runs)}: {statistics.median(runs):.1f} s",
    )


def measure_cuda(config: TrainConfig, work: Path) -> tuple[list[float], bool]:
    """(b) on the GPU, twice: the wall times, and whether both wrote the same JSON bytes."""
    cuda = replace(config, device="cuda")
    runs = [measure(cnnlib_command(cuda, work / f"cuda{n}"), work / f"cuda{n}") for n in (1, 2)]
    same = json_digest(work / "cuda1") == json_digest(work / "cuda2")
    return [run.wall_s for run in runs], same


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    config = config_from_args(args)
    measured_at, info = datetime.now().astimezone(), machine()
    loads = {"at the start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="cnnlib-bench-") as scratch:
        work = Path(scratch)
        runs = measure_both(config, args.repeats, work)
        loads["after (a) and (b)"] = os.getloadavg()[0]
        loaded = measure_loaded(config, args.repeats, work)
        loads["with the competing process"] = os.getloadavg()[0]
        float32 = check_float32(work / f"b{args.repeats}")
        digests = {
            json_digest(work / f"{label}{n}")
            for label in ("b", "loaded")
            for n in range(1, args.repeats + 1)
        }
        pipeline = (
            PipelineTiming([], "papermill pipeline: skipped (--skip-notebooks)")
            if args.skip_notebooks
            else measure_pipeline(config, args.repeats, work)
        )
        loads["at the end"] = os.getloadavg()[0]
        cuda = measure_cuda(config, work) if torch.cuda.is_available() else None

    a, b = median_run(runs["a"]), median_run(runs["b"])
    loaded_s = statistics.median(run.wall_s for run in loaded)
    checks = targets(a, b, float32, pipeline.median, loaded_s, same_bytes=len(digests) == 1)
    if pipeline.failed:
        checks.append(Target("make data", False, "a notebook failed, see above"))
    gpu_line = (
        "GPU: none on this machine (torch.cuda.is_available() is False); (b) ran on the CPU"
        if cuda is None
        else f"GPU: (b) with --device cuda took {cuda[0][0]:.1f} s and {cuda[0][1]:.1f} s; "
        + ("both wrote the same bytes" if cuda[1] else "the two runs wrote DIFFERENT bytes")
    )
    report = "\n\n".join(
        [
            describe(measured_at, info, loads),
            f"Configuration: {' '.join(config_arguments(config))} (device {config.device} for (b))",
            table(a, b, args.repeats),
            wall_table(b, loaded_s, pipeline.median),
            pipeline.line,
            gpu_line,
            "Targets:\n" + format_targets(checks),
        ]
    )
    print(report)
    saved = save_results(
        args.results_dir,
        report,
        {
            "measured_at": measured_at.isoformat(timespec="seconds"),
            "machine": info,
            "load_average": loads,
            "config": config.as_dict(),
            "runs": {label: [asdict(run) for run in items] for label, items in runs.items()},
            "loaded_runs": [asdict(run) for run in loaded],
            "pipeline_s": pipeline.runs,
            "cuda": cuda,
            "float32": asdict(float32),
        },
    )
    progress(f"saved to {saved}")
    page = subprocess.run([sys.executable, str(Path(__file__).with_name("page.py"))], check=False)
    return 0 if all(check.passed for check in checks) and page.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
