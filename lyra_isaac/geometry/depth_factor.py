"""One depth factor shared by all views, measured against the camera baselines.

Per-view alignment (:func:`lyra_isaac.geometry.surface.fuse_and_mesh`) makes the views agree with *each other*:
it cannot see an error that every view shares. Scaling every view's depth by the same ``k`` about its own camera
centre moves each surface point by ``(k - 1) * (point - camera)``, a different shift from each camera, so two views
of one surface point disagree by ``(1 - k) * (C_a - C_b)``: the camera baselines measure the shared factor.

For a point ``X_a`` seen by view ``a`` and the point ``X_b`` of view ``b``'s depth map where ``X_a`` projects, with
``n`` the surface normal from ``b``'s depth map, the point-to-plane disagreement after scaling both depths by ``k``
is linear in ``k``::

    r(k) = (C_a - C_b) . n + k ((X_a - C_a) - (X_b - C_b)) . n

so ``k`` is one robust (Huber) weighted least-squares fit over many view pairs. Pairs with long baselines carry
the signal (``r``'s slope grows with the baseline) while what per-view alignment left behind (warps, noise) does
not, so partners are chosen by baseline among the views that overlap. A jackknife over views gives its standard
error; the factor is applied only when that error is small.

On the synthetic Lyra fixtures (per-view depth scale sigma 3 %, warps up to 3 %), the views' shared error is the
mean of their scale errors, 0.2-2 % for 24 views (RMS 0.9 % over 12 fixtures); this estimate leaves 0.0-1.2 % of
it (RMS 0.5 %).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

PROBE_SAMPLES = 128
"""Pixels per view projected into every other view to measure overlap."""
MIN_OVERLAP = 0.1
"""Fraction of the probes a partner must see (in front, inside its image, at a consistent depth)."""
OCCLUSION_TOLERANCE = 0.06
"""A projected point matches the partner's pixel if their depths agree within this fraction."""
NORMAL_GAP = 2
"""Pixels between the neighbours whose back-projections give a pixel's normal."""
HUBER = 1.345
MAX_CANDIDATES = 1_500_000
"""Sampled pixels x partners, at most: with many views (Lyra's 128) each view samples fewer pixels (the estimate
rests on ~10^5 correspondences either way; this keeps it near a second)."""
RELATIVE_ERROR = 0.03
ABSOLUTE_ERROR = 0.003
"""Each correspondence is weighted by 1 / expected disagreement^2, RELATIVE_ERROR * (how far each view's point lies
from its camera along the normal) + ABSOLUTE_ERROR metres: what per-view alignment leaves (warps) is relative to
depth, so far surfaces say less. On the synthetic fixtures this halves the error of the estimate (RMS 0.9 -> 0.5 %
of the shared factor) against uniform weights; only the ratio of the two matters."""
BASELINE_SNR = 3.0
"""The baselines (along the surface normals, RMS) must exceed this many residual sigmas: a camera that only turns
in place measures no shared factor at all."""


@dataclass
class DepthFactorEstimate:
    """The depth factor shared by all views.

    Attributes:
        factor: multiply every view's depth by this (1.0 when not estimated).
        std_error: jackknife standard error of ``factor`` over views (inf when not estimated).
        correspondences: point pairs used.
        pairs: view pairs used.
        residual_m: robust sigma of the point-to-plane disagreement at ``factor``, metres.
    """

    factor: float
    std_error: float
    correspondences: int
    pairs: int
    residual_m: float

    def as_dict(self) -> dict[str, float | int]:
        return {"factor": round(self.factor, 5), "std_error": round(self.std_error, 5),
                "correspondences": self.correspondences, "pairs": self.pairs,
                "residual_m": round(self.residual_m, 4)}


NOT_ESTIMATED = DepthFactorEstimate(factor=1.0, std_error=float("inf"), correspondences=0, pairs=0,
                                    residual_m=float("nan"))


def _ray_directions(k: np.ndarray, rows: np.ndarray, cols: np.ndarray, offset: float) -> np.ndarray:
    """(N, 3) camera-frame ray per metre of optical-axis depth through pixels (rows, cols)."""
    x = (cols + offset - k[0, 2]) / k[0, 0]
    y = (rows + offset - k[1, 2]) / k[1, 1]
    return np.stack([x, y, np.ones_like(x)], axis=1)


def _camera_points(depth: np.ndarray, k: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                   offset: float) -> np.ndarray:
    """(N, 3) camera-frame points of pixels (rows, cols) of an (H, W) depth map (0 depth gives the centre)."""
    return _ray_directions(k, rows.astype(np.float64), cols.astype(np.float64), offset) * \
        depth[rows, cols].astype(np.float64)[:, None]


def _project(points_world: np.ndarray, w2c: np.ndarray, k: np.ndarray, offset: float, width: int,
             height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Project (..., 3) world points: (rows, cols) nearest pixel, camera z, inside-the-image mask."""
    cam = points_world @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[..., 2]
    front = z > 1e-3
    safe = np.where(front, z, 1.0)
    col = np.rint(k[0, 0] * cam[..., 0] / safe + k[0, 2] - offset).astype(np.int64)
    row = np.rint(k[1, 1] * cam[..., 1] / safe + k[1, 2] - offset).astype(np.int64)
    inside = front & (col >= 0) & (col < width) & (row >= 0) & (row < height)
    return np.where(inside, row, 0), np.where(inside, col, 0), z, inside


def _pixel_normals(depth: np.ndarray, k: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                   offset: float) -> np.ndarray:
    """(N, 3) camera-frame unit normals at pixels from neighbours ``NORMAL_GAP`` away; NaN where undefined."""
    h, w = depth.shape
    g = NORMAL_GAP
    ok = (rows >= g) & (rows < h - g) & (cols >= g) & (cols < w - g)
    r, c = np.where(ok, rows, g), np.where(ok, cols, g)
    neighbours = [(r, c + g), (r, c - g), (r + g, c), (r - g, c)]
    centre = depth[r, c].astype(np.float64)
    for nr, nc in neighbours:
        d = depth[nr, nc].astype(np.float64)
        ok &= (d > 0) & (np.abs(d - centre) < OCCLUSION_TOLERANCE * centre)
    px, mx, py, my = (_camera_points(depth, k, nr, nc, offset) for nr, nc in neighbours)
    n = np.cross(px - mx, py - my)
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    n = n / np.where(norm > 0, norm, 1.0)
    n[~ok | (norm[:, 0] <= 0)] = np.nan
    return n


@dataclass
class ViewPairs:
    """Point correspondences between overlapping views: a pixel of view ``a``, the pixel of view ``b`` its point
    projects to, and the surface normal there (from ``b``'s depth map). Shared by the depth factor and the joint warp
    refinement (:mod:`.view_warps`), which reuse one gathering.

    Attributes:
        frames: number of views F.
        height, width: depth map size, pixels.
        pair: (N,) int64 view pair ``a * F + b``.
        pixel_a: (N,) int64 flat pixel (row * width + col) of the point in view ``a``.
        pixel_b: (N,) int64 flat pixel of its match in view ``b``.
        baseline: (N,) ``n . (C_a - C_b)``, metres (``n`` the unit normal, ``C`` camera centres).
        reach_a: (N,) ``n . (X_a - C_a)``, metres: how far the point of ``a`` lies from its camera along ``n``.
        reach_b: (N,) ``n . (X_b - C_b)``, metres.
        n_pairs: view pairs used.

    The point-to-plane disagreement of a correspondence is ``baseline + reach_a - reach_b``; scaling view ``v``'s
    depth by ``s_v`` at a pixel scales its reach by ``s_v``.
    """

    frames: int
    height: int
    width: int
    pair: np.ndarray
    pixel_a: np.ndarray
    pixel_b: np.ndarray
    baseline: np.ndarray
    reach_a: np.ndarray
    reach_b: np.ndarray
    n_pairs: int

    def __len__(self) -> int:
        return int(len(self.pair))


def gather_view_pairs(depth: np.ndarray, w2c: np.ndarray, intrinsics: np.ndarray, offset: float, *,
                      samples: int = 2000, partners: int = 12, rng: np.random.Generator | None = None,
                      device: str | None = None, partner_order: str = "baseline") -> ViewPairs:
    """Sample pixels of every view and match them in the overlapping views with the longest baselines.

    Args:
        depth: (F, H, W) float32 depth along the optical axis, metres (0 = no data), already aligned view to view.
        w2c: (F, 4, 4) world-to-camera (OpenCV axes, metres); the camera centres are exact.
        intrinsics: (F, 3, 3) pixels.
        offset: pixel (u, v) is centred at (u + offset, v + offset).
        samples: pixels sampled per view (fewer when views x partners x samples exceeds ``MAX_CANDIDATES``).
        partners: views each view is compared with, among those that overlap it.
        rng: sampling generator (default: seeded 0).
        partner_order: which overlapping views are the partners: "baseline" (the longest baselines, weighted by
            the square root of the overlap: what measures the shared depth factor) or "overlap" (the views that see
            most of this one: correspondences spread over the whole image, what a per-view warp needs).
        device: a torch device ("cuda", "cpu") to measure the view pairs on (:func:`_pairs_torch`: the same
            float64 arithmetic, every partner of a view in one pass); None: numpy. The pixel draws are the same
            either way; only summation order differs (the terms agree to ~1e-12).

    Returns:
        The correspondences, in the order view ``a``, its partners in choice order, then sample order.
    """
    rng = rng or np.random.default_rng(0)
    frames, height, width = depth.shape
    samples = max(PROBE_SAMPLES, min(samples, MAX_CANDIDATES // max(1, frames * partners)))
    rot = w2c[:, :3, :3]
    centres = -np.einsum("fji,fj->fi", rot, w2c[:, :3, 3])  # C = -R^T t
    sample_rows, sample_cols = [], []
    for f in range(frames):
        valid = np.flatnonzero(depth[f].reshape(-1) > 0)
        pick = rng.choice(valid, size=min(samples, len(valid)), replace=False) if len(valid) else valid
        sample_rows.append(pick // width)
        sample_cols.append(pick % width)
    if device is not None:
        return _pairs_torch(depth, w2c, intrinsics, offset, centres, sample_rows, sample_cols, partners, device,
                            partner_order)
    parts: list[tuple[np.ndarray, ...]] = []
    n_pairs = 0
    for a in range(frames):
        if len(sample_rows[a]) < 30:
            continue
        cam_a = _camera_points(depth[a], intrinsics[a], sample_rows[a], sample_cols[a], offset)
        ray_a = cam_a @ rot[a]  # (S, 3) world offset from C_a
        x_a = centres[a] + ray_a
        chosen = _partners(a, x_a[:PROBE_SAMPLES], depth, w2c, intrinsics, offset, centres, partners,
                           partner_order)
        for b in chosen:
            row, col, z, inside = _project(x_a, w2c[b], intrinsics[b], offset, width, height)
            d_b = depth[b][row, col].astype(np.float64)
            match = inside & (d_b > 0) & (np.abs(z - d_b) < OCCLUSION_TOLERANCE * np.maximum(d_b, 1e-6))
            idx = np.flatnonzero(match)
            if len(idx) < 30:
                continue
            normal = _pixel_normals(depth[b], intrinsics[b], row[idx], col[idx], offset) @ rot[b]  # world frame
            ray_b = _camera_points(depth[b], intrinsics[b], row[idx], col[idx], offset) @ rot[b]
            reach_a, reach_b = np.einsum("ij,ij->i", ray_a[idx], normal), np.einsum("ij,ij->i", ray_b, normal)
            good = np.isfinite(normal).all(axis=1) & _same_side(reach_a, reach_b)
            idx, normal = idx[good], normal[good]
            if len(idx) < 30:
                continue
            parts.append((np.full(len(idx), a * frames + b, dtype=np.int64),
                          sample_rows[a][idx] * width + sample_cols[a][idx], row[idx] * width + col[idx],
                          normal @ (centres[a] - centres[b]), reach_a[good], reach_b[good]))
            n_pairs += 1
    return _view_pairs(parts, frames, height, width, n_pairs)


def _same_side(reach_a: np.ndarray, reach_b: np.ndarray) -> np.ndarray:
    """(N,) bool: both cameras lie on the same side of the surface plane (reaches ``n . (X - C)`` of one sign).

    A point of view ``a`` that lands within ``OCCLUSION_TOLERANCE`` of view ``b``'s depth can lie on another
    surface that ``b`` sees from its other side: the far face of a thin wall. Such a match disagrees by the wall's
    thickness whatever the depths are (on the apartment fixture, seed 1: 15 cm in every match between the first
    view and the views that come back round the wall) and pulled the joint warp refinement ~1.5 % off on view 0.
    A surface seen by both views faces both cameras."""
    return reach_a * reach_b > 0


def _view_pairs(parts: list[tuple[np.ndarray, ...]], frames: int, height: int, width: int,
                n_pairs: int) -> ViewPairs:
    """A :class:`ViewPairs` from per-pair tuples (pair, pixel_a, pixel_b, baseline, reach_a, reach_b)."""
    if not parts:
        empty, none = np.zeros(0), np.zeros(0, dtype=np.int64)
        return ViewPairs(frames, height, width, none, none, none, empty, empty, empty, 0)
    cols = [np.concatenate([part[i] for part in parts]) for i in range(6)]
    return ViewPairs(frames, height, width, cols[0].astype(np.int64), cols[1].astype(np.int64),
                     cols[2].astype(np.int64), *(c.astype(np.float64) for c in cols[3:]), n_pairs=n_pairs)


def estimate_depth_factor(depth: np.ndarray, w2c: np.ndarray, intrinsics: np.ndarray, offset: float, *,
                          samples: int = 2000, partners: int = 12,
                          rng: np.random.Generator | None = None, device: str | None = None) -> DepthFactorEstimate:
    """Estimate the depth factor all views share from the disagreement their camera baselines imply:
    :func:`depth_factor_from_pairs` of :func:`gather_view_pairs` (same arguments).

    Returns:
        The estimate; ``NOT_ESTIMATED`` when fewer than 3 views have overlapping partners or the baselines are too
        short to measure anything (``BASELINE_SNR``).
    """
    pairs = gather_view_pairs(depth, w2c, intrinsics, offset, samples=samples, partners=partners, rng=rng,
                              device=device)
    return depth_factor_from_pairs(pairs)


def depth_factor_from_pairs(pairs: ViewPairs) -> DepthFactorEstimate:
    """The robust fit of the shared factor over the correspondences and its jackknife over views.

    With every depth scaled by ``k`` the disagreement is ``b + k g`` with ``b = baseline`` and
    ``g = reach_a - reach_b``; each correspondence is weighted by its expected error (``RELATIVE_ERROR``).
    """
    return _finish_estimate(pairs.baseline, pairs.reach_a - pairs.reach_b, pairs.pair,
                            np.abs(pairs.reach_a) + np.abs(pairs.reach_b), pairs.n_pairs, pairs.frames)


def _finish_estimate(bb: np.ndarray, gg: np.ndarray, pair: np.ndarray, reach: np.ndarray, n_pairs: int,
                     frames: int) -> DepthFactorEstimate:
    """The robust fit and its jackknife from the correspondences' (N,) terms ``b`` (metres), ``g`` (metres),
    view pair ``a * frames + b`` and reach (metres; see :func:`estimate_depth_factor`)."""
    if n_pairs == 0:
        return NOT_ESTIMATED
    views_used = np.unique(np.concatenate([pair // frames, pair % frames]))
    if len(views_used) < 3 or float(np.sum(gg * gg)) <= 0:
        return NOT_ESTIMATED
    expected = RELATIVE_ERROR * reach + ABSOLUTE_ERROR
    factor, weights, sigma = _huber_factor(bb, gg, expected)
    if float(np.sqrt(np.mean(bb * bb))) < BASELINE_SNR * sigma:
        return NOT_ESTIMATED
    std_error = _jackknife(bb, gg, weights, pair, frames, views_used)
    return DepthFactorEstimate(factor=factor, std_error=std_error, correspondences=int(len(bb)), pairs=n_pairs,
                               residual_m=sigma)


def _partners(a: int, probes: np.ndarray, depth: np.ndarray, w2c: np.ndarray, intrinsics: np.ndarray,
              offset: float, centres: np.ndarray, count: int, order_by: str = "baseline") -> np.ndarray:
    """Up to ``count`` views other than ``a`` that see at least ``MIN_OVERLAP`` of ``probes`` ((S, 3) world points of
    view ``a``), longest baseline first. All views are probed in one (F, S) pass."""
    frames, height, width = depth.shape
    cam = np.einsum("fij,sj->fsi", w2c[:, :3, :3], probes) + w2c[:, None, :3, 3]  # (F, S, 3)
    z = cam[..., 2]
    front = z > 1e-3
    safe = np.where(front, z, 1.0)
    col = np.rint(intrinsics[:, None, 0, 0] * cam[..., 0] / safe + intrinsics[:, None, 0, 2] - offset).astype(np.int64)
    row = np.rint(intrinsics[:, None, 1, 1] * cam[..., 1] / safe + intrinsics[:, None, 1, 2] - offset).astype(np.int64)
    inside = front & (col >= 0) & (col < width) & (row >= 0) & (row < height)
    view = np.broadcast_to(np.arange(frames)[:, None], z.shape)
    d_b = depth[view, np.where(inside, row, 0), np.where(inside, col, 0)]
    seen = inside & (d_b > 0) & (np.abs(z - d_b) < OCCLUSION_TOLERANCE * np.maximum(d_b, 1e-6))
    overlap = seen.mean(axis=1)
    overlap[a] = 0.0
    baseline = np.linalg.norm(centres - centres[a], axis=1)
    candidates = np.flatnonzero(overlap >= MIN_OVERLAP)
    return candidates[_partner_order(candidates, baseline, overlap, order_by)[:count]]


def _partner_order(candidates: np.ndarray, baseline: np.ndarray, overlap: np.ndarray, order_by: str) -> np.ndarray:
    """Ranks of the (C,) candidate views, best partner first (see :func:`gather_view_pairs`' ``partner_order``)."""
    if order_by == "overlap":
        return np.argsort(-overlap[candidates], kind="stable")
    if order_by != "baseline":
        raise ValueError(f"partner_order must be 'baseline' or 'overlap', got {order_by!r}")
    return np.argsort(-(baseline[candidates] * np.sqrt(overlap[candidates])))


def _huber_factor(b: np.ndarray, g: np.ndarray, expected: np.ndarray,
                  iterations: int = 10) -> tuple[float, np.ndarray, float]:
    """Minimize sum huber((b + k g) / expected) over k by IRLS.

    Returns:
        (k, final weights (N,) of the weighted least-squares form, robust sigma of b + k g in metres).
    """
    base = 1.0 / expected**2
    weights = base
    factor = 1.0
    for _ in range(iterations):
        factor = float(-np.sum(weights * b * g) / max(np.sum(weights * g * g), 1e-300))
        normalized = np.abs(b + factor * g) / expected
        sigma = float(1.4826 * np.median(normalized)) + 1e-12
        weights = base * np.where(normalized <= HUBER * sigma, 1.0, HUBER * sigma / np.maximum(normalized, 1e-12))
    return factor, weights, float(1.4826 * np.median(np.abs(b + factor * g)))


def _jackknife(b: np.ndarray, g: np.ndarray, weights: np.ndarray, pair: np.ndarray, frames: int,
               views: np.ndarray) -> float:
    """Standard error of the weighted fit's factor, leaving out every pair that involves one view at a time."""
    sum_bg = np.bincount(pair, weights=weights * b * g, minlength=frames * frames).reshape(frames, frames)
    sum_gg = np.bincount(pair, weights=weights * g * g, minlength=frames * frames).reshape(frames, frames)
    total_bg, total_gg = sum_bg.sum(), sum_gg.sum()
    estimates = []
    for v in views:
        bg = total_bg - sum_bg[v].sum() - sum_bg[:, v].sum() + sum_bg[v, v]
        gg = total_gg - sum_gg[v].sum() - sum_gg[:, v].sum() + sum_gg[v, v]
        if gg > 0:
            estimates.append(-bg / gg)
    if len(estimates) < 3:
        return float("inf")
    estimates = np.asarray(estimates)
    n = len(estimates)
    return float(np.sqrt((n - 1) / n * np.sum((estimates - estimates.mean()) ** 2)))


def _pairs_torch(depth: np.ndarray, w2c: np.ndarray, intrinsics: np.ndarray, offset: float, centres: np.ndarray,
                 sample_rows: list[np.ndarray], sample_cols: list[np.ndarray], partners: int,
                 device: str, partner_order: str = "baseline") -> ViewPairs:
    """torch twin of the pair loop of :func:`gather_view_pairs` (float64; all partners of a view at once).

    Args:
        depth: (F, H, W) float32 metres; w2c: (F, 4, 4); intrinsics: (F, 3, 3); centres: (F, 3) camera centres, m.
        sample_rows, sample_cols: per view, the (S_f,) int64 sampled pixels.

    Returns:
        The correspondences in the numpy loop's order (by view a, its partners in choice order, then sample order).
    """
    import torch

    dev = torch.device(device)
    frames, height, width = depth.shape
    with torch.no_grad():
        dep = torch.as_tensor(depth, device=dev)
        rot_t = torch.as_tensor(w2c[:, :3, :3], dtype=torch.float64, device=dev)
        trans_t = torch.as_tensor(w2c[:, :3, 3], dtype=torch.float64, device=dev)
        k_t = torch.as_tensor(intrinsics, dtype=torch.float64, device=dev)
        centres_t = torch.as_tensor(centres, dtype=torch.float64, device=dev)
        views = torch.arange(frames, device=dev)

        def camera_points(v, rows, cols):  # _camera_points with a view per point
            k = k_t[v]
            x = (cols.double() + offset - k[:, 0, 2]) / k[:, 0, 0]
            y = (rows.double() + offset - k[:, 1, 2]) / k[:, 1, 1]
            return torch.stack([x, y, torch.ones_like(x)], dim=1) * dep[v, rows, cols].double()[:, None]

        def project(points, v):  # _project of (..., 3) points into views v (broadcast to points[..., 0])
            cam = torch.einsum("...ij,...j->...i", rot_t[v], points) + trans_t[v]
            z = cam[..., 2]
            front = z > 1e-3
            safe = torch.where(front, z, 1.0)
            k = k_t[v]
            col = torch.round(k[..., 0, 0] * cam[..., 0] / safe + k[..., 0, 2] - offset).long()
            row = torch.round(k[..., 1, 1] * cam[..., 1] / safe + k[..., 1, 2] - offset).long()
            inside = front & (col >= 0) & (col < width) & (row >= 0) & (row < height)
            return torch.where(inside, row, 0), torch.where(inside, col, 0), z, inside

        def matches(v, row, col, z, inside, tolerance_f32=False):
            d_b = dep[v, row, col]
            # _partners compares against a float32 tolerance, the pair loop against a float64 one
            tol = OCCLUSION_TOLERANCE * torch.clamp(d_b if tolerance_f32 else d_b.double(), min=1e-6)
            return inside & (d_b > 0) & ((z - d_b.double()).abs() < tol)

        parts: list[Any] = []
        n_pairs = 0
        g = NORMAL_GAP
        for a in range(frames):
            if len(sample_rows[a]) < 30:
                continue
            rows_a = torch.as_tensor(sample_rows[a], device=dev)
            cols_a = torch.as_tensor(sample_cols[a], device=dev)
            va = torch.full_like(rows_a, a)
            ray_a = torch.einsum("sj,ji->si", camera_points(va, rows_a, cols_a), rot_t[a])  # cam @ R
            x_a = centres_t[a] + ray_a
            # _partners: every view probed with the first PROBE_SAMPLES points
            probes = x_a[:PROBE_SAMPLES]
            pv = views[:, None].expand(frames, probes.shape[0])
            seen = matches(pv, *project(probes[None].expand(frames, -1, 3), pv), tolerance_f32=True)
            overlap = seen.double().mean(dim=1).cpu().numpy()
            overlap[a] = 0.0
            baseline = np.linalg.norm(centres - centres[a], axis=1)
            candidates = np.flatnonzero(overlap >= MIN_OVERLAP)
            chosen = candidates[_partner_order(candidates, baseline, overlap, partner_order)[:partners]]
            if len(chosen) == 0:
                continue
            cb = torch.as_tensor(chosen, device=dev)
            bv = cb[:, None].expand(len(chosen), x_a.shape[0])  # (P, S)
            row, col, z, inside = project(x_a[None].expand(len(chosen), -1, 3), bv)
            match = matches(bv, row, col, z, inside)
            # _pixel_normals at the matched pixels
            p_idx, s_idx = torch.nonzero(match, as_tuple=True)
            v = cb[p_idx]
            rows, cols = row[p_idx, s_idx], col[p_idx, s_idx]
            ok = (rows >= g) & (rows < height - g) & (cols >= g) & (cols < width - g)
            r, c = torch.where(ok, rows, g), torch.where(ok, cols, g)
            neighbours = [(r, c + g), (r, c - g), (r + g, c), (r - g, c)]
            centre = dep[v, r, c].double()
            for nr, nc in neighbours:
                d = dep[v, nr, nc].double()
                ok &= (d > 0) & ((d - centre).abs() < OCCLUSION_TOLERANCE * centre)
            px, mx, py, my = (camera_points(v, nr, nc) for nr, nc in neighbours)
            n = torch.linalg.cross(px - mx, py - my, dim=1)
            norm = torch.sqrt((n * n).sum(dim=1, keepdim=True))
            n = n / torch.where(norm > 0, norm, 1.0)
            normal = torch.einsum("mi,mij->mj", n, rot_t[v])  # world frame
            ray_b = torch.einsum("mi,mij->mj", camera_points(v, rows, cols), rot_t[v])
            reach_a = torch.einsum("mi,mi->m", ray_a[s_idx], normal)
            reach_b = torch.einsum("mi,mi->m", ray_b, normal)
            good = ok & (norm[:, 0] > 0) & torch.isfinite(n).all(dim=1) & (reach_a * reach_b > 0)  # _same_side
            # the numpy loop drops a pair with fewer than 30 matches or fewer than 30 good normals
            per_pair = torch.zeros(len(chosen), dtype=torch.int64, device=dev).index_add_(0, p_idx, good.long())
            good &= per_pair[p_idx] >= 30
            n_pairs += int((per_pair >= 30).sum())
            sel = torch.nonzero(good).squeeze(1)
            v, s_sel = v[sel], s_idx[sel]
            parts.append((a * frames + v, rows_a[s_sel] * width + cols_a[s_sel], rows[sel] * width + cols[sel],
                          torch.einsum("mi,mi->m", normal[sel], centres_t[a] - centres_t[v]),
                          reach_a[sel], reach_b[sel]))
        out = [tuple(part.cpu().numpy() for part in item) for item in parts]
    return _view_pairs(out, frames, height, width, n_pairs)
