"""How long the lecture is, measured on the committed notebooks: words of narration (Markdown,
without HTML tags and fenced code) and figures shown on the path, and apart from them the words
of the exercises and of the optional sections and the figures off the path.

    python bench/lecture_size.py

The 90-minute path is notebooks 01-03 without their exercises and optional sections; 04 is the
appendix. A section "## Exercises" or "## Optional: <title>" runs from its heading to the next
"## " heading, across cells; the figures of code cells inside it are off the path (the key
takeaways after the exercises count as narration).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
LECTURE = ("01_model", "02_training", "03_feature_maps")
COLUMNS = ("narration", "figures", "exercises", "optional", "off_figures")


def words(markdown: str) -> int:
    """Words a reader reads: fenced code blocks and HTML tags left out, and tokens without a
    letter or digit (×, →, −, table rules) not counted."""
    prose = re.sub(r"```.*?```", " ", markdown, flags=re.DOTALL)
    prose = re.sub(r"<[^>]+>", " ", prose)
    return sum(bool(re.search(r"\w", token)) for token in prose.split())


def section_kind(heading: str, current: str) -> str:
    """Which count a "## " heading starts ("exercises", "optional" or "narration"); other text
    stays in the current section."""
    if not heading.startswith("## "):
        return current
    if heading.startswith("## Exercises"):
        return "exercises"
    if heading.startswith("## Optional"):
        return "optional"
    return "narration"


def measure(path: Path) -> dict[str, int]:
    """The notebook's counts, by COLUMNS: a section carries over to the following cells."""
    notebook = nbformat.read(path, as_version=4)
    sizes = dict.fromkeys(COLUMNS, 0)
    kind = "narration"
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for part in re.split(r"(?m)^(?=## )", cell.source):
                kind = section_kind(part, kind)
                sizes[kind] += words(part)
        else:
            shown = sum("image/png" in output.get("data", {}) for output in cell.outputs)
            sizes["figures" if kind == "narration" else "off_figures"] += shown
    return sizes


def main() -> None:
    print(
        f"{'notebook':<16} {'narration':>9} {'figures':>7} {'exercises':>9} {'optional':>8} "
        f"{'off-path figures':>16}"
    )
    lecture = dict.fromkeys(COLUMNS, 0)
    for path in sorted(NOTEBOOKS_DIR.glob("0*.ipynb")):
        sizes = measure(path)
        print(f"{path.stem:<16} {row(sizes)}")
        if path.stem in LECTURE:
            lecture = {key: lecture[key] + sizes[key] for key in COLUMNS}
    print(f"{'01-03 (lecture)':<16} {row(lecture)}")


def row(sizes: dict[str, int]) -> str:
    return (
        f"{sizes['narration']:>9,} {sizes['figures']:>7} {sizes['exercises']:>9,} "
        f"{sizes['optional']:>8,} {sizes['off_figures']:>16}"
    )


if __name__ == "__main__":
    main()
