"""The JupyterLab settings a lecturer gets from `make setup`: widget state saved with a notebook, no
autosave, no news or update pop-ups; checked against JupyterLab's own settings code and schemas."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from jupyter_core.paths import jupyter_path
from jupyterlab.commands import get_app_dir
from jupyterlab_server.settings_utils import get_settings

ROOT = Path(__file__).resolve().parent.parent
OVERRIDES = ROOT / "notebooks" / "jupyterlab-overrides.json"
EXPECTED = {
    "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True},
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
    "@jupyterlab/apputils-extension:notification": {"checkForUpdates": False, "fetchNews": "false"},
}


def test_the_overrides_are_json_with_the_settings_the_lecture_needs() -> None:
    assert json.loads(OVERRIDES.read_text()) == EXPECTED


@pytest.mark.parametrize("plugin", sorted(EXPECTED))
def test_jupyterlab_applies_each_override_as_the_new_default(tmp_path: Path, plugin: str) -> None:
    """What JupyterLab's server does with <app settings>/overrides.json, on the real schemas."""
    app_settings = tmp_path / "settings"
    app_settings.mkdir()
    shutil.copy(OVERRIDES, app_settings / "overrides.json")
    settings, warnings = get_settings(
        str(app_settings),
        str(Path(get_app_dir()) / "schemas"),
        str(tmp_path / "user-settings"),
        schema_name=plugin,
        labextensions_path=jupyter_path("labextensions"),
    )
    assert warnings == [None]
    properties = settings["schema"]["properties"]
    for key, value in EXPECTED[plugin].items():
        assert properties[key]["default"] == value
        jsonschema.validate(value, {k: v for k, v in properties[key].items() if k != "default"})


def test_jupyterlab_looks_for_them_in_the_environment_it_runs_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JUPYTERLAB_DIR", raising=False)
    expected = Path(sys.prefix, "share", "jupyter", "lab").resolve()
    assert Path(get_app_dir()).resolve() == expected


def test_make_setup_installs_them_into_the_environment(tmp_path: Path) -> None:
    """`make setup` with an environment that is already installed (its stamp newer than
    pyproject.toml): only the settings are copied, to where JupyterLab reads them."""
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").touch()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    done = subprocess.run(
        ["make", "-C", str(ROOT), f"VENV={venv}", "setup"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    installed = venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert installed.read_bytes() == OVERRIDES.read_bytes()
