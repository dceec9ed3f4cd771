"""Which worlds an environment runs on: world directories, lists, folders of worlds, batch outputs, the default.

``world=`` accepts

* a world directory (``world.json`` inside),
* a list of world directories,
* a folder whose sub-folders are worlds, or a batch output root with ``index.json`` (entries with
  ``"status": "complete"`` and ``world_dir`` or ``name``; other entries are skipped),
* ``None``: the default world, built on first use into the user cache
  (``$LYRA_ISAAC_CACHE`` or ``$XDG_CACHE_HOME/lyra_isaac`` or ``~/.cache/lyra_isaac``, then
  ``worlds/default-<version>-r<revision>``). Building is safe when many processes start at once (async vector envs): one
  builds under an exclusive file lock into a temp folder renamed into place; the others wait and reuse it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..world import (
    COLLISION_PLY,
    HEIGHTMAP_NPZ,
    VISUAL_PLY,
    WORLD_JSON,
    HeightMap,
    TriangleMesh,
    World,
    WorldDir,
    WorldManifest,
    load_world,
    write_manifest,
    write_mesh_ply,
)

logger = logging.getLogger(__name__)

CACHE_ENV = "LYRA_ISAAC_CACHE"
INDEX_JSON = "index.json"
DEFAULT_WORLD_PREFIX = "default-"
DEFAULT_WORLD_REVISION = 8
"""Bump when the default world's content changes, so caches built by older code are not reused."""


def cache_dir() -> Path:
    """User cache folder of lyra_isaac (``$LYRA_ISAAC_CACHE``, else ``$XDG_CACHE_HOME/lyra_isaac``, else ~/.cache)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "lyra_isaac"


def resolve_worlds(world: Any) -> list[WorldDir]:
    """The world directories named by ``world`` (see module docstring), each opened and checked.

    Raises:
        InputError: a path is missing or not a world, a folder holds no world, a world has no spawn points, or its
            world.json lists no MuJoCo scene or height map.
    """
    if world is None or world == "":
        paths = [default_world()]
    elif isinstance(world, (str, os.PathLike)):
        paths = _expand(Path(world).expanduser())
    elif isinstance(world, Sequence):
        paths = [p for item in world for p in _expand(Path(item).expanduser())]
        if not paths:
            raise InputError(None, "world: the list of worlds is empty")
    else:
        raise InputError(None, f"world: expected a path, a list of paths or None, got {type(world).__name__}")
    worlds = [load_world(p) for p in paths]
    for w in worlds:
        if len(w.spawn_points) == 0:
            raise InputError(w.path, "world has no spawn points; the environment cannot place a robot")
        for key in ("mjcf", "heightmap"):
            path = w.file(key)
            if not path.is_file():
                raise InputError(path, f"world file '{key}' listed in world.json is missing")
    return worlds


def _expand(path: Path) -> list[Path]:
    if not path.exists():
        raise InputError(path, "world: no such file or directory")
    if (path / WORLD_JSON).is_file():
        return [path]
    if (path / INDEX_JSON).is_file():
        found = read_index(path)
        if not found:
            raise InputError(path / INDEX_JSON, "lists no complete world")
        return found
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if (p / WORLD_JSON).is_file())
        if not found:
            raise InputError(path, f"is neither a world directory nor a folder of worlds (no {WORLD_JSON})")
        return found
    raise InputError(path, "world: expected a world directory")


def read_index(root: Path) -> list[Path]:
    """World directories of a batch output root's ``index.json`` whose status is ``complete``.

    Tolerates a top-level list or an object with ``worlds``/``entries``/``scenes`` (list or dict keyed by name);
    an entry's folder is ``world_dir`` (absolute or relative to ``root``) or ``name``.
    """
    try:
        data = json.loads((root / INDEX_JSON).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(root / INDEX_JSON, f"cannot read batch index: {exc}") from None
    entries: Any = data
    if isinstance(data, dict):
        for key in ("worlds", "entries", "scenes", "items"):
            if key in data:
                entries = data[key]
                break
    if isinstance(entries, dict):
        entries = [dict(v, name=v.get("name", k)) if isinstance(v, dict) else {} for k, v in entries.items()]
    out = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("status") != "complete":
            continue
        rel = entry.get("world_dir") or entry.get("name")
        if not rel:
            continue
        candidate = Path(rel) if Path(rel).is_absolute() else root / rel
        if (candidate / WORLD_JSON).is_file():
            out.append(candidate)
        else:
            logger.warning("%s: index entry %s marked complete but %s is missing", root, rel, candidate / WORLD_JSON)
    return out


# ---------------------------------------------------------------- writing a world directory for the envs


def write_world_dir(world: World, directory: Path, mjcf_cfg: Any = None) -> WorldDir:
    """Write the files the environments need (world.json, collision/visual PLY, heightmap.npz, scene.xml).

    ``convert`` writes complete worlds (USD and previews too); this is for test and default worlds built in memory.
    """
    from ..mjcf.scene import write_mjcf_scene

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = dict(world.manifest.files)
    write_mesh_ply(world.collision, directory / COLLISION_PLY)
    files["collision"] = COLLISION_PLY
    if world.visual is not None:
        write_mesh_ply(world.visual, directory / VISUAL_PLY)
        files["visual"] = VISUAL_PLY
    world.heightmap.save(directory / HEIGHTMAP_NPZ)
    files["heightmap"] = HEIGHTMAP_NPZ
    files.update(write_mjcf_scene(world, directory, mjcf_cfg))
    world.manifest.files = files
    write_manifest(world.manifest, directory)
    return load_world(directory)


# ---------------------------------------------------------------- the default world


def default_world() -> Path:
    """Path of the default world, building it into the cache on first use (process-safe)."""
    from .. import __version__

    root = cache_dir() / "worlds"
    target = root / f"{DEFAULT_WORLD_PREFIX}{__version__}-r{DEFAULT_WORLD_REVISION}"
    if (target / WORLD_JSON).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / f".{target.name}.lock"):
        if (target / WORLD_JSON).is_file():  # another process built it while we waited
            return target
        temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=root))
        try:
            logger.info("building the default world into %s (first use)", target)
            build_default_world(temp)
            if target.exists():
                shutil.rmtree(target)
            os.replace(temp, target)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
    return target


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


DEFAULT_WORLD_SOURCE = "synthetic"
"""``"analytic"``: :func:`analytic_world` written with the writers (fast, exact). ``"synthetic"``: convert a
generated Lyra 2.0-format scene (``lyra_isaac.synthetic`` + ``lyra_isaac.convert``), i.e. a world made the way
users' worlds are made. Bump DEFAULT_WORLD_REVISION together with this switch."""
DEFAULT_SYNTHETIC_SCENE = "terrain"


def build_default_world(directory: Path) -> None:
    """Write the default world into ``directory`` (see DEFAULT_WORLD_SOURCE)."""
    if DEFAULT_WORLD_SOURCE == "synthetic":
        from ..convert import convert
        from ..synthetic import make_fixture

        with tempfile.TemporaryDirectory(prefix="lyra_default_scene-") as scratch:
            fixture = make_fixture(DEFAULT_SYNTHETIC_SCENE, Path(scratch) / "scene", seed=0, overwrite=True)
            # the generated camera path walks at eye height, as Lyra's does: that fixes the scene's scale error
            convert(fixture.ply_path, directory, camera_height=fixture.eye_height_m, overwrite=True)
    else:
        write_world_dir(analytic_world(), directory)


def _terrain(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Default terrain height (m): flat centre, gentle hills towards the rim, a 0.15 m platform and a ramp."""
    r = np.hypot(x, y)
    hills = 0.35 * np.clip((r - 3.0) / 4.0, 0.0, None) ** 2 * (1.0 + 0.3 * np.sin(1.3 * x) * np.cos(0.9 * y))
    platform = np.where((np.abs(x - 3.0) < 1.0) & (np.abs(y + 2.5) < 1.0), 0.15, 0.0)
    ramp = np.where((np.abs(y - 3.0) < 0.8) & (x > -4.0) & (x < -1.0), 0.1 * (x + 4.0) / 3.0, 0.0)
    return hills + platform + ramp


def analytic_world(half_extent: float = 7.0, cell_size: float = 0.05) -> World:
    """An in-memory 14 x 14 m world with an exactly known surface (flat centre, hills, a platform, a ramp, a box)."""
    from .. import __version__

    n = int(round(2 * half_extent / cell_size))
    centers = -half_extent + cell_size * (np.arange(n) + 0.5)
    gx, gy = np.meshgrid(centers, centers)
    heights = _terrain(gx, gy)
    box = (np.abs(gx + 2.5) <= 0.4) & (np.abs(gy + 2.5) <= 0.4)
    heights = np.where(box, heights + 0.6, heights).astype(np.float32)
    gz_y, gz_x = np.gradient(heights, cell_size)
    walkable = np.hypot(gz_x, gz_y) < np.tan(np.radians(25))
    from scipy import ndimage

    walkable &= ~ndimage.binary_dilation(box, iterations=4)
    walkable &= ndimage.binary_erosion(np.ones_like(walkable), iterations=6, border_value=0)
    hm = HeightMap(origin=(float(centers[0]), float(centers[0])), cell_size=cell_size, heights=heights,
                   walkable=walkable, clearance=np.full_like(heights, np.inf))
    # collision mesh: the height map triangulated at 10 cm (the box and platform walls become steep faces)
    step = 2
    sub = heights[::step, ::step]
    xs = centers[::step]
    vx, vy = np.meshgrid(xs, xs)
    vertices = np.stack([vx.ravel(), vy.ravel(), sub.ravel()], axis=1)
    m = len(xs)
    i, j = np.meshgrid(np.arange(m - 1), np.arange(m - 1), indexing="ij")
    a = (i * m + j).ravel()
    faces = np.concatenate([np.stack([a, a + 1, a + m + 1], 1), np.stack([a, a + m + 1, a + m], 1)])
    shade = np.clip(120 + 200 * sub.ravel(), 0, 255).astype(np.uint8)
    colors = np.stack([shade, np.full_like(shade, 140), np.full_like(shade, 110)], axis=1)
    collision = TriangleMesh(vertices, faces)
    visual = TriangleMesh(vertices, faces, colors)
    # spawn on the flat centre: episodes start on the floor plane, obstacles are walked to
    spawns = np.array([[0.0, 0.0, 0.0, 0.0], [1.5, 1.0, 0.0, 1.57], [-1.0, 1.5, 0.0, 3.14], [1.0, -1.5, 0.0, -1.0],
                       [-1.5, -0.5, 0.0, 0.5]])
    spawns[:, 2] = _terrain(spawns[:, 0], spawns[:, 1])
    goals = np.array([[4.0, 0.0, 0.0], [-3.0, 3.0, 0.0], [0.0, -4.0, 0.0], [3.0, 3.5, 0.0]])
    goals[:, 2] = _terrain(goals[:, 0], goals[:, 1])
    manifest = WorldManifest(
        source={"path": "analytic://default", "sha256": "0" * 64, "format": "analytic", "gaussians": 0},
        source_to_world=np.eye(4).tolist(), scale_factor=1.0, bounds=collision.bounds().tolist(),
        walkable_area_m2=float(walkable.sum() * cell_size**2), spawn_points=spawns.tolist(),
        goal_points=goals.tolist(), files={}, stats={"collision_triangles": collision.n_triangles},
        config={"generator": "lyra_isaac.envs.worlds.analytic_world"}, version=__version__)
    return World(collision=collision, visual=visual, heightmap=hm, spawn_points=spawns, goal_points=goals,
                 manifest=manifest)


def analytic_height(xy: np.ndarray) -> np.ndarray:
    """(N,) exact surface height of :func:`analytic_world` at (N, 2) points (box included), metres."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    z = _terrain(xy[:, 0], xy[:, 1])
    box = (np.abs(xy[:, 0] + 2.5) <= 0.4) & (np.abs(xy[:, 1] + 2.5) <= 0.4)
    return np.where(box, z + 0.6, z)
