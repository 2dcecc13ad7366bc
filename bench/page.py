"""The demo page's own figures, in headless Debian Chromium driven by Playwright.

    .venv/bin/python bench/page.py [--data DIR] [--loads N]

Serves the page with demo/serve.py on 127.0.0.1 (data from DIR, default data/) and prints
medians of: the time from navigation to the first prediction drawn (the end of the page's first
update, the JSON fetched and checked by js/validate.mjs; target < 1 s with the 8.5 MB JSON), one
`forward` of js/cnn.mjs with all its feature maps (target < 5 ms), one whole update of the page
(that forward pass and every canvas, bar and curve redrawn), and one step of the epoch slider:
from its input event to the next frame (target < 50 ms). Then, as on a slow phone, with the CPU
slowed 4 times (Chrome DevTools' Emulation.setCPUThrottlingRate): the slider's step again
(target < 50 ms) and the longest task while a digit is drawn with the mouse (target < 100 ms).
Exits 1 when a target is missed; without Chromium, Playwright or the data it says so and skips.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
from pathlib import Path
from types import ModuleType

REPO_DIR = Path(__file__).resolve().parent.parent
JSON_NAME = "pretrained_cnn_data.json"
MAX_FIRST_PREDICTION_MS = 1000.0
MAX_FORWARD_MS = 5.0
MAX_SLIDER_STEP_MS = 50.0
MAX_DRAWING_TASK_MS = 100.0
THROTTLE = 4  # the CPU slowed this many times: a slow phone

# In the page: from now on, the duration of every task over 50 ms (a "long task").
OBSERVE_LONG_TASKS = """() => {
  window.longTasks = [];
  new PerformanceObserver((list) => {
    window.longTasks.push(...list.getEntries().map((entry) => entry.duration));
  }).observe({ type: "longtask" });
}"""

# In the page, after its first update: when the JSON's last byte arrived and when the first
# prediction was drawn, both in milliseconds since the navigation started.
LOAD_TIMES = """() => ({
  status: demoState.status,
  drawn: demoState.drawnAt,
  received: performance.getEntriesByType("resource")
    .find((entry) => entry.name.endsWith("/pretrained_cnn_data.json")).responseEnd,
})"""

# In the page: `batches` timings of `size` forward passes on the digit-3 sample at the last
# epoch, after a warm-up; each result is the mean of one batch (performance.now() is coarse).
TIME_FORWARD = """async ([batches, size]) => {
  const { forward } = await import("/js/cnn.mjs");
  const data = await (await fetch("/data/pretrained_cnn_data.json")).json();
  const weights = data.training_epochs.at(-1).weights;
  const image = data.samples.find((s) => s.index === data.feature_map_image.index).image;
  for (let i = 0; i < 50; i++) forward(weights, image);
  const times = [];
  for (let b = 0; b < batches; b++) {
    const start = performance.now();
    for (let i = 0; i < size; i++) forward(weights, image);
    times.push((performance.now() - start) / size);
  }
  return times;
}"""

# In the page: `count` steps of the epoch slider, each set off by its input event; per step, the
# whole update (synchronous) and the time until the next frame starts, when the step is painted.
TIME_STEPS = """async (count) => {
  const slider = document.getElementById("epoch");
  const nextFrame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const updates = [];
  const frames = [];
  await nextFrame();
  for (let i = 0; i < count; i++) {
    slider.value = String(i % (Number(slider.max) + 1));
    const start = performance.now();
    slider.dispatchEvent(new Event("input"));
    updates.push(performance.now() - start);
    await nextFrame();
    frames.push(performance.now() - start);
  }
  return [updates, frames];
}"""


def load_script(path: Path) -> ModuleType:
    """One of the repository's scripts (not an installed module), as a module."""
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


chromium = load_script(REPO_DIR / "tests" / "browser.py")  # the browser, as the tests launch it


def load_server() -> ModuleType:
    """demo/serve.py, the server of `make demo`, as a module."""
    return load_script(REPO_DIR / "demo" / "serve.py")


def draw_strokes(page, strokes: int) -> None:
    """Draw `strokes` strokes across the pad with the mouse, 40 movements each."""
    box = page.locator("#pad").bounding_box()
    for i in range(strokes):
        x = box["x"] + 0.2 * box["width"]
        y = box["y"] + (0.2 + 0.6 * i / max(1, strokes - 1)) * box["height"]
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 0.6 * box["width"], y + 0.05 * box["height"], steps=40)
        page.mouse.up()


def measure_throttled(browser, base: str) -> dict[str, list[float]]:
    """The slider's steps and the long tasks while drawing, the CPU slowed THROTTLE times."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/demo/")
    page.wait_for_function("window.demoState !== undefined", timeout=60_000)
    cdp = context.new_cdp_session(page)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": THROTTLE})
    _, step = page.evaluate(TIME_STEPS, 30)
    page.evaluate(OBSERVE_LONG_TASKS)
    draw_strokes(page, 6)
    page.wait_for_timeout(1000)  # the colour scale's last parts, computed after the strokes
    tasks = page.evaluate("window.longTasks")
    context.close()
    return {"step": step, "tasks": tasks}


def measure(base: str, loads: int) -> dict[str, list[float]]:
    """Each page load in a fresh browser context (an empty cache), then the in-page timings."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = chromium.launch_chromium(playwright)
        first: list[float] = []
        received: list[float] = []
        for _ in range(loads):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.goto(f"{base}/demo/")
            page.wait_for_function("window.demoState !== undefined", timeout=60_000)
            state = page.evaluate(LOAD_TIMES)
            if state["status"] != "ready":
                raise SystemExit(f"the page did not load: {page.inner_text('#error')}")
            first.append(state["drawn"])
            received.append(state["received"])
            context.close()
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(f"{base}/demo/")
        page.wait_for_function("window.demoState !== undefined", timeout=60_000)
        forward = page.evaluate(TIME_FORWARD, [50, 10])
        update, step = page.evaluate(TIME_STEPS, 50)
        context.close()
        throttled = measure_throttled(browser, base)
        version = browser.version
        browser.close()
    return {
        "first": first,
        "received": received,
        "forward": forward,
        "update": update,
        "step": step,
        "throttled_step": throttled["step"],
        "long_tasks": throttled["tasks"],
        "version": version,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_DIR / "data", help="data/ by default")
    parser.add_argument("--loads", type=int, default=7, help="page loads timed (7)")
    args = parser.parse_args(argv)
    missing = None
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing = "Playwright is not installed (pip install playwright)"
    if not chromium.CHROMIUM.exists():
        missing = f"no Chromium at {chromium.CHROMIUM} (apt-get install -y chromium)"
    if not (args.data / JSON_NAME).exists():
        missing = f"no {args.data / JSON_NAME} (run `make data` first)"
    if missing is not None:
        print(f"demo page: skipped, {missing}")
        return 0

    load_at_start = os.getloadavg()[0]
    serve = load_server()
    httpd, base = serve.serve_in_thread(serve.Site(REPO_DIR, {"": args.data}))
    try:
        times = measure(base, args.loads)
    finally:
        httpd.shutdown()
        httpd.server_close()
    first = statistics.median(times["first"])
    received = statistics.median(times["received"])
    forward = statistics.median(times["forward"])
    update = statistics.median(times["update"])
    step = statistics.median(times["step"])
    json_path = (args.data / JSON_NAME).resolve()
    size = json_path.stat().st_size / 1e6
    shown = json_path.relative_to(REPO_DIR) if json_path.is_relative_to(REPO_DIR) else json_path
    checks = [
        (
            first < MAX_FIRST_PREDICTION_MS,
            f"first prediction drawn {first:.0f} ms after navigation (the JSON received at "
            f"{received:.0f} ms), median of {args.loads} loads "
            f"(target < {MAX_FIRST_PREDICTION_MS:.0f} ms)",
        ),
        (
            forward < MAX_FORWARD_MS,
            f"one forward pass with all feature maps {forward:.2f} ms, median of "
            f"{len(times['forward'])} batches of 10 (target < {MAX_FORWARD_MS:g} ms)",
        ),
        (
            step < MAX_SLIDER_STEP_MS,
            f"one step of the epoch slider painted {step:.1f} ms after its input event (slowest "
            f"{max(times['step']):.1f} ms), median of {len(times['step'])} "
            f"(target < {MAX_SLIDER_STEP_MS:g} ms)",
        ),
    ]
    slow_step = statistics.median(times["throttled_step"])
    longest = max(times["long_tasks"], default=0.0)
    over = sum(task > MAX_DRAWING_TASK_MS for task in times["long_tasks"])
    checks += [
        (
            slow_step < MAX_SLIDER_STEP_MS,
            f"CPU slowed {THROTTLE}x: one step of the epoch slider painted {slow_step:.1f} ms "
            f"after its input event (slowest {max(times['throttled_step']):.1f} ms), median of "
            f"{len(times['throttled_step'])} (target < {MAX_SLIDER_STEP_MS:g} ms)",
        ),
        (
            longest < MAX_DRAWING_TASK_MS,
            f"CPU slowed {THROTTLE}x, 6 strokes drawn with the mouse: "
            + (
                f"longest task {longest:.0f} ms, {len(times['long_tasks'])} tasks over 50 ms, "
                f"{over} over {MAX_DRAWING_TASK_MS:g} ms"
                if times["long_tasks"]
                else "no task over 50 ms"
            )
            + f" (target: none over {MAX_DRAWING_TASK_MS:g} ms)",
        ),
    ]
    print(
        f"Demo page in headless Chromium {times['version']}, {shown} "
        f"({size:.1f} MB); 1-min load average {load_at_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    for passed, line in checks:
        print(f"- [{'ok' if passed else 'MISSED'}] {line}")
    print(
        f"- one whole page update (forward pass and every drawing) {update:.1f} ms (slowest "
        f"{max(times['update']):.1f} ms), median of {len(times['update'])}"
    )
    return 0 if all(passed for passed, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
