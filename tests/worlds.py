"""Analytic test worlds with exactly known surfaces, for testing the writers (USD, MJCF, previews) and the envs
without running the conversion pipeline.

``make_valley_world()``: an 8 x 8 m terrain, Z up, metres: a flat floor strip |x| < 1 m at z = 0 between two
slopes rising at 0.25 m/m (a concave valley: its convex hull would fill it), a 0.5 m box obstacle at (2.5, 2.5)
and a 0.2 m step platform at (-2.5, -2.5). ``surface_height(x, y)`` is the exact top surface.
"""

from __future__ import annotations

import numpy as np
import trimesh

from lyra_isaac import __version__
from lyra_isaac.splats.scene import SH_C0, GaussianScene
from lyra_isaac.world import HeightMap, TriangleMesh, World, WorldManifest

HALF_EXTENT = 4.0
FLOOR_HALF_WIDTH = 1.0
SLOPE = 0.25
BOX_CENTER, BOX_SIZE = (2.5, 2.5), 0.5
STEP_CENTER, STEP_SIZE, STEP_HEIGHT = (-2.5, -2.5), 1.0, 0.2
SPAWN_POINTS = np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 1.0], [0.0, -2.0, 0.0, -1.0],
                         [-2.5, -2.5, 0.0, 0.5]])
"""(x, y, z, yaw); z is filled from surface_height() by make_valley_world()."""


def terrain_height(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Height of the valley terrain (without box and step), metres."""
    return SLOPE * np.maximum(np.abs(np.asarray(x)) - FLOOR_HALF_WIDTH, 0.0) + 0.0 * np.asarray(y)


def surface_height(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Exact top-surface height of the whole world at (x, y), metres."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    z = terrain_height(x, y)
    in_box = (np.abs(x - BOX_CENTER[0]) <= BOX_SIZE / 2) & (np.abs(y - BOX_CENTER[1]) <= BOX_SIZE / 2)
    z = np.where(in_box, terrain_height(BOX_CENTER[0], BOX_CENTER[1]) + BOX_SIZE, z)
    in_step = (np.abs(x - STEP_CENTER[0]) <= STEP_SIZE / 2) & (np.abs(y - STEP_CENTER[1]) <= STEP_SIZE / 2)
    step_top = terrain_height(STEP_CENTER[0] + STEP_SIZE / 2, 0.0) + STEP_HEIGHT
    return np.where(in_step, step_top, z)


def _terrain_mesh(cells: int = 64) -> trimesh.Trimesh:
    xs = np.linspace(-HALF_EXTENT, HALF_EXTENT, cells + 1)
    # put grid lines exactly on the valley creases so the mesh is exact
    xs = np.unique(np.concatenate([xs, [-FLOOR_HALF_WIDTH, FLOOR_HALF_WIDTH]]))
    ys = np.linspace(-HALF_EXTENT, HALF_EXTENT, cells + 1)
    gx, gy = np.meshgrid(xs, ys)
    vertices = np.stack([gx.ravel(), gy.ravel(), terrain_height(gx, gy).ravel()], axis=1)
    nx = len(xs)
    i, j = np.meshgrid(np.arange(len(ys) - 1), np.arange(nx - 1), indexing="ij")
    a = (i * nx + j).ravel()
    b, c, d = a + 1, a + nx, a + nx + 1
    faces = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    return trimesh.Trimesh(vertices, faces, process=False)


def _box(center_xy, size_xy, bottom, top) -> trimesh.Trimesh:
    box = trimesh.creation.box(extents=(size_xy, size_xy, top - bottom))
    box.apply_translation((center_xy[0], center_xy[1], (top + bottom) / 2))
    return box


def make_collision_mesh() -> TriangleMesh:
    """The world's collision surface: terrain + box + step (boxes sink 0.3 m into the terrain)."""
    box_base = float(terrain_height(BOX_CENTER[0], 0.0))
    step_base = float(terrain_height(STEP_CENTER[0] + STEP_SIZE / 2, 0.0))
    parts = [
        _terrain_mesh(),
        _box(BOX_CENTER, BOX_SIZE, box_base - 0.3, box_base + BOX_SIZE),
        _box(STEP_CENTER, STEP_SIZE, step_base - 0.5, step_base + STEP_HEIGHT),
    ]
    merged = trimesh.util.concatenate(parts)
    return TriangleMesh(np.asarray(merged.vertices), np.asarray(merged.faces))


def make_heightmap(cell_size: float = 0.05) -> HeightMap:
    n = int(round(2 * HALF_EXTENT / cell_size))
    centers = -HALF_EXTENT + cell_size * (np.arange(n) + 0.5)
    gx, gy = np.meshgrid(centers, centers)
    heights = surface_height(gx, gy).astype(np.float32)
    gz_y, gz_x = np.gradient(heights, cell_size)
    walkable = np.hypot(gz_x, gz_y) < np.tan(np.radians(30))
    in_box = (np.abs(gx - BOX_CENTER[0]) <= BOX_SIZE / 2 + 0.1) & (np.abs(gy - BOX_CENTER[1]) <= BOX_SIZE / 2 + 0.1)
    walkable &= ~in_box
    return HeightMap(origin=(float(centers[0]), float(centers[0])), cell_size=cell_size, heights=heights,
                     walkable=walkable, clearance=np.full_like(heights, np.inf))


def make_splats(n: int = 20000, seed: int = 0) -> GaussianScene:
    """Flat-ish Gaussians lying on the surface, world frame, coloured by height."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-HALF_EXTENT, HALF_EXTENT, size=(n, 2))
    z = surface_height(xy[:, 0], xy[:, 1])
    means = np.column_stack([xy, z]).astype(np.float32)
    color = np.column_stack([0.3 + 0.5 * z / z.max(), np.full(n, 0.5), 0.8 - 0.5 * z / z.max()])
    quats = rng.normal(size=(n, 4)).astype(np.float32)
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    return GaussianScene(
        means=means,
        quats=quats,
        log_scales=np.log(np.full((n, 3), 0.03, dtype=np.float32) * rng.uniform(0.5, 1.5, (n, 3))).astype(np.float32),
        opacity_logits=rng.uniform(1, 5, n).astype(np.float32),
        sh_dc=((color - 0.5) / SH_C0).astype(np.float32),
        frame="world",
    )


def make_valley_world(with_splats: bool = True) -> World:
    """A complete in-memory World over the analytic valley terrain (see module docstring)."""
    collision = make_collision_mesh()
    heightmap = make_heightmap()
    spawns = SPAWN_POINTS.copy()
    spawns[:, 2] = surface_height(spawns[:, 0], spawns[:, 1])
    goals = np.array([[0.0, 3.0, 0.0], [0.0, -3.0, 0.0]])
    colors = np.tile(np.array([[150, 140, 120]], dtype=np.uint8), (len(collision.vertices), 1))
    visual = TriangleMesh(collision.vertices, collision.faces, colors)
    bounds = collision.bounds()
    manifest = WorldManifest(
        source={"path": "analytic://valley", "sha256": "0" * 64, "format": "analytic", "gaussians": 20000},
        source_to_world=np.eye(4).tolist(),
        scale_factor=1.0,
        bounds=bounds.tolist(),
        walkable_area_m2=float(heightmap.walkable.sum() * heightmap.cell_size**2),
        spawn_points=spawns.tolist(),
        goal_points=goals.tolist(),
        files={},
        stats={"collision_triangles": collision.n_triangles},
        config={},
        version=__version__,
    )
    return World(collision=collision, visual=visual, heightmap=heightmap, spawn_points=spawns, goal_points=goals,
                 manifest=manifest, splats=make_splats() if with_splats else None)
