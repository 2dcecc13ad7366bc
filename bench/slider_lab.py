"""Notebook 03's epoch slider as a lecturer uses it: JupyterLab in Chromium, clicked with the mouse.

    PYTHONPATH=$PWD .venv/bin/python bench/slider_lab.py      # needs /usr/bin/chromium

It starts JupyterLab (127.0.0.1 only) on a scratch copy of notebook 03 that reads this
repository's data/ and cnnlib, runs all cells from the Run menu, waits while the other epochs are
rendered in the background, then clicks the slider's track at several epochs and times each click
until the picture has changed: the whole round trip, browser to kernel and back. It prints the
track's width per epoch and those times, and saves a screenshot to bench/results/.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from playwright.sync_api import Error, Page, sync_playwright

REPO_DIR = Path(__file__).resolve().parent.parent
NOTEBOOK = "03_feature_maps.ipynb"
CLICKS = (0, 10, 5, 15, 20, 2)  # epochs to click on, in this order
SETTLE_S = 20  # time for the kernel to render every epoch ahead


def chromium() -> ModuleType:
    """tests/browser.py (a test tool, not part of cnnlib): the browser, as the tests launch it."""
    spec = importlib.util.spec_from_file_location(
        "tests_browser", REPO_DIR / "tests" / "browser.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_lab(root: Path, port: int) -> subprocess.Popen:
    """JupyterLab without a token, on 127.0.0.1, its settings kept in `root`."""
    (root / "notebooks").mkdir()
    shutil.copy(REPO_DIR / "notebooks" / NOTEBOOK, root / "notebooks" / NOTEBOOK)
    (root / "data").symlink_to(REPO_DIR / "data")  # the notebook's output_dir is ../data
    env = os.environ | {"PYTHONPATH": str(REPO_DIR), "JUPYTER_CONFIG_DIR": str(root / ".jupyter")}
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root"]
    command += ["--ip", "127.0.0.1", "--port", str(port), "--IdentityProvider.token="]
    command += [f"--ServerApp.root_dir={root}"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def open_notebook(page: Page, port: int) -> None:
    """Open the notebook, wait for its kernel (Run All before that is a trap), run all cells."""
    for _ in range(60):  # the server takes a few seconds to start
        try:
            page.goto(f"http://127.0.0.1:{port}/lab/tree/notebooks/{NOTEBOOK}")
            break
        except Error:  # not listening yet
            time.sleep(1)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    page.click("text=Run")
    page.click("text=Run All Cells")


def click_epochs(page: Page) -> None:
    """Click the slider's track at each of CLICKS; time each until the picture has changed."""
    picture = page.wait_for_selector(".widget-image", timeout=900_000)
    track = page.query_selector(".widget-slider .noUi-target")
    track.scroll_into_view_if_needed()
    time.sleep(SETTLE_S)
    box = track.bounding_box()
    print(f"slider track: {box['width']:.0f} px for 20 steps, {box['width'] / 20:.1f} px per epoch")
    for epoch in CLICKS:
        before = picture.get_attribute("src")
        start = time.perf_counter()
        x = box["x"] + 1 + (box["width"] - 2) * epoch / 20  # the track's ends are its edges
        page.mouse.click(x, box["y"] + box["height"] / 2)
        while picture.get_attribute("src") == before and time.perf_counter() - start < 10:
            time.sleep(0.005)
        elapsed = time.perf_counter() - start
        readout = page.inner_text(".widget-readout")
        print(f"click on epoch {epoch}: readout {readout}, new picture after {elapsed:.3f} s")
        time.sleep(1)


def main() -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        lab = start_lab(Path(scratch), port)
        try:
            with sync_playwright() as playwright:
                browser = chromium().launch_chromium(playwright)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                open_notebook(page, port)
                click_epochs(page)
                results = REPO_DIR / "bench" / "results"
                results.mkdir(exist_ok=True)
                page.screenshot(path=results / "slider_lab.png")
                browser.close()
        finally:
            lab.terminate()
            lab.wait(timeout=30)
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
