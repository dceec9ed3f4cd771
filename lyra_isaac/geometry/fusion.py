"""Fusing depth maps into the block-sparse TSDF on the CPU: back-projection, block allocation per view, the numpy
integrator and the fusion loop shared with the CUDA path (step 4 of :mod:`lyra_isaac.geometry.surface`)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..progress import Progress
from .depth_maps import DepthViews
from .tsdf import BLOCK, SparseTSDF

logger = logging.getLogger(__name__)

INTERP_MAX_RATIO = 1.1
"""Depth is interpolated between four pixels only if their largest depth is within this ratio of the smallest."""
MAX_SUBPIXEL = 4
"""Finest sub-pixel grid (per axis) used to find the TSDF blocks between far-apart pixel rays."""
MAX_ALLOC_STRIDE = 4
"""Block allocation looks at every s-th pixel per axis, s (at most this) chosen so that s pixels at the view's
median depth span at most half a block; sparser spots are refined by up to MAX_SUBPIXEL."""


def backproject(depth: np.ndarray, w2c: np.ndarray, k: np.ndarray, offset: float,
                pixels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Valid pixels of one (H, W) depth map -> world points.

    Returns:
        ((M, 3) float32 world points, metres; (M,) int64 flat pixel indices).
    """
    h, w = depth.shape
    flat = depth.reshape(-1)
    if pixels is None:
        pixels = np.flatnonzero(flat > 0)
    d = flat[pixels]
    u = (pixels % w).astype(np.float32) + np.float32(offset)
    v = (pixels // w).astype(np.float32) + np.float32(offset)
    x = (u - np.float32(k[0, 2])) / np.float32(k[0, 0]) * d
    y = (v - np.float32(k[1, 2])) / np.float32(k[1, 1]) * d
    cam = np.stack([x, y, d], axis=1)
    rot = w2c[:3, :3]
    world = (cam - w2c[:3, 3].astype(np.float32)) @ rot.astype(np.float32)  # R^T (p - t)
    return world.astype(np.float32), pixels


def allocation_stride(depth: np.ndarray, k: np.ndarray, voxel_size: float) -> int:
    """Pixel stride at which an (H, W) depth map (metres, 0 = no data; (3, 3) intrinsics ``k``, pixels) still puts
    several samples in every TSDF block (voxel edge ``voxel_size``, m) it touches: the largest (at most
    ``MAX_ALLOC_STRIDE``) whose median pixel footprint stays within half a block; 0 when the map has no valid depth.
    Shared by :func:`view_blocks` and its torch twin."""
    valid = depth[depth > 0]
    if len(valid) == 0:
        return 0
    footprint = float(np.median(valid[:: max(1, len(valid) // 4096)])) / min(k[0, 0], k[1, 1])
    return int(np.clip((BLOCK * voxel_size / 2) // max(footprint, 1e-9), 1, MAX_ALLOC_STRIDE))


def view_blocks(tsdf: SparseTSDF, depth: np.ndarray, w2c: np.ndarray, k: np.ndarray, offset: float) -> np.ndarray:
    """Flat indices of the TSDF blocks one (H, W) depth map touches: those holding its surface points and the
    points one truncation in front of and behind them along their rays.

    Pixels are taken on a grid of stride s (see ``MAX_ALLOC_STRIDE``); where neighbouring grid pixels land farther
    apart than half a block (far or grazing surfaces), the surface between them is sampled too (bilinear depth on
    a finer sub-pixel grid, only across cells whose four depths agree within 10 %), so no block between two rays is
    missed.
    """
    # a block holds many pixels: find blocks from a strided grid of pixels, refined below where it is too sparse
    stride = allocation_stride(depth, k, tsdf.voxel_size)
    if stride == 0:
        return np.zeros(0, dtype=np.int64)
    depth, k = depth[::stride, ::stride], stride_intrinsics(k, stride, offset)
    points, _ = backproject(depth, w2c, k, offset)
    if len(points) == 0:
        return np.zeros(0, dtype=np.int64)
    extra = [_subpixel_points(depth, w2c, k, offset, BLOCK * tsdf.voxel_size / 2)]
    points = np.concatenate([points, *extra])
    cam_center = (-(w2c[:3, :3].T @ w2c[:3, 3])).astype(np.float32)
    ray = points - cam_center
    ray *= np.float32(tsdf.truncation) / np.linalg.norm(ray, axis=1, keepdims=True)
    return tsdf.blocks_of(np.concatenate([points, points + ray, points - ray]))


def _subpixel_points(depth: np.ndarray, w2c: np.ndarray, k: np.ndarray, offset: float,
                     spacing: float) -> np.ndarray:
    """World points on a sub-pixel grid inside 2x2 pixel cells whose corners lie farther apart than ``spacing``."""
    d00, d01, d10, d11 = depth[:-1, :-1], depth[:-1, 1:], depth[1:, :-1], depth[1:, 1:]
    lo = np.minimum(np.minimum(d00, d01), np.minimum(d10, d11))
    hi = np.maximum(np.maximum(d00, d01), np.maximum(d10, d11))
    valid = (lo > 0) & (hi <= lo * 1.1)
    # corner spacing: lateral footprint (depth / focal) and the depth change across the cell
    lateral = hi / min(k[0, 0], k[1, 1])
    step = np.sqrt(lateral**2 + (hi - lo) ** 2)
    factor = np.clip(np.ceil(step / spacing), 1, MAX_SUBPIXEL).astype(np.int64)
    factor[~valid] = 1
    out = []
    for n in range(2, MAX_SUBPIXEL + 1):
        rows, cols = np.nonzero(factor == n)
        if len(rows) == 0:
            continue
        t = (np.arange(1, n) / n).astype(np.float32)
        a, b = np.meshgrid(t, t, indexing="ij")
        a, b = a.ravel(), b.ravel()
        da = d00[rows, cols][:, None] * (1 - a) * (1 - b) + d01[rows, cols][:, None] * (1 - a) * b \
            + d10[rows, cols][:, None] * a * (1 - b) + d11[rows, cols][:, None] * a * b
        u = (cols[:, None] + b + offset).ravel().astype(np.float32)
        v = (rows[:, None] + a + offset).ravel().astype(np.float32)
        d = da.ravel().astype(np.float32)
        x = (u - np.float32(k[0, 2])) / np.float32(k[0, 0]) * d
        y = (v - np.float32(k[1, 2])) / np.float32(k[1, 1]) * d
        cam = np.stack([x, y, d], axis=1)
        out.append((cam - w2c[:3, 3].astype(np.float32)) @ w2c[:3, :3].astype(np.float32))
    if not out:
        return np.zeros((0, 3), dtype=np.float32)
    return np.concatenate(out).astype(np.float32)


class NumpyFusion:
    """Projective TSDF integration of depth maps into a :class:`SparseTSDF` (numpy)."""

    name = "numpy"

    def integrate(self, tsdf: SparseTSDF, depth: np.ndarray, w2c: np.ndarray, k: np.ndarray, offset: float,
                  power: float) -> int:
        """Fuse one (H, W) depth map (0 = no data). Returns the number of voxel updates.

        The blocks touched are those holding the view's surface points and the points one truncation distance
        in front of and behind them along their rays; every voxel of those blocks is projected into the view.
        """
        blocks = view_blocks(tsdf, depth, w2c, k, offset)
        if len(blocks) == 0:
            return 0
        slots = tsdf.allocate_blocks(blocks)
        vox, index = tsdf.block_voxels(slots)
        return self._update(tsdf, vox, index, depth, w2c, k, offset, power)

    @staticmethod
    def _update(tsdf: SparseTSDF, vox: np.ndarray, index: np.ndarray, depth: np.ndarray, w2c: np.ndarray,
                k: np.ndarray, offset: float, power: float) -> int:
        c = tsdf.voxel_centers(vox)
        pc = c @ w2c[:3, :3].T.astype(np.float32) + w2c[:3, 3].astype(np.float32)
        z = pc[:, 2]
        h, w = depth.shape
        with np.errstate(divide="ignore", invalid="ignore"):
            uf = np.float32(k[0, 0]) * pc[:, 0] / z + np.float32(k[0, 2] - offset)
            vf = np.float32(k[1, 1]) * pc[:, 1] / z + np.float32(k[1, 2] - offset)
        ok = (z > 1e-3) & (uf > -0.5) & (uf < w - 0.5) & (vf > -0.5) & (vf < h - 0.5)
        sel = np.flatnonzero(ok)
        d = sample_depth(depth, uf[sel], vf[sel])
        sdf = d - z[sel]
        ok = (d > 0) & (sdf > -tsdf.truncation)
        if not ok.any():
            return 0
        idx = index[sel[ok]]
        value = np.minimum(sdf[ok] / np.float32(tsdf.truncation), 1.0).astype(np.float32)
        weight = (1.0 / d[ok]) ** np.float32(power)
        tsdf.accumulate(idx, value, weight.astype(np.float32))
        return int(idx.shape[0])


def sample_depth(depth: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Depth of an (H, W) map at continuous pixel coordinates (integer = pixel centre), (N,) float32.

    Inverse depth is interpolated bilinearly where the four surrounding pixels are valid and agree within
    ``INTERP_MAX_RATIO`` (exact on planes, whatever their slant: a voxel beside a grazing floor gets the floor's
    depth along its own ray, not the neighbouring pixel's); elsewhere the nearest pixel's depth is used.
    """
    h, w = depth.shape
    u0 = np.minimum(np.maximum(np.floor(u), 0), w - 2).astype(np.int64)
    v0 = np.minimum(np.maximum(np.floor(v), 0), h - 2).astype(np.int64)
    a = np.minimum(np.maximum(u - u0, 0.0), 1.0).astype(np.float32)
    b = np.minimum(np.maximum(v - v0, 0.0), 1.0).astype(np.float32)
    d00, d01 = depth[v0, u0], depth[v0, u0 + 1]
    d10, d11 = depth[v0 + 1, u0], depth[v0 + 1, u0 + 1]
    lo = np.minimum(np.minimum(d00, d01), np.minimum(d10, d11))
    hi = np.maximum(np.maximum(d00, d01), np.maximum(d10, d11))
    smooth = (lo > 0) & (hi <= lo * np.float32(INTERP_MAX_RATIO))
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = ((1 - b) * ((1 - a) / d00 + a / d01) + b * ((1 - a) / d10 + a / d11)).astype(np.float32)
        interp = np.float32(1.0) / inv
    rows = np.minimum(np.maximum(np.rint(v), 0), h - 1).astype(np.int64)
    cols = np.minimum(np.maximum(np.rint(u), 0), w - 1).astype(np.int64)
    return np.where(smooth, interp, depth[rows, cols]).astype(np.float32)


def scene_box(views: DepthViews, stride: int = 4) -> tuple[np.ndarray, np.ndarray]:
    pts = [backproject(views.depth[f, ::stride, ::stride], views.w2c[f], stride_intrinsics(views.intrinsics[f], stride,
                                                                                    views.pixel_offset),
                       views.pixel_offset)[0] for f in range(len(views))]
    allp = np.concatenate(pts)
    return np.percentile(allp, 0.05, axis=0) - 0.5, np.percentile(allp, 99.95, axis=0) + 0.5


def stride_intrinsics(k: np.ndarray, stride: int, offset: float) -> np.ndarray:
    """Intrinsics of an image subsampled by ``stride`` (pixel i of it is pixel i * stride of the original); a
    stride of 1 returns a copy of ``k`` unchanged (not re-rounded through the offset)."""
    ks = k.copy()
    if stride == 1:
        return ks
    ks[0, 0] *= 1.0 / stride
    ks[1, 1] *= 1.0 / stride
    # original pixel centre u0 = i * stride + offset  ->  new centre i + offset: cx' = (cx - offset)/stride + offset
    ks[0, 2] = (k[0, 2] - offset) / stride + offset
    ks[1, 2] = (k[1, 2] - offset) / stride + offset
    return ks


def consensus_frames(n_views: int, max_views: int = 0) -> np.ndarray:
    """(K,) int64 indices of at most ``max_views`` evenly spaced views of ``n_views`` (all when max_views <= 0)."""
    if 0 < max_views < n_views:
        return np.unique(np.linspace(0, n_views - 1, max_views).round().astype(np.int64))
    return np.arange(n_views, dtype=np.int64)


VIEWS_PER_CALL = 16
"""Views :func:`fuse_views` hands a backend with ``integrate_views`` at once."""


def fuse_views(views: DepthViews, depth: np.ndarray, voxel: float, truncation: float, power: float,
               box: tuple[np.ndarray, np.ndarray], backend: Any, progress: Progress, stage: str,
               span: tuple[float, float], max_views: int = 0, frames: np.ndarray | None = None) -> SparseTSDF:
    """Integrate the views of ``depth`` ((F, H, W), metres) into a new SparseTSDF: the views ``frames`` if given,
    else all, else at most ``max_views`` evenly spaced ones when > 0. A backend with ``integrate_views`` (the torch
    one) gets ``VIEWS_PER_CALL`` of them per call, in order (the same result as one by one)."""
    tsdf = SparseTSDF(box[0], box[1], voxel, truncation)
    if frames is None:
        frames = consensus_frames(len(views), max_views)
    frames = np.asarray(frames, dtype=np.int64)
    integrate_views = getattr(backend, "integrate_views", None)  # several views per call (the torch backend)
    step = VIEWS_PER_CALL if integrate_views is not None else 1
    for i in range(0, len(frames), step):
        if integrate_views is not None:
            chunk = frames[i:i + step]
            integrate_views(tsdf, depth[chunk], views.w2c[chunk], views.intrinsics[chunk], views.pixel_offset, power)
        else:
            f = frames[i]
            backend.integrate(tsdf, depth[f], views.w2c[f], views.intrinsics[f], views.pixel_offset, power)
        if i % 8 == 0 or step > 1:
            progress.update(stage, span[0] + (span[1] - span[0]) * i / max(len(frames), 1))
    finish = getattr(backend, "finish", None)
    if finish is not None:
        finish(tsdf)
    return tsdf
