"""Re-level a world from its fused surface: the up axis as the consensus of the surface's face normals.

The frame stage (:mod:`lyra_isaac.geometry.frame`) finds the up axis from the Gaussians themselves, before any
depth correction: each generated view still carries its own depth scale and warp, which tilt the surfaces it saw,
and on uneven ground the only plane left to fit is the ground's mean slope (the terrain truth fixtures: 0.3-0.6 deg
off even from exact depths). After surface extraction the views are aligned and fused, so the surface holds the
level evidence the points could not give clearly: floors, table tops, platform and step tops, ceilings (parallel
to up) and walls (perpendicular to it).

:func:`surface_up` is the same robust consensus as the frame stage's patch refinement (horizontal normals parallel
to up, vertical ones perpendicular, Cauchy weights on the angular residuals), over the mesh's faces weighted by
area instead of over point patches. :func:`level_rotation` turns the result into a world-to-world rotation about a
point on the floor, so the floor there stays at z = 0.

Measured on the 12 CI-size truth fixtures (``benchmarks/fidelity.py --small --oracle-scale``, seeds 0-2): up error
mean 0.19 -> 0.10 deg, largest 0.64 -> 0.27 deg (terrain seeds 0.26 / 0.64 / 0.38 -> 0.27 / 0.09 / 0.24), F@5cm
unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from .frame import angle_deg, consensus_up_step

logger = logging.getLogger(__name__)

HORIZONTAL_DEG = 12.0
"""A face counts as horizontal (floor, top, ceiling) within this angle of the current up axis."""
VERTICAL_DEG = 10.0
"""A face counts as vertical (wall, side) within this angle of perpendicular to the current up axis."""
MAX_ITERATIONS = 30
"""Reweighting rounds of :func:`surface_up` (each re-selects the faces against the latest axis)."""
CONVERGED_DEG = 1e-4
""":func:`surface_up` stops when an iteration moves the axis by less than this."""
MAX_FACES = 200_000
"""Faces used at most (an even subsample of larger meshes: the consensus of a million faces needs no more)."""
FLOOR_BAND_M = 0.1
"""The pivot of the rotation is the median of the upward faces within this height of z = 0 (the floor)."""


@dataclass
class SurfaceUp:
    """Result of :func:`surface_up`.

    Attributes:
        up: (3,) float64 unit up axis in the mesh's frame.
        change_deg: angle between ``up`` and the mesh frame's +Z.
        horizontal_area_m2, vertical_area_m2: area of the faces that counted as horizontal / vertical in the
            last iteration (from the subsample, scaled to the whole mesh).
        iterations: reweighting rounds run.
    """

    up: np.ndarray
    change_deg: float
    horizontal_area_m2: float
    vertical_area_m2: float
    iterations: int

    def as_dict(self) -> dict[str, Any]:
        return {"up": np.round(self.up, 6).tolist(), "change_deg": round(self.change_deg, 4),
                "horizontal_area_m2": round(self.horizontal_area_m2, 3),
                "vertical_area_m2": round(self.vertical_area_m2, 3), "iterations": self.iterations}


def face_normals_areas(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """((F, 3) float64 unit normals, (F,) float64 areas in m^2) of a triangle mesh; degenerate faces get area 0
    and normal (0, 0, 0)."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    norm = np.linalg.norm(cross, axis=1)
    normals = cross / np.where(norm > 0, norm, 1.0)[:, None]
    return normals, 0.5 * norm


def surface_up(vertices: np.ndarray, faces: np.ndarray, cauchy_deg: float = 2.0,
               max_faces: int = MAX_FACES) -> SurfaceUp:
    """The up axis of a surface mesh (Z up, roughly levelled) as the robust consensus of its face normals.

    Iterates :func:`~lyra_isaac.geometry.frame.consensus_up_step` (the frame stage's patch consensus) over the
    horizontal faces ``h`` (normals within :data:`HORIZONTAL_DEG` of ``+-u``, ceilings flipped) and the
    vertical faces ``v`` (within :data:`VERTICAL_DEG` of perpendicular), each weighted by its area times a Cauchy
    weight ``1 / (1 + (residual / cauchy_deg)^2)`` of its angular residual. The faces are re-selected against each
    new axis, starting from +Z, until the axis moves by less than :data:`CONVERGED_DEG`.

    Args:
        vertices: (V, 3) float, metres, a frame whose +Z is near up (within a few degrees).
        faces: (F, 3) int vertex indices.
        cauchy_deg: scale of the angular residual weights, degrees (smaller: follows the largest exactly level
            surfaces; larger: the area-weighted mean of every level surface).
        max_faces: larger meshes use an evenly spaced subsample of this many faces.

    Returns:
        :class:`SurfaceUp` (``up`` = (0, 0, 1) when no face is horizontal).
    """
    faces = np.asarray(faces)
    area_scale = 1.0  # subsample areas -> whole-mesh areas
    if len(faces) > max_faces:
        area_scale = len(faces) / max_faces
        faces = faces[np.linspace(0, len(faces) - 1, max_faces).astype(np.int64)]
    normals, areas = face_normals_areas(vertices, faces)
    cos_h, sin_v = np.cos(np.radians(HORIZONTAL_DEG)), np.sin(np.radians(VERTICAL_DEG))
    # faces that can count at all within a few degrees of +Z (the rest stay out of every iteration)
    nz = normals[:, 2]
    keep = (areas > 0) & ((np.abs(nz) > np.cos(np.radians(HORIZONTAL_DEG + 5)))
                          | (np.abs(nz) < np.sin(np.radians(VERTICAL_DEG + 5))))
    normals, areas = normals[keep], areas[keep]
    up = np.array([0.0, 0.0, 1.0])
    horizontal_area = vertical_area = 0.0
    iterations = 0
    for iteration in range(1, MAX_ITERATIONS + 1):
        along = normals @ up
        horizontal = np.abs(along) > cos_h
        vertical = np.abs(along) < sin_v
        if not horizontal.any():
            break
        h = normals[horizontal] * np.sign(along[horizontal])[:, None]  # ceilings flipped
        new = consensus_up_step(h, normals[vertical], up, cauchy_deg, areas[horizontal], areas[vertical])
        horizontal_area, vertical_area = float(areas[horizontal].sum()), float(areas[vertical].sum())
        iterations = iteration
        moved = angle_deg(new, up)
        up = new
        if moved < CONVERGED_DEG:
            break
    return SurfaceUp(up=up, change_deg=angle_deg(up, np.array([0.0, 0.0, 1.0])),
                     horizontal_area_m2=horizontal_area * area_scale, vertical_area_m2=vertical_area * area_scale,
                     iterations=iterations)


def surface_level_correction(vertices: np.ndarray, faces: np.ndarray, *, cauchy_deg: float, max_change_deg: float,
                             min_horizontal_area_m2: float) -> tuple[np.ndarray, dict[str, Any]]:
    """The world-to-world rotation that re-levels a world from its fused surface, or identity where the surface
    does not say clearly.

    Args:
        vertices: (V, 3) float, metres, world frame (Z up, floor at z = 0 as the frame stage found them).
        faces: (F, 3) int.
        cauchy_deg: see :func:`surface_up`.
        max_change_deg: a larger correction is not applied (the frame stage's axis is kept): the consensus
            refines a levelled world, it does not overrule one.
        min_horizontal_area_m2: the horizontal faces must cover at least this much.

    Returns:
        ((4, 4) float64 rotation about :func:`floor_pivot` (identity when not applied), stats: the
        :class:`SurfaceUp` fields, ``applied`` and, when applied, the pivot).
    """
    found = surface_up(vertices, faces, cauchy_deg)
    applied = found.horizontal_area_m2 >= min_horizontal_area_m2 and found.change_deg <= max_change_deg
    stats = {**found.as_dict(), "applied": bool(applied)}
    if not applied:
        logger.info("frame: fused surface suggests a %.3f deg tilt (%.1f m^2 level surface): not applied (needs "
                    "<= %.1f deg and >= %.1f m^2)", found.change_deg, found.horizontal_area_m2, max_change_deg,
                    min_horizontal_area_m2)
        return np.eye(4), stats
    pivot = floor_pivot(vertices, faces)
    stats["pivot_m"] = np.round(pivot, 4).tolist()
    logger.info("frame: re-levelled from the fused surface by %.3f deg about (%.2f, %.2f) m (%.1f m^2 level, "
                "%.1f m^2 vertical surface)", found.change_deg, pivot[0], pivot[1], found.horizontal_area_m2,
                found.vertical_area_m2)
    return level_rotation(found.up, pivot), stats


def level_rotation(up: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """(4, 4) float64 world-to-world rotation that turns ``up`` into +Z (the smallest such rotation: no yaw)
    about ``pivot`` ((3,) metres), which stays where it is."""
    up = np.asarray(up, dtype=np.float64)
    up = up / np.linalg.norm(up)
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(up, z)
    sin, cos = float(np.linalg.norm(axis)), float(up @ z)
    rotation = np.eye(3)
    if sin > 1e-15:
        k = axis / sin
        skew = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
        rotation = np.eye(3) + sin * skew + (1.0 - cos) * skew @ skew
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    matrix[:3, 3] = np.asarray(pivot, dtype=np.float64) - rotation @ pivot
    return matrix


def floor_pivot(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(3,) point on the floor to level about: the per-axis median of the centroids of the upward faces (within
    :data:`HORIZONTAL_DEG` of +Z) within :data:`FLOOR_BAND_M` of z = 0; of all vertices when there are none.
    Levelling about it keeps the floor's height where most of it lies."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    normals, areas = face_normals_areas(v, f)
    centroids = v[f].mean(axis=1)
    floor = (normals[:, 2] > np.cos(np.radians(HORIZONTAL_DEG))) & (np.abs(centroids[:, 2]) < FLOOR_BAND_M)
    return np.median(centroids[floor], axis=0) if floor.any() else np.median(v, axis=0)
