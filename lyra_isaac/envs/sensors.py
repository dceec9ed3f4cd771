"""Sensors computed from the world's height map: the Isaac Lab-style height scan and the local floor height.

The scan reads the precomputed :class:`~lyra_isaac.world.HeightMap` with a bilinear lookup (a few microseconds
for 187 points) instead of casting 187 rays through the physics engine (~10% of a MuJoCo step from Python).
The ground it reads is the first walkable surface under the base, so ceilings and table tops above the robot do
not mask the floor (Isaac Lab's downward rays from 20 m would hit them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..world import HeightMap


def scan_grid(size: tuple[float, float] = (1.6, 1.0), resolution: float = 0.1) -> np.ndarray:
    """Ray origins of the scan in the base yaw frame.

    Returns:
        (K, 2) float64 (x forward, y left), metres; K = 17 * 11 = 187 for the defaults. Ordered like Isaac Lab's
        ``grid_pattern`` with ``ordering="xy"``: index = iy * nx + ix, x fastest.
    """
    xs = np.arange(-size[0] / 2, size[0] / 2 + 1e-9, resolution)
    ys = np.arange(-size[1] / 2, size[1] / 2 + 1e-9, resolution)
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


@dataclass
class GroundLookup:
    """Bilinear lookup of ground height on a height map whose holes are filled.

    Attributes:
        heights: (H, W) float64, holes filled from the nearest valid cell.
        walkable: (H, W) bool.
        origin, cell_size: as in :class:`HeightMap`.
    """

    heights: np.ndarray
    walkable: np.ndarray
    origin: tuple[float, float]
    cell_size: float

    @classmethod
    def from_heightmap(cls, hm: HeightMap) -> GroundLookup:
        from scipy import ndimage

        h = np.asarray(hm.heights, dtype=np.float64)
        valid = np.isfinite(h)
        if not valid.all() and valid.any():
            _, (ri, ci) = ndimage.distance_transform_edt(~valid, return_indices=True)
            h = h[ri, ci]
        return cls(h, np.asarray(hm.walkable, dtype=bool), (float(hm.origin[0]), float(hm.origin[1])),
                   float(hm.cell_size))

    def __post_init__(self) -> None:
        # edge-padded copy so the bilinear corners (i + 1, j + 1) of the last row/column stay in range
        self._padded = np.pad(self.heights, ((0, 1), (0, 1)), mode="edge").ravel()
        self._stride = self.heights.shape[1] + 1
        self._corner_offsets = np.array([0, 1, self._stride, self._stride + 1], dtype=np.intp)

    def height(self, xy: np.ndarray) -> np.ndarray:
        """(N,) ground height (m) at (N, 2) world points, bilinear; NaN outside the grid."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return self.height_xy(xy[:, 0], xy[:, 1])

    def height_xy(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(N,) ground height (m) at points given as (N,) x and (N,) y arrays; NaN outside the grid."""
        inv = 1.0 / self.cell_size
        return self._bilinear((x - self.origin[0]) * inv, (y - self.origin[1]) * inv)

    def _bilinear(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Bilinear lookup at fractional cell coordinates (u along x/columns, v along y/rows); modifies u, v."""
        h, w = self.heights.shape
        # fast path: all points well inside (the usual case for a scan around a robot on the map)
        inside = (u.min() >= 0.0) and (u.max() <= w - 1.0) and (v.min() >= 0.0) and (v.max() <= h - 1.0)
        outside = None
        if not inside:
            outside = (u < -0.5) | (u > w - 0.5) | (v < -0.5) | (v > h - 0.5)
            # ufunc min/max: np.clip costs several microseconds of Python wrapper per call
            np.minimum(np.maximum(u, 0.0, out=u), w - 1.0, out=u)
            np.minimum(np.maximum(v, 0.0, out=v), h - 1.0, out=v)
        j0 = u.astype(np.intp)
        i0 = v.astype(np.intp)
        fu = u - j0
        fv = v - i0
        corners = self._padded[(i0 * self._stride + j0)[:, None] + self._corner_offsets]  # (N, 4)
        top = corners[:, 0] + (corners[:, 1] - corners[:, 0]) * fu
        bottom = corners[:, 2] + (corners[:, 3] - corners[:, 2]) * fu
        z = top + (bottom - top) * fv
        if outside is not None and outside.any():
            z[outside] = np.nan
        return z

    def height_at(self, x: float, y: float) -> float:
        """Ground height (m) at one point, bilinear; NaN outside the grid. Scalar fast path of :meth:`height`."""
        u = (x - self.origin[0]) / self.cell_size
        v = (y - self.origin[1]) / self.cell_size
        h, w = self.heights.shape
        if not (-0.5 <= u <= w - 0.5 and -0.5 <= v <= h - 0.5):
            return float("nan")
        u = min(max(u, 0.0), w - 1.0)
        v = min(max(v, 0.0), h - 1.0)
        j0 = min(int(u), max(w - 2, 0))
        i0 = min(int(v), max(h - 2, 0))
        j1, i1 = min(j0 + 1, w - 1), min(i0 + 1, h - 1)
        fu, fv = u - j0, v - i0
        hh = self.heights
        top = hh[i0, j0] * (1 - fu) + hh[i0, j1] * fu
        return float(top * (1 - fv) + (hh[i1, j0] * (1 - fu) + hh[i1, j1] * fu) * fv)

    def walkable_at(self, x: float, y: float) -> bool:
        """Nearest cell of (x, y) is walkable (False outside the grid)."""
        col = int(np.floor((x - self.origin[0]) / self.cell_size + 0.5))
        row = int(np.floor((y - self.origin[1]) / self.cell_size + 0.5))
        h, w = self.walkable.shape
        return bool(0 <= row < h and 0 <= col < w and self.walkable[row, col])

    def is_walkable(self, xy: np.ndarray) -> np.ndarray:
        """(N,) bool: nearest cell of each (N, 2) point is walkable (False outside the grid)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        cols = np.floor((xy[:, 0] - self.origin[0]) / self.cell_size + 0.5).astype(np.int64)
        rows = np.floor((xy[:, 1] - self.origin[1]) / self.cell_size + 0.5).astype(np.int64)
        h, w = self.walkable.shape
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        out = np.zeros(len(xy), dtype=bool)
        out[inside] = self.walkable[rows[inside], cols[inside]]
        return out


def height_scan(ground: GroundLookup, base_pos: np.ndarray, yaw: float, grid: np.ndarray,
                offset: float = 0.5, clip: float = 1.0) -> np.ndarray:
    """Isaac Lab ``height_scan``: base z - ground z - offset at yaw-aligned grid points, clipped.

    Args:
        ground: height lookup of the world.
        base_pos: (3,) base position, metres, world frame.
        yaw: base heading, rad.
        grid: (K, 2) points in the base yaw frame (:func:`scan_grid`).
        offset: metres subtracted (Isaac Lab: 0.5).
        clip: symmetric bound; points without ground read +clip (ground far below).

    Returns:
        (K,) float32.
    """
    c, s = math.cos(yaw), math.sin(yaw)
    inv = 1.0 / ground.cell_size
    gx, gy = grid[:, 0], grid[:, 1]
    u = (c * inv) * gx - (s * inv) * gy + (float(base_pos[0]) - ground.origin[0]) * inv
    v = (s * inv) * gx + (c * inv) * gy + (float(base_pos[1]) - ground.origin[1]) * inv
    z = ground._bilinear(u, v)
    values = (float(base_pos[2]) - offset) - z
    values[values != values] = clip  # NaN: no ground under the ray
    return np.minimum(np.maximum(values, -clip, out=values), clip, out=values).astype(np.float32)
