"""The depth factor shared by all views, measured against camera baselines (geometry/depth_factor.py)."""

from __future__ import annotations

import numpy as np
import pytest

from lyra_isaac.geometry.depth_factor import NOT_ESTIMATED, estimate_depth_factor
from lyra_isaac.geometry.frame import ScaleEstimate, depth_factor_correction

ROOM_MIN = np.array([-4.0, -3.0, 0.0])
ROOM_MAX = np.array([4.0, 3.0, 3.0])
WIDTH, HEIGHT = 64, 48
OFFSET = 0.5
"""Pixel (u, v) is centred at (u + 0.5, v + 0.5) in the intrinsics' coordinates."""


def _look(position: np.ndarray, yaw: float, pitch: float = -0.25) -> np.ndarray:
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


def _room_depth(w2c: np.ndarray, k: np.ndarray) -> np.ndarray:
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


def _room_views(positions: np.ndarray, yaws: np.ndarray):
    k = np.array([[40.0, 0.0, WIDTH / 2], [0.0, 40.0, HEIGHT / 2], [0.0, 0.0, 1.0]])
    w2c = np.stack([_look(p, y) for p, y in zip(positions, yaws, strict=True)])
    depth = np.stack([_room_depth(m, k) for m in w2c])
    return depth, w2c, np.repeat(k[None], len(w2c), axis=0)


def _walk(n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Cameras walking 5 m through the room at eye height, looking around."""
    x = np.linspace(-2.5, 2.5, n)
    positions = np.stack([x, 0.6 * np.sin(x), np.full(n, 1.5)], axis=1)
    yaws = np.linspace(0.0, 2 * np.pi, n, endpoint=False) + 0.3
    return positions, yaws


@pytest.mark.parametrize("shared", [0.97, 1.0, 1.025])
def test_exact_depths_give_the_shared_factor(shared):
    depth, w2c, k = _room_views(*_walk())
    estimate = estimate_depth_factor(depth * np.float32(shared), w2c, k, OFFSET)
    assert estimate.factor == pytest.approx(1.0 / shared, abs=1e-3)
    assert estimate.std_error < 1e-3
    assert estimate.pairs >= 12 and estimate.correspondences > 1000


def test_noisy_depths_still_give_the_shared_factor():
    rng = np.random.default_rng(3)
    depth, w2c, k = _room_views(*_walk(16))
    per_view = 1.03 * (1 + 0.002 * rng.standard_normal(len(depth)))  # aligned views: small relative errors left
    noisy = depth * per_view[:, None, None].astype(np.float32)
    noisy *= (1 + 0.005 * rng.standard_normal(noisy.shape)).astype(np.float32)
    estimate = estimate_depth_factor(noisy, w2c, k, OFFSET)
    assert estimate.factor == pytest.approx(1 / 1.03, abs=4e-3)
    assert abs(estimate.factor - 1 / 1.03) < 4 * estimate.std_error + 1e-3
    assert 0 < estimate.residual_m < 0.05


def test_no_baseline_measures_nothing():
    positions, yaws = _walk()
    positions[:] = positions[0]  # a camera turning in place: scaling depth about it changes no disagreement
    depth, w2c, k = _room_views(positions, yaws)
    assert estimate_depth_factor(depth * np.float32(1.05), w2c, k, OFFSET) == NOT_ESTIMATED


def test_too_few_views_measure_nothing():
    depth, w2c, k = _room_views(*_walk(2))
    assert estimate_depth_factor(depth, w2c, k, OFFSET) == NOT_ESTIMATED
    assert estimate_depth_factor(np.zeros_like(depth), w2c, k, OFFSET) == NOT_ESTIMATED


@pytest.mark.parametrize("method", ["camera_height", "file"])
def test_correction_puts_the_floor_back_and_keeps_the_eye_height(method):
    eye, factor = 1.6, 0.97
    camera = np.array([1.0, 2.0, eye])
    floor_seen = np.array([[3.0, -1.0, 0.0], [-2.0, 4.0, 0.0]])
    moved = camera + factor * (floor_seen - camera)  # what removing the factor does to the floor under the camera
    matrix = depth_factor_correction(factor, ScaleEstimate(factor=2.0, method=method, eye_height_m=eye))
    floor_after = moved @ matrix[:3, :3].T + matrix[:3, 3]
    camera_after = matrix[:3, :3] @ camera + matrix[:3, 3]
    np.testing.assert_allclose(floor_after[:, 2], 0.0, atol=1e-9)
    expected_eye = eye if method == "camera_height" else factor * eye
    assert camera_after[2] == pytest.approx(expected_eye)
    np.testing.assert_allclose(depth_factor_correction(1.0, ScaleEstimate(1.0, method, eye)), np.eye(4))


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_torch_pair_terms_match_numpy(device):
    """The torch twin of the pair loop (the CUDA path's) gives the numpy estimate: the same correspondences and
    pairs, the factor to rounding (float64, summation order only)."""
    torch = pytest.importorskip("torch")
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(3)
    depth, w2c, k = _room_views(*_walk(16))
    noisy = depth * (1.03 * (1 + 0.002 * rng.standard_normal(len(depth)))).astype(np.float32)[:, None, None]
    ref = estimate_depth_factor(noisy, w2c, k, OFFSET)
    got = estimate_depth_factor(noisy, w2c, k, OFFSET, device=device)
    assert ref.pairs > 0 and (got.pairs, got.correspondences) == (ref.pairs, ref.correspondences)
    assert got.factor == pytest.approx(ref.factor, abs=1e-9)
    assert got.std_error == pytest.approx(ref.std_error, rel=1e-6)
    assert got.residual_m == pytest.approx(ref.residual_m, rel=1e-6)
    assert estimate_depth_factor(np.zeros_like(depth), w2c, k, OFFSET, device=device) == NOT_ESTIMATED
