"""Shared fixtures: the MNIST data in memory, a short and a default training run written to disk,
and Node.js for the JavaScript tests."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
from xdist.scheduler import LoadScopeScheduling

from cnnlib.data import Mnist, load_mnist
from cnnlib.pipeline import ensure_artifacts, stage, unchanged_since_written, write_artifacts
from cnnlib.store import locked, prepare_output, publish
from cnnlib.train import EpochResult, TrainConfig, train
from tests.browser import CHROMIUM, launch_chromium

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
DATA_DIR = ROOT / "data"  # where the notebooks, run as tests, write the lecture's artifacts
READS_NO_ARTIFACT = "notebooks/01_model.ipynb"  # the notebook that needs no other's artifacts
THREAD_POOLS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")  # PyTorch's, NumPy's


def is_notebook_cell(nodeid: str) -> bool:
    return nodeid.startswith("notebooks/")


def runs_notebooks(config: pytest.Config) -> bool:
    """Does this run collect the notebooks (`pytest` alone, or a path that holds them)?"""
    here = config.invocation_params.dir
    paths = [Path(here, arg.split("::")[0]).resolve() for arg in config.args]
    return any(NOTEBOOKS_DIR.is_relative_to(p) or p.is_relative_to(NOTEBOOKS_DIR) for p in paths)


def pytest_configure(config: pytest.Config) -> None:
    """With xdist's workers (-n 2, one per core), each worker and every process it starts
    (kernels, the command line) computes on one thread: two pools busy on one core spin while
    they wait for each other, about a fifth more CPU for the suite. The notebooks write data/:
    where it cannot be written (a read-only clone, another user), stop at once with one line
    instead of a failure in every cell after notebook 02's."""
    if getattr(config.option, "numprocesses", None):  # the controller, before its workers start
        for name in THREAD_POOLS:
            os.environ.setdefault(name, "1")
    if runs_notebooks(config) and not os.access(DATA_DIR, os.W_OK):
        raise pytest.UsageError(
            f"{DATA_DIR} cannot be written, and the notebooks write the lecture's artifacts "
            "there; run the tests in a writable clone, or all but the notebooks: "
            "python -m pytest tests"
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """nbval's notebook cells first: together they are the longest unit of work. The tests of
    the default run last: by then notebook 02 has written that run into data/ (`default_run`)."""
    items.sort(  # a stable sort
        key=lambda item: (
            not is_notebook_cell(item.nodeid),
            "default_run" in getattr(item, "fixturenames", ()),
        )
    )


def pytest_xdist_make_scheduler(config: pytest.Config, log) -> LoadScopeScheduling:
    """pytest-xdist: the cells of 02, 03 and 04 in one worker, in order (02 writes data/, which
    03 and 04 read; each cell needs the ones before it); 01's, which reads no artifact, in order
    in one worker too, beside them; every other test wherever a worker is free."""

    class NotebooksTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if not is_notebook_cell(nodeid):
                return nodeid
            return nodeid.split("::")[0] if nodeid.startswith(READS_NO_ARTIFACT) else "notebooks"

    return NotebooksTogether(config, log)


def pytest_terminal_summary(terminalreporter) -> None:
    """Without Chromium the browser tests skip (outside CI): say how many, and what fixes it."""
    skipped = terminalreporter.stats.get("skipped", [])
    browser = [report for report in skipped if "Chromium" in str(report.longrepr)]
    if browser:
        terminalreporter.write_line(
            f"{len(browser)} browser tests skipped: no Chromium at /usr/bin/chromium; "
            "`sudo bash .ci/install-tools` installs it (`make test` runs it when root)"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each test's report of its call on the test, for fixtures that act on a failure."""
    report = yield
    if report.when == "call":
        item.call_report = report
    return report


def load_script(path: Path, name: str) -> ModuleType:
    """A script of bench/ or notebooks/ (folders of scripts, not packages), imported by its path
    as module `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


# Short enough for a test suite, long enough to move the weights: 2 epochs of 5 batches.
SHORT = TrainConfig(epochs=2, batches_per_epoch=5, device="cpu")
DEFAULT = TrainConfig()  # the lecture's run: what notebook 02 writes with its default parameters
STARTED = time.time()  # when this process (a pytest worker) began


def publish_unverified(
    results: list[EpochResult], data: Mnist, config: TrainConfig, out: Path
) -> Path:
    """Publish a set without verifying it first, as no cnnlib command does: how a test makes a
    forged or damaged set that verify must catch."""
    prepare_output(out)
    with locked(out):
        set_dir, *_ = stage(results, data, config, out)
        publish(out, set_dir)
    return out


@pytest.fixture(scope="session")
def mnist() -> Mnist:
    return load_mnist()


@pytest.fixture(scope="session")
def short_results(mnist: Mnist) -> list[EpochResult]:
    return train(SHORT, mnist, progress=False)


@pytest.fixture(scope="session")
def short_run(tmp_path_factory: pytest.TempPathFactory, mnist: Mnist, short_results) -> Path:
    """A complete artifact set from SHORT; copy it (see `fresh_run`) before damaging it."""
    out = tmp_path_factory.mktemp("short_run")
    write_artifacts(short_results, mnist, SHORT, out)
    return out


def written_by_this_run(config: TrainConfig) -> bool:
    """Does data/ hold the set of `config` that notebook 02 (nbval's run of it) wrote since this
    process began, and so the code under test? (An older set there may be an older cnnlib's.)"""
    manifest = DATA_DIR / "manifest.json"
    return (
        manifest.exists()
        and manifest.stat().st_mtime > STARTED
        and unchanged_since_written(DATA_DIR, config)
    )


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run of the default configuration (the lecture's, the notebooks' defaults) for the
    whole session, shared by the xdist workers (each has its own session): the first to ask
    makes it, the others wait and reuse it. Made means copied from data/ where nbval's notebook
    02 has written it in this run (its tests run last for that), else trained."""
    shared = tmp_path_factory.getbasetemp().parent  # the same folder for every worker
    out = shared / "default_run"
    with open(shared / "default_run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not out.exists() and written_by_this_run(DEFAULT):
            shutil.copytree(DATA_DIR, out, ignore=shutil.ignore_patterns("MNIST", ".cache"))
        return ensure_artifacts(DEFAULT, out, progress=False)  # a copy caught mid-publish: trained


@pytest.fixture
def fresh_run(short_run: Path, tmp_path: Path) -> Path:
    """A private copy of the short run, free to be modified by one test (its relative links
    copied as links: the copy is a complete set of its own)."""
    return Path(shutil.copytree(short_run, tmp_path / "run", symlinks=True))


@pytest.fixture(scope="session")
def browser():
    """One headless Debian Chromium for the session (each xdist worker runs one Playwright: a
    second sync_playwright in the same process fails). In CI a missing one fails the test."""
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "Playwright is not installed (pip install playwright)"
    if problem is None and not CHROMIUM.exists():
        problem = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}; CI must run the browser tests")
        pytest.skip(problem)
    playwright = sync_playwright().start()
    chromium = launch_chromium(playwright)
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture(scope="session")
def node() -> str:
    """The `node` executable: in CI the JS tests must run, elsewhere they skip without it."""
    path = shutil.which("node")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Node.js is not installed; CI must run the JavaScript tests")
        pytest.skip("Node.js is not installed")
    return path


def run_es_module(node: str, module: Path, name: str, script: str) -> object:
    """Run an ES-module snippet that imports `module` as `name`; return what it prints, as JSON."""
    source = f"import * as {name} from {module.as_uri()!r};\n{script}"
    done = subprocess.run(
        [node, "--input-type=module", "-e", source],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)
