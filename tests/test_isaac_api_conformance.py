"""API conformance of the Isaac Sim extension and backend against the real Isaac Sim 6.x wheels, without Isaac Sim.

The pinned ``isaacsim-*`` wheels are downloaded (never installed) into ``$LYRA_ISAAC_WHEEL_CACHE`` (default
``~/.cache/lyra_isaac/wheels``) and read by AST (tests/isaac_api.py): every ``isaacsim.*`` module, class, function,
method, attribute and keyword argument that lyra_isaac/isaac/extension.py and lyra_isaac/envs/backends/isaacsim.py
use must exist there. The uses are collected from our sources by AST too, so the check follows the code.

Kit names that no pip wheel holds (omni.ui, omni.kit.menu.utils, omni.physx, carb...) cannot be checked this way;
each is listed in :data:`KIT_DOCS` with the documentation page that defines it, and the test fails when the code uses
a Kit name that is not listed (or the list keeps a name the code no longer uses). ``pxr`` names are checked against
usd-core, which is installed here.

Other Isaac Sim versions: ``LYRA_ISAAC_ISAACSIM_VERSION=6.0.1.0 pytest tests/test_isaac_api_conformance.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from isaac_api import WheelIndex, check_uses, collect_names, collect_uses

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "lyra_isaac/isaac/extension.py", ROOT / "lyra_isaac/envs/backends/isaacsim.py"]
ISAACSIM_VERSION = os.environ.get("LYRA_ISAAC_ISAACSIM_VERSION", "6.2.0.0")
WHEELS = ("isaacsim-core", "isaacsim-robot", "isaacsim-storage")
"""isaacsim-core: core.experimental.*, simulation_manager, rendering_manager, simulation_app; isaacsim-storage:
storage.native; isaacsim-robot: the robot examples that name the H1 asset path."""

_OMNI_UI = "https://docs.omniverse.nvidia.com/kit/docs/omni.ui/latest/omni.ui.html"
_MENU = "https://docs.omniverse.nvidia.com/kit/docs/omni.kit.menu.utils/latest/omni.kit.menu.utils.html"
_NOTIFY = ("https://docs.omniverse.nvidia.com/kit/docs/omni.kit.notification_manager/latest/"
           "omni.kit.notification_manager.html")
_KIT_APP = "https://docs.omniverse.nvidia.com/kit/docs/kit-manual/latest/api/omni.kit.app.html"
_EXT = "https://docs.omniverse.nvidia.com/kit/docs/kit-manual/latest/guide/extensions_advanced.html"
_CARB = "https://docs.omniverse.nvidia.com/kit/docs/carbonite/latest/docs/python/bindings.html"
_CLIENT = "https://docs.omniverse.nvidia.com/kit/docs/client_library/latest/docs/python.html"
_USD = "https://docs.omniverse.nvidia.com/kit/docs/omni.usd/latest/omni.usd.html"
_PHYSX = "https://docs.omniverse.nvidia.com/kit/docs/omni_physics/latest/extensions/runtime/source/omni.physx/docs/index.html"
_REPLICATOR = ("https://docs.omniverse.nvidia.com/py/replicator/latest/source/extensions/omni.replicator.core/docs/"
               "API.html")

KIT_DOCS: dict[str, str] = {
    "carb.log_error": _CARB,
    "carb.log_info": _CARB,
    "carb.settings.get_settings": _CARB,
    "omni.client.Result.OK": _CLIENT,
    "omni.client.stat_async": _CLIENT,
    "omni.ext.IExt": _EXT,
    "omni.ext.get_extension_name": _EXT,
    "omni.kit.actions.core.get_action_registry":
        "https://docs.omniverse.nvidia.com/kit/docs/omni.kit.actions.core/latest/omni.kit.actions.core.html",
    "omni.kit.app.get_app": _KIT_APP,
    "omni.kit.menu.utils.MenuItemDescription": _MENU,
    "omni.kit.menu.utils.add_menu_items": _MENU,
    "omni.kit.menu.utils.remove_menu_items": _MENU,
    "omni.kit.notification_manager.NotificationStatus.INFO": _NOTIFY,
    "omni.kit.notification_manager.NotificationStatus.WARNING": _NOTIFY,
    "omni.kit.notification_manager.post_notification": _NOTIFY,
    "omni.kit.window.filepicker.FilePickerDialog":
        "https://docs.omniverse.nvidia.com/kit/docs/omni.kit.window.filepicker/latest/"
        "omni.kit.window.filepicker.FilePickerDialog.html",
    "omni.physx.get_physx_scene_query_interface": _PHYSX,
    "omni.replicator.core.AnnotatorRegistry.get_annotator": _REPLICATOR,
    "omni.replicator.core.create.render_product": _REPLICATOR,
    "omni.timeline.get_timeline_interface": "https://docs.omniverse.nvidia.com/kit/docs/omni.timeline/latest/",
    "omni.ui.Button": _OMNI_UI,
    "omni.ui.CheckBox": _OMNI_UI,
    "omni.ui.ComboBox": _OMNI_UI,
    "omni.ui.HStack": _OMNI_UI,
    "omni.ui.Label": _OMNI_UI,
    "omni.ui.ProgressBar": _OMNI_UI,
    "omni.ui.StringField": _OMNI_UI,
    "omni.ui.VStack": _OMNI_UI,
    "omni.ui.Window": _OMNI_UI,
    "omni.usd.get_context": _USD,
}
"""Every omni.*/carb name the extension and backend use -> the page that defines it."""

KIT_METHODS: dict[str, str] = {
    "raycast_closest": f"{_PHYSX} (PhysXSceneQuery.raycast_closest(origin, dir, distance) -> dict)",
    "raycast_all": f"{_PHYSX} (PhysXSceneQuery.raycast_all(origin, dir, distance, reportFn))",
    "register_action": "omni.kit.actions.core IActionRegistry.register_action(extension_id, action_id, fn, ...)",
    "deregister_all_actions_for_extension": "omni.kit.actions.core IActionRegistry",
    "get_selected_prim_paths": f"{_USD} (Selection)",
    "open_stage_async": f"{_USD} (UsdContext)",
    "next_update_async": _KIT_APP,
    "get_extension_manager": f"{_KIT_APP} (IApp.get_extension_manager)",
    "is_extension_enabled": f"{_EXT} (ExtensionManager)",
    "set_extension_enabled_immediate": f"{_EXT} (ExtensionManager)",
    "get_extension_name": _EXT,
}
"""Methods called on Kit objects (registries, interfaces) that a static check cannot type; listed with their docs."""


# --------------------------------------------------------------------------------------------------- wheels
def wheel_cache() -> Path:
    return Path(os.environ.get("LYRA_ISAAC_WHEEL_CACHE", Path.home() / ".cache" / "lyra_isaac" / "wheels"))


def _cached(cache: Path, name: str) -> Path | None:
    stem = name.replace("-", "_")
    found = sorted(cache.glob(f"{stem}-{ISAACSIM_VERSION}-*.whl"))
    return found[0] if found else None


@contextlib.contextmanager
def _locked(cache: Path):
    with open(cache / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pip_download(cache: Path, requirements: list[str], timeout: float) -> subprocess.CompletedProcess:
    """``pip download`` of Python 3.12 binary wheels, without dependencies, into ``cache`` (nothing is installed)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--python-version", "3.12", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(cache), *requirements]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)


def _index_reachable(project: str) -> tuple[bool, str]:
    """(whether the package index answers for ``project``, the index URL): tells 'no network' from 'bad pin'."""
    import urllib.request

    index = os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple"
    try:
        with urllib.request.urlopen(f"{index.rstrip('/')}/{project}/", timeout=15) as response:
            return response.status == 200, index
    except OSError:
        return False, index


@pytest.fixture(scope="session")
def isaac_wheels() -> list[Path]:
    """The pinned isaacsim-* wheels, downloaded once into the cache (skips without network, fails on a bad pin)."""
    cache = wheel_cache()
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache):  # pytest-xdist workers share the cache
        missing = [n for n in WHEELS if _cached(cache, n) is None]
        if missing:
            result = _pip_download(cache, [f"{n}=={ISAACSIM_VERSION}" for n in missing], timeout=600)
            if result.returncode != 0:
                text = (result.stdout + result.stderr).strip()
                reachable, index = _index_reachable("isaacsim-core")
                if not reachable:
                    pytest.skip(f"cannot download the isaacsim wheels: package index {index} not reachable")
                pytest.fail(f"isaacsim wheels {ISAACSIM_VERSION} could not be downloaded from {index} although it is "
                            f"reachable (wrong pin?):\n{text[-2000:]}")
    wheels = [_cached(cache, n) for n in WHEELS]
    assert all(wheels), wheels
    return wheels


@pytest.fixture(scope="session")
def wheel_index(isaac_wheels) -> WheelIndex:
    return WheelIndex(isaac_wheels)


@pytest.mark.network
def test_isaacsim_api_used_exists_in_wheels(wheel_index):
    assert len(wheel_index) > 200, "the wheels hold too few modules: wrong files?"
    uses = [u for path in SOURCES for u in collect_uses(path)]
    calls = {u.target for u in uses if u.kind == "call"}
    # the collector must see the central calls, or the check below would pass vacuously
    for expected in ("isaacsim.core.experimental.prims.Articulation.set_dof_gains",
                     "isaacsim.core.simulation_manager.SimulationManager.step",
                     "isaacsim.core.experimental.prims.XformPrim",
                     "isaacsim.storage.native.get_assets_root_path_async",
                     "isaacsim.simulation_app.SimulationApp"):
        assert expected in calls, expected
    problems = check_uses(uses, wheel_index)
    assert not problems, f"Isaac Sim {ISAACSIM_VERSION} API mismatches:\n" + "\n".join(problems)


@pytest.mark.network
def test_robot_asset_paths_are_the_ones_isaac_sim_uses(isaac_wheels):
    """robots.py's H1/G1 paths appear in Isaac Sim's own Python sources (examples and tests)."""
    from lyra_isaac.isaac.robots import ROBOTS

    text = "".join(zipfile.ZipFile(w).read(n).decode("utf-8", "replace") for w in isaac_wheels
                   for n in zipfile.ZipFile(w).namelist() if n.endswith(".py"))
    for spec in ROBOTS.values():
        assert spec.usd_relpath in text, spec.usd_relpath


# --------------------------------------------------------------------------------- Kit and pxr names (offline)
def test_every_kit_name_used_is_documented():
    used = set().union(*(collect_names(path) for path in SOURCES))
    undocumented = sorted(used - set(KIT_DOCS))
    stale = sorted(set(KIT_DOCS) - used)
    assert not undocumented, f"Kit names used without a documentation entry in KIT_DOCS: {undocumented}"
    assert not stale, f"KIT_DOCS lists names the code no longer uses: {stale}"
    source = "".join(path.read_text() for path in SOURCES)
    assert not [m for m in KIT_METHODS if f".{m}" not in source], "KIT_METHODS lists methods the code does not call"


def test_pxr_names_exist_in_usd_core():
    """Kit ships pxr; usd-core (installed here) has the same Python API for the names we use."""
    used = set().union(*(collect_names(path, ("pxr",)) for path in SOURCES))
    assert "pxr.Sdf.Layer.FindOrOpen" in used
    missing = []
    for name in sorted(used):
        parts = name.split(".")
        obj = importlib.import_module(f"pxr.{parts[1]}")
        for attr in parts[2:]:
            if not hasattr(obj, attr):
                missing.append(name)
                break
            obj = getattr(obj, attr)
    assert not missing, missing


def test_no_deprecated_omni_isaac_namespace():
    for path in SOURCES:
        assert "omni.isaac." not in path.read_text(), f"{path.name} uses the Isaac Sim 4 namespace omni.isaac.*"


# ------------------------------------------------------------------------------- the checker itself (offline)
FAKE_IMPL = '''
class Base:
    def set_x(self, a, *, indices=None):
        self.cached = a

    @property
    def names(self):
        return []


class Thing(Base):
    def __init__(self, paths, *, positions=None):
        pass

    @classmethod
    def make(cls, n):
        pass


def helper(x, *, y=1):
    pass
'''

FAKE_USER = '''
from isaacsim.fake.prims import Thing, helper
import isaacsim.fake.prims as prims


def good():
    t = Thing("/a", positions=[0, 0, 0])
    t.set_x(1, indices=[0])
    alias = t
    alias.names
    Thing.make(3)
    helper(1, y=2)
    prims.helper(2)


def bad():
    t = Thing("/a", orientation=[1, 0, 0, 0])
    t.set_x(1, 2)
    t.missing_method()
    t.nothing
    helper(1, z=3)
    prims.not_there()
'''


def test_checker_finds_each_kind_of_mismatch(tmp_path):
    wheel = tmp_path / "isaacsim_fake-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        base = "isaacsim/exts/isaacsim.fake/isaacsim/fake/prims"
        archive.writestr(f"{base}/__init__.py", "from .impl.thing import *\n")
        archive.writestr(f"{base}/impl/__init__.py", "")
        archive.writestr(f"{base}/impl/thing.py", FAKE_IMPL)
    user = tmp_path / "user.py"
    user.write_text(FAKE_USER + "\nimport isaacsim.fake.nonexistent\n")
    index = WheelIndex([wheel])
    problems = check_uses(collect_uses(user), index)
    lines = {int(p.split(":")[1]) for p in problems if p.startswith("user.py:") and p.split(":")[1].isdigit()}
    bad_start = FAKE_USER.splitlines().index("def bad():") + 1
    assert lines == set(range(bad_start + 1, bad_start + 7)), "\n".join(problems)
    assert any("orientation" in p for p in problems)
    assert any("takes 1 positional" in p for p in problems)
    assert any("no such module" in p and "nonexistent" in p for p in problems)


# --------------------------------------------------------------- omni.physx scene queries (258 MB wheel: slow)
PHYSICS_WHEEL = "isaacsim-extscache-physics"


@pytest.mark.network
@pytest.mark.slow
def test_physx_scene_query_api_matches_the_omni_physx_stubs():
    """The height scan's PhysX calls against omni.physx's own type stubs (shipped in isaacsim-extscache-physics)."""
    import ast

    cache = wheel_cache()
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache):
        if _cached(cache, PHYSICS_WHEEL) is None:
            result = _pip_download(cache, [f"{PHYSICS_WHEEL}=={ISAACSIM_VERSION}"], timeout=1200)
            if result.returncode != 0:
                pytest.skip(f"cannot download {PHYSICS_WHEEL}: {(result.stdout + result.stderr).strip()[-300:]}")
    archive = zipfile.ZipFile(_cached(cache, PHYSICS_WHEEL))
    names = archive.namelist()
    stub = next(n for n in names if n.endswith("omni/physx/bindings/_physx.pyi") and "/omni.physx-" in n)
    ifaces = next(n for n in names if n.endswith("omni/physx/scripts/ifaces.py") and "/omni.physx-" in n)
    classes = {n.name: n for n in ast.parse(archive.read(stub).decode()).body if isinstance(n, ast.ClassDef)}
    methods = {f.name: f for f in classes["PhysXSceneQuery"].body if isinstance(f, ast.FunctionDef)}
    assert [a.arg for a in methods["raycast_closest"].args.args][:4] == ["self", "origin", "dir", "distance"]
    assert [a.arg for a in methods["raycast_all"].args.args][:5] == ["self", "origin", "dir", "distance", "reportFn"]
    hit_fields = {f.name for c in ("SceneQueryHitLocation", "SceneQueryHitObject") for f in classes[c].body
                  if isinstance(f, ast.FunctionDef)}
    assert {"position", "collision"} <= hit_fields  # what ground_heights reads off raycast_all's hits
    assert "def get_physx_scene_query_interface(" in archive.read(ifaces).decode()
    # raycast_closest's dict: omni.physx's own code reads hitInfo["hit"] and hitInfo["position"] as we do
    sources = "".join(archive.read(n).decode("utf-8", "replace") for n in names
                      if n.endswith(".py") and "/omni.physx" in n)
    assert 'hitInfo["hit"]' in sources and 'hitInfo["position"]' in sources
    ours = (ROOT / "lyra_isaac/envs/backends/isaacsim.py").read_text()
    assert 'hit.get("hit")' in ours and 'hit["position"]' in ours
