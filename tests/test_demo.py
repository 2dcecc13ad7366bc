"""The demo page (demo/) in a real Chromium driven by Playwright, served from 127.0.0.1.

Where Chromium or Playwright is absent the browser tests skip, except in CI (the CI variable
set): there they fail. demo/mnist.mjs (the drawing's preprocessing) and demo/load.mjs (the check
of the JSON's keys) also run under Node.js. A test on the shared page that fails leaves a
screenshot of it in pytest's temporary folder
(`/tmp/pytest-of-$USER/pytest-current/demo-screenshots0/`), to see what it saw.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlib.data import REPO_DIR, Mnist, normalize
from cnnlib.export import JSON_NAME, epoch_weights_name, load_state_dict
from cnnlib.lecture.plots import style
from cnnlib.model import ACTIVATION_NAMES, CNN
from tests.conftest import load_script, run_es_module

VIEWPORT = {"width": 1400, "height": 900}
TOLERANCE = 1e-4

# Strokes drawn on the 280x280 pad, as (x, y) points in pad pixels.
ONE = [[(140, 40), (140, 240)]]
SEVEN = [[(70, 50), (210, 50), (190, 100), (160, 170), (135, 245)]]
ZERO = [
    [
        (140 + 65 * math.sin(2 * math.pi * i / 24), 140 - 95 * math.cos(2 * math.pi * i / 24))
        for i in range(25)
    ]
]


def epochs_of(payload: dict) -> list[dict]:
    return payload["training_epochs"]


def set_item(items: list, index: int, value: object) -> None:
    items[index] = value


# Damaged copies of the short run (epochs 0..2) and the sentence after "data/NAME/JSON_NAME: ".
DAMAGES = {
    "no_fc2": (
        lambda p: epochs_of(p)[1]["weights"].pop("fc2"),
        "`training_epochs[1].weights.fc2` (epoch 1) is missing",
    ),
    "no_architecture": (lambda p: p.pop("architecture"), "`architecture` is missing"),
    "infinite_weight": (  # 12345.5 becomes 1e999 in the text, which JSON.parse reads as Infinity
        lambda p: set_item(epochs_of(p)[0]["weights"]["conv1"]["bias"], 0, 12345.5),
        "`training_epochs[0].weights.conv1.bias[0]` (epoch 0) is Infinity, not a finite number",
    ),
    "fc1_64_rows": (
        lambda p: epochs_of(p)[2]["weights"]["fc1"].update(
            weight=epochs_of(p)[2]["weights"]["fc1"]["weight"][:64]
        ),
        "`training_epochs[2].weights.fc1.weight` (epoch 2) has 64 rows where the network has 128",
    ),
    "image_20_rows": (
        lambda p: p["samples"][5].update(image=p["samples"][5]["image"][:20]),
        "`samples[5].image` has 20 rows where the network has 28",
    ),
    "no_epochs": (lambda p: p.update(training_epochs=[]), "`training_epochs` holds no epoch"),
    "null_loss": (
        lambda p: epochs_of(p)[1].update(loss=None),
        "`training_epochs[1].loss` (epoch 1) is null, not a finite number",
    ),
    "string_weight": (
        lambda p: set_item(epochs_of(p)[1]["weights"]["conv2"]["weight"][0][0][0], 0, "0.5"),
        '`training_epochs[1].weights.conv2.weight[0][0][0][0]` (epoch 1) is "0.5", not a finite '
        "number",
    ),
    "no_sevens": (
        lambda p: p.update(samples=[s for s in p["samples"] if s["label"] != 7]),
        "`samples` has no image of the digit 7",
    ),
    "epoch_missing": (
        lambda p: epochs_of(p).pop(1),
        "`training_epochs[1].epoch` is 2 after epoch 0; expected 1 (0..2, each once, in order)",
    ),
    "epochs_swapped": (
        lambda p: epochs_of(p).insert(1, epochs_of(p).pop(2)),
        "`training_epochs[1].epoch` is 2 after epoch 0; expected 1 (0..2, each once, in order)",
    ),
    "fc1_changed": (
        lambda p: epochs_of(p)[2]["weights"]["fc1"].update(
            weight=[[2 * w for w in row] for row in epochs_of(p)[2]["weights"]["fc1"]["weight"]]
        ),
        "`training_epochs[2].feature_maps.fc1` (epoch 2) differs by ",
    ),
}


def browsers_must_run() -> bool:
    return bool(os.environ.get("CI"))


class QuietHandler(SimpleHTTPRequestHandler):
    """http.server's static files, as someone might serve demo/ by hand."""

    def log_message(self, format: str, *args: object) -> None:
        pass


serve = load_script(REPO_DIR / "demo" / "serve.py", "demo_serve")
screens = load_script(REPO_DIR / "demo" / "screenshots.py", "demo_screenshots")


# ---------------------------------------------------------------------------------------------
# The runs the page loads, the server that serves them, the browser


MISTAKES_SHOWN = 10  # the most confident mistakes the JSON holds per epoch


def most_confident_mistakes(run: Path, mnist: Mnist, epochs: int) -> list[list[dict]]:
    """Per epoch, its up to 10 most confident mistakes on the whole test set, from the run's .pth
    files: {index, label, prediction, probability}, the highest probability first."""
    images = normalize(mnist.test_pixels)
    found = []
    for epoch in range(epochs + 1):
        model = CNN().eval()
        model.load_state_dict(load_state_dict(run / epoch_weights_name(epoch)))
        with torch.inference_mode():
            probabilities, predictions = model(images).softmax(dim=1).max(dim=1)
        wrong = (predictions != mnist.test_labels).nonzero().flatten()
        order = wrong[probabilities[wrong].argsort(descending=True, stable=True)][:MISTAKES_SHOWN]
        found.append(
            [
                {
                    "index": int(i),
                    "label": int(mnist.test_labels[i]),
                    "prediction": int(predictions[i]),
                    "probability": float(probabilities[i]),
                }
                for i in order
            ]
        )
    return found


def add_mistakes(payload: dict, run: Path, mnist: Mnist) -> None:
    """The contract's `training_epochs[k].mistakes` and `mistake_samples`, computed here from the
    weights for a JSON exported before cnnlib.export wrote them."""
    epochs = epochs_of(payload)
    for entry, mistakes in zip(
        epochs, most_confident_mistakes(run, mnist, epochs[-1]["epoch"]), strict=True
    ):
        entry["mistakes"] = mistakes
    named = sorted({m["index"] for entry in epochs for m in entry["mistakes"]})
    payload["mistake_samples"] = [
        {"image": mnist.test_pixels[i].tolist(), "label": int(mnist.test_labels[i]), "index": i}
        for i in named
    ]


@pytest.fixture(scope="session")
def default_payload(default_run: Path, mnist: Mnist) -> dict:
    """The default run's JSON, with the whole test set's mistakes (added if it lacks them)."""
    payload = json.loads((default_run / JSON_NAME).read_text())
    if "mistake_samples" not in payload:
        add_mistakes(payload, default_run, mnist)
    return payload


@pytest.fixture(scope="session")
def data_folders(tmp_path_factory: pytest.TempPathFactory, short_run: Path, default_payload: dict):
    """The data the server offers under /data/NAME/: the default run (with its mistakes), the
    short one, and damaged copies of the short one, each in a folder of its own."""
    damaged = tmp_path_factory.mktemp("damaged")
    text = (short_run / JSON_NAME).read_text()
    default = tmp_path_factory.mktemp("default")
    (default / JSON_NAME).write_text(json.dumps(default_payload))
    folders = {"default": default, "short": short_run}

    def add(name: str, content: str) -> None:
        folders[name] = damaged / name
        folders[name].mkdir()
        (folders[name] / JSON_NAME).write_text(content)

    add("truncated", text[:5000])
    for name, (change, _) in DAMAGES.items():
        payload = json.loads(text)
        change(payload)
        add(name, json.dumps(payload).replace("12345.5", "1e999"))
    return folders


@pytest.fixture(scope="session")
def server(data_folders: dict[str, Path]) -> Iterator[str]:
    """The base URL of demo/serve.py's server on a free port of 127.0.0.1, in a thread."""
    httpd, base = serve.serve_in_thread(serve.Site(REPO_DIR, data_folders))
    yield base
    httpd.shutdown()
    httpd.server_close()


def data_path(name: str) -> str:
    """The `?data=` of data folder `name`, relative to the page."""
    return f"../data/{name}/{JSON_NAME}"


class Page:
    """A browser tab on demo/ with `?data=data`, recording console errors, failed requests and
    any request to another server than `server`."""

    def __init__(
        self, browser, server: str, data: str, has_touch: bool = False, size: str | None = None
    ):
        self.server = server
        if size is None:
            self.tab = browser.new_page(viewport=VIEWPORT, has_touch=has_touch)
        else:
            width, height, ratio = screens.SIZES[size]
            phone = size in screens.TOUCH
            self.tab = browser.new_page(
                viewport={"width": width, "height": height},
                device_scale_factor=ratio,
                has_touch=phone,
                is_mobile=phone,
            )
        self.problems: list[str] = []
        self.tab.on("console", self.on_console)
        self.tab.on("pageerror", lambda error: self.problems.append(str(error)))
        self.tab.on("requestfailed", lambda request: self.problems.append(request.url))
        self.tab.on("response", self.on_response)
        self.tab.on("request", self.on_request)
        projector = "&projector" if size in screens.PROJECTOR else ""
        self.tab.goto(f"{server}/demo/?data={data}{projector}")
        self.tab.wait_for_function("window.demoState !== undefined")

    def on_console(self, message) -> None:
        if message.type == "error":
            self.problems.append(message.text)

    def on_request(self, request) -> None:
        if not request.url.startswith((self.server, "data:")):
            self.problems.append(f"a request to another server: {request.url}")

    def on_response(self, response) -> None:
        if response.status >= 400:
            self.problems.append(f"{response.status} {response.url}")

    def state(self, key: str) -> object:
        """One entry of what the page last drew, `window.demoState`."""
        return self.tab.evaluate("(key) => window.demoState[key]", key)

    def text(self, selector: str) -> str:
        return self.tab.inner_text(selector)

    def set_epoch(self, epoch: int) -> None:
        self.tab.fill("#epoch", str(epoch))
        assert self.state("epoch") == epoch

    def show_sample(self, position: int) -> None:
        """Press the sample's digit until it is shown (each press shows the next of that digit)."""
        digit = position // 10
        for _ in range(11):
            sample = self.state("sample")
            if sample is not None and sample["position"] == position:
                return
            self.tab.click(f"#digits button:text-is('{digit}')")
        raise AssertionError(f"sample {position} never shown")

    def draw(self, strokes: list[list[tuple[float, float]]]) -> None:
        """Draw on the pad with real mouse events: press, move through the points, release."""
        self.tab.click("#clear")
        box = self.tab.locator("#pad").bounding_box()
        scale = box["width"] / 280
        for stroke in strokes:
            points = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in stroke]
            self.tab.mouse.move(*points[0])
            self.tab.mouse.down()
            for point in points[1:]:
                self.tab.mouse.move(*point, steps=4)
            self.tab.mouse.up()


@pytest.fixture(scope="session")
def demo(browser, server: str) -> Iterator[Page]:
    """The page on the default run, shared by the tests (each sets the epoch and image it needs)."""
    page = Page(browser, server, data_path("default"))
    yield page
    page.tab.close()


@pytest.fixture(autouse=True)
def screenshot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """After a test on the shared page fails, a screenshot of the page, to see what it saw."""
    yield
    failed = getattr(request.node, "call_report", None) and request.node.call_report.failed
    if failed and "demo" in request.fixturenames:
        folder = tmp_path_factory.getbasetemp() / "demo-screenshots0"
        folder.mkdir(exist_ok=True)
        request.getfixturevalue("demo").tab.screenshot(
            path=folder / f"{request.node.name}.png", full_page=True
        )


def torch_predictions(run: Path, payload: dict, epoch: int) -> list[int]:
    """PyTorch's predicted digit for the 100 samples, from the .pth of `epoch`."""
    pixels = torch.tensor([sample["image"] for sample in payload["samples"]], dtype=torch.uint8)
    model = CNN().eval()
    model.load_state_dict(load_state_dict(run / epoch_weights_name(epoch)))
    with torch.inference_mode():
        return model(normalize(pixels)).argmax(dim=1).tolist()


# ---------------------------------------------------------------------------------------------
# Loading


def test_the_default_run_loads_without_an_error(demo: Page, default_payload: dict):
    assert demo.state("status") == "ready"
    last = default_payload["training_epochs"][-1]["epoch"]
    assert demo.state("epoch") == last
    assert demo.tab.get_attribute("#epoch", "max") == str(last)
    assert demo.text("#source").startswith(f"data/default/{JSON_NAME}: 21 snapshots")
    shapes = demo.tab.locator("#architecture .shape").all_inner_texts()
    assert shapes == ["1×28×28", "4×26×26", "4×13×13", "8×11×11", "8×5×5", "200", "128", "10"]
    assert demo.problems == []


def test_a_short_run_loads_without_an_error(browser, server: str, short_run: Path):
    page = Page(browser, server, data_path("short"))
    try:
        assert page.state("status") == "ready"
        assert page.state("epoch") == 2
        assert page.text("#source").startswith(f"data/short/{JSON_NAME}: 3 snapshots")
        assert page.problems == []
    finally:
        page.tab.close()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nowhere", f"data/nowhere/{JSON_NAME} is missing: run `make data` first."),
        ("truncated", f"data/truncated/{JSON_NAME}: is not valid JSON ("),
        *[
            (name, f"data/{name}/{JSON_NAME}: {sentence}")
            for name, (_, sentence) in DAMAGES.items()
        ],
    ],
)
def test_bad_data_shows_one_sentence_naming_the_key_and_epoch(browser, server: str, name, message):
    page = Page(browser, server, data_path(name))
    try:
        assert page.state("status") == "error"
        assert page.tab.is_visible("#error")
        assert not page.tab.is_visible("#demo")  # nothing half-drawn
        error = page.state("error")
        assert error.startswith(message)
        assert error.count(". ") == 0 and error.endswith(".")  # one sentence
        assert "make data" in error
        assert page.text("#error") == error.replace("`", "")  # `code` as code
        # No uncaught error: only the missing file's own 404 and its console line.
        assert [p for p in page.problems if "404" not in p] == []
    finally:
        page.tab.close()


def test_the_page_shows_its_loading_progress(browser, server: str, data_folders: dict[str, Path]):
    """Each chunk of the JSON that arrives updates the line under the title, in megabytes."""
    tab = browser.new_page()
    tab.add_init_script(
        """
        window.progressSeen = [];
        new MutationObserver(() => {
          const source = document.getElementById("source");
          if (source) window.progressSeen.push(source.textContent);
        }).observe(document, { subtree: true, childList: true, characterData: true });
        """
    )
    try:
        tab.goto(f"{server}/demo/?data={data_path('default')}")
        tab.wait_for_function("window.demoState !== undefined")
        seen = tab.evaluate("window.progressSeen")
        megabytes = (data_folders["default"] / JSON_NAME).stat().st_size / 1e6
        steps = [text for text in seen if text.startswith("Loading the network… ")]
        assert len(steps) >= 2
        assert steps[-1] == f"Loading the network… {megabytes:.1f} MB"  # gzipped: no total
        assert seen[-1].startswith(f"data/default/{JSON_NAME}: 21 snapshots")
    finally:
        tab.close()


def test_opened_as_a_file_it_says_what_to_run(browser):
    tab = browser.new_page()
    try:
        tab.goto((REPO_DIR / "demo" / "index.html").as_uri())
        tab.wait_for_function("window.demoState !== undefined")
        assert tab.evaluate("window.demoState.status") == "error"
        assert tab.inner_text("#error") == (
            "This page was opened as a file, and browsers do not run its modules from files: in "
            f"a terminal, run make demo in {REPO_DIR} and open http://127.0.0.1:8000/demo/."
        )
        assert not tab.is_visible("#demo")
    finally:
        tab.close()


def test_served_with_demo_as_the_root_it_says_what_to_run(browser):
    """`python3 -m http.server` started inside demo/: js/ and data/ are out of reach."""
    handler = functools.partial(QuietHandler, directory=str(REPO_DIR / "demo"))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    tab = browser.new_page()
    try:
        tab.goto(f"http://127.0.0.1:{httpd.server_address[1]}/")
        tab.wait_for_function("window.demoState !== undefined")
        assert tab.inner_text("#error") == (
            "This server's root is the demo/ folder, so the page cannot load js/ and data/ "
            "beside it: stop it, run make demo in the repository's folder and open "
            "http://127.0.0.1:8000/demo/."
        )
    finally:
        tab.close()
        httpd.shutdown()
        httpd.server_close()


# ---------------------------------------------------------------------------------------------
# What the page computes


def test_every_sample_at_the_last_epoch_shows_pytorchs_prediction(
    demo: Page, default_run: Path, default_payload: dict
):
    last = default_payload["training_epochs"][-1]["epoch"]
    expected = torch_predictions(default_run, default_payload, last)
    demo.set_epoch(last)
    shown = []
    for position in range(100):
        demo.show_sample(position)
        shown.append(int(demo.text("#prediction")))
        assert demo.state("prediction") == shown[-1]
    assert shown == expected


def test_samples_at_epoch_0_show_pytorchs_prediction(
    demo: Page, default_run: Path, default_payload: dict
):
    expected = torch_predictions(default_run, default_payload, 0)
    demo.tab.click("#reset")
    assert demo.state("epoch") == 0
    for position in (0, 17, 30, 45, 99):
        demo.show_sample(position)
        assert int(demo.text("#prediction")) == expected[position], position


def test_the_feature_maps_equal_the_jsons_at_every_epoch(demo: Page, default_payload: dict):
    position = next(
        i
        for i, sample in enumerate(default_payload["samples"])
        if sample["index"] == default_payload["feature_map_image"]["index"]
    )
    demo.show_sample(position)
    for entry in default_payload["training_epochs"]:
        demo.set_epoch(entry["epoch"])
        maps = demo.state("maps")
        assert list(maps) == list(ACTIVATION_NAMES)
        for name in ACTIVATION_NAMES:
            drawn = np.asarray(maps[name])
            stored = np.asarray(entry["feature_maps"][name])
            assert drawn.shape == stored.shape, name
            assert np.abs(drawn - stored).max() < TOLERANCE, f"epoch {entry['epoch']} {name}"
    assert demo.tab.locator("#maps canvas.map").count() == 4 + 4 + 8 + 8 + 1
    assert demo.tab.locator("#maps canvas.kernel").count() == 4 + 8


# ---------------------------------------------------------------------------------------------
# The epoch control


def fixed(value: float, digits: int) -> str:
    """JavaScript's value.toFixed(digits): halves of the exact binary value rounded up."""
    return str(Decimal(value).quantize(Decimal(10) ** -digits, rounding=ROUND_HALF_UP))


def metrics_text(entry: dict) -> str:
    return (
        f"training loss {fixed(entry['loss'], 3)}\n"
        f"train accuracy {fixed(entry['train_accuracy'], 1)}%\n"
        f"test accuracy {fixed(entry['test_accuracy'], 1)}%"
    )


def test_reset_train_and_slider_show_that_epochs_numbers(demo: Page, default_payload: dict):
    epochs = default_payload["training_epochs"]
    demo.tab.click("#reset")
    assert demo.state("epoch") == 0
    assert demo.text("#metrics") == metrics_text(epochs[0])
    for epoch in (1, 2, 3):
        demo.tab.click("#train")
        assert demo.state("epoch") == epoch
        assert demo.text("#epoch-value") == f"{epoch} of 20"
        assert demo.text("#metrics") == metrics_text(epochs[epoch])
        assert demo.state("metrics") == {
            key: epochs[epoch][key] for key in ("loss", "train_accuracy", "test_accuracy")
        }
    demo.set_epoch(11)
    assert demo.text("#metrics") == metrics_text(epochs[11])
    demo.tab.focus("#epoch")
    demo.tab.keyboard.press("End")
    assert demo.state("epoch") == 20
    assert demo.text("#metrics") == metrics_text(epochs[20])
    assert demo.tab.is_disabled("#train")


# ---------------------------------------------------------------------------------------------
# Drawing


@pytest.mark.parametrize(("digit", "strokes"), [(1, ONE), (7, SEVEN), (0, ZERO)])
def test_a_drawn_digit_is_recognised(demo: Page, default_payload: dict, digit, strokes):
    demo.set_epoch(default_payload["training_epochs"][-1]["epoch"])
    demo.draw(strokes)
    assert demo.state("sample") is None
    assert demo.text("#input-caption") == "your drawing, as the network sees it"
    image = np.asarray(demo.state("image"))
    assert image.shape == (28, 28) and image.max() > 200
    assert int(demo.text("#prediction")) == digit
    # The pad is read only where it was drawn on: the digit is the whole pad's.
    assert demo.state("image") == demo.tab.evaluate(WHOLE_PAD_DIGIT)
    assert demo.problems == []


# In the page: the digit mnistDigit makes of every pixel of the pad.
WHOLE_PAD_DIGIT = """async () => {
  const { mnistDigit } = await import("/demo/mnist.mjs");
  const pad = document.getElementById("pad");
  const rgba = pad.getContext("2d").getImageData(0, 0, pad.width, pad.height).data;
  const ink = rgba.filter((_, i) => i % 4 === 0);
  return mnistDigit({ width: pad.width, height: pad.height, ink });
}"""


def test_a_digit_drawn_with_a_finger_is_recognised(browser, server: str):
    """Touch events, as a touch screen sends them, drawing a 7."""
    page = Page(browser, server, data_path("default"), has_touch=True)
    try:
        box = page.tab.locator("#pad").bounding_box()
        screen = page.tab.context.new_cdp_session(page.tab)
        [stroke] = SEVEN
        for i, (x, y) in enumerate(stroke):
            touch = {"x": box["x"] + x * box["width"] / 280, "y": box["y"] + y * box["width"] / 280}
            kind = "touchStart" if i == 0 else "touchMove"
            screen.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [touch]})
        screen.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        assert page.state("sample") is None
        assert int(page.text("#prediction")) == 7
        assert page.problems == []
    finally:
        page.tab.close()


def test_clear_blanks_the_input(demo: Page):
    demo.draw(ONE)
    demo.tab.click("#clear")
    assert np.asarray(demo.state("image")).max() == 0


# ---------------------------------------------------------------------------------------------
# The screens it is used on: projectors, laptops, phones


def outside_viewport(page: Page, selectors: list[str]) -> list[str]:
    """Those of `selectors` (every element each matches) not wholly inside the window."""
    return page.tab.evaluate(
        """(selectors) => selectors.flatMap((selector) =>
            [...document.querySelectorAll(selector)].flatMap((node, i) => {
              const r = node.getBoundingClientRect();
              const inside = r.width > 0 && r.left >= 0 && r.top >= 0 &&
                r.right <= innerWidth + 0.5 && r.bottom <= innerHeight + 0.5;
              return inside ? [] : [`${selector} #${i}`];
            }))""",
        selectors,
    )


def save_screenshot(page: Page, tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    folder = tmp_path_factory.getbasetemp() / "demo-screenshots0"
    folder.mkdir(exist_ok=True)
    page.tab.screenshot(path=folder / f"{name}.png")


def clipped(page: Page) -> list[str]:
    """Visible buttons and text boxes cut off: outside the window, outside their panel, or their
    text wider than the box."""
    return page.tab.evaluate(
        """() => [...document.querySelectorAll("button, #verdict, .caveat, #confidence")]
          .filter((node) => node.checkVisibility() && node.closest("dialog") === null)
          .flatMap((node) => {
            const r = node.getBoundingClientRect();
            const panel = node.closest(".panel")?.getBoundingClientRect() ??
              { left: 0, top: 0, right: innerWidth, bottom: innerHeight };
            const inside = (box) => r.left >= box.left - 0.5 && r.top >= box.top - 0.5 &&
              r.right <= box.right + 0.5 && r.bottom <= box.bottom + 0.5;
            const view = { left: 0, top: 0, right: innerWidth, bottom: innerHeight };
            const cut = !inside(view) || !inside(panel) || node.scrollWidth > node.clientWidth + 1;
            return cut ? [node.id || node.textContent.trim().slice(0, 20)] : [];
          })"""
    )


def text_sizes(page: Page) -> list[tuple[str, float]]:
    """Every visible piece of text (the curve's labels too) and its font size in CSS pixels."""
    return page.tab.evaluate(
        """() => [...document.querySelectorAll("main *, header *")]
          .filter((node) => node.checkVisibility() && (node.tagName === "CANVAS" ||
            [...node.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim())))
          .map((node) => [`${node.tagName}.${node.className} ${node.textContent.slice(0, 20)}`,
                          parseFloat(getComputedStyle(node).fontSize)])"""
    )


@pytest.mark.parametrize("size", screens.ONE_SCREEN)
def test_on_a_projector_or_laptop_everything_is_in_view_without_scrolling(
    browser, server: str, tmp_path_factory, size: str
):
    page = Page(browser, server, data_path("default"), size=size)
    try:
        save_screenshot(page, tmp_path_factory, f"size-{size}")
        shown = ["#pad", "#maps canvas.map", "#maps canvas.kernel", "#prediction", "#bars"]
        assert outside_viewport(page, [*shown, "#curve", "#epoch", "#train"]) == []
        width, height, _ = screens.SIZES[size]
        assert page.tab.evaluate("document.documentElement.scrollHeight") <= height
        assert page.tab.evaluate("document.documentElement.scrollWidth") <= width
        assert clipped(page) == []
        assert page.problems == []
    finally:
        page.tab.close()


@pytest.mark.parametrize("size", screens.PROJECTOR)
def test_projector_mode_has_no_text_under_16_px_and_is_switched_with_a_button(
    browser, server: str, size: str
):
    page = Page(browser, server, data_path("default"), size=size)
    try:
        assert page.tab.get_attribute("#projector", "aria-pressed") == "true"
        sizes = text_sizes(page)
        assert len(sizes) > 50
        assert [(text, px) for text, px in sizes if px < 16] == []
        # Off: the normal page, the address without ?projector; on again: as it was.
        page.tab.click("#projector")
        assert page.tab.get_attribute("#projector", "aria-pressed") == "false"
        assert "projector" not in page.tab.url
        assert min(px for _, px in text_sizes(page)) < 16
        page.tab.click("#projector")
        assert page.tab.url.endswith("&projector=")
        assert min(px for _, px in text_sizes(page)) >= 16
        assert clipped(page) == []
    finally:
        page.tab.close()


@pytest.mark.parametrize("size", screens.SHORT)
def test_zoomed_in_or_a_phone_held_sideways_the_digits_pad_and_clear_are_in_view(
    browser, server: str, tmp_path_factory, size: str
):
    page = Page(browser, server, data_path("default"), size=size)
    try:
        save_screenshot(page, tmp_path_factory, f"size-{size}")
        width = screens.SIZES[size][0]
        assert page.tab.evaluate("document.documentElement.scrollWidth") <= width
        in_view = ["#digits button", "#clear", "#pad", "#prediction", "#confidence", "#verdict"]
        assert outside_viewport(page, in_view) == []
        assert [name for name in clipped(page) if name in "0123456789clear"] == []
        pad, panel = (page.tab.locator(s).bounding_box() for s in ("#pad", "#input-panel"))
        assert panel["x"] <= pad["x"] and pad["x"] + pad["width"] <= panel["x"] + panel["width"]
        # No control under another panel.
        overlaps = page.tab.evaluate(
            """() => {
              const maps = document.getElementById("maps-panel").getBoundingClientRect();
              return [...document.querySelectorAll("#input-panel button, #output-panel button")]
                .filter((node) => { const r = node.getBoundingClientRect();
                  return r.bottom > maps.top && r.top < maps.bottom &&
                         r.right > maps.left && r.left < maps.right; })
                .map((node) => node.textContent.trim()); }"""
        )
        assert overlaps == []
        assert page.problems == []
    finally:
        page.tab.close()


def test_at_1280x720_conv2s_kernels_are_wider_than_10_px(browser, server: str):
    page = Page(browser, server, data_path("default"), size="1280x720")
    try:
        widths = page.tab.locator(".conv2 canvas.kernel").evaluate_all(
            "(nodes) => nodes.map((node) => node.getBoundingClientRect().width)"
        )
        assert len(widths) == 8 and min(widths) > 10
    finally:
        page.tab.close()


def test_the_accuracy_axis_shows_the_climb_from_90_to_98_percent(demo: Page, default_payload: dict):
    trained = [e for e in default_payload["training_epochs"] if e["epoch"] > 0]
    lowest = min(min(e["train_accuracy"], e["test_accuracy"]) for e in trained)
    low, high = map(float, demo.tab.get_attribute("#curve", "data-accuracy-axis").split())
    assert (low, high) == (10 * math.floor(lowest / 10), 100)
    assert (98 - 90) / (high - low) >= 0.25  # on 0-100%: 0.08


# In the page: the curve canvas's pixels as shown, then as drawn afresh at `epoch` from the JSON
# (new arrays: drawCurve keeps nothing it drew for the page's own).
# How many bytes of the curve's pixels differ once drawCurve draws it afresh (compared in the page:
# sending both images to Python took 15 s), and the canvas's height.
CURVE_AFRESH = """async ([url, epoch]) => {
  const { drawCurve } = await import("/demo/views.mjs");
  const canvas = document.getElementById("curve");
  const pixels = () => canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const shown = pixels();
  const data = await (await fetch(url)).json();
  drawCurve(canvas, data.training_epochs, epoch);
  const afresh = pixels();
  return [shown.filter((value, i) => value !== afresh[i]).length, canvas.height];
}"""


def test_the_curve_after_slider_steps_and_a_resize_is_the_curve_drawn_afresh(demo: Page):
    """drawCurve draws the axes and curves once per size and copies them, drawing only the
    epoch's marks on a slider step: what it shows is still what a first drawing shows."""
    url = f"/data/default/{JSON_NAME}"
    for epoch in (0, 13, 7):
        demo.set_epoch(epoch)
    differing, height = demo.tab.evaluate(CURVE_AFRESH, [url, 7])
    assert differing == 0
    demo.set_epoch(5)  # the page's own curve drawn again, before the window is resized
    demo.tab.set_viewport_size({"width": VIEWPORT["width"], "height": VIEWPORT["height"] - 80})
    try:
        demo.tab.wait_for_function(f"document.getElementById('curve').height !== {height}")
        demo.set_epoch(3)
        differing, _ = demo.tab.evaluate(CURVE_AFRESH, [url, 3])
        assert differing == 0
    finally:
        demo.tab.set_viewport_size(VIEWPORT)
        demo.set_epoch(20)


def sizes_of(page: Page) -> dict[str, float]:
    return page.tab.evaluate(
        """() => ({
          conv1: document.querySelector(".conv1 canvas.map").getBoundingClientRect().width,
          conv2: document.querySelector(".conv2 canvas.map").getBoundingClientRect().width,
          pad: document.getElementById("pad").getBoundingClientRect().width,
          curve: document.getElementById("curve").getBoundingClientRect().height,
        })"""
    )


def test_on_a_large_screen_maps_and_labels_grow(browser, server: str):
    small = Page(browser, server, data_path("default"), size="1280x720")
    large = Page(browser, server, data_path("default"), size="1920x1080")
    try:
        before, after = sizes_of(small), sizes_of(large)
        for name in before:
            assert after[name] >= 1.35 * before[name], (name, before, after)
        # Every piece of text, the curve's labels included, at least 20 px on the large screen.
        fonts = text_sizes(large)
        assert len(fonts) > 50
        assert [text for text, size in fonts if size < 20] == []
    finally:
        small.tab.close()
        large.tab.close()


@pytest.mark.parametrize("size", screens.PHONES)
def test_on_a_phone_the_prediction_is_in_view_while_drawing(
    browser, server: str, tmp_path_factory, size: str
):
    page = Page(browser, server, data_path("default"), size=size)
    try:
        save_screenshot(page, tmp_path_factory, f"size-{size}")
        assert outside_viewport(page, ["#pad", "#prediction", "#confidence"]) == []
        # A tap without movement leaves ink, and the network answers.
        box = page.tab.locator("#pad").bounding_box()
        page.tab.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        assert page.state("sample") is None
        assert np.asarray(page.state("image")).max() > 200
        assert page.state("prediction") is not None
        assert outside_viewport(page, ["#pad", "#prediction"]) == []
        # Controls a finger can hit: at least 44 px each way.
        small = page.tab.evaluate(
            """() => [...document.querySelectorAll("button, input, [role=button]")]
              .filter((node) => node.checkVisibility())
              .map((node) => [node.id || node.textContent.trim() || node.dataset.layer,
                              node.getBoundingClientRect()])
              .filter(([, r]) => r.width < 44 || r.height < 44)
              .map(([name]) => name)"""
        )
        assert small == []
        assert page.problems == []
    finally:
        page.tab.close()


def dialog_fits(page: Page) -> dict:
    """Where the open dialog is and whether its content is cut sideways or scrolls."""
    return page.tab.evaluate(
        """() => {
          const dialog = document.getElementById("explain");
          const r = dialog.getBoundingClientRect();
          const before = dialog.scrollTop;
          dialog.scrollTop = 50;
          const scrolls = dialog.scrollTop > before;
          dialog.scrollTop = before;
          return { inside: r.left >= 0 && r.top >= 0 && r.right <= innerWidth &&
                     r.bottom <= innerHeight,
                   sideways: dialog.scrollWidth > dialog.clientWidth,
                   taller: dialog.scrollHeight > dialog.clientHeight, scrolls };
        }"""
    )


def test_on_a_phone_the_dialogs_fit_the_screen_or_scroll_inside_it(browser, server: str):
    page = Page(browser, server, data_path("default"), size="390x844")
    try:
        page.tab.locator("#bars button").nth(8).click()
        fc2 = dialog_fits(page)
        assert fc2["inside"] and not fc2["sideways"]
        page.tab.click("#explain-close")
        page.tab.locator("#maps canvas.map[data-layer=conv2]").nth(2).click()
        conv2 = dialog_fits(page)
        assert conv2["inside"] and not conv2["sideways"]
        assert conv2["scrolls"] or not conv2["taller"]
    finally:
        page.tab.close()


def test_a_finger_picks_a_pixel_of_a_small_map_on_its_enlarged_copy(browser, server: str):
    page = Page(browser, server, data_path("default"), size="390x844")
    try:
        conv1 = page.tab.locator("#maps canvas.map[data-layer=conv1]").first
        conv1.scroll_into_view_if_needed()
        box = conv1.bounding_box()
        assert box["width"] / 26 < 4  # too small a pixel for a finger on the page itself
        page.tab.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        assert page.tab.is_visible("#explain")
        picker = page.tab.locator("#explain-body .picker canvas")
        big = picker.bounding_box()
        assert big["width"] / 26 >= 10  # at least 10 px a pixel
        page.tab.touchscreen.tap(
            big["x"] + 20.5 * big["width"] / 26, big["y"] + 5.5 * big["height"] / 26
        )
        target = page.state("explanation")
        assert (target["layer"], target["channel"], target["y"], target["x"]) == ("conv1", 0, 5, 20)
        page.tab.locator("#explain-body button.move[data-key=ArrowDown]").tap()
        assert (page.state("explanation")["y"], page.state("explanation")["x"]) == (6, 20)
        sizes = page.tab.locator("#explain-body button.move").evaluate_all(
            "(nodes) => nodes.map((n) => [n.offsetWidth, n.offsetHeight])"
        )
        assert len(sizes) == 4 and min(min(size) for size in sizes) >= 44
    finally:
        page.tab.close()


@pytest.mark.parametrize("width", [360, 375, 390, 414, 430])
def test_on_a_phone_nothing_overflows_sideways(browser, server: str, width: int):
    tab = browser.new_page(viewport={"width": width, "height": 800}, is_mobile=True, has_touch=True)
    try:
        tab.goto(f"{server}/demo/?data={data_path('default')}")
        tab.wait_for_function("window.demoState !== undefined")
        assert tab.evaluate("document.documentElement.scrollWidth") == width
        assert tab.evaluate("document.querySelector('h1').getBoundingClientRect().height") < 40
    finally:
        tab.close()


# ---------------------------------------------------------------------------------------------
# Honest output


def test_a_blank_pad_asks_for_a_digit(demo: Page):
    demo.draw(ONE)
    demo.tab.click("#clear")
    assert demo.state("prediction") is None
    assert demo.text("#prediction") == "–"
    assert demo.text("#confidence") == "draw a digit"
    assert demo.tab.locator("#bars .predicted").count() == 0
    assert demo.text("#announce") == "Blank pad: draw a digit."


def test_a_prediction_under_half_is_marked_unsure(demo: Page):
    demo.tab.click("#reset")
    demo.show_sample(0)
    probability = max(demo.state("probabilities"))
    assert probability < 0.5
    assert demo.state("unsure") is True
    assert demo.text("#confidence") == f"unsure: probability only {100 * probability:.1f}%"
    assert "unsure" in demo.tab.get_attribute("#output-panel", "class")
    demo.set_epoch(20)
    demo.show_sample(30)
    probability = max(demo.state("probabilities"))
    assert demo.text("#confidence") == f"probability {100 * probability:.1f}%"
    assert "unsure" not in demo.tab.get_attribute("#output-panel", "class")
    assert demo.tab.get_attribute("#announce", "aria-live") == "polite"
    assert demo.text("#announce") == (
        f"Prediction {demo.state('prediction')}, probability {100 * probability:.1f}%. "
        f"{demo.text('#verdict')}"
    )


def torch_probabilities(run: Path, image: list, epoch: int) -> np.ndarray:
    model = CNN().eval()
    model.load_state_dict(load_state_dict(run / epoch_weights_name(epoch)))
    with torch.inference_mode():
        logits = model(normalize(torch.tensor([image], dtype=torch.uint8)))
    return logits.softmax(dim=1)[0].numpy()


def test_the_page_opens_on_the_lecture_digit_and_says_it_is_a_confident_mistake(
    browser, server: str, default_run: Path, default_payload: dict
):
    page = Page(browser, server, data_path("default"), size="1280x720")
    try:
        index = default_payload["feature_map_image"]["index"]
        sample = next(s for s in default_payload["samples"] if s["index"] == index)
        assert page.state("sample")["index"] == index == 18 and sample["label"] == 3
        probabilities = torch_probabilities(default_run, sample["image"], 20)
        assert page.state("prediction") == probabilities.argmax() == 8  # the lecture's run
        assert page.state("right") is False
        assert page.text("#confidence") == f"probability {100 * probabilities[8]:.1f}%"
        assert probabilities[8] > 0.5
        assert page.text("#verdict") == (
            "Wrong: test image 18 is labelled 3. The lecture's digit, the first 3 of the test "
            "set: a confident mistake."
        )
        assert outside_viewport(page, ["#verdict", "#prediction", "#confidence"]) == []
    finally:
        page.tab.close()


def test_every_test_image_shown_says_right_or_wrong(
    demo: Page, default_run: Path, default_payload: dict
):
    for epoch in (0, 20):
        demo.set_epoch(epoch)
        expected = torch_predictions(default_run, default_payload, epoch)
        for position in (0, 18, 30, 55, 99):
            demo.show_sample(position)
            sample = default_payload["samples"][position]
            right = expected[position] == sample["label"]
            assert demo.state("right") is right
            verdict = demo.text("#verdict")
            assert verdict.startswith(
                f"{'Right' if right else 'Wrong'}: test image {sample['index']} is labelled "
                f"{sample['label']}."
            )
    demo.draw(SEVEN)
    assert demo.state("right") is None
    assert demo.text("#verdict") == (
        "A drawing has no label: only you know whether the answer is right."
    )


def test_the_page_says_probability_and_that_any_input_gets_a_digit(demo: Page):
    demo.draw(ONE)
    text = demo.tab.inner_text("body")
    assert re.search(r"\bsure\b", text) is None
    assert demo.text("#confidence").startswith(("probability ", "unsure: probability only "))
    assert demo.text(".caveat") == (
        "The network answers with one of its ten digits whatever it is shown, a scribble or a "
        "letter too: a high probability is no proof that the input is a digit."
    )
    assert demo.tab.is_visible(".caveat")


def precision3(value: float) -> str:
    """JavaScript's value.toPrecision(3) for the page's labels, with a true minus sign."""
    text = f"{value:#.3g}".rstrip(".")
    return text.replace("-", "−")


def legend(page: Page, layer: str) -> list[str]:
    return page.tab.locator(f".layer-maps.{layer} .scale").first.inner_text().split("\n")


def test_the_colour_scale_is_fixed_across_epochs_or_fitted_to_each_picture(
    demo: Page, default_payload: dict
):
    demo.show_sample(30)  # the feature-map image: its maps at every epoch are in the JSON
    stored = [entry["feature_maps"] for entry in default_payload["training_epochs"]]
    conv1 = [np.abs(maps["conv1"]).max() for maps in stored]
    pool1 = [np.abs(maps["pool1"]).max() for maps in stored]
    assert demo.tab.get_attribute("#scale", "aria-pressed") == "true"
    for epoch in (0, 20):
        demo.set_epoch(epoch)
        assert legend(demo, "conv1") == [
            "maps",
            f"−{precision3(max(conv1))}",
            f"+{precision3(max(conv1))}",
        ]
        assert legend(demo, "pool1") == ["0", f"+{precision3(max(pool1))}"]  # one-sided
    demo.tab.click("#scale")
    try:
        assert demo.tab.get_attribute("#scale", "aria-pressed") == "false"
        for epoch in (0, 20):
            demo.set_epoch(epoch)
            assert legend(demo, "conv1")[2] == f"+{precision3(conv1[epoch])}"
    finally:
        demo.tab.click("#scale")


# In the page: per layer, the largest |value| of its maps for the image shown, at the epoch shown
# and over every epoch (by js/cnn.mjs, from the JSON); and per layer, whether its canvases show
# exactly the colours of their values on the scale ending at one or the other.
MAP_SCALES = """async ([url, epoch]) => {
  const { forward } = await import("/js/cnn.mjs");
  const { scaleColour, SCALES } = await import("/demo/views.mjs");
  const data = await (await fetch(url)).json();
  const results = data.training_epochs.map((entry) => forward(entry.weights, demoState.image));
  const largest = (maps) => Math.max(...maps.flat(2).map(Math.abs));
  const layers = ["conv1", "pool1", "conv2", "pool2", "fc1"];
  const limits = {
    shown: Object.fromEntries(layers.map((layer) => [layer, largest(results[epoch][layer])])),
    every: Object.fromEntries(layers.map((layer) =>
      [layer, Math.max(...results.map((result) => largest(result[layer])))])),
  };
  const paintedOn = (layer, limit) => {
    const scale = layer.startsWith("conv") ? SCALES.twoSided : SCALES.oneSided;
    const maps = layer === "fc1" ? [[demoState.maps.fc1]] : demoState.maps[layer];
    const canvases = [...document.querySelectorAll(`.layer-maps.${layer} canvas.map`)];
    return canvases.every((canvas, i) => {
      const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
      return maps[i].flat().every((value, p) => scaleColour(value, limit, scale)
        .every((channel, c) => pixels[4 * p + c] === channel));
    });
  };
  const painted = Object.fromEntries(Object.entries(limits).map(([which, ends]) =>
    [which, Object.fromEntries(layers.map((layer) => [layer, paintedOn(layer, ends[layer])]))]));
  return { limits, painted };
}"""
LAYERS = ("conv1", "pool1", "conv2", "pool2", "fc1")


def map_scales(page: Page, epoch: int, which: str) -> tuple[dict, dict]:
    """Per layer: the end of its maps' legend, and the largest |value| of the image's maps at
    `epoch` (`which` "shown") or over every epoch ("every"), asserting that its canvases show the
    maps' values in exactly the colours of that scale."""
    ends = {
        layer: page.tab.locator(f".layer-maps.{layer} .scale .high").first.inner_text()
        for layer in LAYERS
    }
    found = page.tab.evaluate(MAP_SCALES, [f"/data/default/{JSON_NAME}", epoch])
    assert found["painted"][which] == dict.fromkeys(LAYERS, True)
    return ends, found["limits"]


def test_a_drawings_maps_are_on_the_epoch_shown_while_drawn_then_on_every_epoch(demo: Page):
    """While a stroke is drawn, the maps are on the scale of the epoch shown (the rest of the
    fixed scale, a forward pass per epoch, would cost a slow phone every frame), and the legends
    give its ends; once the stroke ends, they settle on the scale over every epoch, as a test
    image's, and the legends say so."""
    assert demo.tab.get_attribute("#scale", "aria-pressed") == "true"
    demo.set_epoch(4)
    demo.tab.click("#clear")
    box = demo.tab.locator("#pad").bounding_box()
    scale = box["width"] / 280
    [stroke] = SEVEN
    demo.tab.mouse.move(box["x"] + stroke[0][0] * scale, box["y"] + stroke[0][1] * scale)
    demo.tab.mouse.down()
    for x, y in stroke[1:]:
        demo.tab.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=4)
    demo.tab.wait_for_timeout(300)  # every frame of the stroke drawn, and any task after them
    try:
        assert demo.state("scaleComplete") is False
        ends, limits = map_scales(demo, 4, "shown")
        assert ends == {layer: f"+{precision3(limit)}" for layer, limit in limits["shown"].items()}
        assert limits["shown"] != limits["every"]  # epoch 4's maps are not the largest
    finally:
        demo.tab.mouse.up()
    demo.tab.wait_for_function("window.demoState.scaleComplete")
    ends, limits = map_scales(demo, 4, "every")
    assert ends == {layer: f"+{precision3(limit)}" for layer, limit in limits["every"].items()}


def test_every_text_has_at_least_4_5_to_1_contrast(demo: Page):
    demo.show_sample(30)
    pairs = demo.tab.evaluate(
        """() => {
          const background = (node) => {
            for (; node; node = node.parentElement) {
              const colour = getComputedStyle(node).backgroundColor;
              if (colour !== "rgba(0, 0, 0, 0)") return colour;
            }
            return "rgb(255, 255, 255)";
          };
          const texts = [...document.querySelectorAll("body *")].filter((node) =>
            node.checkVisibility() && node.id !== "announce" &&
            [...node.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim()));
          const bars = [...document.querySelectorAll(".bar-row .bar")].map((bar) =>
            ["bar", getComputedStyle(bar).backgroundColor, background(bar.parentElement)]);
          return [...texts.map((node) =>
            [node.textContent.trim().slice(0, 30), getComputedStyle(node).color,
             background(node)]), ...bars];
        }"""
    )
    assert len(pairs) > 40

    def hex_of(css: str) -> str:
        r, g, b = (int(float(v)) for v in css[css.index("(") + 1 : -1].split(",")[:3])
        return f"#{r:02x}{g:02x}{b:02x}"

    low = [(text, fg, bg) for text, fg, bg in pairs if contrast(hex_of(fg), hex_of(bg)) < 4.5]
    assert low == []


def test_the_last_epoch_keeps_the_keyboard_focus(demo: Page):
    demo.set_epoch(19)
    demo.tab.focus("#train")
    demo.tab.keyboard.press("Enter")
    assert demo.state("epoch") == 20
    assert demo.tab.is_disabled("#train")
    assert demo.tab.evaluate("document.activeElement.id") == "epoch"


def test_the_keyboard_focus_on_a_map_is_visible(demo: Page):
    demo.tab.focus("#scale")
    demo.tab.keyboard.press("Tab")
    outline = demo.tab.evaluate(
        """() => { const node = document.activeElement, style = getComputedStyle(node);
          return [node.dataset.layer, style.outlineStyle, style.outlineWidth,
                  style.outlineColor]; }"""
    )
    assert outline == ["conv1", "solid", "3px", "rgb(26, 95, 180)"]


def test_the_epoch_slider_is_two_keys_from_the_top_of_the_page(browser, server: str):
    page = Page(browser, server, data_path("default"), size="1280x720")
    try:
        page.tab.keyboard.press("Tab")
        assert page.tab.evaluate("document.activeElement.id") == "skip"
        assert outside_viewport(page, ["#skip"]) == []
        assert page.text("#skip") == "skip to the epoch slider"
        page.tab.keyboard.press("Enter")
        assert page.tab.evaluate("document.activeElement.id") == "epoch"
        page.tab.keyboard.press("ArrowLeft")
        assert page.state("epoch") == 19
    finally:
        page.tab.close()


def test_every_map_has_a_text_alternative(demo: Page):
    demo.show_sample(30)
    labels = demo.tab.locator("#maps canvas.map").evaluate_all(
        "(nodes) => nodes.map((node) => node.getAttribute('aria-label'))"
    )
    maps = demo.state("maps")
    assert len(labels) == 25
    conv1 = np.asarray(maps["conv1"][0])
    assert labels[0] == (
        f"conv1 map 1 of 4, 26×26, values {precision3(conv1.min())} to {precision3(conv1.max())}; "
        "Enter explains the selected pixel, arrow keys move it"
    )
    active = int((np.asarray(maps["fc1"]) > 0).sum())
    assert labels[-1].startswith(f"fc1: 128 units after ReLU, {active} active, ")


# ---------------------------------------------------------------------------------------------
# The arithmetic behind each pixel, against PyTorch


def torch_activations(run: Path, image: list, epoch: int) -> tuple[dict, dict]:
    """PyTorch's activations of one image at `epoch` (float64), and that epoch's weights."""
    model = CNN().double().eval()
    model.load_state_dict(load_state_dict(run / epoch_weights_name(epoch)))
    pixels = normalize(torch.tensor([image], dtype=torch.uint8)).double()
    with torch.inference_mode():
        activations = {name: value[0].numpy() for name, value in model.activations(pixels).items()}
    activations["input"] = pixels[0].numpy()
    return activations, {name: value.double().numpy() for name, value in model.state_dict().items()}


def click_pixel(page: Page, layer: str, channel: int, y: int, x: int) -> dict:
    canvas = page.tab.locator(f"#maps canvas.map[data-layer={layer}]").nth(channel)
    size = canvas.evaluate("(node) => [node.height, node.width]")
    box = canvas.bounding_box()
    position = {"x": (x + 0.5) * box["width"] / size[1], "y": (y + 0.5) * box["height"] / size[0]}
    canvas.click(position=position)
    assert page.tab.is_visible("#explain")
    return page.state("explanation")


def close_enough(shown, expected, tolerance: float = TOLERANCE) -> bool:
    expected = np.asarray(expected, dtype=float)
    scale = max(1.0, float(np.abs(expected).max()))
    return np.asarray(shown).shape == expected.shape and bool(
        np.abs(np.asarray(shown) - expected).max() <= tolerance * scale
    )


THOUSANDTH = Decimal("0.001")


def on_paper(value: float | Decimal) -> Decimal:
    """`value` rounded to 3 decimals as on paper (halves away from zero), as the dialog prints."""
    exact = value if isinstance(value, Decimal) else Decimal(float(value))
    return exact.quantize(THOUSANDTH, rounding=ROUND_HALF_UP)


def printed(page: Page, selector: str) -> list[Decimal]:
    """The numbers the dialog prints in `selector`, exactly as printed."""
    texts = page.tab.locator(f"#explain-body {selector}").all_inner_texts()
    return [Decimal(text.strip().replace("−", "-")) for text in texts]


def unrounded(page: Page) -> float:
    """The value js/cnn.mjs computed, as the dialog's last line prints it."""
    line = page.text("#explain-body .unrounded")
    return float(re.search(r"(−?[0-9.]+)\.$", line).group(1).replace("−", "-"))


def test_a_clicked_conv_pixel_shows_window_times_kernel_plus_bias_as_pytorch(
    demo: Page, default_run: Path, default_payload: dict
):
    demo.show_sample(30)
    for epoch in (0, 5, 20):
        demo.set_epoch(epoch)
        torch_maps, weights = torch_activations(
            default_run, default_payload["samples"][30]["image"], epoch
        )
        for layer, channel, y, x in [
            ("conv1", 0, 10, 12),
            ("conv1", 3, 20, 5),
            ("conv2", 2, 4, 6),
            ("conv2", 7, 0, 10),
        ]:
            shown = click_pixel(demo, layer, channel, y, x)
            assert (shown["layer"], shown["channel"], shown["y"], shown["x"]) == (
                layer,
                channel,
                y,
                x,
            )
            source = torch_maps["input" if layer == "conv1" else "pool1"]
            windows = source[:, y : y + 3, x : x + 3]
            kernel = weights[f"{layer}.weight"][channel]
            assert close_enough([t["window"] for t in shown["terms"]], windows)
            assert close_enough([t["kernel"] for t in shown["terms"]], kernel)
            assert close_enough([t["products"] for t in shown["terms"]], windows * kernel)
            assert close_enough(shown["bias"], weights[f"{layer}.bias"][channel])
            expected = torch_maps[layer][channel, y, x]
            assert close_enough(shown["total"], expected) and shown["total"] == shown["computed"]
            assert demo.text("#explain-title") == (
                f"{layer} map {channel + 1}, row {y + 1}, column {x + 1}, epoch {epoch}"
            )
            assert_conv_dialog_adds_up(demo, shown)
            assert unrounded(demo) == pytest.approx(expected, abs=1e-5)
            demo.tab.click("#explain-close")


def assert_conv_dialog_adds_up(page: Page, shown: dict) -> None:
    """The printed window and kernel are the page's numbers (PyTorch's, as checked), rounded;
    each printed product is the product of the printed factors, rounded; each sum and the total
    add up as printed."""
    window = printed(page, "table[data-role=window] td")
    weight = printed(page, "table[data-role=kernel] td")
    assert window == [on_paper(v) for t in shown["terms"] for v in np.ravel(t["window"])]
    assert weight == [on_paper(v) for t in shown["terms"] for v in np.ravel(t["kernel"])]
    products = printed(page, "table[data-role=products] td")
    assert products == [on_paper(w * k) for w, k in zip(window, weight, strict=True)]
    sums = printed(page, ".term .sum")
    assert sums == [sum(products[i : i + 9]) for i in range(0, len(products), 9)]
    addends = printed(page, ".result .addend")
    assert addends == [*sums, on_paper(shown["bias"])]
    assert printed(page, ".result .total") == [sum(addends)]


def test_a_clicked_pool_pixel_shows_its_2x2_window_and_the_max_as_pytorch(
    demo: Page, default_run: Path, default_payload: dict
):
    demo.show_sample(30)
    for epoch in (0, 20):
        demo.set_epoch(epoch)
        torch_maps, _ = torch_activations(
            default_run, default_payload["samples"][30]["image"], epoch
        )
        for layer, channel, y, x in [("pool1", 1, 6, 7), ("pool2", 5, 2, 3)]:
            shown = click_pixel(demo, layer, channel, y, x)
            source = torch_maps["conv1" if layer == "pool1" else "conv2"][channel]
            window = source[2 * y : 2 * y + 2, 2 * x : 2 * x + 2]
            assert close_enough(shown["window"], window)
            assert close_enough(shown["rectified"], np.maximum(window, 0))
            assert close_enough(shown["max"], torch_maps[layer][channel, y, x])
            values = printed(demo, "table[data-role=window] td")
            assert values == [on_paper(v) for v in np.ravel(shown["window"])]
            rectified = [max(v, Decimal("0.000")) for v in values]
            assert printed(demo, "table[data-role=relu] td") == rectified
            assert printed(demo, ".result .total") == [max(rectified)]
            demo.tab.click("#explain-close")


def test_a_clicked_bar_shows_the_top_fc1_contributions_as_pytorch(
    demo: Page, default_run: Path, default_payload: dict
):
    demo.show_sample(30)
    demo.set_epoch(20)
    torch_maps, weights = torch_activations(
        default_run, default_payload["samples"][30]["image"], 20
    )
    for digit in (3, 8):
        demo.tab.locator("#bars button").nth(digit).click()
        shown = demo.state("explanation")
        contributions = torch_maps["fc1"] * weights["fc2.weight"][digit]
        top = np.argsort(-np.abs(contributions))[:8]
        assert [entry["unit"] for entry in shown["top"]] == top.tolist()
        assert close_enough([entry["product"] for entry in shown["top"]], contributions[top])
        assert close_enough(shown["total"], torch_maps["logits"][digit])
        assert demo.text("#explain-title") == f"fc2: the score of digit {digit}, epoch 20"
        # fc1's units numbered from 1, as maps, rows and columns are.
        rows = demo.tab.locator("#explain-body table.contributions tbody tr").all_inner_texts()
        cells = [row.split("\t") for row in rows]
        assert [int(cell[0]) for cell in cells] == (top + 1).tolist()
        activation, weight, product = (
            [Decimal(cell[i].strip().replace("−", "-")) for cell in cells] for i in (1, 2, 3)
        )
        assert activation == [on_paper(entry["activation"]) for entry in shown["top"]]
        assert weight == [on_paper(entry["weight"]) for entry in shown["top"]]
        assert product == [on_paper(a * w) for a, w in zip(activation, weight, strict=True)]
        assert close_enough(shown["rest"], np.delete(contributions, top).sum())
        addends = printed(demo, ".result .addend")
        assert addends == [sum(product), on_paper(shown["rest"]), on_paper(shown["bias"])]
        assert printed(demo, ".result .total") == [sum(addends)]
        assert unrounded(demo) == pytest.approx(torch_maps["logits"][digit], abs=1e-5)
        demo.tab.click("#explain-close")


def test_the_keyboard_opens_a_maps_strongest_pixel_and_moves_it(demo: Page):
    demo.show_sample(30)
    demo.set_epoch(20)
    demo.tab.focus("#maps canvas.map[data-layer=conv2] >> nth=1")
    demo.tab.keyboard.press("Enter")
    shown = demo.state("explanation")
    conv2 = np.abs(np.asarray(demo.state("maps")["conv2"][1]))
    assert (shown["y"], shown["x"]) == np.unravel_index(conv2.argmax(), conv2.shape)
    demo.tab.keyboard.press("ArrowUp" if shown["y"] > 0 else "ArrowDown")
    moved = demo.state("explanation")
    assert abs(moved["y"] - shown["y"]) == 1 and moved["x"] == shown["x"]
    demo.tab.keyboard.press("Escape")
    assert not demo.tab.is_visible("#explain")


def test_the_kernels_are_drawn_beside_their_maps(demo: Page, default_payload: dict):
    demo.set_epoch(20)
    sizes = demo.tab.locator("#maps canvas.kernel").evaluate_all(
        "(nodes) => nodes.map((node) => [node.dataset.layer ?? '', node.width, node.height])"
    )
    assert [size[1:] for size in sizes] == [[3, 3]] * 4 + [[3, 15]] * 8
    # conv2's kernel 0, slice 1, top-left weight: at row 4 of its canvas, in the scale's colour.
    colour, expected = demo.tab.evaluate(
        """async () => {
          const views = await import("/demo/views.mjs");
          const canvas = document.querySelectorAll(".conv2 canvas.kernel")[0];
          const pixel = [...canvas.getContext("2d").getImageData(0, 4, 1, 1).data.slice(0, 3)];
          const limit = Number(document.querySelectorAll(".conv2 .scale")[1]
            .querySelector(".high").textContent);
          return [pixel, limit];
        }"""
    )
    weights = [entry["weights"]["conv2"]["weight"] for entry in default_payload["training_epochs"]]
    limit = max(np.abs(np.asarray(w)).max() for w in weights)
    assert expected == pytest.approx(float(precision3(limit)))
    weight = default_payload["training_epochs"][20]["weights"]["conv2"]["weight"][0][1][0][0]
    expected_colour = demo.tab.evaluate(
        "async ([w, l]) => (await import('/demo/views.mjs')).scaleColour(w, l, "
        "(await import('/demo/views.mjs')).SCALES.twoSided)",
        [weight, limit],
    )
    assert colour == expected_colour


def test_the_gallery_shows_each_epochs_most_confident_mistakes_of_the_whole_test_set(
    demo: Page, default_run: Path, default_payload: dict, mnist: Mnist
):
    for epoch in (0, 8, 20):
        demo.set_epoch(epoch)
        stored = default_payload["training_epochs"][epoch]["mistakes"]
        demo.tab.click("#mistakes")
        mistakes = demo.state("mistakes")
        assert mistakes == stored
        assert demo.tab.locator("#explain-body .mistake").count() == len(stored) >= 10
        assert demo.text("#explain-title") == (
            f"Epoch {epoch}: its {len(stored)} most confident mistakes on the whole test set"
        )
        first = stored[0]
        assert demo.tab.locator("#explain-body .mistake").first.inner_text().split("\n") == [
            f"{first['label']} seen as {first['prediction']}, probability "
            f"{100 * first['probability']:.1f}%",
            f"test image {first['index']}",
        ]
        # Each is PyTorch's mistake on that test image, the most confident first.
        image = mnist.test_pixels[first["index"]].tolist()
        probabilities = torch_probabilities(default_run, image, epoch)
        assert probabilities.argmax() == first["prediction"] != mnist.test_labels[first["index"]]
        assert [m["probability"] for m in stored] == sorted(
            (m["probability"] for m in stored), reverse=True
        )
        demo.tab.locator("#explain-body .mistake").first.click()
        assert not demo.tab.is_visible("#explain")
        assert demo.state("sample")["index"] == first["index"]
        assert demo.state("image") == image
        assert demo.state("prediction") == first["prediction"]
        assert demo.text("#verdict").startswith(f"Wrong: test image {first['index']} is labelled")


# ---------------------------------------------------------------------------------------------
# make demo


def fetch(url: str) -> tuple[int, bytes]:
    """The status and body of a GET (an HTTP error's status, with an empty body)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_server_serves_the_page_its_modules_and_the_data_only(server: str, data_folders):
    status, page = fetch(f"{server}/demo/")
    assert status == 200 and b'<script type="module" src="main.mjs"></script>' in page
    status, body = fetch(f"{server}/data/short/{JSON_NAME}")
    assert status == 200 and body == (data_folders["short"] / JSON_NAME).read_bytes()
    assert fetch(f"{server}/js/cnn.mjs")[1] == (REPO_DIR / "js" / "cnn.mjs").read_bytes()
    for path in (
        "/.git/HEAD",
        "/.venv/pyvenv.cfg",
        "/notebooks/run.py",
        "/README.md",
        "/demo/serve.py",
        "/demo/screenshot.png",
        "/demo/../README.md",
        "/demo/%2e%2e/README.md",
        "/js/../cnnlib/schema.json",
        "/data/short/manifest.json",
        "/data/short/epoch_weights/epoch_0_weights.pth",
        f"/data/elsewhere/{JSON_NAME}",
        "/cnnlib/",
    ):
        assert fetch(f"{server}{path}")[0] == 404, path


def test_the_server_follows_no_link_out_of_its_folders(tmp_path: Path):
    """A link in demo/ or in a data folder to a file outside it is not followed."""
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the class")
    repo = tmp_path / "repo"
    (repo / "demo").mkdir(parents=True)
    (repo / "js").mkdir()
    (repo / "demo" / "index.html").write_text("<p>page</p>")
    (repo / "demo" / "leak.html").symlink_to(secret)
    inner, outer = tmp_path / "inner", tmp_path / "outer"
    (inner / ".set").mkdir(parents=True)
    (inner / ".set" / JSON_NAME).write_text("{}")
    (inner / JSON_NAME).symlink_to(Path(".set") / JSON_NAME)  # as data/ links its current set
    outer.mkdir()
    (outer / JSON_NAME).symlink_to(secret)
    httpd, base = serve.serve_in_thread(serve.Site(repo, {"": inner, "outer": outer}))
    try:
        assert fetch(f"{base}/demo/index.html") == (200, b"<p>page</p>")
        assert fetch(f"{base}/data/{JSON_NAME}") == (200, b"{}")
        assert fetch(f"{base}/demo/leak.html")[0] == 404
        assert fetch(f"{base}/data/outer/{JSON_NAME}")[0] == 404
    finally:
        httpd.shutdown()
        httpd.server_close()


def start_make_demo(*variables: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["make", "--no-print-directory", "demo", *variables],
        cwd=REPO_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, ended with the server in it
    )


def test_make_demo_serves_the_page_on_loopback_and_prints_the_url():
    port = free_port()
    make = start_make_demo(f"PORT={port}")
    try:
        url = f"http://127.0.0.1:{port}/demo/"
        assert make.stdout.readline() == f"The demo: open {url} (Ctrl-C stops the server)\n"
        status, page = fetch(url)
        assert status == 200 and b'<script type="module" src="main.mjs"></script>' in page
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/js/cnn.mjs", timeout=5) as response:
            assert "javascript" in response.headers["Content-Type"]
        assert fetch(f"http://127.0.0.1:{port}/.git/HEAD")[0] == 404
        assert fetch(f"http://127.0.0.1:{port}/")[1] == page  # / leads to the page
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        make.wait(timeout=30)


def test_make_demo_on_a_taken_port_says_so_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        make = start_make_demo(f"PORT={port}")
        output, _ = make.communicate(timeout=60)
    assert make.returncode != 0
    assert output.splitlines()[0] == (
        f"serve.py: port {port} is already in use (another `make demo`?); choose another, "
        f"e.g. make demo PORT={port + 1}"
    )
    assert "Traceback" not in output and "http://" not in output


def test_serving_a_class_prints_the_url_for_the_students_and_what_is_shared():
    lines = serve.announce("0.0.0.0", 8123).splitlines()
    address = serve.network_address()
    assert lines[0] == (
        f"The demo: give the students http://{address}:8123/demo/ "
        "(here: http://127.0.0.1:8123/demo/); Ctrl-C stops the server."
    )
    assert lines[1].startswith("Shared with everyone on this network: the page, js/ and data/")
    assert serve.announce("127.0.0.1", 8123) == (
        "The demo: open http://127.0.0.1:8123/demo/ (Ctrl-C stops the server)"
    )


# ---------------------------------------------------------------------------------------------
# demo/load.mjs and demo/mnist.mjs under Node.js


def run_demo_module(node: str, name: str, script: str) -> object:
    """Run an ES-module snippet that imports demo/NAME.mjs as NAME; return its JSON output."""
    return run_es_module(node, REPO_DIR / "demo" / f"{name}.mjs", name, script)


def test_an_mnist_digit_enlarged_tenfold_comes_back_pixel_for_pixel(
    node: str, default_run: Path, default_payload: dict
):
    """MNIST's own digits already fit 20x20 and are centred: preprocessing them changes nothing."""
    script = f"""
import {{ readFileSync }} from "node:fs";
const data = JSON.parse(readFileSync({str(default_run / JSON_NAME)!r}, "utf8"));
const enlarged = (image) => {{
  const ink = new Uint8ClampedArray(280 * 280);
  ink.forEach((_, i) => (ink[i] = image[Math.floor(i / 2800)][Math.floor((i % 280) / 10)]));
  return {{ width: 280, height: 280, ink }};
}};
console.log(JSON.stringify(data.samples.map((sample) => mnist.mnistDigit(enlarged(sample.image)))));
"""
    digits = run_demo_module(node, "mnist", script)
    assert digits == [sample["image"] for sample in default_payload["samples"]]


def test_a_drawing_is_scaled_to_20_pixels_and_centred_by_its_mass(node: str):
    script = """
const block = (left, top, width, height) => {
  const ink = new Uint8ClampedArray(280 * 280);
  for (let y = top; y < top + height; y++) ink.fill(255, y * 280 + left, y * 280 + left + width);
  return { width: 280, height: 280, ink };
};
const blank = { width: 280, height: 280, ink: new Uint8ClampedArray(280 * 280) };
console.log(JSON.stringify({
  bar: mnist.mnistDigit(block(100, 30, 40, 200)),
  moved: mnist.mnistDigit(block(0, 80, 40, 200)),
  wide: mnist.mnistDigit(block(10, 10, 250, 50)),
  blank: mnist.mnistDigit(blank),
}));
"""
    digits = {
        name: np.asarray(image) for name, image in run_demo_module(node, "mnist", script).items()
    }
    bar = digits["bar"]
    rows, columns = np.nonzero(bar)
    assert bar.shape == (28, 28)
    # 20x4 pixels; its centre of mass, at (1.5, 9.5), moves by 12.5 and 4.5, rounded up.
    assert (rows.min(), rows.max(), columns.min(), columns.max()) == (5, 24, 13, 16)
    assert set(bar[bar > 0].tolist()) == {255}
    assert np.array_equal(digits["moved"], bar)  # where it is drawn does not matter
    rows, columns = np.nonzero(digits["wide"])
    assert (rows.min(), rows.max(), columns.min(), columns.max()) == (13, 16, 5, 24)
    assert not digits["blank"].any()


def test_both_colour_scales_grow_lighter_with_the_value_so_greyscale_keeps_the_sign(node: str):
    """On a projector without colour, negative (darker than zero's grey) and positive (lighter)
    stay apart, and so do any two values."""
    script = """
const lightness = ([r, g, b]) => 0.2126 * r + 0.7152 * g + 0.0722 * b;
const run = (scale, low) => Array.from({ length: 41 }, (_, i) =>
  lightness(views.scaleColour(low + ((1 - low) * i) / 40, 1, scale)));
console.log(JSON.stringify({
  two: run(views.SCALES.twoSided, -1),
  one: run(views.SCALES.oneSided, 0),
  lines: Object.values(views.LINES).map((line) => line.colour),
}));
"""
    result = run_demo_module(node, "views", script)
    for name in ("two", "one"):
        steps = np.diff(result[name])
        assert (steps > 1.5).all(), name  # strictly lighter, by a visible step
    two = np.asarray(result["two"])
    assert (
        two[:20].max() < two[20] < two[21:].min()
    )  # every negative darker than 0, positive lighter
    for colour in result["lines"]:
        assert contrast(colour, "#ffffff") >= 4.5, colour


def js_round(x: float) -> int:
    """JavaScript's Math.round: to the nearest integer, halves up."""
    low = math.floor(x)
    return low + 1 if x - low >= 0.5 else low


def scale_colour(value: float, limit: float, stops) -> list[int]:
    """The colour of `value` on a scale of `stops` reaching its ends at ±limit, as the page has
    always computed it: interpolated between the two stops around value / limit, then rounded."""
    low = stops[0][0]
    t = max(low, min(1, value / limit)) if limit > 0 else 0
    upper = next(i for i, (stop, _) in enumerate(stops) if stop >= t)
    if upper == 0:
        return list(stops[0][1])
    (t0, c0), (t1, c1) = stops[upper - 1], stops[upper]
    f = (t - t0) / (t1 - t0)
    return [js_round(a + (b - a) * f) for a, b in zip(c0, c1, strict=True)]


def test_every_map_and_kernel_value_is_painted_in_its_scales_exact_colour(
    node: str, default_run: Path, default_payload: dict
):
    """paintMap writes pixels without the per-pixel colour arrays it once made: for every weight
    of every kernel and every value of the JSON's maps, at every epoch, the colour is still the
    scale's, to the unit; a row that is null (between stacked kernels) stays transparent."""
    script = f"""
import {{ readFileSync }} from "node:fs";
const data = JSON.parse(readFileSync({str(default_run / JSON_NAME)!r}, "utf8"));
const {{ twoSided, oneSided }} = views.SCALES;
// A canvas with what paintMap needs: it keeps the pixels put on it.
const painted = (rows, limit, scale) => {{
  let pixels = null;
  const context = {{
    createImageData: (width, height) => ({{ data: new Uint8ClampedArray(4 * width * height) }}),
    putImageData: (image) => (pixels = Array.from(image.data)),
  }};
  views.paintMap({{ width: 0, height: 0, getContext: () => context }}, rows, limit, scale);
  return {{ rows, limit, two: scale === twoSided, pixels }};
}};
const paintings = [];
for (const name of ["conv1", "conv2"]) {{
  // The kernels' scale as the page has it: the largest |weight| over every epoch.
  const kernels = data.training_epochs.map((entry) => entry.weights[name].weight);
  const limit = views.largestMagnitude(kernels);
  for (const kernel of kernels.flat(1)) {{
    paintings.push(painted([...kernel.flat(1), null, kernel[0][0]], limit, twoSided));
  }}
}}
for (const entry of data.training_epochs) {{
  for (const [name, maps] of Object.entries(entry.feature_maps)) {{
    for (const rows of name === "fc1" ? [[maps]] : maps) {{
      const limit = views.largestMagnitude(rows) / 2; // half: the values past it are clamped
      paintings.push(painted(rows, limit, name.startsWith("conv") ? twoSided : oneSided));
    }}
  }}
}}
console.log(JSON.stringify(paintings));
"""
    paintings = run_demo_module(node, "views", script)
    assert len(paintings) == len(default_payload["training_epochs"]) * (4 + 8 + 4 + 4 + 8 + 8 + 1)
    for painting in paintings:
        stops = style.SIGNED_STOPS if painting["two"] else style.POSITIVE_STOPS
        expected = []
        for row in painting["rows"]:
            for value in row or [None] * 3:
                transparent = value is None
                colour = [0, 0, 0] if transparent else scale_colour(value, painting["limit"], stops)
                expected += [*colour, 0 if transparent else 255]
        assert painting["pixels"] == expected


def test_the_notebooks_draw_maps_on_the_demos_colour_scales(node: str):
    """One colour convention for the lecture: the notebooks' two colour maps are the page's."""
    result = run_demo_module(node, "views", "console.log(JSON.stringify(views.SCALES));")
    python = {"twoSided": style.SIGNED_STOPS, "oneSided": style.POSITIVE_STOPS}
    for name, stops in python.items():
        assert [[t, list(rgb)] for t, rgb in stops] == result[name], name


def relative_luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    """WCAG's contrast ratio of two colours #rrggbb."""
    high, low = sorted((relative_luminance(one), relative_luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)
