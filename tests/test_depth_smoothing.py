"""smooth_depth_maps: a local plane fit in inverse depth that averages per-pixel noise on surfaces, unbiased on any
plane, and leaves edges, missing pixels and sparse windows alone."""

from __future__ import annotations

import numpy as np
import pytest

from lyra_isaac.geometry.depth_maps import fill_depth_gaps, filter_depth_edges, smooth_depth_maps

H, W = 60, 80


def _plane(slope_u: float, slope_v: float) -> np.ndarray:
    """(H, W) float32 depth of a plane: its inverse depth is affine in pixel coordinates."""
    v, u = np.mgrid[0:H, 0:W]
    return (1.0 / (0.15 + slope_u * u + slope_v * v)).astype(np.float32)


@pytest.mark.parametrize("radius", [1, 2])
@pytest.mark.parametrize("slopes", [(0.0, 0.0), (0.003, 0.004), (0.0, 0.02)])  # facing, slanted, grazing floor
def test_noise_on_a_plane_is_averaged_without_bias(radius, slopes):
    truth = _plane(*slopes)
    noisy = truth * (1 + 0.01 * np.random.default_rng(0).standard_normal(truth.shape)).astype(np.float32)
    smoothed = noisy[None].copy()
    changed = smooth_depth_maps(smoothed, radius, 0.03)
    error_before, error_after = noisy / truth - 1, smoothed[0] / truth - 1
    assert changed >= 0.9 * truth.size
    assert np.std(error_after) < 0.6 * np.std(error_before) / radius  # 3x3: ~1/2.4 of the noise, 5x5: ~1/4.5
    assert abs(np.mean(error_after)) < 5e-4  # no bias, whatever the slant
    exact = truth[None].copy()
    smooth_depth_maps(exact, radius, 0.03)
    np.testing.assert_allclose(exact[0], truth, rtol=1e-5)  # a noiseless plane is reproduced


def test_edges_holes_and_sparse_windows_are_left_alone():
    v, u = np.mgrid[0:H, 0:W]
    truth = np.where(u < 40, 2.0, 5.0).astype(np.float32)  # an occluding edge: 2 m in front of 5 m
    noisy = truth * (1 + 0.01 * np.random.default_rng(1).standard_normal(truth.shape)).astype(np.float32)
    noisy[10:13, 10:13] = 0.0  # a hole
    noisy[40:, 60:] *= np.where((u[40:, 60:] + v[40:, 60:]) % 3 == 0, 1.0, 0.0).astype(np.float32)  # sparse corner
    smoothed = noisy[None].copy()
    smooth_depth_maps(smoothed, 1, 0.03)
    out = smoothed[0]
    assert np.array_equal(out > 0, noisy > 0)  # no pixel added or removed
    edge = (u >= 39) & (u <= 40)
    np.testing.assert_array_equal(out[edge], noisy[edge])  # windows across the edge keep their own depth
    sparse = (v >= 41) & (u >= 61) & (noisy > 0)
    np.testing.assert_array_equal(out[sparse], noisy[sparse])  # 3 of 9 valid: under min_fraction
    inside = (u >= 2) & (u <= 36) & (v >= 15)
    assert np.std(out[inside] / truth[inside] - 1) < 0.6 * np.std(noisy[inside] / truth[inside] - 1)


def test_radius_zero_does_nothing():
    depth = _plane(0.003, 0.004)[None] * 1.01
    before = depth.copy()
    assert smooth_depth_maps(depth, 0, 0.03) == 0 and np.array_equal(depth, before)


@pytest.mark.parametrize("step", ["smooth", "edges", "gaps"])
def test_threads_give_the_serial_result(monkeypatch, step):
    """Each per-view step (this smoothing, the flying-pixel filter and the gap filling) gives the same maps and count
    on a pool of threads as one view after another."""
    rng = np.random.default_rng(2)
    depth = np.stack([_plane(0.001 * k, 0.003) for k in range(6)]) * (1 + 0.01 * rng.standard_normal((6, H, W)))
    depth = depth.astype(np.float32)
    depth[:, :, 50:] *= 1.5  # a depth edge in every view
    depth[:, 10:40, 49] = 0.5 * (depth[:, 10:40, 48] + depth[:, 10:40, 50])  # flying pixels across it
    depth[2, 20:30, 20:30] = 0.0
    depth[rng.random(depth.shape) < 0.03] = 0.0  # scattered gaps
    run = {"smooth": lambda d: smooth_depth_maps(d, 1, 0.03), "edges": lambda d: filter_depth_edges(d, 0.1),
           "gaps": lambda d: fill_depth_gaps(d, 4)}[step]
    serial, threaded = depth.copy(), depth.copy()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    count = run(serial)
    assert count > 0
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert run(threaded) == count
    np.testing.assert_array_equal(serial, threaded)
