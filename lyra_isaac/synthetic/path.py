"""Camera paths through a synthetic scene, in the style of Lyra's generation trajectories.

Lyra's trajectories (``w2c`` (500, 4, 4), 1280 x 720, focal ~810 px, i.e. ~76 degree horizontal FOV) walk a few
metres at eye level, sweep the yaw by tens of degrees, pitch down 10-25 degrees and roll a few degrees; the first
camera is the identity of the saved frame, so that frame inherits its pitch and roll. This module builds such a path
along a scene's route: positions at equal arc length on a smoothed route, height = floor below + eye height (so the
path climbs stairs and ramps), yaw = heading + a slow sweep, pitch oscillating downwards so the floor near the
path is seen at non-grazing angles.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .render import Raycaster, intrinsics_for
from .scenes import SyntheticScene

logger = logging.getLogger(__name__)

FLOOR_SEARCH_ABOVE_M = 1.2
"""Floor heights under the path are found by casting down from this height above the previous camera's floor
(the largest climb between two consecutive cameras; below any ceiling a walking person fits under)."""


@dataclass
class CameraConfig:
    """How the synthetic cameras move and look.

    Attributes:
        eye_height_m: camera height above the floor directly below, metres.
        hfov_deg: horizontal field of view, degrees (Lyra: ~76).
        yaw_sweep_deg: amplitude of the yaw sweep around the walking direction, degrees.
        yaw_period_views: views per full yaw sweep period.
        pitch_mean_deg: mean pitch (negative looks down), degrees.
        pitch_sweep_deg: amplitude of the pitch oscillation, degrees.
        roll_deg: standard deviation of the per-view roll, degrees.
        height_bob_m: amplitude of the vertical head bob, metres.
        first_pitch_deg, first_roll_deg: pitch and roll of the first camera (the PLY frame's tilt), degrees.
        route_smoothing: Chaikin corner-cutting iterations applied to the route.
    """

    eye_height_m: float = 1.5
    hfov_deg: float = 76.0
    yaw_sweep_deg: float = 50.0
    yaw_period_views: float = 24.0
    pitch_mean_deg: float = -15.0
    pitch_sweep_deg: float = 15.0
    roll_deg: float = 2.0
    height_bob_m: float = 0.03
    first_pitch_deg: float = -7.0
    first_roll_deg: float = 4.0
    route_smoothing: int = 3


def _chaikin(points: np.ndarray, iterations: int) -> np.ndarray:
    for _ in range(iterations):
        q = 0.75 * points[:-1] + 0.25 * points[1:]
        r = 0.25 * points[:-1] + 0.75 * points[1:]
        inner = np.empty((2 * len(q), points.shape[1]))
        inner[0::2], inner[1::2] = q, r
        points = np.vstack([points[:1], inner, points[-1:]])
    return points


def resample_route(route: np.ndarray, n: int, smoothing: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points at equal arc length on the smoothed route polyline.

    Returns:
        (n, 2) xy positions and (n, 2) unit walking directions, metres.
    """
    smooth = _chaikin(np.asarray(route, dtype=np.float64), smoothing)
    seg = np.linalg.norm(np.diff(smooth, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    targets = np.linspace(0.0, s[-1], n) if n > 1 else np.array([0.0])
    xy = np.column_stack([np.interp(targets, s, smooth[:, 0]), np.interp(targets, s, smooth[:, 1])])
    eps = max(0.05, 1e-3 * s[-1])
    ahead = np.column_stack([np.interp(np.minimum(targets + eps, s[-1]), s, smooth[:, i]) for i in range(2)])
    behind = np.column_stack([np.interp(np.maximum(targets - eps, 0.0), s, smooth[:, i]) for i in range(2)])
    heading = ahead - behind
    heading /= np.maximum(np.linalg.norm(heading, axis=1, keepdims=True), 1e-12)
    return xy, heading


def look_rotation(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """(N, 3, 3) camera-to-world rotations with OpenCV camera axes in a Z-up world.

    Columns are the camera's +X (right), +Y (down) and +Z (forward) in the world. ``yaw`` is the heading
    (radians, from +X towards +Y), ``pitch`` the elevation of the forward axis (negative looks down), ``roll``
    a rotation about the forward axis.
    """
    yaw, pitch, roll = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (yaw, pitch, roll))
    forward = np.stack([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)], axis=-1)
    right = np.stack([np.sin(yaw), -np.cos(yaw), np.zeros_like(yaw)], axis=-1)
    down = np.cross(forward, right)
    c, s = np.cos(roll)[:, None], np.sin(roll)[:, None]
    right_r = c * right + s * down
    down_r = -s * right + c * down
    return np.stack([right_r, down_r, forward], axis=-1)


def camera_path(scene: SyntheticScene, n_views: int, width: int, height: int, *, seed: int = 0,
                config: CameraConfig | None = None, raycaster: Raycaster | None = None,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cameras walking the scene's route at eye height, looking around.

    Args:
        scene: the truth scene (its route lies in free space).
        n_views: number of cameras (>= 1).
        width, height: image size, pixels.
        seed: randomizes the sweep phases and rolls.
        config: motion parameters (defaults: :class:`CameraConfig`).
        raycaster: a raycaster of ``scene`` (built if omitted).

    Returns:
        c2w: (F, 4, 4) float64 camera-to-world, OpenCV axes, metres, truth world frame.
        intrinsics: (3, 3) float64 pixels, shared by all views.
        floor_z: (F,) float64 height of the floor directly below each camera, metres.
    """
    if n_views < 1:
        raise ValueError(f"n_views must be >= 1, got {n_views}")
    cfg = config or CameraConfig()
    rc = raycaster or Raycaster(scene.vertices, scene.faces)
    rng = np.random.default_rng([seed, 7])
    xy, heading = resample_route(scene.route, n_views, cfg.route_smoothing)
    # floor below each camera, found walking in order from the previous camera's floor, so stairs are climbed
    # one step at a time and a ceiling or an upper storey is never mistaken for the floor
    floor = np.empty(n_views)
    prev = float(rc.heights_below(xy[:1], FLOOR_SEARCH_ABOVE_M, max_drop=FLOOR_SEARCH_ABOVE_M + 3.0)[0][0])
    for k in range(n_views):
        z, _ = rc.heights_below(xy[k:k + 1], prev + FLOOR_SEARCH_ABOVE_M, max_drop=FLOOR_SEARCH_ABOVE_M + 3.0)
        if not np.isfinite(z[0]):
            raise ValueError(f"scene '{scene.name}': no floor below the route at xy {xy[k].round(2).tolist()}")
        floor[k] = prev = float(z[0])
    i = np.arange(n_views)
    phase = rng.uniform(0, 2 * np.pi, 3)
    yaw = np.arctan2(heading[:, 1], heading[:, 0]) + np.radians(cfg.yaw_sweep_deg) * np.sin(
        2 * np.pi * i / cfg.yaw_period_views + phase[0])
    pitch = np.radians(cfg.pitch_mean_deg + cfg.pitch_sweep_deg * np.sin(
        2 * np.pi * i / (0.63 * cfg.yaw_period_views) + phase[1]))
    roll = np.radians(cfg.roll_deg) * rng.standard_normal(n_views).clip(-2.5, 2.5)
    pitch[0], roll[0] = np.radians(cfg.first_pitch_deg), np.radians(cfg.first_roll_deg)
    bob = cfg.height_bob_m * np.sin(2 * np.pi * i / 5.0 + phase[2])
    bob[0] = 0.0
    c2w = np.tile(np.eye(4), (n_views, 1, 1))
    c2w[:, :3, :3] = look_rotation(yaw, pitch, roll)
    c2w[:, :3, 3] = np.column_stack([xy, floor + cfg.eye_height_m + bob])
    intrinsics = intrinsics_for(width, height, cfg.hfov_deg)
    logger.info("camera path on %s: %d views, %.1f m long, floor %.2f..%.2f m, eye height %.2f m",
                scene.name, n_views, float(np.linalg.norm(np.diff(xy, axis=0), axis=1).sum()),
                float(floor.min()), float(floor.max()), cfg.eye_height_m)
    return c2w, intrinsics, floor
