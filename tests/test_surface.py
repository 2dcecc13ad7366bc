"""cnnlib.lecture is the notebooks' one surface: every cnnlib name their code uses is reachable
through it, and its docstring maps every module of the lecture's half."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from cnnlib import lecture

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))


def code_of(notebook: Path) -> list[ast.Module]:
    """The code cells of `notebook`, parsed (IPython's % and ! lines left out)."""
    trees = []
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] == "code":
            lines = "".join(cell["source"]).splitlines()
            code = [line for line in lines if line.lstrip()[:1] not in ("%", "!")]
            trees.append(ast.parse("\n".join(code)))
    return trees


def surface_path(module: str, name: str) -> tuple[str, ...]:
    """Where `from module import name` is found under cnnlib.lecture: the factory's names and the
    lecture's modules at its top, a lecture module's own names inside that module."""
    if module.startswith("cnnlib.lecture."):
        return (*module.removeprefix("cnnlib.lecture.").split("."), name)
    return () if (module, name) == ("cnnlib", "lecture") else (name,)


def cnnlib_uses(notebook: Path) -> set[tuple[str, ...]]:
    """What the code cells take from cnnlib, as paths under cnnlib.lecture: ("CNN",),
    ("experiments", "train_model"), ..."""
    uses: set[tuple[str, ...]] = set()
    bound: dict[str, tuple[str, ...]] = {}  # a name an import binds (in any cell) -> its path
    trees = code_of(notebook)
    for node in (node for tree in trees for node in ast.walk(tree)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ("cnnlib", "cnnlib.lecture"):
                    bound[alias.asname or alias.name] = ()
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cnnlib"):
            for alias in node.names:
                path = surface_path(node.module, alias.name)
                bound[alias.asname or alias.name] = path
                uses.add(path)
    for node in (node for tree in trees for node in ast.walk(tree)):
        if isinstance(node, ast.Attribute) and getattr(node.value, "id", None) in bound:
            uses.add((*bound[node.value.id], node.attr))
    return uses - {()}


def reachable(path: tuple[str, ...]) -> bool:
    found: object = lecture
    for name in path:
        if not hasattr(found, name):
            return False
        found = getattr(found, name)
    return True


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_every_cnnlib_name_a_notebook_uses_is_reachable_through_the_surface(notebook: Path):
    uses = cnnlib_uses(notebook)
    assert ("setup",) in uses  # every notebook starts with lecture.setup: the parse found it
    assert sorted(".".join(path) for path in uses if not reachable(path)) == []


def test_a_name_the_surface_lacks_is_found_missing(tmp_path: Path) -> None:
    cell = {"cell_type": "code", "source": "from cnnlib import lecture\nlecture.no_such_name()"}
    (tmp_path / "09.ipynb").write_text(json.dumps({"cells": [cell]}))
    assert cnnlib_uses(tmp_path / "09.ipynb") == {("no_such_name",)}
    assert not reachable(("no_such_name",))
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
