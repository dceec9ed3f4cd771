"""Joint refinement of the views' depth warps against each other (geometry/view_warps.py), on an analytic room."""

from __future__ import annotations

import numpy as np
import pytest
from room_views import HEIGHT, OFFSET, WIDTH, room_views, walk

from lyra_isaac.geometry.alignment import image_xy
from lyra_isaac.geometry.depth_factor import depth_factor_from_pairs, gather_view_pairs
from lyra_isaac.geometry.view_warps import WARP_TERMS, refine_view_warps


def _warped(depth: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """Depth maps (F, H, W) multiplied by ``1 + delta_v`` with ``delta_v`` given by (F, WARP_TERMS) coefficients."""
    x, y = image_xy(np.arange(HEIGHT * WIDTH), WIDTH, HEIGHT)
    basis = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)
    return (depth * (1 + coefficients @ basis.T).reshape(-1, HEIGHT, WIDTH)).astype(np.float32)


def _rms_relative_error(depth: np.ndarray, truth: np.ndarray) -> float:
    valid = truth > 0
    return float(np.sqrt(np.mean((depth[valid] / truth[valid] - 1) ** 2)))


def test_exact_views_stay_as_they_are():
    depth, w2c, k = room_views(*walk(16))
    refinement = refine_view_warps(gather_view_pairs(depth, w2c, k, OFFSET, samples=3000))
    assert refinement.applied and refinement.correspondences > 10_000
    assert refinement.max_change < 1e-3
    assert refinement.residual_after_m < 1e-3


@pytest.mark.parametrize(("seed", "priors", "kept"), [(0, {}, 0.6), (1, {}, 0.6),
                                                     (0, {"scale_prior": 1.0, "shape_prior": 1.0}, 0.05)])
def test_view_warps_are_recovered(seed, priors, kept):
    """Per-view warps of up to ~1.5 % (the mean over views removed: the part the correspondences can see) are
    undone: exactly with a weak prior (the linear model is right), by at least 40 % with the default priors (tuned
    for noisy views, they keep the fit near the consensus alignment's result)."""
    rng = np.random.default_rng(seed)
    depth, w2c, k = room_views(*walk(16))
    coefficients = rng.normal(0.0, 0.004, (len(depth), WARP_TERMS))
    coefficients -= coefficients.mean(axis=0)
    warped = _warped(depth, coefficients)
    refinement = refine_view_warps(gather_view_pairs(warped, w2c, k, OFFSET, samples=3000), **priors)
    assert refinement.applied
    refined = warped * refinement.multipliers(HEIGHT, WIDTH)
    before, after = _rms_relative_error(warped, depth), _rms_relative_error(refined, depth)
    assert before > 0.004
    assert after < kept * before, (before, after)
    worst = int(np.argmax([_rms_relative_error(warped[f], depth[f]) for f in range(len(depth))]))
    assert _rms_relative_error(refined[worst], depth[worst]) < _rms_relative_error(warped[worst], depth[worst])
    assert refinement.residual_after_m < 0.5 * refinement.residual_before_m


def test_a_shared_factor_is_accounted_for():
    """Correspondences gathered before the depth factor was applied: passing the factor refines the scaled views
    (exact views scaled by 1/factor come back exact, with no warp fitted to the baselines' disagreement)."""
    depth, w2c, k = room_views(*walk(16))
    factor = 1.03
    pairs = gather_view_pairs(depth / np.float32(factor), w2c, k, OFFSET, samples=3000)
    assert refine_view_warps(pairs, factor).max_change < 1e-3
    assert refine_view_warps(pairs, 1.0).residual_before_m > 10 * refine_view_warps(pairs, factor).residual_before_m


def test_too_few_correspondences_change_nothing():
    depth, w2c, k = room_views(*walk(16))
    pairs = gather_view_pairs(np.zeros_like(depth), w2c, k, OFFSET)
    refinement = refine_view_warps(pairs)
    assert not refinement.applied and refinement.correspondences == 0
    np.testing.assert_array_equal(refinement.multipliers(HEIGHT, WIDTH), 1.0)


def test_implausible_change_is_not_applied():
    rng = np.random.default_rng(5)
    depth, w2c, k = room_views(*walk(16))
    coefficients = rng.normal(0.0, 0.004, (len(depth), WARP_TERMS))
    coefficients -= coefficients.mean(axis=0)
    pairs = gather_view_pairs(_warped(depth, coefficients), w2c, k, OFFSET, samples=3000)
    assert refine_view_warps(pairs).applied
    assert not refine_view_warps(pairs, max_change=1e-4).applied


def test_view_scales_are_recovered_from_long_baselines():
    """One term per view against long-baseline partners: per-view depth scales (a drift of +-2 % along the path and
    the last view 5 % off, as consensus alignment can leave a view at the end of the path, where it overlaps few
    others) are undone up to their mean; the pairs as if gathered on the refined depths then give that mean as the
    shared depth factor."""
    rng = np.random.default_rng(0)
    depth, w2c, k = room_views(*walk(16))
    scale = 1 + np.linspace(-0.02, 0.02, len(depth)) + 0.005 * rng.standard_normal(len(depth))
    scale[-1] = 1.05
    pairs = gather_view_pairs(depth * scale[:, None, None].astype(np.float32), w2c, k, OFFSET,
                              partner_order="baseline")
    refinement = refine_view_warps(pairs, scale_prior=0.01, max_change=0.1, terms=1)
    assert refinement.applied and refinement.coefficients.shape == (len(depth), 1)
    left = scale * (1 + refinement.coefficients[:, 0])
    left = left / left.mean() - 1
    assert abs(left[-1]) < 0.005 and np.abs(left).max() < 0.005, left  # measured: 0.27 % at most (prior shrinkage)
    assert refinement.multipliers(HEIGHT, WIDTH)[-1] == pytest.approx(1 + refinement.coefficients[-1, 0])
    shared = depth_factor_from_pairs(refinement.applied_to(pairs))
    assert shared.factor == pytest.approx(1 / np.mean(scale * (1 + refinement.coefficients[:, 0])), abs=1e-3)
