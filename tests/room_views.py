"""Analytic views for the view-pair tests: the inside of a box room seen by cameras walking through it."""

from __future__ import annotations

import numpy as np

ROOM_MIN = np.array([-4.0, -3.0, 0.0])
ROOM_MAX = np.array([4.0, 3.0, 3.0])
WIDTH, HEIGHT = 64, 48
OFFSET = 0.5
"""Pixel (u, v) is centred at (u + 0.5, v + 0.5) in the intrinsics' coordinates."""


def look(position: np.ndarray, yaw: float, pitch: float = -0.25) -> np.ndarray:
    """(4, 4) world-to-camera (OpenCV axes: x right, y down, z forward) at ``position`` looking along yaw/pitch."""
    forward = np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.sin(pitch)])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rot = np.stack([right, down, forward])
    w2c = np.eye(4)
    w2c[:3, :3] = rot
    w2c[:3, 3] = -rot @ position
    return w2c


def room_depth(w2c: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(H, W) optical-axis depth of the inside of the box room seen from a camera inside it."""
    u, v = np.meshgrid(np.arange(WIDTH) + OFFSET, np.arange(HEIGHT) + OFFSET)
    ray_cam = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], axis=-1)
    ray = ray_cam @ w2c[:3, :3]  # world direction per metre of optical depth
    centre = -w2c[:3, :3].T @ w2c[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_low = (ROOM_MIN - centre) / ray
        t_high = (ROOM_MAX - centre) / ray
    t_exit = np.nanmin(np.where(np.maximum(t_low, t_high) > 0, np.maximum(t_low, t_high), np.inf), axis=-1)
    return t_exit.astype(np.float32)


def room_views(positions: np.ndarray, yaws: np.ndarray):
    k = np.array([[40.0, 0.0, WIDTH / 2], [0.0, 40.0, HEIGHT / 2], [0.0, 0.0, 1.0]])
    w2c = np.stack([look(p, y) for p, y in zip(positions, yaws, strict=True)])
    depth = np.stack([room_depth(m, k) for m in w2c])
    return depth, w2c, np.repeat(k[None], len(w2c), axis=0)


def walk(n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Cameras walking 5 m through the room at eye height, looking around."""
    x = np.linspace(-2.5, 2.5, n)
    positions = np.stack([x, 0.6 * np.sin(x), np.full(n, 1.5)], axis=1)
    yaws = np.linspace(0.0, 2 * np.pi, n, endpoint=False) + 0.3
    return positions, yaws
