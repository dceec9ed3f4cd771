"""Packaging: one version everywhere, data folders inside the wheel, console script."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import lyra_isaac
from lyra_isaac.resources import config_dir, envs_dir, usd_templates_dir

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_shared_by_pyproject_and_extension():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extension = tomllib.loads((ROOT / "extension.toml").read_text())
    assert extension["package"]["version"] == pyproject["project"]["version"]
    assert lyra_isaac.__version__ == pyproject["project"]["version"]


def test_data_folders_resolve():
    for folder in (config_dir(), envs_dir(), usd_templates_dir()):
        assert folder.is_dir()


def test_wheel_ships_data_folders(tmp_path):
    """A non-editable install finds config/, envs/, usd_templates/ inside the package."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True)
    wheel = next(tmp_path.glob("lyra_isaac-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for prefix in ("lyra_isaac/_data/config/", "lyra_isaac/_data/envs/", "lyra_isaac/_data/usd_templates/"):
        assert any(n.startswith(prefix) for n in names), prefix
    assert "lyra_isaac/_data/extension.toml" in names


def test_console_script_runs():
    result = subprocess.run([str(Path(sys.executable).parent / "lyra-isaac"), "--help"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "convert" in result.stdout
