"""One check of the JSON, three readers: `node js/check.mjs`, the demo page (both through
js/validate.mjs) and cnnlib's `verify` give the same answer for damaged files; the JSON's shapes
have one source, the model, whose `architecture` the JSON carries (verify checks it) and the
JavaScript derives every shape from ("hidden units 64" in tests/test_js.py shows it). And the
mistakes gallery's data: each epoch's most confident mistakes on the whole test set.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from cnnlib.data import REPO_DIR, normalize
from cnnlib.export import (
    JSON_NAME,
    MANIFEST_NAME,
    MAX_MISTAKES,
    architecture,
    epoch_weights_name,
    load_schema,
    load_state_dict,
)
from cnnlib.model import ACTIVATION_NAMES, CNN
from cnnlib.verify import verify
from tests.test_js import DAMAGED

# The damaged files all three must refuse: the ones issue 25 names, and the mistakes' data.
CORPUS = [
    "truncated",
    "BOM",
    "UTF-16LE",
    "Latin-1",
    "1e400 in metadata",
    "1e308 weight",
    "output_shape a string",
    "output_shape a number",
    "output_shape forged",
    "hidden units 64",
    "fractions",
    "loss 1e308",
    "negative loss",
    "accuracy 150",
    "epochs reversed",
    "epoch gone",
    "repeated key, escaped",
    "5,000 samples",
    "deep nesting",
    "a list, not an object",
    "old schema",
    "own label",
    "probability changed",
    "mistake of an image not held",
    "mistake_samples extra",
]


@pytest.fixture(scope="module")
def payload(short_run: Path) -> dict:
    return json.loads((short_run / JSON_NAME).read_text())


def content_of(name: str, payload: dict) -> bytes:
    """The damaged file `name` of tests/test_js.py's DAMAGED, as bytes; "intact": the file."""
    made = json.dumps(payload) if name == "intact" else DAMAGED[name][0](payload)
    return made if isinstance(made, bytes) else made.encode()


def set_with_json(short_run: Path, folder: Path, content: bytes) -> Path:
    """A copy of the short run whose JSON is `content`, listed in its manifest with its size and
    sha-256: only the JSON's content can be at fault."""
    out = Path(shutil.copytree(short_run, folder, symlinks=True))
    (out / JSON_NAME).write_bytes(content)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    manifest["files"][JSON_NAME] = {
        "bytes": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    return out


def check_mjs(node: str, path: Path) -> subprocess.CompletedProcess:
    command = [node, str(REPO_DIR / "js" / "check.mjs"), str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name", ["intact", *CORPUS])
def test_check_mjs_and_verify_both_accept_or_both_refuse(
    node: str, short_run: Path, payload: dict, tmp_path: Path, name: str
):
    out = set_with_json(short_run, tmp_path / "run", content_of(name, payload))
    report = verify(out, min_accuracy=0.0)
    checked = check_mjs(node, out / JSON_NAME)
    failed = [line for line in report.lines() if "FAIL" in line]
    said = {"verify": failed[:2], "check.mjs": checked.stderr}
    assert report.passed == (checked.returncode == 0) == (name == "intact"), said


def test_a_file_larger_than_any_run_writes_is_refused_unread(node: str, tmp_path: Path):
    """600 MB (sparse: no disk used): one line, before a byte is read; V8 would fail on it."""
    path = tmp_path / JSON_NAME
    with open(path, "wb") as file:
        file.truncate(600_000_000)
    done = check_mjs(node, path)
    assert done.returncode == 1
    assert done.stderr == (
        f"check.mjs: {path}: is 600.0 MB, larger than the 122.6 MB that a run of 200 epochs "
        "writes\n"
    )


def test_check_mjs_reads_as_much_as_verify():
    """validate.mjs's limits are cnnlib's: the largest JSON verify reads, and the version."""
    from cnnlib.export import SCHEMA_VERSION
    from cnnlib.reading import MAX_JSON_BYTES
    from cnnlib.train import MAX_EPOCHS

    source = (REPO_DIR / "js" / "validate.mjs").read_text()
    assert f"export const MAX_BYTES = {MAX_JSON_BYTES:_};" in source
    assert f"export const SCHEMA_VERSION = {SCHEMA_VERSION};" in source
    assert load_schema()["properties"]["training_epochs"]["maxItems"] == MAX_EPOCHS + 1


# ---------------------------------------------------------------------------------------------
# One source of the shapes: the model. The JSON's architecture is the model's (verify), the
# JavaScript derives every shape from it, and the schema's sizes are the model's.


def schema_shape(node: dict, definitions: dict) -> tuple[int, ...]:
    """The fixed shape a schema's nested "array" node states (minItems = maxItems per level)."""
    shape = []
    while "$ref" in node or node.get("type") == "array":
        node = definitions[node["$ref"].split("/")[-1]] if "$ref" in node else node
        if node.get("type") == "array":
            assert node["minItems"] == node["maxItems"]
            shape.append(node["minItems"])
            node = node["items"]
    return tuple(shape)


def test_the_schemas_sizes_are_the_models():
    schema = load_schema()
    definitions = schema["definitions"]
    weights = definitions["weights"]["properties"]
    for key, tensor in CNN().state_dict().items():
        layer, kind = key.split(".")
        assert schema_shape(weights[layer]["properties"][kind], definitions) == tensor.shape, key
    epoch = schema["properties"]["training_epochs"]["items"]["properties"]
    with torch.inference_mode():
        activations = CNN().activations(torch.zeros(1, 1, 28, 28))
    for name in ACTIVATION_NAMES:
        stated = schema_shape(epoch["feature_maps"]["properties"][name], definitions)
        assert stated == activations[name].shape[1:], name


def test_the_json_carries_the_models_architecture(payload: dict):
    assert payload["architecture"] == architecture(CNN())


# ---------------------------------------------------------------------------------------------
# The mistakes gallery's data.


def close(probability: float) -> object:
    """Equal as float32: the JSON holds the shortest text that reads back as the same float32."""
    return pytest.approx(probability, rel=1e-7, abs=0)


def probabilities(run: Path, epoch: int, images: torch.Tensor) -> torch.Tensor:
    model = CNN().eval()
    model.load_state_dict(load_state_dict(run / epoch_weights_name(epoch)))
    with torch.inference_mode():
        return model(images).softmax(dim=1)


def test_each_epochs_mistakes_are_its_most_confident_on_the_whole_test_set(
    short_run: Path, payload: dict, mnist
):
    images = normalize(mnist.test_pixels)
    for entry in payload["training_epochs"]:
        best, answers = probabilities(short_run, entry["epoch"], images).max(dim=1)
        best, answers, labels = best.tolist(), answers.tolist(), mnist.test_labels.tolist()
        wrong = sorted(
            (i for i in range(len(labels)) if answers[i] != labels[i]), key=lambda i: -best[i]
        )
        expected = [
            {
                "index": i,
                "label": labels[i],
                "prediction": answers[i],
                "probability": close(best[i]),
            }
            for i in wrong[:MAX_MISTAKES]
        ]
        assert entry["mistakes"] == expected, entry["epoch"]


def test_mistake_samples_hold_every_named_image_once_by_index(payload: dict, mnist):
    named = {m["index"] for entry in payload["training_epochs"] for m in entry["mistakes"]}
    assert [sample["index"] for sample in payload["mistake_samples"]] == sorted(named)
    for sample in payload["mistake_samples"]:
        assert sample["image"] == mnist.test_pixels[sample["index"]].tolist()
        assert sample["label"] == int(mnist.test_labels[sample["index"]])


def test_the_default_run_names_ten_confident_mistakes_at_every_epoch(default_run: Path):
    payload = json.loads((default_run / JSON_NAME).read_text())
    last = payload["training_epochs"][-1]["mistakes"]
    assert all(len(entry["mistakes"]) == MAX_MISTAKES for entry in payload["training_epochs"])
    assert all(mistake["probability"] > 0.9 for mistake in last)


# ---------------------------------------------------------------------------------------------
# The page gives check.mjs's answer, in a real Chromium, served by a server that is not ours.

PAGE_CORPUS = [
    "BOM",
    "output_shape a string",
    "1e308 weight",
    "epochs reversed",
    "own label",
    "600 MB",
]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, payload: dict) -> Iterator[tuple[str, Path]]:
    """http.server over a folder holding demo/, js/ and data/NAME/JSON_NAME for each damaged
    file of PAGE_CORPUS; its base URL and the folder."""
    root = tmp_path_factory.mktemp("site")
    for folder in ("demo", "js"):
        (root / folder).symlink_to(REPO_DIR / folder)
    for number, name in enumerate(PAGE_CORPUS):
        (root / "data" / str(number)).mkdir(parents=True)
        with open(root / "data" / str(number) / JSON_NAME, "wb") as file:
            if name == "600 MB":
                file.truncate(600_000_000)  # sparse: the page must refuse it without reading it
            else:
                file.write(content_of(name, payload))
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("number", range(len(PAGE_CORPUS)), ids=PAGE_CORPUS)
def test_the_page_shows_check_mjs_line_instead_of_the_network(
    node: str, browser, site: tuple[str, Path], number: int
):
    base, root = site
    name = f"data/{number}/{JSON_NAME}"
    checked = check_mjs(node, root / name)
    reason = checked.stderr.removeprefix(f"check.mjs: {root / name}: ").removesuffix("\n")
    tab = browser.new_page()
    try:
        tab.goto(f"{base}/demo/?data=../{name}")
        tab.wait_for_function("window.demoState !== undefined")
        assert tab.evaluate("window.demoState.status") == "error"
        assert tab.evaluate("window.demoState.error") == (
            f"{name}: {reason}; run `make data` to write it again."
        )
        assert tab.is_visible("#error") and not tab.is_visible("#demo")
        assert "NaN" not in tab.inner_text("body")
    finally:
        tab.close()
