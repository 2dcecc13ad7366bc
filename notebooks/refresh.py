"""Re-execute the lecture notebooks with their default parameters and store them with their outputs,
minus what changes from run to run: timings, papermill's records. `make notebooks` runs it.

Like `make data`, it regenerates data/ on the way (the notebooks' default `output_dir`).
"""

from __future__ import annotations

import html
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat

NOTEBOOKS_DIR = Path(__file__).resolve().parent
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# tqdm's "[00:13<00:00, 155.12batch/s, epoch=20]": elapsed < remaining, then the rate.
TIMING = re.compile(r"[\d:]+(?:<|&lt;)[\d:?]+,\s*[\d.?]+\s*(?:[^\s,\]]*/s|s/[^\s,\]]*),?\s*")


def without_timing(text: str) -> str:
    """'2100/2100 [00:13<00:00, 155.12batch/s, epoch=20]' -> '2100/2100 [epoch=20]'."""
    return TIMING.sub("", text).replace("[]", "")


def widget_text(state: dict, model_id: str) -> str:
    """What a progress widget shows at the end, as plain text: its HTML labels, no timing."""
    children = state.get(model_id, {}).get("state", {}).get("children", [])
    labels = (state.get(child.removeprefix("IPY_MODEL_"), {}) for child in children)
    values = (label["state"]["value"] for label in labels if label.get("model_name") == "HTMLModel")
    return " ".join(html.unescape(value).replace("\u2007", " ").strip() for value in values)


def merged_streams(outputs: list) -> list:
    """Consecutive prints to one stream as one output: the kernel splits them at random."""
    merged: list = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            output.output_type == "stream"
            and previous is not None
            and previous.output_type == "stream"
            and previous.name == output.name
        ):
            previous.text += output.text
        else:
            merged.append(output)
    return merged


def clean(notebook: nbformat.NotebookNode) -> None:
    """Drop run records and timings; a progress widget's text fallback shows its final state."""
    notebook.metadata.pop("papermill", None)
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for model in state.values():
        if isinstance(model["state"].get("value"), str):
            model["state"]["value"] = without_timing(model["state"]["value"])
    for cell in notebook.cells:
        for key in ("papermill", "execution"):
            cell.metadata.pop(key, None)
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]
        if cell.cell_type != "code":
            continue
        cell.outputs = merged_streams(cell.outputs)
        for output in cell.outputs:
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is not None:
                output.data["text/plain"] = widget_text(state, view["model_id"])
            elif "text" in output:
                output.text = without_timing(output.text)


def _references(value: object) -> list[str]:
    """The widget ids that a widget's state points to ('IPY_MODEL_<id>'), in a fixed order."""
    if isinstance(value, str) and value.startswith("IPY_MODEL_"):
        return [value.removeprefix("IPY_MODEL_")]
    if isinstance(value, dict):
        return [ref for key in sorted(value) for ref in _references(value[key])]
    if isinstance(value, list):
        return [ref for item in value for ref in _references(item)]
    return []


def with_stable_widget_ids(notebook: nbformat.NotebookNode) -> str:
    """The notebook as text, its random widget ids renumbered in a fixed order (the outputs'
    widgets, then what they refer to), so that refreshing an unchanged notebook changes nothing."""
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    pending = [
        output.data[WIDGET_VIEW]["model_id"]
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if WIDGET_VIEW in output.get("data", {})
    ]
    order: list[str] = []
    while pending:
        model_id = pending.pop(0)
        if model_id in state and model_id not in order:
            order.append(model_id)
            pending += _references(state[model_id]["state"])
    unreferenced = set(state) - set(order)
    order += sorted(unreferenced, key=lambda model_id: json.dumps(state[model_id], sort_keys=True))
    text = nbformat.writes(notebook)
    if not order:
        return text
    numbers = {model_id: f"{number:032x}" for number, model_id in enumerate(order)}
    renumbered = re.sub("|".join(order), lambda match: numbers[match.group()], text)
    return nbformat.writes(nbformat.reads(renumbered, as_version=4))  # keys sorted again


def refresh_all() -> int:
    """Execute the notebooks as `make data` does (notebooks/run.py: kernels over IPC, 01 beside
    02), into a scratch folder; only when every one ran without an error, replace the committed
    copies with the cleaned results. Returns run.py's exit status."""
    import run  # notebooks/run.py, beside this script

    with tempfile.TemporaryDirectory() as scratch:
        status = run.main(["--executed-dir", scratch])
        if status != 0:
            return status
        for path in sorted(NOTEBOOKS_DIR.glob("0*.ipynb")):
            notebook = nbformat.read(Path(scratch) / path.name, as_version=4)
            clean(notebook)
            path.write_text(with_stable_widget_ids(notebook) + "\n", encoding="utf-8")
            print(f"{path.name}: {path.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    os.environ.pop("JPY_SESSION_NAME", None)  # headless: 03's slider falls back to a static figure
    sys.exit(refresh_all())
