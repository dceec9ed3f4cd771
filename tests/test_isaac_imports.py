"""Outside Kit: the library imports without omni/carb/isaacsim, the extension module refuses with one clear
ImportError, and the Isaac Sim backend raises one clear error when selected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KIT_MODULES = ("omni.ext", "omni.ui", "omni.kit", "omni.physx", "carb", "isaacsim")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)


def test_library_imports_without_kit():
    """Importing the whole package (every module that imports without optional extras) pulls in no Kit module."""
    code = f"""
import importlib, pkgutil, sys
import lyra_isaac
skip = ("lyra_isaac.isaac.extension", "lyra_isaac.isaac.tests")
for info in pkgutil.walk_packages(lyra_isaac.__path__, "lyra_isaac."):
    if info.name.startswith(skip) or info.name.endswith("__main__"):
        continue
    try:
        importlib.import_module(info.name)
    except Exception as exc:  # noqa: BLE001 - modules needing optional extras; what matters is what got imported
        print("skipped", info.name, type(exc).__name__, exc, file=sys.stderr)
import lyra_isaac.isaac.importer, lyra_isaac.isaac.robots, lyra_isaac.isaac.usd_robot, lyra_isaac.isaac.usd_world
import lyra_isaac.envs.backends.isaacsim
bad = sorted(m for m in sys.modules if m.startswith({KIT_MODULES!r}))
assert not bad, bad
print("ok")
"""
    result = _run(code)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr


def test_extension_module_outside_kit_raises_one_clear_import_error():
    result = _run("import lyra_isaac.isaac.extension")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: lyra_isaac.isaac.extension is the Isaac Sim extension and runs only inside "
                           "Isaac Sim / Omniverse Kit"), result.stderr
    assert "During handling" not in result.stderr  # one error, not a chain


def test_kit_tests_are_not_collected_by_pytest():
    tests_dir = ROOT / "lyra_isaac/isaac/tests"
    assert not list(tests_dir.glob("test_*.py")) and not list(tests_dir.glob("*_test.py"))


def test_isaacsim_backend_without_isaac_sim_raises_clear_error():
    from lyra_isaac.envs.backends import isaacsim as backend
    from lyra_isaac.errors import LyraError

    with pytest.raises(backend.IsaacSimUnavailableError) as info:
        backend.require_isaac_sim()
    assert isinstance(info.value, ImportError) and isinstance(info.value, LyraError)
    message = str(info.value)
    assert "Isaac Sim 6" in message and "backend='mujoco'" in message
