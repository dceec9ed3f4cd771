"""Small analytic splat scenes with known truth for the clean / frame / walkable tests (not a test module).

:func:`room_case` builds Gaussians on the floor and walls of a box room (Z up, metres, floor at z = 0) with a
camera path at eye height, then maps everything into a "source" frame through the inverse of a known
``source_to_world`` similarity (tilt, yaw, OpenCV-like axes, scale, offset), like a Lyra file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lyra_isaac.splats.cameras import CameraPath
from lyra_isaac.splats.scene import GaussianScene

# world -> OpenCV-like source axes (x right, y down, z forward): source = A @ world
OPENCV_FROM_ZUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    """(3, 3) rotation about ``axis`` by ``degrees`` (Rodrigues)."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    a = np.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


@dataclass
class Case:
    scene: GaussianScene  # source frame
    cameras: CameraPath | None  # source frame
    source_to_world: np.ndarray  # (4, 4) truth
    world_points: np.ndarray  # (N, 3) surface points (truth, world)
    labels: np.ndarray  # (N,) str: "floor", "wall", "sky", "floater", "table", ...
    eye_height: float


def _plane(rng, center, u, v, half_u, half_v, spacing):
    nu, nv = int(2 * half_u / spacing) + 1, int(2 * half_v / spacing) + 1
    a, b = np.meshgrid(np.linspace(-half_u, half_u, nu), np.linspace(-half_v, half_v, nv))
    pts = np.asarray(center) + a.reshape(-1, 1) * np.asarray(u) + b.reshape(-1, 1) * np.asarray(v)
    return pts + rng.normal(0, spacing * 0.05, pts.shape)


def room_case(*, tilt_deg: float = 0.0, tilt_axis=(1.0, 0.3, 0.0), yaw_deg: float = 0.0, scale: float = 1.0,
              size=(8.0, 6.0), wall_height: float = 2.6, eye_height: float = 1.5, spacing: float = 0.05,
              sky: int = 0, floaters: int = 0, table: bool = True, ceiling: bool = False, with_cameras: bool = True,
              n_cameras: int = 24, seed: int = 0, offset=(0.3, -0.2, 0.5)) -> Case:
    """A box room; see the module docstring. ``scale`` = world metres per source unit."""
    rng = np.random.default_rng(seed)
    hx, hy = size[0] / 2, size[1] / 2
    parts, labels = [], []

    def add(points, label):
        parts.append(points)
        labels.append(np.full(len(points), label, dtype=object))

    add(_plane(rng, (0, 0, 0), (1, 0, 0), (0, 1, 0), hx, hy, spacing), "floor")
    for sign in (-1, 1):
        add(_plane(rng, (sign * hx, 0, wall_height / 2), (0, 1, 0), (0, 0, 1), hy, wall_height / 2, spacing), "wall")
        add(_plane(rng, (0, sign * hy, wall_height / 2), (1, 0, 0), (0, 0, 1), hx, wall_height / 2, spacing), "wall")
    if ceiling:
        add(_plane(rng, (0, 0, wall_height), (1, 0, 0), (0, 1, 0), hx, hy, spacing), "ceiling")
    if table:
        add(_plane(rng, (2.0, 1.2, 0.75), (1, 0, 0), (0, 1, 0), 0.6, 0.4, spacing), "table")
    if sky:
        d = rng.normal(size=(sky, 3))
        d[:, 2] = np.abs(d[:, 2]) + 0.2
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        add(d * rng.uniform(150, 300, (sky, 1)), "sky")
    if floaters:
        add(rng.uniform((-hx, -hy, 0.2), (hx, hy, wall_height - 0.2), (floaters, 3)), "floater")
    world = np.concatenate(parts)
    label = np.concatenate(labels)

    rot = rotation(tilt_axis, tilt_deg) @ rotation((0, 0, 1), yaw_deg)  # world <- "level" world
    # source_to_world: p_world = s * Rsw @ p_src + t, with Rsw = rot @ OPENCV_FROM_ZUP.T
    r_sw = rot @ OPENCV_FROM_ZUP.T
    t = np.asarray(offset, dtype=np.float64)
    m = np.eye(4)
    m[:3, :3] = scale * r_sw
    m[:3, 3] = t
    # world points were generated level; apply the truth's inverse: p_src = Rsw^T (p_world - t) / s
    src = ((world - t) @ r_sw) / scale

    n = len(src)
    log_sigma = np.log(np.full((n, 3), spacing * 0.6 / scale))
    scene = GaussianScene(
        means=src.astype(np.float32),
        quats=np.tile(np.array([1, 0, 0, 0], np.float32), (n, 1)),
        log_scales=log_sigma.astype(np.float32),
        opacity_logits=np.full(n, 4.0, np.float32),
        sh_dc=np.zeros((n, 3), np.float32),
        source_format="lyra2",
    )
    cameras = None
    if with_cameras:
        angle = np.linspace(0, 2 * np.pi, n_cameras, endpoint=False)
        centers = np.stack([1.5 * np.cos(angle), 1.0 * np.sin(angle), np.full(n_cameras, eye_height)], axis=1)
        c2w = np.tile(np.eye(4), (n_cameras, 1, 1))
        for i, a in enumerate(angle):
            fwd = np.array([np.cos(a + 1.2), np.sin(a + 1.2), -0.15])
            fwd /= np.linalg.norm(fwd)
            right = np.cross(fwd, [0, 0, 1.0])
            right /= np.linalg.norm(right)
            down = np.cross(fwd, right)
            c2w[i, :3, :3] = np.stack([right, down, fwd], axis=1)
            c2w[i, :3, 3] = centers[i]
        c2w_src = np.tile(np.eye(4), (n_cameras, 1, 1))
        c2w_src[:, :3, :3] = r_sw.T @ c2w[:, :3, :3]
        c2w_src[:, :3, 3] = ((centers - t) @ r_sw) / scale
        k = np.array([[250.0, 0, 160], [0, 250.0, 120], [0, 0, 1]])
        cameras = CameraPath(w2c=np.linalg.inv(c2w_src), intrinsics=k, width=320, height=240)
    return Case(scene, cameras, m, world, label, eye_height)


def terrain_case(*, tilt_deg: float = 8.0, scale: float = 1.0, eye_height: float = 1.6, seed: int = 0,
                 amplitude: float = 0.4, spacing: float = 0.1, n_cameras: int = 30) -> Case:
    """Rolling terrain z = amplitude * sin(x/3) * cos(y/4) over 30 x 30 m (zero mean slope), cameras walking
    a loop at ``eye_height`` above the ground; the world floor (z = 0) is the terrain's mean level."""
    rng = np.random.default_rng(seed)

    def height(x, y):
        return amplitude * np.sin(x / 3.0) * np.cos(y / 4.0)

    g = np.arange(-15, 15, spacing)
    x, y = (a.ravel() for a in np.meshgrid(g, g))
    world = np.stack([x, y, height(x, y) + rng.normal(0, 0.005, x.shape)], axis=1)
    labels = np.full(len(world), "floor", dtype=object)
    rot = rotation((0.2, 1.0, 0.0), tilt_deg)
    r_sw = rot @ OPENCV_FROM_ZUP.T
    t = np.array([0.5, 1.0, -0.3])
    m = np.eye(4)
    m[:3, :3] = scale * r_sw
    m[:3, 3] = t
    src = ((world - t) @ r_sw) / scale
    n = len(src)
    scene = GaussianScene(means=src.astype(np.float32), quats=np.tile(np.array([1, 0, 0, 0], np.float32), (n, 1)),
                          log_scales=np.full((n, 3), np.log(spacing * 0.6 / scale), np.float32),
                          opacity_logits=np.full(n, 4.0, np.float32), sh_dc=np.zeros((n, 3), np.float32))
    angle = np.linspace(0, 2 * np.pi, n_cameras, endpoint=False)
    cx, cy = 6 * np.cos(angle), 6 * np.sin(angle)
    centers = np.stack([cx, cy, height(cx, cy) + eye_height], axis=1)
    c2w_src = np.tile(np.eye(4), (n_cameras, 1, 1))
    for i, a in enumerate(angle):
        fwd = np.array([-np.sin(a), np.cos(a), -0.2])
        fwd /= np.linalg.norm(fwd)
        right = np.cross(fwd, [0, 0, 1.0])
        right /= np.linalg.norm(right)
        c2w_src[i, :3, :3] = r_sw.T @ np.stack([right, np.cross(fwd, right), fwd], axis=1)
    c2w_src[:, :3, 3] = ((centers - t) @ r_sw) / scale
    k = np.array([[250.0, 0, 160], [0, 250.0, 120], [0, 0, 1]])
    cameras = CameraPath(w2c=np.linalg.inv(c2w_src), intrinsics=k, width=320, height=240)
    return Case(scene, cameras, m, world, labels, eye_height)
