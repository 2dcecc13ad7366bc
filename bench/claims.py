"""Do the narration's sentences hold for other seeds? `make claims` runs the four notebooks (through
notebooks/run.py, as `make data` does) once per seed, each into a scratch folder of its own, never
data/, with every claim recorded instead of enforced (cnnlib.lecture.claims.RECORD_ENV). Then it
prints one row per checked sentence and one column per seed: holds, or FAILS with the numbers.

A sentence stated as a general fact must hold for every seed (exit status 1 if one does not); a
sentence about "this run" is expected to hold for the lecture's seed (42), which `make data`
enforces, and is listed for the other seeds for information.

    python bench/claims.py [--seeds 0 1 2 3 4 5 6 7 8 9] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cnnlib.lecture.claims import RECORD_ENV, REGISTRY, marked_sentences

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
WIDTH = 72  # characters of a sentence shown in the table


def run_seed(seed: int, scratch: Path) -> tuple[list[dict], str]:
    """Run the notebooks with `seed`; the claims they recorded, and run.py's last line."""
    record = scratch / f"claims-{seed}.jsonl"
    command = [
        sys.executable,
        str(NOTEBOOKS_DIR / "run.py"),
        "--executed-dir",
        str(scratch / f"executed-{seed}"),
        "-p",
        "seed",
        str(seed),
        "-p",
        "output_dir",
        str(scratch / f"data-{seed}"),
    ]
    environment = os.environ | {RECORD_ENV: str(record)}
    environment.pop("JPY_SESSION_NAME", None)
    done = subprocess.run(command, env=environment, capture_output=True, text=True)
    lines = (done.stdout + done.stderr).strip().splitlines()
    records = (
        [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    )
    return records, lines[-1] if lines else f"exit status {done.returncode}"


def table(results: dict[int, dict[str, dict]], sentences: dict[str, tuple[str, str]]) -> list[str]:
    """Markdown rows: notebook, sentence, kind, then holds/FAILS per seed."""
    seeds = list(results)
    lines = [
        "| notebook | sentence | kind | " + " | ".join(f"seed {seed}" for seed in seeds) + " |",
        "|---|---|---|" + "---|" * len(seeds),
    ]
    order = sorted(REGISTRY, key=lambda id: (sentences.get(id, ("?", ""))[0], id))
    for id in order:
        notebook, text = sentences.get(id, ("?", f"[{id}]"))
        short = text if len(text) <= WIDTH else text[: WIDTH - 1] + "…"
        kind = "general" if REGISTRY[id].general else "this run"
        cells = []
        for seed in seeds:
            outcome = results[seed].get(id)
            if outcome is None:
                cells.append("not run")
            else:
                cells.append("holds" if outcome["holds"] else f"FAILS: {outcome['evidence']}")
        lines.append(f"| {notebook[:2]} | {short} [{id}] | {kind} | " + " | ".join(cells) + " |")
    return lines


def summary(results: dict[int, dict[str, dict]]) -> tuple[list[str], bool]:
    seeds = list(results)
    lines, ok = [], True
    for general, name in ((True, "general"), (False, "this-run")):
        ids = [id for id, entry in REGISTRY.items() if entry.general == general]
        everywhere = [id for id in ids if all(results[s].get(id, {}).get("holds") for s in seeds)]
        lines.append(
            f"{name} sentences: {len(everywhere)} of {len(ids)} hold for all {len(seeds)} seeds "
            f"({', '.join(map(str, seeds))})"
        )
        ok &= not general or len(everywhere) == len(ids)
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--keep", type=Path, help="keep the runs (executed notebooks) here")
    args = parser.parse_args(argv)
    sentences = marked_sentences((NOTEBOOKS_DIR,))
    results: dict[int, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="cnnlib-claims-") as temporary:
        scratch = args.keep or Path(temporary)
        scratch.mkdir(parents=True, exist_ok=True)
        for seed in args.seeds:
            start = time.perf_counter()
            records, last = run_seed(seed, scratch)
            results[seed] = {record["id"]: record for record in records}
            print(
                f"seed {seed}: {len(records)} claims checked in "
                f"{time.perf_counter() - start:.0f} s; run.py: {last}",
                flush=True,
            )
    print()
    print("\n".join(table(results, sentences)))
    print()
    lines, ok = summary(results)
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
