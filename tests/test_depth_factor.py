"""The depth factor shared by all views, measured against camera baselines (geometry/depth_factor.py)."""

from __future__ import annotations

import numpy as np
import pytest
from room_views import HEIGHT, OFFSET, WIDTH, look, room_views, walk

from lyra_isaac.geometry.depth_factor import NOT_ESTIMATED, estimate_depth_factor, gather_view_pairs
from lyra_isaac.geometry.frame import ScaleEstimate, depth_factor_correction


@pytest.mark.parametrize("shared", [0.97, 1.0, 1.025])
def test_exact_depths_give_the_shared_factor(shared):
    depth, w2c, k = room_views(*walk())
    estimate = estimate_depth_factor(depth * np.float32(shared), w2c, k, OFFSET)
    assert estimate.factor == pytest.approx(1.0 / shared, abs=1e-3)
    assert estimate.std_error < 1e-3
    assert estimate.pairs >= 12 and estimate.correspondences > 1000


def test_noisy_depths_still_give_the_shared_factor():
    rng = np.random.default_rng(3)
    depth, w2c, k = room_views(*walk(16))
    per_view = 1.03 * (1 + 0.002 * rng.standard_normal(len(depth)))  # aligned views: small relative errors left
    noisy = depth * per_view[:, None, None].astype(np.float32)
    noisy *= (1 + 0.005 * rng.standard_normal(noisy.shape)).astype(np.float32)
    estimate = estimate_depth_factor(noisy, w2c, k, OFFSET)
    assert estimate.factor == pytest.approx(1 / 1.03, abs=4e-3)
    assert abs(estimate.factor - 1 / 1.03) < 4 * estimate.std_error + 1e-3
    assert 0 < estimate.residual_m < 0.05


def test_no_baseline_measures_nothing():
    positions, yaws = walk()
    positions[:] = positions[0]  # a camera turning in place: scaling depth about it changes no disagreement
    depth, w2c, k = room_views(positions, yaws)
    assert estimate_depth_factor(depth * np.float32(1.05), w2c, k, OFFSET) == NOT_ESTIMATED


def test_too_few_views_measure_nothing():
    depth, w2c, k = room_views(*walk(2))
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


@pytest.mark.parametrize("partner_order", ["baseline", "overlap"])
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_torch_pair_terms_match_numpy(device, partner_order):
    """The torch twin of the pair loop (the CUDA path's) gives the numpy estimate: the same correspondences and
    pairs, the factor to rounding (float64, summation order only)."""
    torch = pytest.importorskip("torch")
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(3)
    depth, w2c, k = room_views(*walk(16))
    noisy = depth * (1.03 * (1 + 0.002 * rng.standard_normal(len(depth)))).astype(np.float32)[:, None, None]
    ref_pairs = gather_view_pairs(noisy, w2c, k, OFFSET, partner_order=partner_order)
    got_pairs = gather_view_pairs(noisy, w2c, k, OFFSET, device=device, partner_order=partner_order)
    for name in ("pair", "pixel_a", "pixel_b"):
        np.testing.assert_array_equal(getattr(got_pairs, name), getattr(ref_pairs, name), err_msg=name)
    for name in ("baseline", "reach_a", "reach_b"):
        np.testing.assert_allclose(getattr(got_pairs, name), getattr(ref_pairs, name), atol=1e-9, err_msg=name)
    ref = estimate_depth_factor(noisy, w2c, k, OFFSET)
    got = estimate_depth_factor(noisy, w2c, k, OFFSET, device=device)
    assert ref.pairs > 0 and (got.pairs, got.correspondences) == (ref.pairs, ref.correspondences)
    assert got.factor == pytest.approx(ref.factor, abs=1e-9)
    assert got.std_error == pytest.approx(ref.std_error, rel=1e-6)
    assert got.residual_m == pytest.approx(ref.residual_m, rel=1e-6)
    assert estimate_depth_factor(np.zeros_like(depth), w2c, k, OFFSET, device=device) == NOT_ESTIMATED


def test_partner_orders():
    """'baseline' partners are the far overlapping views, 'overlap' partners the ones that see most of a view; an
    unknown order is refused."""
    depth, w2c, k = room_views(*walk(16))
    centres = -np.einsum("fji,fj->fi", w2c[:, :3, :3], w2c[:, :3, 3])
    far = gather_view_pairs(depth, w2c, k, OFFSET, partners=3, partner_order="baseline")
    near = gather_view_pairs(depth, w2c, k, OFFSET, partners=3, partner_order="overlap")

    def mean_baseline(pairs):
        a, b = pairs.pair // len(depth), pairs.pair % len(depth)
        return float(np.linalg.norm(centres[a] - centres[b], axis=1).mean())

    assert mean_baseline(far) > mean_baseline(near)
    with pytest.raises(ValueError, match="partner_order"):
        gather_view_pairs(depth, w2c, k, OFFSET, partner_order="nearest")


@pytest.mark.parametrize("device", [None, "cpu"])
def test_the_far_face_of_a_thin_wall_is_no_match(device):
    """Views on both sides of a 10 cm wall: a point of one face lands within the occlusion tolerance of the other
    face's depth, but the faces are different surfaces (they disagree by the wall's thickness whatever the depths
    are): only views on the same side are matched, and exact depths give no shared factor (numpy and the torch
    twin)."""
    k = np.array([[40.0, 0.0, WIDTH / 2], [0.0, 40.0, HEIGHT / 2], [0.0, 0.0, 1.0]])
    half = 0.05
    cameras = [((-2.0, -0.3, 1.5), 0.0), ((-2.6, 0.4, 1.5), 0.15), ((-1.6, 0.1, 1.4), -0.1),
               ((2.0, 0.2, 1.5), np.pi), ((2.5, -0.3, 1.5), np.pi - 0.15), ((1.7, 0.0, 1.6), np.pi + 0.1)]
    w2c = np.stack([look(np.array(p), yaw, pitch=0.0) for p, yaw in cameras])
    u, v = np.meshgrid(np.arange(WIDTH) + OFFSET, np.arange(HEIGHT) + OFFSET)
    ray_cam = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], axis=-1)
    depth = []
    for m in w2c:
        centre = -m[:3, :3].T @ m[:3, 3]
        face = -half if centre[0] < 0 else half  # the face this camera sees
        depth.append((face - centre[0]) / (ray_cam @ m[:3, :3])[..., 0])
    depth = np.stack(depth).astype(np.float32)
    ks = np.repeat(k[None], len(w2c), axis=0)
    if device is not None:
        pytest.importorskip("torch")
    for order in ("baseline", "overlap"):
        pairs = gather_view_pairs(depth, w2c, ks, OFFSET, partner_order=order, device=device)
        side = np.array([p[0] < 0 for p, _ in cameras])
        assert len(pairs) > 1000
        assert np.all(side[pairs.pair // len(w2c)] == side[pairs.pair % len(w2c)])
        np.testing.assert_allclose(pairs.baseline + pairs.reach_a - pairs.reach_b, 0.0, atol=1e-4)
    assert estimate_depth_factor(depth, w2c, ks, OFFSET, device=device).factor == pytest.approx(1.0, abs=1e-4)
