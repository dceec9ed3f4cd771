"""Re-scale a world so that its cameras stand at the given height above its fused surface.

With ``--camera-height H`` the frame stage sets the scale from the cameras' height above the floor it finds in the
raw Gaussians (:func:`lyra_isaac.geometry.frame.estimate_scale`). Those Gaussians still carry each view's own depth
scale and warp, so the floor under the cameras is known to a few centimetres only; the surface stage then aligns
and fuses the views (and removes the depth factor they share), which moves the floor relative to the cameras. The
world's scale is only as good as that floor: on the 12 CI-size truth fixtures the frame-stage floor left scale
errors of up to 2.3 % (mean 0.9 %).

After the surface stage the floor under each camera is the fused surface itself, the one the robot will stand on.
:func:`camera_heights` measures each camera's height above it (the area-weighted median height of the upward faces
in a small disc under the camera), and :func:`camera_height_correction` turns the median of those heights into a
uniform scale about the world origin (the floor at z = 0 stays there) that makes it ``H``: the eye height the user
gave is then the eye height of the world that is written.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .level import face_normals_areas

logger = logging.getLogger(__name__)

GROUND_MAX_TILT_DEG = 30.0
"""Faces within this angle of +Z (facing up) count as ground under a camera."""
MIN_GROUND_COVER = 0.3
"""Ground faces must cover at least this fraction of the disc under a camera for its height to count."""
MIN_DROP_FRACTION = 0.5
"""Ground under a camera lies at least this fraction of the camera height below it (not a shelf at head height)."""


def camera_heights(vertices: np.ndarray, faces: np.ndarray, centers: np.ndarray, *, radius: float,
                   min_drop: float) -> np.ndarray:
    """Each camera's height above the surface under it.

    The ground under a camera is the area-weighted median height of the upward faces (within
    :data:`GROUND_MAX_TILT_DEG` of +Z) whose centroids lie within ``radius`` of the camera in XY and at least
    ``min_drop`` below it. Where those faces cover less than :data:`MIN_GROUND_COVER` of the disc (a surface the
    views never saw, e.g. under the first camera of a path) the height is NaN.

    Args:
        vertices: (V, 3) float, metres, world frame (Z up).
        faces: (F, 3) int vertex indices.
        centers: (C, 3) float camera centres, metres, same frame.
        radius: radius of the disc under each camera, metres.
        min_drop: ground lies at least this far below the camera, metres.

    Returns:
        (C,) float64 heights, metres (NaN where no ground was measured).
    """
    from scipy.spatial import cKDTree

    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 3)
    heights = np.full(len(centers), np.nan)
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if len(f) == 0 or len(centers) == 0:
        return heights
    normals, areas = face_normals_areas(v, f)
    up = normals[:, 2] > np.cos(np.radians(GROUND_MAX_TILT_DEG))
    centroids = v[f[up]].mean(axis=1)
    projected = areas[up] * normals[up, 2]  # area on the XY plane
    tree = cKDTree(centroids[:, :2])
    disc = np.pi * radius**2
    for i, (c, near) in enumerate(zip(centers, tree.query_ball_point(centers[:, :2], radius), strict=True)):
        near = np.asarray(near, dtype=np.int64)
        near = near[centroids[near, 2] <= c[2] - min_drop]
        if projected[near].sum() < MIN_GROUND_COVER * disc:
            continue
        heights[i] = c[2] - weighted_median(centroids[near, 2], projected[near])
    return heights


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value at which the cumulative weight of the sorted ``values`` reaches half the total (weights >= 0,
    not all zero)."""
    order = np.argsort(values)
    cumulative = np.cumsum(np.asarray(weights, dtype=np.float64)[order])
    return float(np.asarray(values)[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def camera_height_correction(vertices: np.ndarray, faces: np.ndarray, centers: np.ndarray, camera_height: float,
                             *, radius: float, max_change: float,
                             min_cameras_fraction: float = 1.0 / 3.0) -> tuple[np.ndarray, dict[str, Any]]:
    """The uniform world-to-world scale that puts the cameras' median height above the fused surface at
    ``camera_height``, or identity where the surface does not say clearly.

    Args:
        vertices: (V, 3) float, metres, world frame (Z up, floor at z = 0).
        faces: (F, 3) int.
        centers: (C, 3) float camera centres, metres, same frame.
        camera_height: the cameras' median height above the floor that the user gave, metres.
        radius: see :func:`camera_heights`.
        max_change: a scale change larger than this fraction is not applied (the surface under the cameras is
            then more likely missing or wrong than the frame stage's scale that far off).
        min_cameras_fraction: at least this fraction of the cameras (and 3) need ground under them.

    Returns:
        ((4, 4) float64 scale about the origin (identity when not applied), stats: ``cameras``,
        ``cameras_measured``, ``eye_height_before_m`` (the median measured height, or None), ``factor`` and
        ``applied``).
    """
    heights = camera_heights(vertices, faces, centers, radius=radius, min_drop=MIN_DROP_FRACTION * camera_height)
    measured = np.isfinite(heights)
    stats: dict[str, Any] = {"cameras": int(len(heights)), "cameras_measured": int(measured.sum()),
                             "eye_height_before_m": None, "factor": 1.0, "applied": False}
    needed = max(3, int(np.ceil(min_cameras_fraction * len(heights))))
    if measured.sum() < needed:
        logger.info("scale: %d of %d cameras have fused surface under them (needs %d): the scale stays as the "
                    "frame stage set it", measured.sum(), len(heights), needed)
        return np.eye(4), stats
    eye = float(np.median(heights[measured]))
    factor = camera_height / eye
    stats.update(eye_height_before_m=round(eye, 5), factor=round(factor, 6))
    if not (eye > 0 and abs(factor - 1.0) <= max_change):
        logger.warning("scale: the cameras stand %.3f m above the fused surface, %.1f %% from the %.3f m given: "
                       "not corrected (more than %.0f %%); check --camera-height", eye,
                       100 * (camera_height / eye - 1.0), camera_height, 100 * max_change)
        return np.eye(4), stats
    stats["applied"] = True
    logger.info("scale: cameras %.3f m above the fused surface (median of %d): scaled x%.4f to %.3f m", eye,
                measured.sum(), factor, camera_height)
    matrix = np.eye(4)
    matrix[:3, :3] *= factor
    return matrix, stats
