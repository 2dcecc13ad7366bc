"""The demo page (demo/) in a real Chromium driven by Playwright, served from 127.0.0.1.

Where Chromium or Playwright is absent the browser tests skip, except in CI (the CI variable
set): there they fail. demo/mnist.mjs (the drawing's preprocessing) and demo/load.mjs (the check
of the JSON's keys) also run under Node.js. Each test on the shared page leaves a screenshot of it
in pytest's temporary folder (`/tmp/pytest-of-$USER/pytest-current/demo-screenshots0/`), to look
at when one fails.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlib.browser import CHROMIUM, launch_chromium
from cnnlib.data import REPO_DIR, normalize
from cnnlib.export import JSON_NAME, epoch_weights_name, load_state_dict
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


def browsers_must_run() -> bool:
    return bool(os.environ.get("CI"))


serve = load_script(REPO_DIR / "demo" / "serve.py", "demo_serve")


# ---------------------------------------------------------------------------------------------
# The runs the page loads, the server that serves them, the browser


@pytest.fixture(scope="session")
def data_folders(tmp_path_factory: pytest.TempPathFactory, short_run: Path, default_run: Path):
    """The data the server offers under /data/NAME/: both runs, and damaged copies of the short
    one, each in a folder of its own."""
    damaged = tmp_path_factory.mktemp("damaged")
    text = (short_run / JSON_NAME).read_text()
    folders = {"default": default_run, "short": short_run}

    def add(name: str, content: str) -> None:
        folders[name] = damaged / name
        folders[name].mkdir()
        (folders[name] / JSON_NAME).write_text(content)

    add("truncated", text[:5000])
    payload = json.loads(text)
    del payload["training_epochs"][1]["weights"]["fc2"]
    add("no_fc2", json.dumps(payload))
    payload = json.loads(text)
    del payload["architecture"]
    add("no_architecture", json.dumps(payload))
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


@pytest.fixture(scope="session")
def browser():
    """One headless Debian Chromium for the session."""
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "Playwright is not installed (pip install playwright)"
    if problem is None and not CHROMIUM.exists():
        problem = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    if problem is not None:
        if browsers_must_run():
            pytest.fail(f"{problem}; CI must run the browser tests")
        pytest.skip(problem)
    playwright = sync_playwright().start()
    chromium = launch_chromium(playwright)
    yield chromium
    chromium.close()
    playwright.stop()


class Page:
    """A browser tab on demo/ with `?data=data`, recording console errors, failed requests and
    any request to another server than `server`."""

    def __init__(self, browser, server: str, data: str, has_touch: bool = False):
        self.server = server
        self.tab = browser.new_page(viewport=VIEWPORT, has_touch=has_touch)
        self.problems: list[str] = []
        self.tab.on("console", self.on_console)
        self.tab.on("pageerror", lambda error: self.problems.append(str(error)))
        self.tab.on("requestfailed", lambda request: self.problems.append(request.url))
        self.tab.on("response", self.on_response)
        self.tab.on("request", self.on_request)
        self.tab.goto(f"{server}/demo/?data={data}")
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
    """After each test that used the shared page, a screenshot of it, for a failure to be seen."""
    yield
    if "demo" in request.fixturenames:
        folder = tmp_path_factory.getbasetemp() / "demo-screenshots0"
        folder.mkdir(exist_ok=True)
        request.getfixturevalue("demo").tab.screenshot(
            path=folder / f"{request.node.name}.png", full_page=True
        )


@pytest.fixture(scope="session")
def default_payload(default_run: Path) -> dict:
    return json.loads((default_run / JSON_NAME).read_text())


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
    ("data", "message"),
    [
        (
            data_path("nowhere"),
            f"data/nowhere/{JSON_NAME} is missing: run `make data` first.",
        ),
        (
            data_path("truncated"),
            f"data/truncated/{JSON_NAME} is not valid JSON (",
        ),
        (
            data_path("no_fc2"),
            f"data/no_fc2/{JSON_NAME} has no key `training_epochs[1].weights.fc2`, which the "
            "demo needs: run `make data` to write it again.",
        ),
        (
            data_path("no_architecture"),
            f"data/no_architecture/{JSON_NAME} has no key `architecture`, which the demo needs",
        ),
    ],
)
def test_bad_data_shows_a_message_naming_the_problem(browser, server: str, data, message):
    page = Page(browser, server, data)
    try:
        assert page.state("status") == "error"
        assert page.tab.is_visible("#error")
        assert not page.tab.is_visible("#demo")
        assert page.state("error").startswith(message)
        assert page.text("#error") == page.state("error").replace("`", "")  # `code` as code
    finally:
        page.tab.close()


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
    canvases = demo.tab.locator("#maps canvas").count()
    assert canvases == 4 + 4 + 8 + 8 + 1


# ---------------------------------------------------------------------------------------------
# The epoch control


def metrics_text(entry: dict) -> str:
    return (
        f"training loss {entry['loss']:.3f}\n"
        f"train accuracy {entry['train_accuracy']:.1f}%\n"
        f"test accuracy {entry['test_accuracy']:.1f}%"
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
    assert demo.text("#input-caption") == "your drawing"
    image = np.asarray(demo.state("image"))
    assert image.shape == (28, 28) and image.max() > 200
    assert int(demo.text("#prediction")) == digit
    assert demo.problems == []


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


def test_the_contract_check_names_the_first_key_that_does_not_fit(node: str):
    script = """
const problem = (value, template) => load.contractProblem(value, template);
console.log(JSON.stringify([
  problem({ a: [{ b: 1 }, { b: 2 }] }, { a: [{ b: null }] }),
  problem({ a: [{ b: 1 }, { c: 2 }] }, { a: [{ b: null }] }),
  problem({ a: { b: 1 } }, { a: [{ b: null }] }),
  problem({ a: [3] }, { a: [{ b: null }] }),
  problem({ samples: [] }, load.CONTRACT),
]));
"""
    assert run_demo_module(node, "load", script) == [
        None,
        "has no key `a[1].b`",
        "has `a` that is not a list",
        "has `a[0]` that is not an object",
        "has no key `training_epochs`",
    ]
