"""The world directory: its in-memory model (:class:`World`), world.json (:class:`WorldManifest`), loading,
and atomic writing (:func:`atomic_directory`).

A world lives in metres, Z up, floor at z = 0 (DESIGN.md section 2). Writers of the individual files
(``usd/``, ``mjcf/``, ``preview.py``) take a :class:`World` and a directory; ``convert.py`` and ``batch/``
run them inside :func:`atomic_directory` so an output directory is either complete or absent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, OutputError
from .splats.scene import GaussianScene

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
WORLD_JSON = "world.json"
COLLISION_PLY = "collision.ply"
VISUAL_PLY = "visual.ply"
WORLD_USD = "world.usda"
SPLATS_USD = "splats.usdc"
MJCF_SCENE = "scene.xml"
PREVIEWS_DIR = "previews"


@dataclass
class TriangleMesh:
    """An indexed triangle mesh.

    Attributes:
        vertices: (V, 3) float32, metres, world frame (Z up).
        faces: (F, 3) int32 vertex indices, counter-clockwise seen from outside / above.
        colors: (V, 3) uint8 RGB or None.
    """

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float32).reshape(-1, 3)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int32).reshape(-1, 3)
        if self.colors is not None:
            self.colors = np.ascontiguousarray(self.colors, dtype=np.uint8).reshape(-1, 3)

    @property
    def n_triangles(self) -> int:
        return int(self.faces.shape[0])

    def bounds(self) -> np.ndarray:
        """(2, 3) min and max corner, metres."""
        if len(self.vertices) == 0:
            return np.zeros((2, 3))
        return np.stack([self.vertices.min(axis=0), self.vertices.max(axis=0)]).astype(np.float64)

    def validate(self, name: str = "mesh") -> None:
        """Raise InputError if the mesh has no faces, non-finite vertices or out-of-range indices."""
        if self.n_triangles == 0:
            raise InputError(None, f"{name} has zero faces")
        if not np.isfinite(self.vertices).all():
            raise InputError(None, f"{name} has {int((~np.isfinite(self.vertices)).any(axis=1).sum())} "
                                   "non-finite (NaN/inf) vertices")
        if self.faces.min() < 0 or self.faces.max() >= len(self.vertices):
            raise InputError(None, f"{name} has face indices outside 0..{len(self.vertices) - 1}")


@dataclass
class HeightMap:
    """A 2.5-D grid sampled from the collision surface, used for walkability, MuJoCo height fields and height scans.

    Attributes:
        origin: (x, y) of the centre of cell [0, 0], metres.
        cell_size: cell edge, metres.
        heights: (H, W) float32 top surface height per cell (z, metres); NaN where no surface was hit.
            Row i is y = origin_y + i * cell_size, column j is x = origin_x + j * cell_size.
        walkable: (H, W) bool, cells a robot can stand on (slope, clearance, connectivity).
        clearance: (H, W) float32 free height above the surface, metres (inf where nothing is above).
    """

    origin: tuple[float, float]
    cell_size: float
    heights: np.ndarray
    walkable: np.ndarray
    clearance: np.ndarray | None = None

    def cell_of(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2) points -> (rows, cols) integer cell indices (may lie outside the grid)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        cols = np.floor((xy[:, 0] - self.origin[0]) / self.cell_size + 0.5).astype(np.int64)
        rows = np.floor((xy[:, 1] - self.origin[1]) / self.cell_size + 0.5).astype(np.int64)
        return rows, cols

    def height_at(self, xy: np.ndarray) -> np.ndarray:
        """(N,) surface height at (N, 2) points (nearest cell); NaN outside the grid or over holes."""
        rows, cols = self.cell_of(xy)
        h, w = self.heights.shape
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        out = np.full(rows.shape, np.nan, dtype=np.float32)
        out[inside] = self.heights[rows[inside], cols[inside]]
        return out

    def is_walkable(self, xy: np.ndarray) -> np.ndarray:
        """(N,) bool: the nearest cell of each (N, 2) point is walkable."""
        rows, cols = self.cell_of(xy)
        h, w = self.walkable.shape
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        out = np.zeros(rows.shape, dtype=bool)
        out[inside] = self.walkable[rows[inside], cols[inside]]
        return out

    def save(self, path: Path) -> None:
        clearance = self.clearance if self.clearance is not None else np.full_like(self.heights, np.inf)
        np.savez_compressed(path, origin=np.asarray(self.origin), cell_size=self.cell_size,
                            heights=self.heights, walkable=self.walkable, clearance=clearance)

    @classmethod
    def load(cls, path: Path) -> HeightMap:
        with np.load(path) as data:
            return cls(origin=tuple(float(v) for v in data["origin"]), cell_size=float(data["cell_size"]),
                       heights=data["heights"], walkable=data["walkable"].astype(bool),
                       clearance=data["clearance"])


HEIGHTMAP_NPZ = "heightmap.npz"


@dataclass
class WorldManifest:
    """world.json, format_version 1 (DESIGN.md section 2). Unknown keys in a file are kept in ``extra``."""

    source: dict[str, Any]
    """``path``, ``sha256``, ``format``, ``gaussians`` (count in the file)."""
    source_to_world: list[list[float]]
    """4x4 row-major; ``p_world = M @ [p_src, 1]`` (rotation, scale factor, floor offset)."""
    scale_factor: float
    bounds: list[list[float]]
    """[[xmin, ymin, zmin], [xmax, ymax, zmax]] of the collision surface, metres."""
    walkable_area_m2: float
    spawn_points: list[list[float]]
    """Each [x, y, z, yaw]: metres (z = floor height under the point), yaw in radians about +Z."""
    files: dict[str, str]
    stats: dict[str, Any]
    config: dict[str, Any]
    version: str
    goal_points: list[list[float]] = field(default_factory=list)
    up_axis: str = "Z"
    meters_per_unit: float = 1.0
    floor_height: float = 0.0
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "extra"}
        data.update(self.extra)
        return _jsonable(data)

    @classmethod
    def from_json_dict(cls, data: dict[str, Any], path: Path | None = None) -> WorldManifest:
        required = ["source", "source_to_world", "scale_factor", "bounds", "walkable_area_m2", "spawn_points",
                    "files", "stats", "config", "version"]
        missing = [k for k in required if k not in data]
        if missing:
            raise InputError(path, f"world.json lacks required key(s): {', '.join(missing)}")
        if data.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
            raise InputError(path, f"world.json format_version {data.get('format_version')} is not supported "
                                   f"(this lyra_isaac reads {FORMAT_VERSION})")
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        manifest = cls(**kwargs, extra=extra)
        matrix = np.asarray(manifest.source_to_world, dtype=np.float64)
        if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
            raise InputError(path, "world.json source_to_world is not a finite 4x4 matrix")
        spawns = np.asarray(manifest.spawn_points, dtype=np.float64).reshape(-1, 4) if manifest.spawn_points else None
        if spawns is not None and not np.isfinite(spawns).all():
            raise InputError(path, "world.json spawn_points hold non-finite values")
        return manifest


@dataclass
class World:
    """A converted world in memory: what the writers (USD, MJCF, previews, PLY) consume.

    Attributes:
        collision: static collision surface, metres, world frame.
        visual: vertex-coloured render mesh (may be the collision mesh with colours).
        heightmap: 2.5-D sampling of the collision surface with the walkable mask.
        spawn_points: (S, 4) float64 [x, y, z, yaw], metres / radians.
        goal_points: (G, 3) float64 goal candidates on reachable walkable floor, metres.
        splats: cleaned Gaussians in the world frame for rendering, or None.
        manifest: the world.json content.
    """

    collision: TriangleMesh
    visual: TriangleMesh | None
    heightmap: HeightMap
    spawn_points: np.ndarray
    goal_points: np.ndarray
    manifest: WorldManifest
    splats: GaussianScene | None = None


@dataclass
class WorldDir:
    """A world directory on disk, opened with :func:`load_world` (meshes load lazily)."""

    path: Path
    manifest: WorldManifest

    def file(self, key: str) -> Path:
        """Absolute path of a file named in ``manifest.files`` (key such as ``"usd"``, ``"mjcf"``)."""
        if key not in self.manifest.files:
            raise InputError(self.path, f"world.json lists no '{key}' file")
        return self.path / self.manifest.files[key]

    @property
    def spawn_points(self) -> np.ndarray:
        """(S, 4) float64 [x, y, z, yaw]."""
        return np.asarray(self.manifest.spawn_points, dtype=np.float64).reshape(-1, 4)

    @property
    def goal_points(self) -> np.ndarray:
        """(G, 3) float64."""
        return np.asarray(self.manifest.goal_points, dtype=np.float64).reshape(-1, 3)

    def collision_mesh(self) -> TriangleMesh:
        return read_mesh_ply(self.file("collision"))

    def heightmap(self) -> HeightMap:
        return HeightMap.load(self.file("heightmap"))


def load_world(path: str | Path) -> WorldDir:
    """Open a world directory and parse its world.json; raises InputError naming the fault."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(path, "is not a world directory (no such directory)")
    manifest_path = path / WORLD_JSON
    if not manifest_path.is_file():
        raise InputError(path, f"is not a world directory ({WORLD_JSON} missing)")
    try:
        data = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(manifest_path, f"corrupt JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(manifest_path, "corrupt world.json: top level is not an object")
    return WorldDir(path=path, manifest=WorldManifest.from_json_dict(data, manifest_path))


def write_manifest(manifest: WorldManifest, directory: Path) -> Path:
    """Write world.json into ``directory``."""
    target = directory / WORLD_JSON
    target.write_text(json.dumps(manifest.to_json_dict(), indent=2) + "\n")
    return target


def write_mesh_ply(mesh: TriangleMesh, path: Path) -> None:
    """Binary little-endian PLY with float32 x y z, optional uchar red green blue, int32 vertex_indices."""
    mesh.validate(path.name)
    n_v, n_f = len(mesh.vertices), mesh.n_triangles
    props = "property float x\nproperty float y\nproperty float z\n"
    vertex_dtype = [("xyz", "<f4", 3)]
    if mesh.colors is not None:
        props += "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        vertex_dtype.append(("rgb", "u1", 3))
    header = (f"ply\nformat binary_little_endian 1.0\ncomment lyra_isaac\nelement vertex {n_v}\n{props}"
              f"element face {n_f}\nproperty list uchar int vertex_indices\nend_header\n")
    vertices = np.empty(n_v, dtype=vertex_dtype)
    vertices["xyz"] = mesh.vertices
    if mesh.colors is not None:
        vertices["rgb"] = mesh.colors
    faces = np.empty(n_f, dtype=[("n", "u1"), ("idx", "<i4", 3)])
    faces["n"] = 3
    faces["idx"] = mesh.faces
    with path.open("wb") as handle:
        handle.write(header.encode("ascii"))
        handle.write(vertices.tobytes())
        handle.write(faces.tobytes())


def read_mesh_ply(path: Path) -> TriangleMesh:
    """Read a triangle-mesh PLY (any layout trimesh reads); raises InputError on failure."""
    import trimesh

    try:
        loaded = trimesh.load(path, process=False, force="mesh")
    except Exception as exc:  # trimesh raises many types
        raise InputError(path, f"cannot read mesh: {exc}") from None
    colors = None
    visual = getattr(loaded, "visual", None)
    if visual is not None and getattr(visual, "kind", None) == "vertex":
        colors = np.asarray(visual.vertex_colors)[:, :3]
    mesh = TriangleMesh(np.asarray(loaded.vertices), np.asarray(loaded.faces), colors)
    return mesh


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 24) -> str:
    """Hex SHA-256 of a file, read in 16 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_directory(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Build a directory atomically: yield a temp dir beside ``target``; on success rename it into place.

    On any exception the temp dir is removed and ``target`` is untouched. With ``overwrite`` an existing
    target is replaced (moved aside, then deleted after the rename succeeds).

    Raises:
        OutputError: target exists and overwrite is False, or its parent cannot be created or written.
    """
    target = Path(target).absolute()
    if target.exists() and not overwrite:
        raise OutputError(target, "output directory exists (pass --overwrite / overwrite=True to replace it)")
    if target.exists() and not target.is_dir():
        raise OutputError(target, "output path exists and is not a directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as exc:
        raise OutputError(target, f"cannot create output directory: {exc.strerror or exc}") from None
    try:
        yield temp
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            os.replace(target, old)
        os.replace(temp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
