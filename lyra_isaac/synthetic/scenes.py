"""Synthetic scenes whose geometry is known exactly: triangle meshes built from boxes, wedges, rocks and height fields.

Every builder returns a :class:`SyntheticScene` in the **truth world frame**: metres, Z up, the main floor at
z = 0. Each scene carries a hand-laid *route*, an xy polyline through free space (through doorways, up stairs and
ramps, around furniture and rocks) that the camera path follows at eye height (:mod:`lyra_isaac.synthetic.path`).

Scenes (``SCENES`` maps the name to the builder):

- ``apartment``: two rooms joined by a doorway, a stair of 7 steps (0.15 m rise, 0.28 m tread) up to a landing at
  1.05 m, furniture boxes, ceiling at 3.2 m (no sky).
- ``terrain``: outdoor smooth height field (a few decimetres of relief), a 14 degree ramp up to a 0.6 m platform,
  stairs down, rocks and boxes; open sky.
- ``corridor``: a 2 m wide corridor with a 0.15 m step up halfway, crates along the walls, ceiling at 2.6 m.
- ``courtyard``: an open square enclosed by 3 m walls, pillars, benches and planters; open sky.

``size`` scales the footprint (room sizes, extent) but not the standard feature sizes (steps, doors, furniture);
``seed`` jitters furniture, rocks, colours and the terrain relief. Builders are deterministic given both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError

logger = logging.getLogger(__name__)

WALL_THICKNESS_M = 0.15
STEP_RISE_M = 0.15
STEP_TREAD_M = 0.28
FLOOR_SLAB_M = 0.2
"""Thickness of floor slabs below z = 0 (their top face is the floor)."""


@dataclass
class SyntheticScene:
    """A truth scene: the mesh and a route for the cameras.

    Attributes:
        name: builder name (a key of :data:`SCENES`).
        vertices: (V, 3) float64, metres, truth world frame (Z up, main floor at z = 0).
        faces: (F, 3) int64 vertex indices.
        colors: (V, 3) float32 base RGB in [0, 1] per vertex (renders add procedural texture and shading).
        route: (K, 2) float64 xy waypoints, metres: a polyline through free space, at least 0.4 m from obstacles.
        sky: True when rays can escape (outdoor scenes); indoor scenes are closed by a ceiling.
        params: the builder arguments (size, seed) and derived dimensions, for the truth record.
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray
    route: np.ndarray
    sky: bool
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_triangles(self) -> int:
        return int(self.faces.shape[0])

    def bounds(self) -> np.ndarray:
        """(2, 3) min and max corner of the mesh, metres."""
        return np.stack([self.vertices.min(axis=0), self.vertices.max(axis=0)])

    def to_mesh(self):
        """The truth as a :class:`lyra_isaac.world.TriangleMesh` (uint8 vertex colours)."""
        from ..world import TriangleMesh

        return TriangleMesh(self.vertices, self.faces, np.round(self.colors * 255).astype(np.uint8))

    def to_trimesh(self):
        """The truth as a ``trimesh.Trimesh`` with vertex colours (not merged or processed)."""
        import trimesh

        rgba = np.concatenate([np.round(self.colors * 255), np.full((len(self.colors), 1), 255)], axis=1)
        return trimesh.Trimesh(self.vertices, self.faces, vertex_colors=rgba.astype(np.uint8), process=False)


class _MeshBuilder:
    """Accumulates parts (vertices, faces, per-vertex colours) into one mesh."""

    def __init__(self) -> None:
        self.vertices: list[np.ndarray] = []
        self.faces: list[np.ndarray] = []
        self.colors: list[np.ndarray] = []
        self.count = 0

    def add(self, vertices: np.ndarray, faces: np.ndarray, color: np.ndarray) -> None:
        vertices = np.asarray(vertices, dtype=np.float64)
        color = np.asarray(color, dtype=np.float64)
        colors = np.broadcast_to(color, vertices.shape).astype(np.float32) if color.ndim == 1 else color
        self.vertices.append(vertices)
        self.faces.append(np.asarray(faces, dtype=np.int64) + self.count)
        self.colors.append(np.asarray(colors, dtype=np.float32))
        self.count += len(vertices)

    def box(self, lo: tuple[float, float, float], hi: tuple[float, float, float], color) -> None:
        """Axis-aligned box from corner ``lo`` to corner ``hi`` (metres), faces outward."""
        lo_a, hi_a = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        if np.any(hi_a <= lo_a):
            raise ValueError(f"empty box {lo} -> {hi}")
        corners = np.array([[x, y, z] for z in (lo_a[2], hi_a[2]) for y in (lo_a[1], hi_a[1])
                            for x in (lo_a[0], hi_a[0])])
        # corner index = x + 2 y + 4 z (bits); faces counter-clockwise seen from outside
        faces = np.array([
            [0, 2, 3], [0, 3, 1],  # bottom (-z)
            [4, 5, 7], [4, 7, 6],  # top (+z)
            [0, 1, 5], [0, 5, 4],  # -y
            [2, 6, 7], [2, 7, 3],  # +y
            [0, 4, 6], [0, 6, 2],  # -x
            [1, 3, 7], [1, 7, 5],  # +x
        ])
        self.add(corners, faces, color)

    def wedge(self, x0: float, x1: float, y0: float, y1: float, z_base: float, z_top: float, color) -> None:
        """A ramp rising along +x from ``z_base`` at ``x0`` to ``z_top`` at ``x1``, over y in [y0, y1]."""
        v = np.array([
            [x0, y0, z_base], [x1, y0, z_base], [x1, y0, z_top],
            [x0, y1, z_base], [x1, y1, z_base], [x1, y1, z_top],
        ])
        faces = np.array([
            [0, 2, 1], [3, 4, 5],          # sides (-y, +y)
            [0, 3, 5], [0, 5, 2],          # slope
            [1, 2, 5], [1, 5, 4],          # back (+x)
            [0, 1, 4], [0, 4, 3],          # bottom
        ])
        self.add(v, faces, color)

    def grid(self, xs: np.ndarray, ys: np.ndarray, heights: np.ndarray, colors: np.ndarray) -> None:
        """Height-field surface: ``heights`` (len(ys), len(xs)) metres, ``colors`` (len(ys), len(xs), 3)."""
        gx, gy = np.meshgrid(xs, ys)
        vertices = np.stack([gx, gy, heights], axis=-1).reshape(-1, 3)
        ny, nx = heights.shape
        idx = np.arange(nx * ny).reshape(ny, nx)
        a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
        faces = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)])
        self.add(vertices, faces, colors.reshape(-1, 3))

    def rock(self, center: tuple[float, float, float], radius: float, rng: np.random.Generator, color) -> None:
        """An irregular rock: an icosphere with radially jittered vertices, flattened a little."""
        import trimesh

        sphere = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
        v = np.asarray(sphere.vertices)
        bumps = 1.0 + 0.18 * rng.standard_normal(len(v)).clip(-2, 2)
        v = v * bumps[:, None] * radius * np.array([1.0, rng.uniform(0.7, 1.2), rng.uniform(0.5, 0.8)])
        self.add(v + np.asarray(center), np.asarray(sphere.faces), color)

    def build(self, name: str, route: np.ndarray, sky: bool, params: dict[str, Any]) -> SyntheticScene:
        return SyntheticScene(
            name=name,
            vertices=np.concatenate(self.vertices),
            faces=np.concatenate(self.faces),
            colors=np.concatenate(self.colors).clip(0, 1),
            route=np.asarray(route, dtype=np.float64),
            sky=sky,
            params=params,
        )


def _jitter_color(rng: np.random.Generator, base: tuple[float, float, float], amount: float = 0.08) -> np.ndarray:
    return np.clip(np.asarray(base) + rng.uniform(-amount, amount, 3), 0.02, 0.98)


def _walls_with_openings(b: _MeshBuilder, axis: str, at: float, start: float, stop: float, height: float,
                         openings: list[tuple[float, float, float]], color) -> None:
    """A straight wall of thickness WALL_THICKNESS_M centred on ``x = at`` (axis "x") or ``y = at`` (axis "y"),
    running from ``start`` to ``stop``, with door openings ``(lo, hi, door_height)`` (lintel above each)."""
    t = WALL_THICKNESS_M / 2
    cuts = sorted(openings)
    pos = start
    pieces: list[tuple[float, float, float, float]] = []  # (from, to, z0, z1)
    for lo, hi, door_h in cuts:
        if lo > pos:
            pieces.append((pos, lo, 0.0, height))
        pieces.append((lo, hi, door_h, height))
        pos = hi
    if pos < stop:
        pieces.append((pos, stop, 0.0, height))
    for p0, p1, z0, z1 in pieces:
        if axis == "x":
            b.box((at - t, p0, z0), (at + t, p1, z1), color)
        else:
            b.box((p0, at - t, z0), (p1, at + t, z1), color)


def apartment(size: float = 1.0, seed: int = 0) -> SyntheticScene:
    """Two rooms, a doorway, a stair up to a landing, furniture; ceiling at 3.2 m.

    Args:
        size: footprint scale, 0.9 to 3 (1.0: 10 m x 7 m).
        seed: jitters furniture placement and colours.
    """
    if not 0.9 <= size <= 3.0:
        raise ConfigError(f"apartment size must lie in [0.9, 3.0], got {size}")
    rng = np.random.default_rng(seed)
    b = _MeshBuilder()
    width, depth, ceiling = 10.0 * size, 7.0 * size, 3.2
    t = WALL_THICKNESS_M / 2
    x_wall = 0.6 * width
    door_y, door_w, door_h = 0.3 * depth, 1.0, 2.1
    wall_color = _jitter_color(rng, (0.82, 0.80, 0.74), 0.05)
    # floor slabs (top at z = 0), different colours per room, and the ceiling
    b.box((-t, -t, -FLOOR_SLAB_M), (x_wall, depth + t, 0.0), _jitter_color(rng, (0.55, 0.40, 0.28)))
    b.box((x_wall, -t, -FLOOR_SLAB_M), (width + t, depth + t, 0.0), _jitter_color(rng, (0.45, 0.47, 0.50)))
    b.box((-t, -t, ceiling), (width + t, depth + t, ceiling + FLOOR_SLAB_M), (0.93, 0.93, 0.90))
    # outer walls and the interior wall with its doorway
    _walls_with_openings(b, "y", 0.0, -t, width + t, ceiling, [], wall_color)
    _walls_with_openings(b, "y", depth, -t, width + t, ceiling, [], wall_color)
    _walls_with_openings(b, "x", 0.0, t, depth - t, ceiling, [], wall_color)
    _walls_with_openings(b, "x", width, t, depth - t, ceiling, [], wall_color)
    _walls_with_openings(b, "x", x_wall, t, depth - t, ceiling,
                         [(door_y - door_w / 2, door_y + door_w / 2, door_h)], _jitter_color(rng, (0.75, 0.78, 0.82)))
    # stairs against the east wall, rising towards +y, to a landing against the north wall
    n_steps, stair_w, landing_d = 7, 1.4, 1.4
    sx0, sx1 = width - t - stair_w, width - t
    landing_y0 = depth - t - landing_d
    stair_y0 = landing_y0 - n_steps * STEP_TREAD_M
    landing_z = n_steps * STEP_RISE_M
    stair_color = _jitter_color(rng, (0.62, 0.52, 0.42))
    for i in range(n_steps):
        b.box((sx0, stair_y0 + i * STEP_TREAD_M, 0.0), (sx1, stair_y0 + (i + 1) * STEP_TREAD_M, (i + 1) * STEP_RISE_M),
              stair_color if i % 2 else stair_color * 0.9)
    b.box((sx0, landing_y0, 0.0), (sx1, depth - t, landing_z), stair_color * 0.95)
    # furniture (x0, y0, size x, size y, height, colour): positions as fractions of the room so the layout scales
    furniture = [
        (t + 0.05, 0.14 * depth, 0.9, 2.0, 0.8, (0.30, 0.35, 0.55), (0.0, 0.15)),                 # sofa
        (0.13 * width, 0.17 * depth, 1.2, 0.8, 0.75, (0.50, 0.33, 0.20), (0.15, 0.15)),          # table
        (0.3 * width, depth - t - 0.45, 1.5, 0.43, 1.9, (0.60, 0.45, 0.30), (0.15, 0.0)),        # shelf
        (t + 0.05, depth - t - 0.8, 0.6, 0.75, 1.1, (0.35, 0.55, 0.35), (0.0, 0.0)),             # cabinet
        (x_wall + t + 0.1, 0.69 * depth, 2.0, 1.9, 0.5, (0.75, 0.35, 0.35), (0.0, 0.1)),         # bed
        (x_wall + t + 0.1, t + 0.05, 0.8, 0.5, 0.9, (0.40, 0.40, 0.65), (0.0, 0.0)),             # drawer
    ]
    for x0, y0, sx, sy, h, c, (jx, jy) in furniture:
        x0, y0 = x0 + rng.uniform(-jx, jx), y0 + rng.uniform(-jy, jy)
        b.box((x0, y0, 0.0), (x0 + sx, y0 + sy, h), _jitter_color(rng, c))
    stair_x = 0.5 * (sx0 + sx1)
    route = np.array([
        [0.2 * width, 0.7 * depth],
        [0.4 * width, 0.45 * depth],
        [x_wall - 0.8, door_y],
        [x_wall + 0.8, door_y],
        [stair_x, door_y],
        [stair_x, stair_y0 - 0.4],
        [stair_x, landing_y0 + 0.3],
        [stair_x, depth - t - 0.5],
    ])
    params = dict(size=size, seed=seed, width=width, depth=depth, ceiling=ceiling, landing_z=landing_z,
                  n_steps=n_steps, step_rise=STEP_RISE_M)
    return b.build("apartment", route, sky=False, params=params)


def corridor(size: float = 1.0, seed: int = 0) -> SyntheticScene:
    """A 2 m wide corridor (14 m at size 1) with a 0.15 m step up halfway and crates along the walls."""
    if not 0.6 <= size <= 4.0:
        raise ConfigError(f"corridor size must lie in [0.6, 4.0], got {size}")
    rng = np.random.default_rng(seed)
    b = _MeshBuilder()
    length, width, ceiling = 14.0 * size, 2.0, 2.6
    t = WALL_THICKNESS_M / 2
    step_x = 0.5 * length
    floor_color = _jitter_color(rng, (0.50, 0.50, 0.46))
    b.box((-t, -t, -FLOOR_SLAB_M), (step_x, width + t, 0.0), floor_color)
    b.box((step_x, -t, -FLOOR_SLAB_M), (length + t, width + t, STEP_RISE_M), floor_color * 0.85)
    b.box((-t, -t, ceiling), (length + t, width + t, ceiling + FLOOR_SLAB_M), (0.9, 0.9, 0.88))
    wall_color = _jitter_color(rng, (0.70, 0.74, 0.80), 0.05)
    _walls_with_openings(b, "y", 0.0, -t, length + t, ceiling, [], wall_color)
    _walls_with_openings(b, "y", width, -t, length + t, ceiling, [], wall_color * 0.95)
    _walls_with_openings(b, "x", 0.0, t, width - t, ceiling, [], (0.55, 0.65, 0.55))
    _walls_with_openings(b, "x", length, t, width - t, ceiling, [], (0.65, 0.55, 0.55))
    n_crates = max(2, int(round(3 * size)))
    for i in range(n_crates):
        x = (i + 0.5) / n_crates * length + rng.uniform(-0.5, 0.5)
        x = float(np.clip(x, 0.6, length - 1.2))
        if abs(x - step_x) < 0.8 or abs(x + 0.6 - step_x) < 0.8:
            x = step_x + 1.0
        z0 = STEP_RISE_M if x >= step_x else 0.0
        side = i % 2
        y0, y1 = (t + 0.02, t + 0.45) if side == 0 else (width - t - 0.45, width - t - 0.02)
        b.box((x, y0, z0), (x + 0.6, y1, z0 + rng.uniform(0.4, 0.9)), _jitter_color(rng, (0.60, 0.45, 0.25)))
    route = np.array([[0.8, 1.0], [0.3 * length, 1.1], [0.7 * length, 0.9], [length - 0.8, 1.0]])
    params = dict(size=size, seed=seed, length=length, width=width, ceiling=ceiling, step_x=step_x,
                  step_rise=STEP_RISE_M)
    return b.build("corridor", route, sky=False, params=params)


def courtyard(size: float = 1.0, seed: int = 0) -> SyntheticScene:
    """An open square (16 m at size 1) enclosed by 3 m walls, with pillars, benches and planters; sky above."""
    if not 0.6 <= size <= 4.0:
        raise ConfigError(f"courtyard size must lie in [0.6, 4.0], got {size}")
    rng = np.random.default_rng(seed)
    b = _MeshBuilder()
    side, wall_h = 16.0 * size, 3.0
    half = side / 2
    t = WALL_THICKNESS_M
    b.box((-half - t, -half - t, -FLOOR_SLAB_M), (half + t, half + t, 0.0), _jitter_color(rng, (0.62, 0.58, 0.52)))
    wall_color = _jitter_color(rng, (0.78, 0.66, 0.52), 0.05)
    b.box((-half - t, -half - t, 0.0), (half + t, -half, wall_h), wall_color)
    b.box((-half - t, half, 0.0), (half + t, half + t, wall_h), wall_color * 0.95)
    b.box((-half - t, -half, 0.0), (-half, half, wall_h), wall_color * 0.9)
    b.box((half, -half, 0.0), (half + t, half, wall_h), wall_color * 0.92)
    loop_r = 0.3 * side
    # pillars on an inner ring, benches on an outer ring, planters at the corners: all off the camera loop
    n_pillars = 6
    for i in range(n_pillars):
        a = 2 * np.pi * (i + 0.5) / n_pillars + rng.uniform(-0.1, 0.1)
        cx, cy = 0.12 * side * np.cos(a), 0.12 * side * np.sin(a)
        b.box((cx - 0.2, cy - 0.2, 0.0), (cx + 0.2, cy + 0.2, wall_h), _jitter_color(rng, (0.85, 0.85, 0.80), 0.04))
    for i in range(4):
        a = np.pi / 2 * i + np.pi / 4 + rng.uniform(-0.15, 0.15)
        cx, cy = 0.43 * side * np.cos(a), 0.43 * side * np.sin(a)
        b.box((cx - 0.5, cy - 0.5, 0.0), (cx + 0.5, cy + 0.5, 0.5), _jitter_color(rng, (0.35, 0.50, 0.30)))
    for i in range(4):
        a = np.pi / 2 * i + rng.uniform(-0.2, 0.2)
        cx, cy = 0.43 * side * np.cos(a), 0.43 * side * np.sin(a)
        along = np.array([-np.sin(a), np.cos(a)])
        lo = np.minimum([cx, cy] - 0.8 * along, [cx, cy] + 0.8 * along) - 0.2
        hi = np.maximum([cx, cy] - 0.8 * along, [cx, cy] + 0.8 * along) + 0.2
        b.box((lo[0], lo[1], 0.0), (hi[0], hi[1], 0.45), _jitter_color(rng, (0.45, 0.32, 0.22)))
    angles = np.linspace(0.0, 2 * np.pi, 13)[:-1] + rng.uniform(0, 2 * np.pi)
    route = np.stack([loop_r * np.cos(angles), loop_r * np.sin(angles)], axis=1)
    params = dict(size=size, seed=seed, side=side, wall_height=wall_h)
    return b.build("courtyard", route, sky=True, params=params)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _route_distance(points: np.ndarray, route: np.ndarray) -> np.ndarray:
    """(N,) xy distance from (N, 2) points to the polyline ``route`` (K, 2)."""
    best = np.full(len(points), np.inf)
    for a, b in zip(route[:-1], route[1:], strict=True):
        ab = b - a
        s = np.clip(((points - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
        best = np.minimum(best, np.linalg.norm(points - (a + s[:, None] * ab), axis=1))
    return best


def terrain(size: float = 1.0, seed: int = 0, cell: float = 0.25, relief: float = 0.25) -> SyntheticScene:
    """Outdoor ground (24 m at size 1): a smooth height field, a ramp to a platform, stairs down, rocks, boxes.

    The ground is flat (z = 0) around the ramp, platform and stairs and rises and falls smoothly by up to about
    ``relief`` metres elsewhere.

    Args:
        size: extent scale, 0.7 to 4.
        seed: terrain relief, rocks and colours.
        cell: height-field cell size, metres.
        relief: amplitude of the smooth relief, metres.
    """
    if not 0.7 <= size <= 4.0:
        raise ConfigError(f"terrain size must lie in [0.7, 4.0], got {size}")
    rng = np.random.default_rng(seed)
    b = _MeshBuilder()
    half = 12.0 * size
    # structures (all on flat ground at z = 0): ramp x [-2.4, 0], platform [0, 2], 3 steps down [2, 2.84]
    ramp_len, plat_z, width = 2.4, 0.6, 2.0
    structure_lo, structure_hi = np.array([-2.4, -1.0]), np.array([2.0 + 3 * STEP_TREAD_M, 1.0])
    route = np.array([
        [-0.55 * half, -0.45 * half], [-0.55 * half, 0.0], [-3.4, 0.0], [-0.3, 0.0], [1.0, 0.0],
        [3.6, 0.0], [0.45 * half, 0.3 * half], [0.0, 0.55 * half], [-0.4 * half, 0.35 * half],
    ])
    xs = np.arange(-half, half + 1e-9, cell)
    gx, gy = np.meshgrid(xs, xs)
    k = rng.uniform(0.15, 0.45, (4, 2)) * rng.choice([-1, 1], (4, 2))
    phase = rng.uniform(0, 2 * np.pi, 4)
    h = sum(np.sin(k[i, 0] * gx + k[i, 1] * gy + phase[i]) for i in range(4)) / 2.0
    # flatten near the structures, and gently near the route start so the first camera stands on z = 0
    d_struct = np.linalg.norm(np.maximum(np.maximum(structure_lo - np.stack([gx, gy], -1),
                                                    np.stack([gx, gy], -1) - structure_hi), 0.0), axis=-1)
    d_start = np.hypot(gx - route[0, 0], gy - route[0, 1])
    weight = _smoothstep((d_struct - 1.0) / 3.0) * _smoothstep((d_start - 1.0) / 3.0)
    heights = relief * h * weight
    shade = 0.85 + 0.15 * np.sin(1.7 * gx) * np.cos(1.3 * gy)
    ground = np.stack([0.35 * shade, 0.48 * shade, 0.25 * shade], axis=-1) + 0.2 * heights[..., None]
    b.grid(xs, xs, heights, np.clip(ground, 0, 1))
    concrete = _jitter_color(rng, (0.65, 0.65, 0.62), 0.04)
    b.wedge(-ramp_len, 0.0, -width / 2, width / 2, 0.0, plat_z, concrete)
    b.box((0.0, -width / 2, 0.0), (2.0, width / 2, plat_z), concrete * 0.92)
    for i in range(3):
        x0 = 2.0 + i * STEP_TREAD_M
        top = plat_z - (i + 1) * STEP_RISE_M
        b.box((x0, -width / 2, 0.0), (x0 + STEP_TREAD_M, width / 2, top), concrete * (0.88 - 0.03 * i))
    # rocks and boxes, at least 1.6 m from the route and clear of the structures
    placed = 0
    attempts = 0
    n_obstacles = int(round(9 * size))
    while placed < n_obstacles and attempts < 500:
        attempts += 1
        p = rng.uniform(-half + 1.5, half - 1.5, 2)
        if _route_distance(p[None], route)[0] < 1.8:
            continue
        if np.all(p > structure_lo - 1.5) and np.all(p < structure_hi + 1.5):
            continue
        ix = int(np.clip(np.round((p[1] + half) / cell), 0, len(xs) - 1))
        jx = int(np.clip(np.round((p[0] + half) / cell), 0, len(xs) - 1))
        z = float(heights[ix, jx])
        if placed % 3 == 2:
            s = rng.uniform(0.4, 0.9)
            b.box((p[0] - s / 2, p[1] - s / 2, z - 0.3), (p[0] + s / 2, p[1] + s / 2, z + s),
                  _jitter_color(rng, (0.55, 0.42, 0.28)))
        else:
            b.rock((p[0], p[1], z), rng.uniform(0.3, 0.8), rng, _jitter_color(rng, (0.50, 0.48, 0.45), 0.06))
        placed += 1
    params = dict(size=size, seed=seed, half_extent=half, cell=cell, relief=relief, platform_z=plat_z,
                  ramp_length=ramp_len, obstacles=placed)
    return b.build("terrain", route, sky=True, params=params)


SCENES: dict[str, Callable[..., SyntheticScene]] = {
    "apartment": apartment,
    "terrain": terrain,
    "corridor": corridor,
    "courtyard": courtyard,
}
"""Scene name -> builder ``(size=1.0, seed=0) -> SyntheticScene``."""


def build_scene(name: str, size: float = 1.0, seed: int = 0) -> SyntheticScene:
    """Build the named scene.

    Raises:
        ConfigError: unknown name (the message lists the known scenes) or a size outside the builder's range.
    """
    try:
        builder = SCENES[name]
    except KeyError:
        raise ConfigError(f"unknown synthetic scene '{name}' (known: {', '.join(sorted(SCENES))})") from None
    scene = builder(size=size, seed=seed)
    logger.info("built synthetic scene %s (size %.2f, seed %d): %d triangles, route of %d waypoints",
                name, size, seed, scene.n_triangles, len(scene.route))
    return scene
