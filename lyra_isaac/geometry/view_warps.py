"""Joint refinement of every view's depth warp against the other views (after consensus alignment).

Consensus alignment (:mod:`.alignment`) fits each view to a fused surface of the other views, so each fit
inherits the errors of the views in that consensus: what it leaves is mostly each view's smooth warp (a few tenths
of a percent RMS, up to ~1.5 % in image corners, which is 5-8 cm on surfaces 5 m away). Fitting a warp per view
against the consensus extrapolates wherever the view has no consensus to fit against, and measured worse than the
plain scale (see the README's fidelity notes).

Here all views' warps are fitted at once to the point correspondences between views (:class:`.depth_factor
.ViewPairs`, gathered like the depth factor's but with each view's partners chosen by overlap, not baseline: a
warp needs correspondences over the whole image, and long-baseline partners see only part of it, so the fitted warp
extrapolated over the rest: at Lyra size F@5cm 0.993 -> 0.979 with baseline partners, 0.997 with overlap
partners): with view ``v``'s depth multiplied by ``1 + delta_v(x, y)``, a smooth
quadratic in normalized image coordinates (the alignment's ``warp`` basis), a correspondence's point-to-plane
disagreement ``baseline + reach_a - reach_b`` becomes linear in the coefficients::

    r = baseline + reach_a (1 + delta_a(x_a, y_a)) - reach_b (1 + delta_b(x_b, y_b))

The fit is a Huber IRLS over every correspondence (weighted by its expected error, as the depth factor's) with a
Gaussian prior on each coefficient (``scale_prior`` on the constant, ``shape_prior`` on the others: the
consensus fit already has the per-view scale to ~0.5 %) and the mean over views of every coefficient held at zero.
That common part (every view warped alike) is what the correspondences cannot tell apart from the scene's own
shape; the shared depth factor measures its constant, the rest stays as alignment left it.

With ``terms=1`` the same fit gives each view one depth scale; :func:`lyra_isaac.geometry.surface.fuse_and_mesh`
can run it first on the depth factor's long-baseline correspondences (``surface.refine_scales``, applied where it
explains at least ``refine_scales_min_gain`` of the disagreement: see its measurements in
:class:`~lyra_isaac.geometry.surface.SurfaceConfig`): a scale is one number
per view, so partners that see only part of a view do not make it extrapolate, and long baselines measure it where
consensus alignment only matches a view to its neighbours (a drift along the path, largest at its ends: the last
view of the apartment fixture, seed 0, kept 7.5 % after alignment, 6.0 % after the warps, 0.8 % with the scale fit
first).

Measured on the 12 CI-size truth fixtures (4 scenes x seeds 0-2; per-view scale 3 %, warps up to 3 %, 1 % pixel
noise): F@5cm mean 0.949 -> 0.966 (courtyard seed 0 0.897 -> 0.927; one fixture worse, apartment seed 1 0.968 ->
0.952), and at Lyra size F@5cm 0.993 -> 0.995 with Chamfer 1.05 -> 0.95 cm. The priors were chosen on the same
fixtures by the per-pixel depth error against the true per-view errors (with the first, long-baseline partners:
RMS 1.22 -> 0.91 % on average, every fixture better). Weaker priors let noise and the correspondences' own biases
in: started from the exact depths, a 6x weaker prior drifts to 0.4 % RMS.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np

from .alignment import image_xy
from .depth_factor import ABSOLUTE_ERROR, HUBER, RELATIVE_ERROR, ViewPairs

logger = logging.getLogger(__name__)

WARP_TERMS = 6
"""Coefficients of each view's warp: 1, x, y, x^2, xy, y^2 (x, y normalized image coordinates in [-1, 1])."""
IRLS_ITERATIONS = 5
MIN_CORRESPONDENCES = 1000
"""Below this many correspondences nothing is refined."""


@dataclass
class WarpRefinement:
    """Per-view depth multipliers ``1 + delta_v(x, y)``.

    Attributes:
        coefficients: (F, WARP_TERMS) float64 coefficients of ``delta_v`` (zeros: identity).
        correspondences: correspondences fitted.
        residual_before_m, residual_after_m: robust sigma (1.4826 MAD) of the point-to-plane disagreement before
            and after, metres.
        max_change: largest ``|delta_v|`` over every view's image.
        applied: whether the caller should apply it (enough correspondences, change within bounds).
    """

    coefficients: np.ndarray
    correspondences: int
    residual_before_m: float
    residual_after_m: float
    max_change: float
    applied: bool

    def multipliers(self, height: int, width: int) -> np.ndarray:
        """(F, H, W) float32 depth multipliers ``1 + delta_v`` of every view."""
        x, y = image_xy(np.arange(height * width), width, height)
        basis = _basis(x, y)[:, :self.coefficients.shape[1]]
        return (1.0 + self.coefficients @ basis.T).reshape(-1, height, width).astype(np.float32)

    def applied_to(self, pairs: ViewPairs) -> ViewPairs:
        """``pairs`` as if gathered on the refined depths: each reach times its view's multiplier at its pixel
        (the matches themselves are kept: a change of a few percent barely moves them)."""
        frames, terms = pairs.frames, self.coefficients.shape[1]
        xa, ya = image_xy(pairs.pixel_a, pairs.width, pairs.height)
        xb, yb = image_xy(pairs.pixel_b, pairs.width, pairs.height)
        view_a, view_b = pairs.pair // frames, pairs.pair % frames
        scale_a = 1.0 + np.einsum("ij,ij->i", _basis(xa, ya)[:, :terms], self.coefficients[view_a])
        scale_b = 1.0 + np.einsum("ij,ij->i", _basis(xb, yb)[:, :terms], self.coefficients[view_b])
        return dataclasses.replace(pairs, reach_a=pairs.reach_a * scale_a, reach_b=pairs.reach_b * scale_b)

    def as_dict(self) -> dict[str, float | int | bool]:
        return {"correspondences": self.correspondences, "residual_before_m": round(self.residual_before_m, 4),
                "residual_after_m": round(self.residual_after_m, 4), "max_change": round(self.max_change, 4),
                "applied": self.applied}


def _basis(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N, WARP_TERMS) warp basis at normalized image coordinates (N,) x, y (the alignment's ``warp`` order)."""
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)


def refine_view_warps(pairs: ViewPairs, factor: float = 1.0, *, scale_prior: float = 0.002,
                      shape_prior: float = 0.005, max_change: float = 0.05, terms: int = WARP_TERMS) -> WarpRefinement:
    """Fit every view's depth warp jointly to the correspondences between views.

    Args:
        pairs: correspondences gathered on the depth maps (:func:`.depth_factor.gather_view_pairs`).
        factor: depth factor applied to every view since the gathering (the reaches scale with it).
        scale_prior: prior standard deviation of each view's constant coefficient (relative depth).
        shape_prior: prior standard deviation of the other coefficients.
        max_change: refuse (``applied=False``) a result that changes any view's depth by more than this fraction
            anywhere in its image: the views then disagree in a way a smooth warp does not describe.
        terms: the first this many warp terms are fitted (1: a depth scale per view, as ``surface.refine_scales`` fits).

    Returns:
        The refinement (identity, not applied, when there are fewer than ``MIN_CORRESPONDENCES``).
    """
    frames = pairs.frames
    identity = WarpRefinement(np.zeros((frames, terms)), len(pairs), float("nan"), float("nan"), 0.0, False)
    if len(pairs) < MIN_CORRESPONDENCES:
        return identity
    reach_a, reach_b = factor * pairs.reach_a, factor * pairs.reach_b
    r0 = pairs.baseline + reach_a - reach_b
    expected = RELATIVE_ERROR * (np.abs(reach_a) + np.abs(reach_b)) + ABSOLUTE_ERROR
    view_a, view_b = pairs.pair // frames, pairs.pair % frames
    xa, ya = image_xy(pairs.pixel_a, pairs.width, pairs.height)
    xb, yb = image_xy(pairs.pixel_b, pairs.width, pairs.height)
    # r = r0 + z . [theta_a, theta_b]: each row touches two views' coefficients
    z = np.concatenate([reach_a[:, None] * _basis(xa, ya)[:, :terms], -reach_b[:, None] * _basis(xb, yb)[:, :terms]],
                       axis=1)
    # rows are grouped by view pair (gathering order): normal equations block by block
    starts = np.flatnonzero(np.r_[True, pairs.pair[1:] != pairs.pair[:-1]])
    ends = np.r_[starts[1:], len(pairs)]
    prior = np.tile(np.r_[1.0 / scale_prior**2, np.full(terms - 1, 1.0 / shape_prior**2)], frames)
    # the mean over views of every coefficient stays zero (Lagrange multipliers)
    gauge = np.tile(np.eye(terms), (1, frames))  # (terms, F * terms)
    theta = np.zeros(frames * terms)
    base_weight = 1.0 / expected**2
    sigma_before = float(1.4826 * np.median(np.abs(r0)))
    for _ in range(IRLS_ITERATIONS):
        residual = r0 + _apply(z, theta, view_a, view_b, terms)
        normalized = np.abs(residual) / expected
        sigma = float(1.4826 * np.median(normalized)) + 1e-12
        weight = base_weight * np.where(normalized <= HUBER * sigma, 1.0,
                                        HUBER * sigma / np.maximum(normalized, 1e-12))
        normal, rhs = _normal_equations(z, weight, r0, starts, ends, view_a, view_b, frames, terms)
        normal[np.diag_indices_from(normal)] += prior
        kkt = np.block([[normal, gauge.T], [gauge, np.zeros((terms, terms))]])
        theta = np.linalg.solve(kkt, np.r_[rhs, np.zeros(terms)])[:frames * terms]
    coefficients = theta.reshape(frames, terms)
    after = r0 + _apply(z, theta, view_a, view_b, terms)
    grid_x, grid_y = np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-1, 1, 9))  # corners and centre included
    change = float(np.abs(coefficients @ _basis(grid_x.ravel(), grid_y.ravel())[:, :terms].T).max())
    return WarpRefinement(coefficients=coefficients, correspondences=len(pairs), residual_before_m=sigma_before,
                          residual_after_m=float(1.4826 * np.median(np.abs(after))), max_change=change,
                          applied=change <= max_change)


def _apply(z: np.ndarray, theta: np.ndarray, view_a: np.ndarray, view_b: np.ndarray, terms: int) -> np.ndarray:
    """(N,) ``z . [theta_a, theta_b]`` for rows ``z`` (N, 2 terms)."""
    t = theta.reshape(-1, terms)
    return np.einsum("ij,ij->i", z[:, :terms], t[view_a]) + np.einsum("ij,ij->i", z[:, terms:], t[view_b])


def _normal_equations(z: np.ndarray, weight: np.ndarray, r0: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                      view_a: np.ndarray, view_b: np.ndarray, frames: int,
                      terms: int) -> tuple[np.ndarray, np.ndarray]:
    """``Z^T W Z`` ((F terms)^2) and ``-Z^T W r0`` (F terms) of the rows, summed per view pair block."""
    normal = np.zeros((frames * terms, frames * terms))
    rhs = np.zeros(frames * terms)
    for start, end in zip(starts, ends, strict=True):
        a, b = int(view_a[start]), int(view_b[start])
        zw = z[start:end] * weight[start:end, None]
        block = zw.T @ z[start:end]  # (2 terms, 2 terms)
        ia, ib = slice(a * terms, (a + 1) * terms), slice(b * terms, (b + 1) * terms)
        normal[ia, ia] += block[:terms, :terms]
        normal[ib, ib] += block[terms:, terms:]
        normal[ia, ib] += block[:terms, terms:]
        normal[ib, ia] += block[terms:, :terms]
        g = zw.T @ r0[start:end]
        rhs[ia] -= g[:terms]
        rhs[ib] -= g[terms:]
    return normal, rhs
