"""How long the lecture is, measured on the committed notebooks: words of narration (Markdown,
without HTML tags and fenced code), words in the exercises, figures shown.

    python bench/lecture_size.py

The 90-minute path is notebooks 01-03 without their exercises; 04 is the appendix. A section
"## Exercises" runs up to the next "## " heading (the key takeaways count as narration).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
LECTURE = ("01_model", "02_training", "03_feature_maps")


def words(markdown: str) -> int:
    """Words a reader reads: fenced code blocks and HTML tags left out, and tokens without a
    letter or digit (×, →, −, table rules) not counted."""
    prose = re.sub(r"```.*?```", " ", markdown, flags=re.DOTALL)
    prose = re.sub(r"<[^>]+>", " ", prose)
    return sum(bool(re.search(r"\w", token)) for token in prose.split())


def split_exercises(markdown: str) -> tuple[str, str]:
    """(narration, exercises) of one Markdown cell."""
    parts = re.split(r"(?m)^(?=## )", markdown)
    exercises = [part for part in parts if part.startswith("## Exercises")]
    return "".join(part for part in parts if part not in exercises), "".join(exercises)


def measure(path: Path) -> dict[str, int]:
    notebook = nbformat.read(path, as_version=4)
    narration = exercises = figures = 0
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            text, tasks = split_exercises(cell.source)
            narration += words(text)
            exercises += words(tasks)
        else:
            figures += sum("image/png" in output.get("data", {}) for output in cell.outputs)
    return {"narration": narration, "exercises": exercises, "figures": figures}


def main() -> None:
    print(f"{'notebook':<16} {'narration':>9} {'exercises':>9} {'figures':>7}")
    lecture = {"narration": 0, "exercises": 0, "figures": 0}
    for path in sorted(NOTEBOOKS_DIR.glob("0*.ipynb")):
        sizes = measure(path)
        row = f"{sizes['narration']:>9,} {sizes['exercises']:>9,} {sizes['figures']:>7}"
        print(f"{path.stem:<16} {row}")
        if path.stem in LECTURE:
            lecture = {key: lecture[key] + sizes[key] for key in lecture}
    print(
        f"{'01-03 (lecture)':<16} {lecture['narration']:>9,} {lecture['exercises']:>9,} "
        f"{lecture['figures']:>7}"
    )


if __name__ == "__main__":
    main()
