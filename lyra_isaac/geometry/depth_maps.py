"""Depth maps from Gaussians: the :class:`DepthViews` stack, pixel-aligned scenes read as per-view depth maps,
the flying-pixel filter and the gap filler (step 1-2 of :mod:`lyra_isaac.geometry.surface`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..splats.cameras import CameraPath
from ..splats.scene import GaussianScene
from ..threads import cpu_threads

if TYPE_CHECKING:
    from .surface import SurfaceConfig

logger = logging.getLogger(__name__)


@dataclass
class DepthViews:
    """A stack of depth maps with their cameras.

    Attributes:
        depth: (F, H, W) float32 depth along the optical axis, metres; 0 = no data.
        w2c: (F, 4, 4) float64 world-to-camera, OpenCV axes, metres.
        intrinsics: (F, 3, 3) float64 pixels, for this (H, W).
        pixel_offset: pixel (u, v) is centred at (u + pixel_offset, v + pixel_offset) in intrinsics' coordinates.
        source: "pixels" | "render" | "synth".
    """

    depth: np.ndarray
    w2c: np.ndarray
    intrinsics: np.ndarray
    pixel_offset: float
    source: str

    def __len__(self) -> int:
        return int(self.depth.shape[0])


def detect_pixel_alignment(scene: GaussianScene, cameras: CameraPath | None,
                           cfg: SurfaceConfig) -> tuple[float | None, str]:
    """Decide whether the Gaussians are one-per-pixel depth maps of ``cameras``.

    Checks that the file held exactly F * H * W rows and that a sample of Gaussians reprojects onto its pixel
    (row r -> view r // (H W), pixel row (r % (H W)) // W, column r % W) within ``cfg.pixel_tolerance``, for pixel
    centres at integer or half-integer coordinates.

    Returns:
        (pixel_offset, reason): the offset (0.0 or 0.5) if aligned, else None; reason says why, for logs/stats.
    """
    if cameras is None:
        return None, "no cameras"
    frames, height, width = len(cameras), int(cameras.height), int(cameras.width)
    per_view = height * width
    rows_in_file = int(scene.extra.get("rows_in_file", len(scene)))
    if rows_in_file != frames * per_view:
        return None, f"{rows_in_file} rows in file != {frames} views x {height} x {width} pixels"
    rows = _row_index(scene)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(scene), size=min(4096, len(scene)), replace=False)
    r = rows[pick]
    f = r // per_view
    v = (r % per_view) // width
    u = r % width
    w2c = cameras.w2c[f]
    p = scene.means[pick].astype(np.float64)
    pc = np.einsum("nij,nj->ni", w2c[:, :3, :3], p) + w2c[:, :3, 3]
    k = cameras.intrinsics[f]
    z = pc[:, 2]
    ok = z > 1e-6
    with np.errstate(divide="ignore", invalid="ignore"):
        pu = k[:, 0, 0] * pc[:, 0] / z + k[:, 0, 2]
        pv = k[:, 1, 1] * pc[:, 1] / z + k[:, 1, 2]
    best, best_fraction = None, 0.0
    for offset in (0.5, 0.0):
        err = np.hypot(pu - (u + offset), pv - (v + offset))
        fraction = float(np.mean(ok & (err < cfg.pixel_tolerance)))
        if fraction > best_fraction:
            best, best_fraction = offset, fraction
    if best_fraction < cfg.pixel_min_fraction:
        return None, f"only {best_fraction:.0%} of sampled Gaussians reproject onto their pixel"
    return best, f"{best_fraction:.0%} of sampled Gaussians on their pixel, pixel centre offset {best}"


LYRA_BORDER_CROP = 8 / 256
"""Lyra 2.0's Gaussian head drops int(H * 8/256) pixel rows and int(W * 8/256) columns at each image border."""


def pixel_grid_cameras(scene: GaussianScene, cameras: CameraPath) -> CameraPath:
    """The cameras whose pixel grids hold exactly the file's rows: ``cameras`` itself, or cropped at the borders.

    Lyra 2.0 writes one Gaussian per pixel of each view *after* cropping a border (``LYRA_BORDER_CROP`` of each
    side by default), so a file holds F x (H - 2 ch) x (W - 2 cw) rows rather than F x H x W. When the rows split
    evenly into the F views but not into full images, the crop (ch, cw) that makes each view's block a centred
    sub-image is searched (Lyra's default first, then the one closest to an equal fraction on both axes), and the
    cameras are returned with that window's size and shifted principal points. :func:`detect_pixel_alignment`
    then checks by reprojection that the guess is right.
    """
    frames, height, width = len(cameras), int(cameras.height), int(cameras.width)
    rows_in_file = int(scene.extra.get("rows_in_file", len(scene)))
    if frames == 0 or rows_in_file == frames * height * width or rows_in_file % frames:
        return cameras
    per_view = rows_in_file // frames
    candidates = []
    for crop_w in range(0, width // 4 + 1):
        inner_w = width - 2 * crop_w
        if per_view % inner_w:
            continue
        inner_h = per_view // inner_w
        crop_h2 = height - inner_h
        if crop_h2 < 0 or crop_h2 % 2 or crop_h2 // 2 > height // 4:
            continue
        candidates.append((crop_h2 // 2, crop_w))
    if not candidates:
        return cameras
    lyra = (int(height * LYRA_BORDER_CROP), int(width * LYRA_BORDER_CROP))
    crop_h, crop_w = lyra if lyra in candidates else min(
        candidates, key=lambda c: abs(c[0] / height - c[1] / width))
    intrinsics = cameras.intrinsics.copy()
    intrinsics[:, 0, 2] -= crop_w
    intrinsics[:, 1, 2] -= crop_h
    logger.info("surface: %d rows = %d views x %d pixels: trying views cropped by %d rows and %d columns per border",
                rows_in_file, frames, per_view, crop_h, crop_w)
    return replace(cameras, intrinsics=intrinsics, width=width - 2 * crop_w, height=height - 2 * crop_h)


def _row_index(scene: GaussianScene) -> np.ndarray:
    rows = scene.extra.get("row_index")
    if rows is None:
        return np.arange(len(scene), dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    if rows.shape != (len(scene),):
        raise InputError(scene.source_path, f"scene.extra['row_index'] has shape {rows.shape}, "
                                            f"expected ({len(scene)},)")
    return rows


def pixel_aligned_depths(scene: GaussianScene, cameras: CameraPath, offset: float,
                         cfg: SurfaceConfig) -> DepthViews:
    """Scatter pixel-aligned Gaussians into (F, H, W) depth maps: depth = camera-frame z of the centre."""
    frames, height, width = len(cameras), int(cameras.height), int(cameras.width)
    per_view = height * width
    rows = _row_index(scene)
    depth = np.zeros(frames * per_view, dtype=np.float32)
    order = None if np.all(rows[1:] > rows[:-1]) else np.argsort(rows, kind="stable")
    sorted_rows = rows if order is None else rows[order]
    bounds = np.searchsorted(sorted_rows, np.arange(frames + 1) * per_view)
    for f in range(frames):
        lo, hi = bounds[f], bounds[f + 1]
        if hi <= lo:
            continue
        sel = slice(lo, hi) if order is None else order[lo:hi]
        pts = scene.means[sel]
        rot = cameras.w2c[f, :3, :3].astype(np.float32)
        z = pts @ rot[2] + np.float32(cameras.w2c[f, 2, 3])
        z = np.where((z > 0) & (z < cfg.max_depth), z, 0).astype(np.float32)
        depth[sorted_rows[lo:hi]] = z
    return DepthViews(depth=depth.reshape(frames, height, width), w2c=cameras.w2c.astype(np.float64),
                      intrinsics=cameras.intrinsics.astype(np.float64), pixel_offset=offset, source="pixels")


def filter_depth_edges(depth: np.ndarray, threshold: float) -> int:
    """Zero pixels at depth discontinuities (where flying pixels live), in place; keep the surfaces on either side.

    A plane's inverse depth is linear in image coordinates whatever its slant, so its second difference along
    either image axis vanishes (up to noise) even at grazing angles. A pixel beside a depth edge, or interpolated
    across one (a flying pixel), has a second difference of the order of the jump. Along each image axis:

    1. *breaks*: pixels whose relative inverse-depth second difference exceeds ``threshold`` (where a neighbour
       is missing, the one-sided first difference is tested instead);
    2. *suspects*: the breaks and their two neighbours along that axis (a flying pixel half-way between two
       surfaces bends inverse depth only mildly itself: its neighbours on both sides see the break);
    3. a suspect is *kept* if it continues the surface on one side of it: the two pixels beyond it on that side
       are valid, are not breaks, and predict its inverse depth linearly within ``threshold``. A pixel on the far
       (or near) side of an edge continues its own surface; a flying pixel continues neither.

    Pixels that are suspects along either axis and not kept along it are dropped. A smear of one or two pixels
    goes whole; the middle of a longer one that is linear in inverse depth looks like a slanted surface and stays
    (as it did with a plain dilation). Keeping the surfaces' edge
    pixels matters where a surface is seen only just past an occluding edge (the ground behind a step, seen from
    above): dropping a band of pixels on both sides of every edge, as a plain dilation does, opened floor holes
    of 20-35 cm there on the synthetic terrain.

    Args:
        depth: (F, H, W) float32 metres, 0 = no data; modified in place.
        threshold: relative inverse-depth second difference counted as a break.

    Returns:
        number of pixels dropped.
    """
    def filter_view(f: int) -> int:
        d = depth[f]
        valid = d > 0
        inv = np.zeros_like(d)
        np.divide(1.0, d, out=inv, where=valid)
        bad = np.zeros_like(valid)
        for axis in (0, 1):
            bad |= _axis_edge_pixels(inv, valid, axis, threshold)
        bad &= valid
        d[bad] = 0
        return int(np.count_nonzero(bad))

    return _sum_over_views(filter_view, depth.shape[0], "depth-edges")


def _shift(a: np.ndarray, k: int, axis: int, fill: Any) -> np.ndarray:
    """``a`` moved by ``k`` pixels along ``axis`` (out[i] = a[i - k]), ``fill`` where nothing moved in."""
    out = np.full_like(a, fill)
    n = a.shape[axis]
    if abs(k) >= n:
        return out
    src = [slice(None)] * a.ndim
    dst = [slice(None)] * a.ndim
    src[axis] = slice(0, n - k) if k >= 0 else slice(-k, n)
    dst[axis] = slice(k, n) if k >= 0 else slice(0, n + k)
    out[tuple(dst)] = a[tuple(src)]
    return out


def _axis_edge_pixels(inv: np.ndarray, valid: np.ndarray, axis: int, threshold: float) -> np.ndarray:
    """(H, W) bool: pixels to drop for breaks along one image axis (see :func:`filter_depth_edges`)."""
    scale = np.maximum(inv, 1e-9)
    prev, nxt = _shift(inv, 1, axis, 0.0), _shift(inv, -1, axis, 0.0)
    v_prev, v_next = _shift(valid, 1, axis, False), _shift(valid, -1, axis, False)
    second = np.abs(2 * inv - prev - nxt) / scale
    first_prev = np.abs(inv - prev) / scale
    first_next = np.abs(inv - nxt) / scale
    breaks = valid & np.where(v_prev & v_next, second > threshold,
                              (v_prev & (first_prev > threshold)) | (v_next & (first_next > threshold)))
    suspects = breaks | _shift(breaks, 1, axis, False) | _shift(breaks, -1, axis, False)
    clean = valid & ~breaks
    continues = np.zeros_like(valid)
    for step in (1, -1):  # the surface on the previous side, then on the next side
        near, far = _shift(inv, step, axis, 0.0), _shift(inv, 2 * step, axis, 0.0)
        c_near, c_far = _shift(clean, step, axis, False), _shift(clean, 2 * step, axis, False)
        continues |= c_near & c_far & (np.abs(inv - 2 * near + far) / scale <= threshold)
    return suspects & ~continues


def fill_depth_gaps(depth: np.ndarray, passes: int, max_ratio: float = 1.1) -> int:
    """Fill missing pixels enclosed by a smooth surface, in place (pixel-aligned maps lose rows to cleaning).

    A missing pixel gets the mean inverse depth of its valid 8-neighbours when at least 5 are valid and they agree
    within ``max_ratio``: the surface the cleaner thinned out (sparse far floor) is restored from its own
    neighbourhood, never from the dropped point's depth. ``passes`` rounds fill gaps up to about 2 * passes
    pixels wide.

    Args:
        depth: (F, H, W) float32 metres, 0 = no data; modified in place.

    Returns:
        number of pixels filled.
    """
    from scipy.ndimage import maximum_filter, minimum_filter, uniform_filter

    def fill_view(f: int) -> int:
        d = depth[f]
        filled = 0
        for _ in range(passes):
            valid = d > 0
            if valid.all() or not valid.any():
                break
            inv = np.where(valid, 1.0 / np.where(valid, d, 1.0), 0.0).astype(np.float32)
            count = np.rint(uniform_filter(valid.astype(np.float32), size=3, mode="constant") * 9)
            mean_inv = uniform_filter(inv, size=3, mode="constant") * 9 / np.maximum(count, 1)
            hi = maximum_filter(d, size=3, mode="constant")
            lo = minimum_filter(np.where(valid, d, np.inf), size=3, mode="constant")
            fill = ~valid & (count >= 5) & (hi <= lo * max_ratio)
            if not fill.any():
                break
            d[fill] = 1.0 / mean_inv[fill]
            filled += int(fill.sum())
        return filled

    return _sum_over_views(fill_view, depth.shape[0], "depth-gaps")


def smooth_depth_maps(depth: np.ndarray, radius: int, max_residual: float, min_fraction: float = 0.6) -> int:
    """Denoise depth maps in place by a local plane fit in inverse depth, where the window is one smooth surface.

    A plane's inverse depth is affine in image coordinates, so the least-squares plane through the valid pixels
    of a ``(2 radius + 1)^2`` window, evaluated at its centre, is unbiased on planar surfaces (whatever their slant,
    and however the valid pixels are spread in the window) and averages per-pixel noise over the window: the
    surfaces 5-9 m away that one or two views see are otherwise fused from about one noisy pixel per voxel. A pixel
    keeps its own depth where the window is not one smooth surface: the fit's RMS residual exceeds
    ``max_residual`` of its inverse depth (an occluding edge, a corner), or fewer than ``min_fraction`` of the window
    are valid.

    Args:
        depth: (F, H, W) float32 metres, 0 = no data; modified in place (valid pixels only; no pixel is added).
        radius: window half-size, pixels (0: nothing is done).
        max_residual: largest RMS residual of the plane fit, relative to the fitted inverse depth.
        min_fraction: least fraction of valid pixels in the window.

    Returns:
        number of pixels whose depth was replaced by the fit. Views are smoothed on a pool of
        :func:`~lyra_isaac.threads.cpu_threads` threads (scipy's filters release the GIL).
    """
    from scipy.ndimage import correlate

    if radius <= 0:
        return 0
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    ky, kx = np.meshgrid(offsets, offsets, indexing="ij")  # kernel[i, j] weighs the pixel (i, j) away
    kernels = {"1": np.ones_like(kx), "x": kx, "y": ky, "xx": kx * kx, "xy": kx * ky, "yy": ky * ky}
    need = min_fraction * kx.size

    def smooth_view(f: int) -> int:
        d = depth[f]
        valid = d > 0
        if not valid.any():
            return 0
        w = valid.astype(np.float64)
        v = np.zeros(d.shape, dtype=np.float64)
        np.divide(1.0, d, out=v, where=valid)

        def window_sum(values: np.ndarray, kernel: str) -> np.ndarray:
            return correlate(values, kernels[kernel], mode="constant", cval=0.0)

        n, sx, sy = window_sum(w, "1"), window_sum(w, "x"), window_sum(w, "y")
        sxx, sxy, syy = window_sum(w, "xx"), window_sum(w, "xy"), window_sum(w, "yy")
        b0, bx, by = window_sum(v, "1"), window_sum(v, "x"), window_sum(v, "y")
        vv = window_sum(v * v, "1")
        # solve [[n sx sy] [sx sxx sxy] [sy sxy syy]] a = [b0 bx by] with the (symmetric) adjugate; a[0] is the
        # plane's inverse depth at the centre
        c00, c01, c02 = sxx * syy - sxy * sxy, sy * sxy - sx * syy, sx * sxy - sy * sxx
        c11, c12, c22 = n * syy - sy * sy, sx * sy - n * sxy, n * sxx - sx * sx
        det = n * c00 + sx * c01 + sy * c02
        ok = valid & (n >= need) & (np.abs(det) > 1e-9 * np.maximum(n, 1.0) ** 3)
        safe = np.where(ok, det, 1.0)
        a0 = (b0 * c00 + bx * c01 + by * c02) / safe
        a1 = (b0 * c01 + bx * c11 + by * c12) / safe
        a2 = (b0 * c02 + bx * c12 + by * c22) / safe
        sse = vv - (a0 * b0 + a1 * bx + a2 * by)
        rms = np.sqrt(np.maximum(sse, 0.0) / np.maximum(n, 1.0))
        ok &= (a0 > 0) & (rms <= max_residual * np.abs(a0))
        d[ok] = (1.0 / a0[ok]).astype(np.float32)
        return int(np.count_nonzero(ok))

    return _sum_over_views(smooth_view, depth.shape[0], "smooth-depth")


def _sum_over_views(per_view: Callable[[int], int], views: int, name: str) -> int:
    """``sum(per_view(f) for f in range(views))``, the views on a pool of :func:`~lyra_isaac.threads.cpu_threads`
    threads (each call touches its own view only; numpy's and scipy's array work releases the GIL)."""
    threads = min(cpu_threads(), views)
    if threads < 2:
        return sum(per_view(f) for f in range(views))
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name) as pool:
        return sum(pool.map(per_view, range(views)))
