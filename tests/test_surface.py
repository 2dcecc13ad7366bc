"""cnnlib.lecture is the notebooks' one surface: `from cnnlib import lecture` is their only cnnlib
import, every name their code takes from it is there, it gives nothing they do not use, and its
docstring maps every module of the lecture's half."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from cnnlib import lecture

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
THE_IMPORT = "from cnnlib import lecture"


def code_of(notebook: Path) -> list[ast.Module]:
    """The code cells of `notebook`, parsed (IPython's % and ! lines left out)."""
    trees = []
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] == "code":
            lines = "".join(cell["source"]).splitlines()
            code = [line for line in lines if line.lstrip()[:1] not in ("%", "!")]
            trees.append(ast.parse("\n".join(code)))
    return trees


def other_cnnlib_imports(notebook: Path) -> list[str]:
    """The notebook's imports of cnnlib, or of any module in it, other than THE_IMPORT."""
    found = []
    for node in (node for tree in code_of(notebook) for node in ast.walk(tree)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        else:
            continue
        reaches_cnnlib = any(module.split(".")[0] == "cnnlib" for module in modules)
        if reaches_cnnlib and ast.unparse(node) != THE_IMPORT:
            found.append(ast.unparse(node))
    return found


def lecture_path(node: ast.Attribute) -> tuple[str, ...]:
    """`lecture.experiments.train_model` -> ("experiments", "train_model"); () for an attribute
    of anything but `lecture` (`data.test_images`, `lecture.CNN().eval`)."""
    path: list[str] = []
    value: ast.expr = node
    while isinstance(value, ast.Attribute):
        path.insert(0, value.attr)
        value = value.value
    return tuple(path) if isinstance(value, ast.Name) and value.id == "lecture" else ()


def lecture_uses(notebook: Path) -> set[tuple[str, ...]]:
    """What the code cells take from `lecture`, as paths under it: ("CNN",), ("experiments",),
    ("experiments", "train_model"), ..."""
    nodes = (node for tree in code_of(notebook) for node in ast.walk(tree))
    return {lecture_path(node) for node in nodes if isinstance(node, ast.Attribute)} - {()}


def narration_uses(notebook: Path) -> set[tuple[str, ...]]:
    """The `lecture.` names the Markdown cells tell a reader to type (the exercises' checkers and
    answers): ("exercises", "check_conv2d"), ..."""
    cells = json.loads(notebook.read_text())["cells"]
    text = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
    return {tuple(name.split(".")) for name in re.findall(r"\blecture\.(\w+(?:\.\w+)*)", text)}


def reachable(path: tuple[str, ...]) -> bool:
    found: object = lecture
    for name in path:
        if not hasattr(found, name):
            return False
        found = getattr(found, name)
    return True


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_a_notebook_imports_cnnlib_only_as_the_lecture_surface(notebook: Path) -> None:
    assert other_cnnlib_imports(notebook) == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_every_name_a_notebook_takes_from_the_surface_is_there(notebook: Path) -> None:
    uses = lecture_uses(notebook)
    assert ("setup",) in uses  # every notebook starts with lecture.setup: the parse found it
    assert sorted(".".join(path) for path in uses if not reachable(path)) == []
    named = narration_uses(notebook)
    assert sorted(".".join(path) for path in named if not reachable(path)) == []


def test_the_surface_gives_only_what_the_notebooks_use() -> None:
    used = {path[0] for notebook in NOTEBOOKS for path in lecture_uses(notebook)}
    given = set(lecture.__all__)
    assert (sorted(given - used), sorted(used - given)) == ([], [])  # (unused, not listed)


def notebook_of(tmp_path: Path, *sources: str, markdown: str = "") -> Path:
    cells = [{"cell_type": "code", "source": source} for source in sources]
    cells.append({"cell_type": "markdown", "source": markdown})
    (tmp_path / "09.ipynb").write_text(json.dumps({"cells": cells}))
    return tmp_path / "09.ipynb"


def test_a_notebook_that_reaches_cnnlib_another_way_is_caught(tmp_path: Path) -> None:
    notebook = notebook_of(
        tmp_path,
        "%matplotlib inline\nimport torch\n\nimport cnnlib\nfrom cnnlib import lecture, reference",
        "from cnnlib.data import MEAN, STD\nfrom cnnlib.lecture import check, plots",
        "def later():\n    import cnnlib.export as export\n    from cnnlib import lecture as L",
        "from cnnlib import lecture\nfrom cnnlibrary import x\nlecture.setup()",
    )
    assert other_cnnlib_imports(notebook) == [
        "import cnnlib",
        "from cnnlib import lecture, reference",
        "from cnnlib.data import MEAN, STD",
        "from cnnlib.lecture import check, plots",
        "import cnnlib.export as export",
        "from cnnlib import lecture as L",
    ]


def test_a_name_the_surface_lacks_is_found_missing(tmp_path: Path) -> None:
    notebook = notebook_of(
        tmp_path,
        "from cnnlib import lecture\nlecture.no_such_name()\nlecture.evaluate.no_such_function(x)",
        "model = lecture.CNN().eval()\ndata.test_images",
        markdown="Check with `lecture.exercises.check_gone(answer)`. That ends the lecture. Next",
    )
    assert narration_uses(notebook) == {("exercises", "check_gone")}
    assert not reachable(("exercises", "check_gone"))
    uses = lecture_uses(notebook)
    assert uses == {("no_such_name",), ("evaluate",), ("evaluate", "no_such_function"), ("CNN",)}
    assert sorted(path for path in uses if not reachable(path)) == [
        ("evaluate", "no_such_function"),
        ("no_such_name",),
    ]
    assert not reachable(("experiments", "standard_error"))  # one standard error: evaluate's


def test_the_docstring_maps_every_module_of_the_lecture() -> None:
    words = set(re.findall(r"\w+", lecture.__doc__))
    folder = Path(lecture.__file__).parent
    modules = {path.stem for path in folder.glob("*.py")} - {"__init__"}
    assert {"hyperparams", "hierarchy", "experiments"} <= modules
    assert sorted(modules - words) == []


def test_the_surface_lists_every_name_it_gives() -> None:
    words = set(re.findall(r"\w+", lecture.__doc__))
    assert sorted(set(lecture.__all__) - words) == []
