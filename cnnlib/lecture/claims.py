"""The lecture's tools: the narration's sentences checked against the numbers of the run the
notebook just made.

A sentence is written once, in a notebook's Markdown, marked with an id:
`<span id="claim-loss-gap">the training loss is higher ...</span>`. A small predicate of the run's
numbers, registered under the same id with `@claim` (modules `claims_model`, `claims_training`,
`claims_features`, `claims_export`), says whether it holds; the notebook calls
`check("loss-gap", ...)` with the numbers its visible cells computed.

A sentence that does not hold:
- stops a headless run (papermill: `make data`, `make notebooks`, nbval) of the lecture's own
  configuration, naming the sentence and the numbers; a *general* sentence (one that holds for any
  seed) stops a headless run with another seed too;
- prints one warning and lets the notebook go on in JupyterLab (a live lecture is never halted),
  and for other parameters (a shorter run, say);
- is only recorded when `RECORD_ENV` names a file (`make claims`);
- always stops the notebook when `STRICT_ENV` is 1.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cnnlib.train import TrainConfig

STRICT_ENV = "CNNLIB_STRICT_CLAIMS"  # 1: every claim stops the notebook when it fails
RECORD_ENV = "CNNLIB_CLAIMS_RECORD"  # a file: each claim's outcome is appended as a JSON line
NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"  # in a checkout of the project
MARK = re.compile(r'<span\s+id="claim-([\w-]+)">(.*?)</span>', re.DOTALL)


class ClaimError(AssertionError):
    """A sentence of the narration that the run's own numbers contradict."""


@dataclass(frozen=True)
class Verdict:
    """What a predicate found: whether its sentence holds, and the numbers that decided it."""

    holds: bool
    evidence: str


def rounded(values: Sequence[float], digits: int = 2) -> list[float]:
    """Numbers rounded for a verdict's evidence."""
    return [round(value, digits) for value in values]


@dataclass(frozen=True)
class Claim:
    id: str
    general: bool  # True: true for any seed; False: a sentence about this run ("in this run")
    test: Callable[..., Verdict]


REGISTRY: dict[str, Claim] = {}
# set by `describe_run`: the run the notebook makes, and whether someone watches it live
_run: dict[str, object] = {"config": TrainConfig(), "live": False}


def claim(id: str, general: bool = True) -> Callable[[Callable[..., Verdict]], Callable]:
    """Register a predicate for the sentence marked `claim-<id>` in a notebook."""

    def register(test: Callable[..., Verdict]) -> Callable[..., Verdict]:
        if id in REGISTRY:
            raise ValueError(f"two predicates for the claim {id!r}")
        REGISTRY[id] = Claim(id, general, test)
        return test

    return register


def describe_run(config: TrainConfig, live: bool = False) -> None:
    """Tell the claims which run the notebook makes, and whether it runs `live` in JupyterLab
    (`notebook.setup` does, from its parameters and its kernel)."""
    _run["config"], _run["live"] = config, live


def is_lecture_default(config: TrainConfig) -> bool:
    """The run the narration describes: the default configuration, on whatever device."""
    return dataclasses.replace(config, device="auto") == TrainConfig()


def strict(general: bool = False) -> bool:
    """Does a failed claim stop the notebook? See the module's docstring."""
    if os.environ.get(STRICT_ENV) == "1":
        return True
    if RECORD_ENV in os.environ or _run["live"]:  # make claims; a live lecture
        return False
    config = _run["config"]
    if general:  # a general sentence holds for any seed
        config = dataclasses.replace(config, seed=TrainConfig().seed)
    return is_lecture_default(config)


def plain(markdown: str) -> str:
    """A sentence's Markdown as plain text: no emphasis or code marks, one line."""
    return " ".join(re.sub(r"[*`]", "", markdown).split())


def marked_sentences(folders: tuple[Path, ...] = ()) -> dict[str, tuple[str, str]]:
    """Every marked sentence of the lecture notebooks: id -> (notebook name, sentence). Read from
    the notebooks in `folders`, by default the kernel's folder (where JupyterLab and papermill run
    a notebook) and the project's notebooks folder."""
    found: dict[str, tuple[str, str]] = {}
    for folder in folders or (Path.cwd(), NOTEBOOKS_DIR):
        for path in sorted(Path(folder).glob("0*.ipynb")):
            try:
                cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            except (OSError, ValueError, KeyError):
                continue
            for cell in cells:
                if cell.get("cell_type") == "markdown":
                    for id, text in MARK.findall("".join(cell["source"])):
                        found.setdefault(id, (path.stem, plain(text)))
    return found


def sentence(id: str) -> str:
    """The sentence marked `claim-<id>`, or the id itself where no notebook can be read."""
    return marked_sentences().get(id, ("", f"[{id}]"))[1]


def record(id: str, verdict: Verdict, general: bool) -> None:
    line = {"id": id, "general": general, "holds": verdict.holds, "evidence": verdict.evidence}
    with open(os.environ[RECORD_ENV], "a", encoding="utf-8") as file:
        file.write(json.dumps(line) + "\n")


def check(id: str, **numbers: object) -> None:
    """Check the sentence marked `claim-<id>` against this run's `numbers`."""
    if id not in REGISTRY:
        raise KeyError(f"no predicate for the claim {id!r}; register one with @claim({id!r})")
    entry = REGISTRY[id]
    verdict = entry.test(**numbers)
    if RECORD_ENV in os.environ:
        record(id, verdict, entry.general)
    if verdict.holds:
        return
    message = f'the narration says "{sentence(id)}", but this run disagrees: {verdict.evidence}'
    if strict(entry.general):
        raise ClaimError(message)
    print(f"Warning, the text above does not hold for this run: {message}", file=sys.stderr)
