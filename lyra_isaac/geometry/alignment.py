"""Per-view depth alignment against a fused consensus: correction models, ray crossings of the consensus surface,
robust batched fits and outlier rejection (step 3 of :mod:`lyra_isaac.geometry.surface`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .depth_maps import DepthViews
from .fusion import backproject
from .tsdf import SparseTSDF

if TYPE_CHECKING:
    from .surface import SurfaceConfig

logger = logging.getLogger(__name__)

ALIGN_BASES = {"scale": 1, "scale_offset": 2, "warp": 6}
"""Number of parameters of each per-view depth correction model."""
CONSENSUS_SECANT_STEPS = 3
"""Secant steps along a pixel's ray to the consensus surface (after a first step of the TSDF's distance)."""
CONSENSUS_MAX_STEP = 0.12
"""... found only within this relative depth change of the starting depth (per-view errors are a few percent)."""


def _design(d: np.ndarray, x: np.ndarray, y: np.ndarray, model: str) -> np.ndarray:
    if model == "scale":
        return d[:, None]
    if model == "scale_offset":
        return np.stack([d, np.ones_like(d)], axis=1)
    return np.stack([d, d * x, d * y, d * x * x, d * x * y, d * y * y], axis=1)


def identity_params(model: str) -> np.ndarray:
    p = np.zeros(ALIGN_BASES[model])
    p[0] = 1.0
    return p


def view_mean_scale(params: np.ndarray, model: str) -> np.ndarray:
    """(F,) mean over the image of each view's fitted depth scale field (x, y uniform in [-1, 1])."""
    mean_scale = params[:, 0].copy()
    if model == "warp":
        mean_scale += (params[:, 3] + params[:, 5]) / 3.0  # E[x^2] = E[y^2] = 1/3, E[x] = E[xy] = 0
    return mean_scale


def normalize_params(params: np.ndarray, model: str) -> np.ndarray:
    """Rescale all views' corrections so the median view keeps its depth scale.

    The fit makes views agree with each other; their common scale is the consensus's, a weighted mean that
    nearer views dominate. The median view's scale is a less biased estimate of the true one (per-view errors
    are zero-median), and the global scale is another stage's business: keep it where the data put it.
    """
    mean_scale = view_mean_scale(params, model)
    ok = np.isfinite(mean_scale) & (mean_scale > 0)
    if not ok.any():
        return params
    return params / float(np.median(mean_scale[ok]))


def apply_correction(depth: np.ndarray, params: np.ndarray, model: str, offset: float,
                     k: np.ndarray) -> np.ndarray:
    """Corrected (H, W) depth map D' = design(D, x, y) @ params (0 stays 0)."""
    if model == "scale":  # D' = p D over the whole image at once (the same float64 products as per pixel)
        corrected = depth.astype(np.float64) * float(params[0])
        return np.where(corrected > 0, corrected, 0.0).astype(np.float32)
    h, w = depth.shape
    valid = depth > 0
    out = np.zeros_like(depth)
    pix = np.flatnonzero(valid.reshape(-1))
    d = depth.reshape(-1)[pix].astype(np.float64)
    x, y = image_xy(pix, w, h)
    corrected = _design(d, x, y, model) @ params
    flat = out.reshape(-1)
    flat[pix] = np.where(corrected > 0, corrected, 0).astype(np.float32)
    return out


def image_xy(pix: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalized image coordinates in [-1, 1] of flat pixel indices."""
    return ((pix % w) + 0.5) / w * 2 - 1, ((pix // w) + 0.5) / h * 2 - 1


def consensus_depth(tsdf: SparseTSDF, w2c: np.ndarray, k: np.ndarray, offset: float, pixels: np.ndarray, width: int,
                    depth: np.ndarray, steps: int = CONSENSUS_SECANT_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """Depth at which each pixel's ray crosses the consensus surface (the TSDF's zero level), found by secant steps.

    The TSDF's value at a point is (a weighted mean of projective) distances to the surface, not the distance along
    this view's ray: at a grazing angle a depth error of ``e`` shows as only ``e * cos(incidence)``. Stepping along
    the ray to the zero crossing measures the depth error where a view sees the surface obliquely (far ground).

    Args:
        tsdf: the consensus.
        w2c: (4, 4) world-to-camera; k: (3, 3) pixels; offset: pixel-centre offset.
        pixels: (N,) flat pixel indices of an image ``width`` pixels wide.
        depth: (N,) float64 starting depths along the optical axis, metres (> 0).

    Returns:
        ((N,) float64 consensus depths, metres; (N,) bool: found, i.e. the ray is observed near the start and the
        crossing lies within ``CONSENSUS_MAX_STEP`` of the starting depth with the TSDF there within a voxel of 0).
    """
    center, ray = pixel_rays(w2c, k, offset, pixels, width)
    return consensus_crossings(tsdf, np.broadcast_to(center, ray.shape), ray, depth, steps)


def pixel_rays(w2c: np.ndarray, k: np.ndarray, offset: float, pixels: np.ndarray,
               width: int) -> tuple[np.ndarray, np.ndarray]:
    """(camera centre (3,), (N, 3) world ray per metre of optical-axis depth) of flat pixel indices."""
    u = (pixels % width).astype(np.float64) + offset
    v = (pixels // width).astype(np.float64) + offset
    ray_cam = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], axis=1)
    rot = w2c[:3, :3]
    return -(rot.T @ w2c[:3, 3]), ray_cam @ rot  # R^T r per row


def consensus_crossings(tsdf: SparseTSDF, centers: np.ndarray, rays: np.ndarray, depth: np.ndarray,
                        steps: int = CONSENSUS_SECANT_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """:func:`consensus_depth` for rays of any views at once: (N, 3) centres, (N, 3) rays per metre of optical-axis
    depth, (N,) starting depths. Every step is elementwise, so batching views changes no result, only the number
    of (GPU) sampling calls."""
    norm = np.linalg.norm(rays, axis=1)

    def field(t: np.ndarray) -> np.ndarray:
        dist, _ = tsdf.sample((centers + t[:, None] * rays).astype(np.float32))
        dist = dist.astype(np.float64)
        dist[np.abs(dist) >= 0.9 * tsdf.truncation] = np.nan  # saturated: no gradient to follow
        return dist

    d0 = np.asarray(depth, dtype=np.float64)
    f0 = field(d0)
    ok = np.isfinite(f0) & (d0 > 0)
    # first step: as if the surface faced the ray; then secant steps on the two latest samples
    d1 = d0 + np.where(ok, f0, 0.0) / norm
    f1 = field(d1)
    lo, hi = d0 * (1 - CONSENSUS_MAX_STEP), d0 * (1 + CONSENSUS_MAX_STEP)
    for _ in range(steps):
        slope = (f1 - f0) / np.where(d1 != d0, d1 - d0, np.nan)
        step_ok = np.isfinite(f1) & (slope < 0)
        d2 = np.where(step_ok, d1 - f1 / np.where(step_ok, slope, -1.0), d1)
        d2 = np.clip(d2, lo, hi)
        d0, f0 = d1, f1
        d1 = d2
        f1 = field(d1)
    converged = np.isfinite(f1) & (np.abs(f1) <= tsdf.voxel_size)
    exact = ok & (np.abs(np.nan_to_num(f0, nan=np.inf)) < 1e-9)
    found = ok & converged & (d1 > lo) & (d1 < hi)
    return np.where(found, d1, np.asarray(depth, dtype=np.float64)), found | exact


@dataclass
class _FitSamples:
    """One view's sampled pixels for a correction fit: design rows (N, P) and corrected depths (N,), metres."""

    design: np.ndarray
    corrected: np.ndarray
    pixels: np.ndarray


def _sample_for_fit(depth: np.ndarray, params: np.ndarray, model: str, cfg: SurfaceConfig,
                    rng: np.random.Generator) -> _FitSamples | None:
    """Sample up to ``cfg.align_samples`` valid pixels of an (H, W) depth map (None if fewer than 50 are valid)."""
    h, w = depth.shape
    valid = np.flatnonzero(depth.reshape(-1) > 0)
    if len(valid) < 50:
        return None
    pix = rng.choice(valid, size=min(cfg.align_samples, len(valid)), replace=False)
    d = depth.reshape(-1)[pix].astype(np.float64)
    x, y = image_xy(pix, w, h)
    a = _design(d, x, y, model)
    return _FitSamples(design=a, corrected=a @ params, pixels=pix)


def _robust_fit(a: np.ndarray, target: np.ndarray, params: np.ndarray, model: str,
                cfg: SurfaceConfig) -> tuple[np.ndarray, float, int]:
    """Huber IRLS of ``target = a @ p`` with a ridge towards identity; (params, robust sigma in metres, rows)."""
    prior = identity_params(model)
    scale_rows = np.sqrt(np.mean(a**2, axis=0)) + 1e-12
    lam = cfg.align_regularization * len(target)
    weights = np.ones(len(target))
    p = params.copy()
    sigma = float("nan")
    for _ in range(6):
        sw = np.sqrt(weights)
        an = a / scale_rows
        lhs = (an * sw[:, None]).T @ (an * sw[:, None]) + lam * np.eye(a.shape[1])
        rhs = (an * sw[:, None]).T @ (target * sw) + lam * (prior * scale_rows)
        p = np.linalg.solve(lhs, rhs) / scale_rows
        res = target - a @ p
        sigma = 1.4826 * np.median(np.abs(res - np.median(res))) + 1e-6
        delta = 1.345 * sigma
        r = np.abs(res)
        weights = np.where(r <= delta, 1.0, delta / np.maximum(r, 1e-12))
    return p, float(sigma), int(len(target))


def fit_view_corrections(depths: Sequence[np.ndarray], w2cs: Sequence[np.ndarray], ks: Sequence[np.ndarray],
                         offset: float, tsdf: SparseTSDF, params: np.ndarray, model: str, cfg: SurfaceConfig,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Robustly fit several views' depth corrections against one consensus TSDF.

    For sampled valid pixels of each view, the target is the depth where the pixel's ray crosses the consensus
    surface (:func:`consensus_depth`); Huber IRLS on ``target = design(D) @ p`` per view. The views' pixels are
    sampled in order (the same draws as fitting them one by one) and their rays crossed with the consensus
    together: a handful of large TSDF sampling calls instead of a handful per view (on CUDA each call has a fixed
    cost). Results equal fitting the views one by one.

    Args:
        depths: V (H, W) depth maps, metres; w2cs: V (4, 4); ks: V (3, 3) intrinsics.
        params: (V, P) current corrections.

    Returns:
        ((V, P) params, (V,) robust sigmas in metres (NaN where not fitted), (V,) int samples used).
    """
    samples = [_sample_for_fit(d, p, model, cfg, rng) for d, p in zip(depths, params, strict=True)]
    centers, rays, starts = [], [], []
    for sample, w2c, k, depth in zip(samples, w2cs, ks, depths, strict=True):
        if sample is None:
            continue
        center, ray = pixel_rays(w2c, k, offset, sample.pixels, depth.shape[1])
        centers.append(np.broadcast_to(center, ray.shape))
        rays.append(ray)
        starts.append(sample.corrected)
    out = params.copy()
    sigmas = np.full(len(samples), np.nan)
    used = np.zeros(len(samples), dtype=np.int64)
    if not rays:
        return out, sigmas, used
    targets, found = consensus_crossings(tsdf, np.concatenate(centers), np.concatenate(rays), np.concatenate(starts))
    at = 0
    for v, sample in enumerate(samples):
        if sample is None:
            continue
        n = len(sample.corrected)
        target, ok = targets[at:at + n], found[at:at + n]
        at += n
        used[v] = int(ok.sum())
        if ok.sum() < max(50, 4 * sample.design.shape[1]):
            continue
        out[v], sigmas[v], used[v] = _robust_fit(sample.design[ok], target[ok], params[v], model, cfg)
    return out, sigmas, used


REJECT_BATCH_POINTS = 150_000
"""Points sampled in the consensus per call when rejecting outliers of many views. The numpy sampler slows down
on batches far beyond its caches (4M points per call: 2.4x the time and +0.9 GB peak on the Lyra-size analytic
room); this many already cuts CUDA's per-call cost about in half against one call per view."""


def reject_outliers_views(depth: np.ndarray, views: DepthViews, tsdf: SparseTSDF, thresholds: np.ndarray) -> int:
    """Zero pixels of corrected (F, H, W) ``depth`` farther than their view's threshold from the consensus, in place.

    Pixels in the consensus's free space (saturated: beyond its truncation) are dropped: floaters and flying
    pixels lie there. Pixels where the consensus is unobserved (any trilinear neighbour without data: the border
    of what the views cover) are kept: unconfirmed, but not contradicted. The consensus is sampled for several
    views per call (fewer, larger calls; the same result as view by view).

    Args:
        depth: (F, H, W) float32 metres, 0 = no data; modified in place.
        views: the views' cameras.
        tsdf: the consensus.
        thresholds: (F,) metres.

    Returns:
        number of pixels dropped.
    """
    rejected = 0
    batch: list[tuple[int, np.ndarray, np.ndarray]] = []
    size = 0

    def flush() -> int:
        if not batch:
            return 0
        dist, _ = tsdf.sample(np.concatenate([points for _, points, _ in batch]))
        dropped, at = 0, 0
        for f, points, pix in batch:
            bad = np.abs(dist[at:at + len(points)]) > thresholds[f]  # NaN (unobserved) compares False: kept
            at += len(points)
            depth[f].reshape(-1)[pix[bad]] = 0
            dropped += int(bad.sum())
        batch.clear()
        return dropped

    for f in range(len(depth)):
        points, pix = backproject(depth[f], views.w2c[f], views.intrinsics[f], views.pixel_offset)
        if len(points) == 0:
            continue
        if size + len(points) > REJECT_BATCH_POINTS:
            rejected += flush()
            size = 0
        batch.append((f, points, pix))
        size += len(points)
    return rejected + flush()
