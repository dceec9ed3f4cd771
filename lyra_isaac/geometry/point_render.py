"""Depth rendered from the Gaussians for scenes that are not pixel-aligned (no splat rasterizer on the CPU), and
views synthesized in free space for scenes without cameras.

Two renderers (``SurfaceConfig.render_mode``; "auto" picks by the share of flat Gaussians; default "centres"):

- ``"splat"``: each Gaussian is projected with its covariance (EWA: the 2-D footprint
  ``J W Sigma W^T J^T`` plus a 0.3 px^2 low-pass, as in 3DGS) and its opacity; a pixel's depth is where the
  front-to-back accumulated opacity first reaches ``render_alpha`` (the "median depth" of a splat rasterizer;
  pixels that never reach it stay empty). Flat Gaussians (optimized 3DGS: discs on the surface) give each pixel the
  depth where its ray crosses the disc's plane, not the centre's depth, so a floor seen at a grazing angle is a
  plane, not a staircase of centre depths. Faint floaters do not reach the threshold on their own.
  Opt-in: on the optimized apartment fixture (:mod:`lyra_isaac.synthetic.optimized_fixture`, seed 0, cameras)
  it reached F@5cm 0.957 (centres 0.941) and floor holes 5 % (11 %), but F@2cm 0.64 (0.90) with the floor 2.4 cm
  off (0.6 cm): a bias not yet found. About 2 s per 160 x 90 view for 150k Gaussians (centres: 0.1 s).
- ``"centres"``: Gaussian centres splatted as discs of ``render_max_radius_px`` into a z-buffer that takes the
  median of the nearest depth cluster (the previous renderer; made for shuffled pixel-aligned scenes). When most
  Gaussians are flat (optimized 3DGS, whose centres are sparser than the pixels) the rendered gaps a smooth
  surface encloses are then filled (``fill_gaps`` rounds of :func:`~.depth_maps.fill_depth_gaps`). Optimized
  fixtures, seed 0, cameras.json: apartment F@5cm 0.942 -> 0.960, F@2cm 0.905 -> 0.932, floor holes 10 -> 5 %;
  corridor 0.932 -> 0.948, 0.901 -> 0.927, 13 -> 6 %. A centre footprint of 1 px instead gave F@5cm 0.965 /
  0.949 but F@2cm 0.888 / 0.861 and a 1.3 cm floor error in the corridor (the centre's depth over a slanted floor).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConversionError
from ..splats.cameras import CameraPath
from ..splats.scene import FLAT_RATIO, GaussianScene, flat_rows
from .depth_maps import DepthViews, fill_depth_gaps

if TYPE_CHECKING:
    from .surface import SurfaceConfig

logger = logging.getLogger(__name__)

RENDER_SKIP_NEAREST = 2
"""Rendered depth: the nearest-cluster anchor is the (this + 1)-th nearest point of a pixel."""


SPLAT_LOWPASS_PX2 = 0.3
"""Added to the 2-D footprint covariance (pixels^2), as 3DGS's rasterizer does: no footprint is under a pixel."""
SPLAT_SIGMAS = 3.0
"""A footprint reaches this many standard deviations from its centre (capped at ``render_splat_radius_px``)."""
SPLAT_MIN_ALPHA = 1.0 / 255.0
"""Footprint pixels with less alpha than this are skipped (as in 3DGS)."""
SPLAT_MAX_ALPHA = 0.99
"""Largest alpha one Gaussian contributes to a pixel (as in 3DGS)."""
FLAT_MIN_COS = 0.2
"""... and a ray crossing its plane at a cosine above this gets the plane's depth (grazing rays get the centre's)."""
AUTO_FLAT_FRACTION = 0.5
"""``render_mode = "auto"``: the splat renderer when at least this fraction of the Gaussians is flat (optimized
3DGS: discs on the surfaces), else the centres renderer (pixel-sized blobs, e.g. a shuffled or pruned Lyra file,
whose views disagree by a few percent: the splat renderer's front-to-back depth takes the nearest copy, F@5cm 0.23
vs 0.77 on the harsh Lyra fixture of tests/test_surface.py)."""
PLANE_DEPTH_SIGMAS = 3.0
"""A plane depth stays within this many largest sigmas of the centre's depth."""


def render_point_depths(scene: GaussianScene, cameras: CameraPath, cfg: SurfaceConfig) -> DepthViews:
    """Render depth maps from the Gaussians (no splat rasterizer on the CPU): ``cfg.render_mode`` picks the
    renderer (see the module docstring).

    Args:
        scene: Gaussians in the world frame (metres).
        cameras: the views to render, world frame.
        cfg: ``render_mode``, ``render_max_width``, ``render_alpha``, ``render_splat_radius_px`` (splat);
            ``render_max_radius_px``, ``render_cluster_gap*``, ``fill_gaps`` (centres); ``voxel_size``,
            ``max_depth``.

    Returns:
        DepthViews (F, H, W) at ``render_max_width`` (or the cameras' width if smaller), pixel_offset 0.5; depth
        0 where nothing was rendered.
    """
    mode = cfg.render_mode
    flat = flat_fraction(scene) if mode == "auto" or (mode == "centres" and cfg.fill_gaps > 0) else 0.0
    if mode == "auto":
        mode = "splat" if flat >= AUTO_FLAT_FRACTION else "centres"
        logger.info("surface: %.0f%% of the Gaussians are flat: %s renderer", 100 * flat, mode)
    if mode == "splat":
        return render_splat_depths(scene, cameras, cfg)
    views = render_centre_depths(scene, cameras, cfg)
    if cfg.fill_gaps > 0 and flat >= AUTO_FLAT_FRACTION:
        # optimized 3DGS: centres sparser than the pixels leave holes between them; fill those a smooth surface
        # encloses (a footprint would paint the centre's depth over a slanted floor instead)
        filled = fill_depth_gaps(views.depth, cfg.fill_gaps)
        logger.info("surface: flat Gaussians (optimized 3DGS): %d rendered gap pixels filled", filled)
    return views


def flat_fraction(scene: GaussianScene, sample: int = 100_000) -> float:
    """Fraction of (a sample of) the Gaussians that are flat: smallest sigma under ``FLAT_RATIO`` x the middle."""
    idx = np.random.default_rng(0).choice(len(scene), min(sample, len(scene)), replace=False)
    return float(np.mean(flat_rows(scene.log_scales[idx].astype(np.float64)))) if len(idx) else 0.0


def _render_size(cameras: CameraPath, cfg: SurfaceConfig) -> tuple[int, int, np.ndarray]:
    scale = min(1.0, cfg.render_max_width / float(cameras.width))
    width = max(int(round(cameras.width * scale)), 8)
    height = max(int(round(cameras.height * scale)), 8)
    k_all = cameras.intrinsics.astype(np.float64).copy()
    k_all[:, :2, :] *= np.array([width / cameras.width, height / cameras.height])[None, :, None]
    return width, height, k_all


def render_splat_depths(scene: GaussianScene, cameras: CameraPath, cfg: SurfaceConfig) -> DepthViews:
    """Median depth of the projected Gaussians, front to back (``render_mode = "splat"``, see the module docstring).

    Gaussians are first thinned to the most opaque one per ``voxel_size / 2`` cell (the TSDF cannot resolve more).

    Returns:
        DepthViews as :func:`render_point_depths`.
    """
    from ..splats.scene import quat_to_rotation_matrix

    cell = cfg.voxel_size / 2
    means = scene.means.astype(np.float64)
    opacity = scene.opacities().astype(np.float64)
    keys = np.floor(means / cell).astype(np.int64)
    keys -= keys.min(axis=0)
    span = keys.max(axis=0) + 1
    flat = (keys[:, 0] * span[1] + keys[:, 1]) * span[2] + keys[:, 2]
    order = np.argsort(-opacity, kind="stable")
    _, first = np.unique(flat[order], return_index=True)
    keep = np.sort(order[first])
    means, opacity = means[keep], opacity[keep]
    sigma = scene.scales()[keep].astype(np.float64)
    rotation = quat_to_rotation_matrix(scene.quats[keep].astype(np.float64))
    # world covariance R diag(s^2) R^T; the thin axis of flat Gaussians is their plane's normal
    cov = np.einsum("nij,nj,nkj->nik", rotation, sigma**2, rotation)
    ordered = np.sort(sigma, axis=1)
    flat_mask = ordered[:, 0] < FLAT_RATIO * ordered[:, 1]
    axis_order = np.argsort(sigma, axis=1)
    normal = np.take_along_axis(rotation, axis_order[:, None, :1].repeat(3, axis=1), axis=2)[..., 0]
    # the two tangent axes divided by their sigmas: the in-plane Mahalanobis distance of a ray's crossing
    tangents = np.stack([np.take_along_axis(rotation, axis_order[:, None, j:j + 1].repeat(3, axis=1), axis=2)[..., 0]
                         / ordered[:, j:j + 1] for j in (1, 2)], axis=1)
    reach = PLANE_DEPTH_SIGMAS * ordered[:, 2]
    logger.info("surface: %d Gaussians -> %d after %.3f m voxel thinning (%d flat)", len(scene), len(means), cell,
                int(flat_mask.sum()))
    width, height, k_all = _render_size(cameras, cfg)
    depth = np.zeros((len(cameras), height, width), dtype=np.float32)
    for f in range(len(cameras)):
        depth[f] = _splat_view(means, cov, opacity, normal, tangents, flat_mask, reach, cameras.w2c[f], k_all[f],
                               width, height, cfg)
    return DepthViews(depth=depth, w2c=cameras.w2c.astype(np.float64), intrinsics=k_all, pixel_offset=0.5,
                      source="render")


def _splat_view(means: np.ndarray, cov: np.ndarray, opacity: np.ndarray, normal: np.ndarray, tangents: np.ndarray,
                flat: np.ndarray, reach: np.ndarray, w2c: np.ndarray, k: np.ndarray, width: int, height: int,
                cfg: SurfaceConfig) -> np.ndarray:
    """(H, W) float32 median depth of one view (0 where the accumulated opacity stays under ``render_alpha``)."""
    rot = w2c[:3, :3]
    pc = means @ rot.T + w2c[:3, 3]
    z = pc[:, 2]
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    ok = (z > 0.05) & (z < cfg.max_depth)
    u = np.where(ok, fx * pc[:, 0] / np.where(ok, z, 1.0) + cx - 0.5, -1e9)
    v = np.where(ok, fy * pc[:, 1] / np.where(ok, z, 1.0) + cy - 0.5, -1e9)
    r_max = cfg.render_splat_radius_px
    ok &= (u > -r_max - 1) & (u < width + r_max + 1) & (v > -r_max - 1) & (v < height + r_max + 1)
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return np.zeros((height, width), dtype=np.float32)
    pc, z, u, v = pc[idx], z[idx], u[idx], v[idx]
    # EWA footprint: J (W Sigma W^T) J^T + low-pass, pixels^2
    cov_c = np.einsum("ij,njk,lk->nil", rot, cov[idx], rot)
    jac = np.zeros((len(idx), 2, 3))
    jac[:, 0, 0] = fx / z
    jac[:, 0, 2] = -fx * pc[:, 0] / z**2
    jac[:, 1, 1] = fy / z
    jac[:, 1, 2] = -fy * pc[:, 1] / z**2
    cov2 = np.einsum("nij,njk,nlk->nil", jac, cov_c, jac)
    a = cov2[:, 0, 0] + SPLAT_LOWPASS_PX2
    b = cov2[:, 0, 1]
    c = cov2[:, 1, 1] + SPLAT_LOWPASS_PX2
    det = a * c - b * b
    inv_a, inv_b, inv_c = c / det, -b / det, a / det
    lam = 0.5 * (a + c) + np.sqrt(np.maximum(0.25 * (a - c) ** 2 + b * b, 0.0))
    radius = np.minimum(np.ceil(SPLAT_SIGMAS * np.sqrt(lam)), r_max).astype(np.int64)
    # plane depth for flat Gaussians: camera-frame normal, the plane n . p = n . mu
    n_c = normal[idx] @ rot.T
    t_c = tangents[idx] @ rot.T  # (n, 2, 3) camera frame, divided by their sigmas
    plane_d = np.einsum("ij,ij->i", n_c, pc)
    is_flat = flat[idx]
    lo_z, hi_z = z - reach[idx], z + reach[idx]
    ui, vi = np.round(u).astype(np.int64), np.round(v).astype(np.int64)
    pix_all, z_all, alpha_all = [], [], []
    for r in range(int(radius.max()) + 1):
        sel = np.flatnonzero(radius == r)
        if len(sel) == 0:
            continue
        du, dv = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1))
        du, dv = du.ravel(), dv.ravel()
        uu = ui[sel][:, None] + du[None]
        vv = vi[sel][:, None] + dv[None]
        dx = uu - u[sel][:, None]
        dy = vv - v[sel][:, None]
        power = -0.5 * (inv_a[sel][:, None] * dx * dx + 2 * inv_b[sel][:, None] * dx * dy
                        + inv_c[sel][:, None] * dy * dy)
        alpha = np.minimum(SPLAT_MAX_ALPHA, opacity[idx][sel][:, None] * np.exp(power))
        inside = (uu >= 0) & (uu < width) & (vv >= 0) & (vv < height) & (alpha >= SPLAT_MIN_ALPHA)
        # the ray through the pixel centre, z = 1
        ray_x = (uu + 0.5 - cx) / fx
        ray_y = (vv + 0.5 - cy) / fy
        nc = n_c[sel]
        cos = nc[:, 0:1] * ray_x + nc[:, 1:2] * ray_y + nc[:, 2:3]
        norm = np.sqrt(ray_x**2 + ray_y**2 + 1.0)
        use_plane = is_flat[sel][:, None] & (np.abs(cos) > FLAT_MIN_COS * norm)
        zp = np.where(use_plane, plane_d[sel][:, None] / np.where(use_plane, cos, 1.0), z[sel][:, None])
        # a disc's alpha where the ray crosses its plane (exact for flat Gaussians, as 2DGS does), not the
        # linearized footprint; other Gaussians keep the EWA alpha and stay near their centre's depth
        off = np.stack([ray_x * zp, ray_y * zp, zp], axis=-1) - pc[sel][:, None, :]
        m2 = (np.einsum("nkc,nc->nk", off, t_c[sel][:, 0]) ** 2 + np.einsum("nkc,nc->nk", off, t_c[sel][:, 1]) ** 2)
        alpha = np.where(use_plane, np.minimum(SPLAT_MAX_ALPHA, opacity[idx][sel][:, None] * np.exp(-0.5 * m2)),
                         alpha)
        inside &= alpha >= SPLAT_MIN_ALPHA
        zp = np.where(use_plane, zp, np.clip(zp, lo_z[sel][:, None], hi_z[sel][:, None]))
        pix_all.append((vv * width + uu)[inside])
        z_all.append(zp[inside])
        alpha_all.append(alpha[inside])
    out = np.zeros(height * width, dtype=np.float32)
    pix = np.concatenate(pix_all)
    if len(pix) == 0:
        return out.reshape(height, width)
    zz = np.concatenate(z_all)
    alpha = np.concatenate(alpha_all)
    order = np.lexsort((zz, pix))
    pix, zz, alpha = pix[order], zz[order], alpha[order]
    start = np.flatnonzero(np.r_[True, pix[1:] != pix[:-1]])
    # accumulated opacity after each entry, front to back within its pixel: 1 - prod(1 - alpha)
    log_t = np.cumsum(np.log1p(-alpha))
    group_start = np.repeat(start, np.diff(np.r_[start, len(pix)]))
    before = np.where(group_start > 0, log_t[np.maximum(group_start - 1, 0)], 0.0)
    reached = (log_t - before) <= np.log(1.0 - cfg.render_alpha)
    # first entry of each pixel where the accumulated opacity reaches the threshold
    hit = np.flatnonzero(reached & np.r_[True, ~reached[:-1] | (pix[1:] != pix[:-1])])
    out[pix[hit]] = zz[hit]
    return out.reshape(height, width)


def render_centre_depths(scene: GaussianScene, cameras: CameraPath, cfg: SurfaceConfig) -> DepthViews:
    """Render depth maps from Gaussian centres (``render_mode = "centres"``).

    Centres are voxel-downsampled (half the TSDF voxel), culled per view to its frustum, and splatted with a
    footprint of ``focal * max(2 sigma, voxel / 2) / z`` pixels (at most ``render_max_radius_px``). Per pixel
    the depth is the median of the nearest cluster of depths (points within ``render_cluster_gap`` of the
    nearest): robust to stray points in front, and no averaging across surfaces.

    Returns:
        DepthViews at ``render_max_width`` (or the cameras' width if smaller), pixel_offset 0.5.
    """
    means = scene.means.astype(np.float32)
    sigma = scene.scales().max(axis=1)
    cell = cfg.voxel_size / 2
    keys = np.floor(means / cell).astype(np.int64)
    keys -= keys.min(axis=0)
    span = keys.max(axis=0) + 1
    flat = (keys[:, 0] * span[1] + keys[:, 1]) * span[2] + keys[:, 2]
    _, first = np.unique(flat, return_index=True)
    pts = means[first]
    sig = np.minimum(sigma[first], 4 * cfg.voxel_size).astype(np.float32)
    logger.info("surface: %d Gaussian centres -> %d after %.3f m voxel downsampling", len(means), len(pts), cell)
    width, height, k_all = _render_size(cameras, cfg)
    depth = np.zeros((len(cameras), height, width), dtype=np.float32)
    for f in range(len(cameras)):
        depth[f] = _render_view(pts, sig, cameras.w2c[f], k_all[f], width, height, cfg)
    return DepthViews(depth=depth, w2c=cameras.w2c.astype(np.float64), intrinsics=k_all, pixel_offset=0.5,
                      source="render")


def _render_view(pts: np.ndarray, sig: np.ndarray, w2c: np.ndarray, k: np.ndarray, width: int, height: int,
                 cfg: SurfaceConfig) -> np.ndarray:
    rot = w2c[:3, :3].astype(np.float32)
    pc = pts @ rot.T + w2c[:3, 3].astype(np.float32)
    z = pc[:, 2]
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    ok = (z > 0.05) & (z < cfg.max_depth)
    pc, z, s = pc[ok], z[ok], sig[ok]
    u = fx * pc[:, 0] / z + cx - 0.5
    v = fy * pc[:, 1] / z + cy - 0.5
    margin = cfg.render_max_radius_px + 1
    ok = (u > -margin) & (u < width + margin) & (v > -margin) & (v < height + margin)
    u, v, z, s = u[ok], v[ok], z[ok], s[ok]
    radius = np.clip(np.round(fx * np.maximum(2 * s, cfg.voxel_size / 2) / z), 0, cfg.render_max_radius_px)
    pix_all, z_all = [], []
    ui, vi = np.round(u).astype(np.int64), np.round(v).astype(np.int64)
    for r in range(cfg.render_max_radius_px + 1):
        sel = radius >= r if r == 0 else radius == r
        if r == 0:
            sel = radius == 0
        if not sel.any():
            continue
        du, dv = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1))
        disc = du**2 + dv**2 <= r * r + r
        du, dv = du[disc], dv[disc]
        uu = (ui[sel][:, None] + du[None]).ravel()
        vv = (vi[sel][:, None] + dv[None]).ravel()
        zz = np.repeat(z[sel], du.size)
        inside = (uu >= 0) & (uu < width) & (vv >= 0) & (vv < height)
        pix_all.append(vv[inside] * width + uu[inside])
        z_all.append(zz[inside])
    out = np.zeros(height * width, dtype=np.float32)
    if not pix_all:
        return out.reshape(height, width)
    pix = np.concatenate(pix_all)
    zz = np.concatenate(z_all)
    order = np.lexsort((zz, pix))
    pix, zz = pix[order], zz[order]
    start = np.flatnonzero(np.r_[True, pix[1:] != pix[:-1]])
    group = np.repeat(np.arange(len(start)), np.diff(np.r_[start, len(pix)]))
    size = np.diff(np.r_[start, len(pix)])
    # the cluster starts at the RENDER_SKIP_NEAREST-th nearest depth: a stray point in front cannot anchor it
    anchor = zz[start + np.minimum(RENDER_SKIP_NEAREST, size - 1)][group]
    in_cluster = zz <= anchor + np.maximum(cfg.render_cluster_gap, cfg.render_cluster_gap_rel * anchor)
    count = np.bincount(group, weights=in_cluster, minlength=len(start)).astype(np.int64)
    median = zz[start + (count - 1) // 2]
    out[pix[start]] = median
    return out.reshape(height, width)


SYNTH_FLOATER_POINTS = 8
"""A synthesized view's clearance is measured to this nearest Gaussian (:func:`synthesize_cameras`): fewer than
this many within ``synth_clearance`` are floaters, not a surface (a wall or a crate 0.3 m away has hundreds)."""


def synthesize_cameras(points: np.ndarray, cfg: SurfaceConfig) -> CameraPath:
    """Views in free space at eye height, for scenes without cameras (world frame, Z up, floor near z = 0).

    Positions lie on an XY grid (``synth_spacing``) over the 2nd-98th percentile extent of the points, at
    ``synth_height`` above the local floor (the 5th percentile of z within 1 m). Each grid cell keeps its centre or,
    where that is not free, the freest of eight points a quarter spacing around it, clearance measured to the
    ``SYNTH_FLOATER_POINTS``-th nearest Gaussian (isolated floaters, which optimized 3DGS scenes leave in free space,
    do not count), if that is more than ``synth_clearance``. Each position looks out in ``synth_yaws`` directions
    pitched by ``synth_pitch_deg``.

    Measured on the optimized corridor fixture without cameras (2 m wide): the nearest-Gaussian test had kept 2 of 6
    positions (floaters 0.1-0.3 m from the others) and the floor in front of the step went unseen (9.5 % of the
    floor probes without surface).

    Args:
        points: (N, 3) float32 Gaussian centres, metres, world frame.

    Raises:
        ConversionError: when no position in free space is found.
    """
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(0)
    sample = points[rng.choice(len(points), size=min(len(points), 400_000), replace=False)].astype(np.float64)
    lo = np.percentile(sample[:, :2], 2, axis=0)
    hi = np.percentile(sample[:, :2], 98, axis=0)
    xs = np.arange(lo[0] + cfg.synth_spacing / 2, hi[0], cfg.synth_spacing)
    ys = np.arange(lo[1] + cfg.synth_spacing / 2, hi[1], cfg.synth_spacing)
    if len(xs) == 0:
        xs = np.array([(lo[0] + hi[0]) / 2])
    if len(ys) == 0:
        ys = np.array([(lo[1] + hi[1]) / 2])
    gx, gy = np.meshgrid(xs, ys)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    tree2 = cKDTree(sample[:, :2])
    floors = np.zeros(len(grid))
    for i, near in enumerate(tree2.query_ball_point(grid, r=1.0)):
        floors[i] = np.percentile(sample[near, 2], 5) if len(near) > 10 else 0.0
    # each cell's centre and 8 points around it, the freest kept (clearance to the k-th nearest Gaussian)
    step = cfg.synth_spacing / 4
    offsets = np.array([(dx, dy, 0.0) for dx in (0.0, -step, step) for dy in (0.0, -step, step)])
    candidates = np.column_stack([grid, floors + cfg.synth_height])[:, None, :] + offsets[None]  # (P, 9, 3)
    k = min(SYNTH_FLOATER_POINTS, len(sample))
    dist, _ = cKDTree(sample).query(candidates.reshape(-1, 3), k=k)
    clearance = (dist[:, -1] if k > 1 else dist).reshape(len(grid), len(offsets))
    best = np.where(clearance[:, 0] > cfg.synth_clearance, 0, np.argmax(clearance, axis=1))  # the centre if free
    cells = np.arange(len(grid))
    eyes = candidates[cells, best][clearance[cells, best] > cfg.synth_clearance]
    if len(eyes) == 0:
        raise ConversionError(None, "no cameras given and no free-space position found to synthesize views from "
                                    f"(grid {cfg.synth_spacing} m at {cfg.synth_height} m eye height)")
    max_pos = max(cfg.synth_max_views // max(cfg.synth_yaws, 1), 1)
    if len(eyes) > max_pos:
        eyes = eyes[np.linspace(0, len(eyes) - 1, max_pos).round().astype(int)]
    width, height = cfg.synth_size
    focal = (width / 2) / np.tan(np.radians(cfg.synth_fov_deg) / 2)
    k = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])
    pitch = np.radians(cfg.synth_pitch_deg)
    w2cs = []
    for eye in eyes:
        for yaw in np.arange(cfg.synth_yaws) * 2 * np.pi / cfg.synth_yaws:
            forward = np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.sin(pitch)])
            right = np.cross(forward, [0.0, 0.0, 1.0])
            right /= np.linalg.norm(right)
            down = np.cross(forward, right)
            c2w = np.eye(4)
            c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, down, forward, eye
            w2cs.append(np.linalg.inv(c2w))
    return CameraPath(w2c=np.stack(w2cs), intrinsics=k[None], width=width, height=height)
