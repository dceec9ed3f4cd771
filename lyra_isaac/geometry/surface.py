"""Surface extraction on the CPU: Gaussians (+ cameras) in the world frame -> a raw triangle mesh.

The method, chosen by measurement on truth fixtures (see ``benchmarks/surface.py``):

1. **Depth maps.** A Lyra 2 scene is pixel-aligned: Gaussian ``r`` of the file is pixel ``r % (H W)`` of view
   ``r // (H W)``, at that pixel's depth. Such a scene *is* a stack of per-view depth maps; nothing needs to be
   rendered (:func:`detect_pixel_alignment` checks the row count and that a sample of Gaussians reprojects onto
   its pixel grid). Otherwise (INRIA 3DGS, pruned Lyra chunks) depth is rendered from the Gaussian centres with
   their footprint into a z-buffer that takes, per pixel, the median of the nearest depth cluster
   (:func:`render_point_depths`), from the given cameras or, without cameras, from views synthesized in free
   space at eye height (:func:`synthesize_cameras`).
2. **Flying pixels.** Pixels whose inverse depth bends sharply against both neighbours (depth edges) are dropped.
3. **Per-view alignment.** Each Lyra view has its own depth scale and warp error (a few percent). The views are
   split into ``align_folds`` folds (index modulo folds); each fold's depth is fitted to a coarse TSDF consensus
   of the *other* folds' views (a view that is part of its own consensus pulls its target towards itself: in open
   scenes, where few views overlap, the fit then barely moves it) with a robust (Huber IRLS) model
   ``D' = D * s(x, y)`` (``s`` a quadratic in normalized image coordinates for ``align_model="warp"``). The
   target depth of a pixel is where its ray crosses the consensus surface (:func:`consensus_depth`, secant steps
   along the ray), not its depth plus the TSDF's distance, which shrinks a depth error by the cosine of the
   incidence (far ground seen at grazing angles). Fuse/fit rounds repeat with corrected depths; then pixels that
   still disagree with the consensus by more than ``reject_sigma`` robust deviations are masked (floaters,
   flying pixels).
4. **Fusion.** Corrected, masked depth maps are fused into a block-sparse TSDF (:mod:`.tsdf`); per view, only
   the voxels in a band around its own surface are touched (no projection of every point into every view).
   Observations are weighted by ``(1 m / depth) ** near_weight_power``: nearer views are more precise.
5. **Meshing.** Marching cubes (scikit-image) over occupied tiles; no triangle where the band was unobserved.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ..errors import ConversionError, InputError
from ..progress import NO_PROGRESS, Progress
from ..splats.cameras import CameraPath
from ..splats.scene import GaussianScene
from ..world import TriangleMesh
from .depth_factor import estimate_depth_factor
from .tsdf import BLOCK, SparseTSDF

logger = logging.getLogger(__name__)

INTERP_MAX_RATIO = 1.1
"""Depth is interpolated between four pixels only if their largest depth is within this ratio of the smallest."""
MAX_SUBPIXEL = 4
MAX_ALLOC_STRIDE = 4
"""Block allocation looks at every s-th pixel per axis, s (at most this) chosen so that s pixels at the view's
median depth span at most half a block; sparser spots are refined by up to MAX_SUBPIXEL."""
"""Finest sub-pixel grid (per axis) used to find the TSDF blocks between far-apart pixel rays."""
RENDER_SKIP_NEAREST = 2
"""Rendered depth: the nearest-cluster anchor is the (this + 1)-th nearest point of a pixel."""
ALIGN_BASES = {"scale": 1, "scale_offset": 2, "warp": 6}
"""Number of parameters of each per-view depth correction model."""
CONSENSUS_SECANT_STEPS = 3
"""Secant steps along a pixel's ray to the consensus surface (after a first step of the TSDF's distance)."""
CONSENSUS_MAX_STEP = 0.12
"""... found only within this relative depth change of the starting depth (per-view errors are a few percent)."""


@dataclass
class SurfaceConfig:
    """Settings of surface extraction. Lengths in metres (world frame), angles in degrees."""

    voxel_size: float = 0.02
    """Final TSDF voxel edge, m. Memory and time grow as 1/voxel^2 (surface voxels)."""
    truncation_voxels: float = 4.0
    """Final truncation distance in voxels (trunc = truncation_voxels * voxel_size)."""
    depth_source: Literal["auto", "pixels", "render"] = "auto"
    """"pixels": use pixel-aligned Gaussians as depth maps (error if the scene is not pixel-aligned); "render":
    render depth from Gaussian centres; "auto": pixels when detected, else render."""
    pixel_tolerance: float = 0.5
    """Max reprojection error, pixels, for a Gaussian to count as sitting on its pixel."""
    pixel_min_fraction: float = 0.9
    """Fraction of sampled Gaussians that must sit on their pixel for the scene to count as pixel-aligned."""
    fill_gaps: int = 4
    """Pixel-aligned depth: rounds of filling missing pixels enclosed by a smooth surface (0 = off)."""
    max_depth: float = 50.0
    """Depths beyond this are ignored, m."""
    edge_threshold: float = 0.1
    """Flying-pixel test: relative inverse-depth second difference above which a pixel is dropped (0 = off)."""
    align_views: bool = True
    """Fit each view's depth to the fused consensus before the final fusion (pixel-aligned depth only)."""
    align_model: Literal["scale", "scale_offset", "warp"] = "scale"
    """Per-view depth correction: D*s; D*s + b; D*s(x, y) with s quadratic in image coordinates (a smooth warp;
    no offset there: over a view's narrow depth range an offset trades off against the scale and extrapolates
    badly)."""
    align_iterations: int = 2
    """Coarse fuse/fit rounds."""
    align_folds: int = 3
    """Views are split into this many folds (by index modulo folds: neighbours along the path fall in different
    folds) and each fold is fitted against a consensus of the other folds' views, so a view never pulls the target
    it is fitted to (where few views overlap, as in open scenes, a view's own depth dominates a consensus of all
    views and the fit barely moves it). 1 = one consensus of all views."""
    align_voxel_factor: float = 2.0
    """Coarse TSDF voxel = voxel_size * align_voxel_factor."""
    align_truncation: float = 0.3
    """Coarse TSDF truncation, m: must exceed the largest expected per-view depth error."""
    align_max_views: int = 48
    """The coarse consensus fuses at most this many evenly spaced views (0 = all; with folds, those outside the fold
    fitted); every view is still fitted and filtered against it. Lyra's 128 views overlap heavily: a third of them
    make the same consensus."""
    align_samples: int = 8000
    """Pixels sampled per view for the fit."""
    align_regularization: float = 1e-3
    """Ridge weight pulling the correction towards identity (relative to the data term)."""
    depth_factor: bool = True
    """After alignment, measure the depth factor all views share against the camera baselines and remove it
    (:mod:`lyra_isaac.geometry.depth_factor`): per-view alignment only makes views agree with each other. The
    world is then re-levelled and, when the scale came from the camera height, re-scaled (convert does it)."""
    depth_factor_max_error: float = 0.01
    """... applied only when its jackknife standard error is at most this (relative)."""
    depth_factor_max_change: float = 0.1
    """... and it changes depths by at most this fraction (a larger one means the cameras and the depths disagree
    in a way one factor does not describe: logged, not applied)."""
    depth_factor_samples: int = 3000
    """... pixels sampled per view."""
    depth_factor_partners: int = 16
    """... views each view is compared with (longest baselines among the overlapping ones)."""
    reject_sigma: float = 3.0
    """After alignment, pixels farther than this many robust deviations from the consensus are masked."""
    reject_min: float = 0.04
    """... but never closer than this, m."""
    near_weight_power: float = 2.0
    """Observation weight (1 m / depth) ** power."""
    min_weight: float = 0.0
    """Voxels with total weight at or below this are treated as unobserved when meshing."""
    render_max_width: int = 320
    """Width, pixels, of depth maps rendered from points (cameras are rescaled to it)."""
    render_max_radius_px: int = 0
    """Largest footprint radius, pixels, of a point splatted into a rendered depth map."""
    render_cluster_gap: float = 0.15
    """Nearest-cluster z-buffer: points within max(gap_m, gap_rel * depth) behind the nearest form the cluster."""
    render_cluster_gap_rel: float = 0.05
    synth_spacing: float = 2.0
    """Views synthesized without cameras: grid spacing of the positions, m."""
    synth_height: float = 1.5
    """... eye height above the local floor, m."""
    synth_clearance: float = 0.3
    """... minimum distance from any Gaussian, m."""
    synth_yaws: int = 6
    synth_pitch_deg: float = -25.0
    synth_fov_deg: float = 90.0
    synth_size: tuple[int, int] = (192, 144)
    synth_max_views: int = 96
    gpu_depth_renderer: Literal["points", "gsplat"] = "points"
    """Depth renderer of the CUDA path for scenes that are not pixel-aligned: "points" (the CPU point renderer, as
    on the CPU path) or "gsplat" (expected depth, alpha >= 0.5). Measured on an H100 on the apartment fixture:
    gsplat's meshes agree with the CPU path's within 5 cm on only 45 % of the surface even with exact,
    fault-free Gaussians (on Lyra-harsh data its depth sits 3 % nearer), so it stays opt-in until that is found."""
    max_voxels: int = 2_000_000_000
    """Guard: the scene's bounding box at voxel_size must hold at most this many voxels, else the voxel is enlarged
    (logged). Only the block-slot grid is dense (4 bytes per 64 voxels: 125 MB at the default, a 40 x 40 x 10 m box
    at 2 cm); voxel storage grows with the surface only."""


@dataclass
class SurfaceResult:
    """Output of :func:`extract_surface`.

    Attributes:
        mesh: raw TriangleMesh, world frame, metres, Z up.
        stats: method, view counts, alignment statistics, voxel counts, seconds per step.
        depth_factor: the depth factor shared by all views that alignment removed (1.0: none). Every view's depth
            was multiplied by it about its camera centre, so the floor under the cameras moved and the cameras'
            height above it changed by this factor: :func:`lyra_isaac.convert.convert` re-levels the world.
    """

    mesh: TriangleMesh
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def depth_factor(self) -> float:
        record = self.stats.get("depth_factor") or {}
        return float(record["factor"]) if record.get("applied") else 1.0


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


# =============================================================================================== entry point
def extract_surface(scene_world: GaussianScene, cameras_world: CameraPath | None, cfg: SurfaceConfig | None = None,
                    progress: Progress = NO_PROGRESS) -> SurfaceResult:
    """Extract the visible surface of a Gaussian scene as a triangle mesh (CPU).

    Args:
        scene_world: cleaned Gaussians in the world frame (metres, Z up, floor near z = 0). For pixel-aligned
            scenes ``extra["row_index"]`` ((N,) int64 rows in the file; absent = identity) and
            ``extra["rows_in_file"]`` (int) locate each Gaussian's view and pixel.
        cameras_world: the generation cameras in the world frame, or None (views are then synthesized).
        cfg: settings (defaults: :class:`SurfaceConfig`).
        progress: progress reporting / cancellation.

    Returns:
        SurfaceResult with the raw mesh (not yet cleaned or decimated: see :func:`lyra_isaac.geometry.mesh
        .finish_mesh`) and stats.

    Raises:
        InputError: empty scene, or ``depth_source="pixels"`` on a scene that is not pixel-aligned.
        ConversionError: no surface could be extracted (no valid depth, empty mesh).
    """
    cfg = cfg or SurfaceConfig()
    where = scene_world.source_path
    if len(scene_world) == 0:
        raise InputError(where, "scene has no Gaussians left to extract a surface from")
    timings: dict[str, float] = {}
    stats: dict[str, Any] = {"backend": "cpu"}
    t0 = time.perf_counter()
    progress.update("surface: depth maps", 0.0)
    views = make_depth_views(scene_world, cameras_world, cfg, stats)
    timings["depth_maps"] = time.perf_counter() - t0
    mesh, fuse_stats, fuse_timings = fuse_and_mesh(views, cfg, progress, where=where, backend=NumpyFusion())
    stats.update(fuse_stats)
    timings.update(fuse_timings)
    stats["seconds"] = {k: round(v, 3) for k, v in timings.items()}
    stats["seconds_total"] = round(time.perf_counter() - t0, 3)
    logger.info("surface: %d vertices, %d triangles in %.1f s (%s depth, %d views)", len(mesh.vertices),
                mesh.n_triangles, stats["seconds_total"], views.source, len(views))
    progress.update("surface: done", 1.0)
    return SurfaceResult(mesh=mesh, stats=stats)


def make_depth_views(scene: GaussianScene, cameras: CameraPath | None, cfg: SurfaceConfig,
                     stats: dict[str, Any], render_depths: Callable[..., DepthViews] | None = None) -> DepthViews:
    """Choose and build the depth maps (pixel-aligned, rendered from cameras, or rendered from synthesized views).

    Args:
        render_depths: ``render_depths(scene, cameras, cfg) -> DepthViews`` for scenes that are not pixel-aligned;
            default :func:`render_point_depths` (CPU); the CUDA path passes its gsplat renderer.
    """
    render_depths = render_depths or render_point_depths
    where = scene.source_path
    if cameras is not None:
        cameras = pixel_grid_cameras(scene, cameras)
    offset, reason = detect_pixel_alignment(scene, cameras, cfg)
    stats["pixel_aligned"] = offset is not None
    stats["pixel_alignment"] = reason
    if cfg.depth_source == "pixels" and offset is None:
        raise InputError(where, f"surface.depth_source = 'pixels' but the scene is not pixel-aligned ({reason})")
    if offset is not None and cfg.depth_source != "render":
        logger.info("surface: scene is pixel-aligned (%s); using its Gaussians as %d depth maps", reason,
                    len(cameras))
        views = pixel_aligned_depths(scene, cameras, offset, cfg)
    else:
        logger.info("surface: not using pixel alignment (%s); rendering depth from Gaussian centres", reason)
        if cameras is None:
            cameras = synthesize_cameras(scene.means, cfg)
            source = "synth"
            logger.info("surface: no cameras; synthesized %d views in free space", len(cameras))
        else:
            source = "render"
        views = render_depths(scene, cameras, cfg)
        views.source = source
    if cfg.fill_gaps > 0 and views.source == "pixels":
        stats["gap_pixels_filled"] = fill_depth_gaps(views.depth, cfg.fill_gaps)
    if cfg.edge_threshold > 0:
        # rendered depth is noisier than a view's own pixels: only real discontinuities should go
        threshold = cfg.edge_threshold * (1.0 if views.source == "pixels" else 2.5)
        dropped = filter_depth_edges(views.depth, threshold)
        stats["flying_pixels_dropped"] = int(dropped)
    stats["depth_source"] = views.source
    stats["views"] = len(views)
    stats["depth_size"] = [int(views.depth.shape[2]), int(views.depth.shape[1])]
    stats["valid_depth_pixels"] = int(np.count_nonzero(views.depth))
    if stats["valid_depth_pixels"] == 0:
        raise ConversionError(where, "no valid depth in any view: nothing to extract a surface from")
    return views


# =============================================================================================== depth maps
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
    total = 0
    for f in range(depth.shape[0]):
        d = depth[f]
        valid = d > 0
        inv = np.zeros_like(d)
        np.divide(1.0, d, out=inv, where=valid)
        bad = np.zeros_like(valid)
        for axis in (0, 1):
            bad |= _axis_edge_pixels(inv, valid, axis, threshold)
        bad &= valid
        total += int(np.count_nonzero(bad))
        d[bad] = 0
    return total


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

    filled = 0
    for f in range(depth.shape[0]):
        d = depth[f]
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


# =============================================================================================== fusion
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
    """Pixel stride at which an (H, W) depth map still puts several samples in every TSDF block it touches: the
    largest (at most ``MAX_ALLOC_STRIDE``) whose median pixel footprint stays within half a block; 0 when the map
    has no valid depth. Shared by :func:`view_blocks` and its torch twin."""
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
    if stride > 1:
        k = _stride_k(k, stride, offset)
        depth = depth[::stride, ::stride]
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


def _scene_box(views: DepthViews, stride: int = 4) -> tuple[np.ndarray, np.ndarray]:
    pts = [backproject(views.depth[f, ::stride, ::stride], views.w2c[f], _stride_k(views.intrinsics[f], stride,
                                                                                    views.pixel_offset),
                       views.pixel_offset)[0] for f in range(len(views))]
    allp = np.concatenate(pts)
    return np.percentile(allp, 0.05, axis=0) - 0.5, np.percentile(allp, 99.95, axis=0) + 0.5


def _stride_k(k: np.ndarray, stride: int, offset: float) -> np.ndarray:
    """Intrinsics of an image subsampled by ``stride`` (pixel i of it is pixel i * stride of the original)."""
    ks = k.copy()
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


def fuse_views(views: DepthViews, depth: np.ndarray, voxel: float, truncation: float, power: float,
               box: tuple[np.ndarray, np.ndarray], backend: Any, progress: Progress, stage: str,
               span: tuple[float, float], max_views: int = 0, frames: np.ndarray | None = None) -> SparseTSDF:
    """Integrate the views of ``depth`` ((F, H, W), metres) into a new SparseTSDF: the views ``frames`` if given,
    else all, else at most ``max_views`` evenly spaced ones when > 0."""
    tsdf = SparseTSDF(box[0], box[1], voxel, truncation)
    if frames is None:
        frames = consensus_frames(len(views), max_views)
    for i, f in enumerate(frames):
        backend.integrate(tsdf, depth[f], views.w2c[f], views.intrinsics[f], views.pixel_offset, power)
        if i % 8 == 0:
            progress.update(stage, span[0] + (span[1] - span[0]) * i / max(len(frames), 1))
    finish = getattr(backend, "finish", None)
    if finish is not None:
        finish(tsdf)
    return tsdf


def _design(d: np.ndarray, x: np.ndarray, y: np.ndarray, model: str) -> np.ndarray:
    if model == "scale":
        return d[:, None]
    if model == "scale_offset":
        return np.stack([d, np.ones_like(d)], axis=1)
    return np.stack([d, d * x, d * y, d * x * x, d * x * y, d * y * y], axis=1)


def _identity_params(model: str) -> np.ndarray:
    p = np.zeros(ALIGN_BASES[model])
    p[0] = 1.0
    return p


def view_mean_scale(params: np.ndarray, model: str) -> np.ndarray:
    """(F,) mean over the image of each view's fitted depth scale field (x, y uniform in [-1, 1])."""
    mean_scale = params[:, 0].copy()
    if model == "warp":
        mean_scale += (params[:, 3] + params[:, 5]) / 3.0  # E[x^2] = E[y^2] = 1/3, E[x] = E[xy] = 0
    return mean_scale


def _normalize_params(params: np.ndarray, model: str) -> np.ndarray:
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
    h, w = depth.shape
    valid = depth > 0
    out = np.zeros_like(depth)
    pix = np.flatnonzero(valid.reshape(-1))
    d = depth.reshape(-1)[pix].astype(np.float64)
    x, y = _image_xy(pix, w, h)
    corrected = _design(d, x, y, model) @ params
    flat = out.reshape(-1)
    flat[pix] = np.where(corrected > 0, corrected, 0).astype(np.float32)
    return out


def _image_xy(pix: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
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
    x, y = _image_xy(pix, w, h)
    a = _design(d, x, y, model)
    return _FitSamples(design=a, corrected=a @ params, pixels=pix)


def _robust_fit(a: np.ndarray, target: np.ndarray, params: np.ndarray, model: str,
                cfg: SurfaceConfig) -> tuple[np.ndarray, float, int]:
    """Huber IRLS of ``target = a @ p`` with a ridge towards identity; (params, robust sigma in metres, rows)."""
    prior = _identity_params(model)
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


def fuse_and_mesh(views: DepthViews, cfg: SurfaceConfig, progress: Progress, where: Any,
                  backend: Any) -> tuple[TriangleMesh, dict[str, Any], dict[str, float]]:
    """Align (optional), fuse and mesh depth views; shared by the CPU and GPU paths (``backend`` integrates).

    Returns:
        (mesh, stats, timings in seconds per step).
    """
    stats: dict[str, Any] = {"fusion_backend": backend.name}
    timings: dict[str, float] = {}
    t = time.perf_counter()
    box = _scene_box(views)
    voxel = float(cfg.voxel_size)
    dims = (box[1] - box[0]) / voxel
    if float(np.prod(dims)) > cfg.max_voxels:
        voxel = float(voxel * (np.prod(dims) / cfg.max_voxels) ** (1 / 3))
        logger.warning("surface: scene box %s m too large for %.3f m voxels; using %.3f m",
                       np.round(box[1] - box[0], 1).tolist(), cfg.voxel_size, voxel)
    stats["voxel_size"] = voxel
    stats["box"] = [np.round(box[0], 3).tolist(), np.round(box[1], 3).tolist()]
    depth = views.depth
    align = cfg.align_views and views.source == "pixels" and cfg.align_iterations > 0 and len(views) > 1
    stats["aligned_views"] = bool(align)
    if align:
        model = cfg.align_model
        params = np.tile(_identity_params(model), (len(views), 1))
        coarse_voxel = voxel * cfg.align_voxel_factor
        trunc = max(cfg.align_truncation, 2 * coarse_voxel)
        rng = np.random.default_rng(0)
        sigmas = np.full(len(views), np.nan)
        corrected = depth
        n_it = cfg.align_iterations
        for it in range(n_it):
            span = (0.05 + 0.5 * it / n_it, 0.05 + 0.5 * (it + 0.6) / n_it)
            # each fold of views is fitted to the consensus of the others: a view cannot pull its own target.
            # The consensus views are the same align_max_views as without folds, so 2 folds cost what 1 did.
            folds = max(1, min(cfg.align_folds, len(views)))
            members = consensus_frames(len(views), cfg.align_max_views)
            for fold in range(folds):
                fitted = np.arange(fold, len(views), folds)
                others = members[members % folds != fold] if folds > 1 else members
                coarse = fuse_views(views, corrected, coarse_voxel, trunc, cfg.near_weight_power, box, backend,
                                    progress, "surface: align views", span, frames=others)
                params[fitted], sigmas[fitted], _ = fit_view_corrections(
                    [depth[f] for f in fitted], views.w2c[fitted], views.intrinsics[fitted], views.pixel_offset,
                    coarse, params[fitted], model, cfg, rng)
                del coarse
            params = _normalize_params(params, model)
            corrected = np.stack([apply_correction(depth[f], params[f], model, views.pixel_offset,
                                                   views.intrinsics[f]) for f in range(len(views))])
        if cfg.depth_factor:
            t_factor = time.perf_counter()
            progress.update("surface: shared depth factor", 0.55)
            estimate_factor = getattr(backend, "estimate_depth_factor", estimate_depth_factor)
            estimate = estimate_factor(corrected, views.w2c, views.intrinsics, views.pixel_offset,
                                       samples=cfg.depth_factor_samples, partners=cfg.depth_factor_partners)
            applied = (estimate.std_error <= cfg.depth_factor_max_error
                       and abs(estimate.factor - 1.0) <= cfg.depth_factor_max_change)
            if applied:
                params = params * estimate.factor
                corrected = corrected * np.float32(estimate.factor)
            stats["depth_factor"] = {**estimate.as_dict(), "applied": bool(applied)}
            logger.info("surface: depth factor shared by all views %.4f +- %.4f from %d view pairs (%d points): %s",
                        estimate.factor, estimate.std_error, estimate.pairs, estimate.correspondences,
                        "applied" if applied else "not applied (uncertain or implausible)")
            timings["depth_factor"] = time.perf_counter() - t_factor
        # consensus of the corrected views, then drop what still disagrees with it
        coarse = fuse_views(views, corrected, coarse_voxel, trunc, cfg.near_weight_power, box, backend, progress,
                            "surface: consensus", (0.55, 0.65), max_views=cfg.align_max_views)
        thresholds = np.maximum(cfg.reject_min, cfg.reject_sigma * np.where(np.isfinite(sigmas), sigmas,
                                                                             cfg.reject_min))
        rejected = reject_outliers_views(corrected, views, coarse, thresholds)
        depth = corrected
        scale = params[:, 0]
        stats["align_model"] = model
        stats["align_scale"] = {"min": round(float(scale.min()), 4), "max": round(float(scale.max()), 4),
                                "mean_abs_dev": round(float(np.mean(np.abs(scale - 1))), 4)}
        stats["align_view_scale"] = [round(float(x), 5) for x in view_mean_scale(params, model)]
        stats["align_residual_m"] = round(float(np.nanmedian(sigmas)), 4) if np.isfinite(sigmas).any() else None
        stats["outlier_pixels_dropped"] = int(rejected)
        logger.info("surface: aligned %d views (%s): scale %.3f..%.3f, median residual %.3f m, %d pixels rejected",
                    len(views), model, scale.min(), scale.max(), stats["align_residual_m"] or float("nan"), rejected)
        timings["align"] = time.perf_counter() - t
    t = time.perf_counter()
    tsdf = fuse_views(views, depth, voxel, cfg.truncation_voxels * voxel, cfg.near_weight_power, box, backend,
                      progress, "surface: fuse", (0.65, 0.9))
    timings["fuse"] = time.perf_counter() - t
    stats["tsdf_blocks"] = int(tsdf.n_blocks)
    stats["tsdf_observed_voxels"] = tsdf.n_observed
    t = time.perf_counter()
    progress.update("surface: marching cubes", 0.9)
    mesh = tsdf.extract_mesh(cfg.min_weight)
    timings["marching_cubes"] = time.perf_counter() - t
    if mesh.n_triangles == 0:
        raise ConversionError(where, f"surface extraction produced no triangles ({stats['tsdf_observed_voxels']} "
                                     "observed voxels): check the depth maps / cameras")
    stats["raw_vertices"] = int(len(mesh.vertices))
    stats["raw_triangles"] = int(mesh.n_triangles)
    return mesh, stats, timings
