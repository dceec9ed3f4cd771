"""Depth rendered from Gaussian centres for scenes that are not pixel-aligned (no splat rasterizer on the CPU),
and views synthesized in free space for scenes without cameras."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConversionError
from ..splats.cameras import CameraPath
from ..splats.scene import GaussianScene
from .depth_maps import DepthViews

if TYPE_CHECKING:
    from .surface import SurfaceConfig

logger = logging.getLogger(__name__)

RENDER_SKIP_NEAREST = 2
"""Rendered depth: the nearest-cluster anchor is the (this + 1)-th nearest point of a pixel."""


def render_point_depths(scene: GaussianScene, cameras: CameraPath, cfg: SurfaceConfig) -> DepthViews:
    """Render depth maps from Gaussian centres (no splat rasterizer on the CPU).

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
    scale = min(1.0, cfg.render_max_width / float(cameras.width))
    width = max(int(round(cameras.width * scale)), 8)
    height = max(int(round(cameras.height * scale)), 8)
    k_all = cameras.intrinsics.astype(np.float64).copy()
    k_all[:, :2, :] *= np.array([width / cameras.width, height / cameras.height])[None, :, None]
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


def synthesize_cameras(points: np.ndarray, cfg: SurfaceConfig) -> CameraPath:
    """Views in free space at eye height, for scenes without cameras (world frame, Z up, floor near z = 0).

    Positions lie on an XY grid (``synth_spacing``) over the 2nd-98th percentile extent of the points, at
    ``synth_height`` above the local floor (the 5th percentile of z within 1 m), kept where no point is closer
    than ``synth_clearance``; each looks out in ``synth_yaws`` directions pitched by ``synth_pitch_deg``.

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
    eyes = np.column_stack([grid, floors + cfg.synth_height])
    dist, _ = cKDTree(sample).query(eyes)
    eyes = eyes[dist > cfg.synth_clearance]
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
