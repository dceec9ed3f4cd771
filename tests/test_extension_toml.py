"""extension.toml: the Kit manifest parses, has every section Kit and the extension registry read, and agrees with
pyproject.toml (version, dependencies) and with the files it names."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def manifest() -> dict:
    return tomllib.loads((ROOT / "extension.toml").read_text())


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_package_section(manifest, pyproject):
    package = manifest["package"]
    assert package["version"] == pyproject["project"]["version"]
    for key in ("title", "description", "category", "keywords", "readme", "changelog", "icon", "preview_image"):
        assert package.get(key), f"[package] {key} missing"
    for key in ("readme", "changelog", "icon", "preview_image"):
        assert (ROOT / package[key]).is_file(), f"[package] {key} = {package[key]} does not exist"


def test_images_are_small_pngs(manifest):
    for key in ("icon", "preview_image"):
        path = ROOT / manifest["package"][key]
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
        assert path.stat().st_size < 100_000, path


def test_python_modules_exist(manifest):
    names = [m["name"] for m in manifest["python"]["module"]]
    assert "lyra_isaac.isaac.extension" in names
    for name in names:
        path = ROOT / Path(*name.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), name


def test_extension_class_is_in_the_module(manifest):
    """Kit instantiates the omni.ext.IExt subclasses of each [[python.module]]; the extension module defines one."""
    source = (ROOT / "lyra_isaac/isaac/extension.py").read_text()
    assert re.search(r"^class \w+\(omni\.ext\.IExt\):", source, re.M)


def test_dependencies_target_isaac_sim_6(manifest):
    deps = manifest["dependencies"]
    for name in ("omni.kit.uiapp", "omni.kit.menu.utils", "omni.kit.window.filepicker", "omni.physx",
                 "isaacsim.storage.native", "isaacsim.core.experimental.prims", "isaacsim.core.simulation_manager"):
        assert name in deps, name
    assert not [d for d in deps if d.startswith("omni.isaac.")], "omni.isaac.* is the Isaac Sim 4 namespace"


def test_dependencies_cover_every_kit_extension_the_code_imports(manifest):
    """Every isaacsim.* extension the extension or backend imports is a declared dependency."""
    deps = set(manifest["dependencies"])
    used = set()
    for path in ("lyra_isaac/isaac/extension.py", "lyra_isaac/envs/backends/isaacsim.py"):
        text = (ROOT / path).read_text()
        used |= set(re.findall(r"(?:from|import) (isaacsim\.[a-z_]+(?:\.[a-z_]+)*)", text))
    exts = {".".join(m.split(".")[:4]) if m.startswith("isaacsim.core.experimental") else ".".join(m.split(".")[:3])
            for m in used}
    exts.discard("isaacsim.simulation_app")  # the standalone launcher is a Python package, not a Kit dependency
    assert exts and exts <= deps, exts - deps


def test_backend_required_extensions_are_dependencies(manifest):
    """The Kit extensions the backend enables at start are the extension's declared dependencies too."""
    from lyra_isaac.envs.backends.isaacsim import REQUIRED_EXTENSIONS

    assert set(REQUIRED_EXTENSIONS) <= set(manifest["dependencies"])
    assert "omni.replicator.core" in manifest["dependencies"]


def test_pipapi_requirements_match_pyproject(manifest, pyproject):
    """Kit installs the library's dependencies with pip on first enable; Kit ships pxr, so not usd-core."""
    pipapi = manifest["python"]["pipapi"]
    assert pipapi["use_online_index"] is True
    expected = [d for d in pyproject["project"]["dependencies"] if not d.startswith("usd-core")]
    assert sorted(pipapi["requirements"]) == sorted(expected)


def test_settings(manifest):
    settings = manifest["settings"]["exts"]["lyra_isaac"]
    assert settings["conversion_preset"] in ("fast", "quality")
    assert settings["default_robot"] in ("h1", "g1")
    assert isinstance(settings["output_folder"], str)


def test_kit_test_section(manifest):
    tests = manifest["test"]
    assert tests and "omni.kit.test" in tests[0]["dependencies"]
    assert "lyra_isaac.isaac.tests" in [m["name"] for m in manifest["python"]["module"]]
