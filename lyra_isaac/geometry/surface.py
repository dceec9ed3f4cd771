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

Steps 1-2 live in :mod:`.depth_maps` and :mod:`.point_render`, step 3 in :mod:`.alignment` (and
:mod:`.depth_factor`, :mod:`.view_warps`), step 4 in :mod:`.fusion`; this module holds the settings and runs them in
order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ..errors import ConversionError, InputError
from ..progress import NO_PROGRESS, Progress
from ..splats.cameras import CameraPath
from ..splats.scene import GaussianScene
from ..world import TriangleMesh
from .alignment import (
    apply_correction,
    fit_view_corrections,
    identity_params,
    normalize_params,
    reject_outliers_views,
    view_mean_scale,
)
from .depth_factor import DepthFactorEstimate, ViewPairs, depth_factor_from_pairs, gather_view_pairs
from .depth_maps import (
    DepthViews,
    detect_pixel_alignment,
    fill_depth_gaps,
    filter_depth_edges,
    pixel_aligned_depths,
    pixel_grid_cameras,
    smooth_depth_maps,
)
from .fusion import NumpyFusion, consensus_frames, fuse_views, scene_box
from .point_render import render_point_depths, synthesize_cameras
from .view_warps import refine_view_warps

logger = logging.getLogger(__name__)




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
    """Rounds of filling missing pixels enclosed by a smooth surface (0 = off), in pixel-aligned depth and in depth
    rendered from the centres of mostly flat Gaussians (optimized 3DGS, sparser than the pixels)."""
    max_depth: float = 50.0
    """Depths beyond this are ignored, m."""
    edge_threshold: float = 0.1
    """Flying-pixel test: relative inverse-depth second difference above which a pixel is dropped (0 = off)."""
    smooth_radius: int = 1
    """Pixel-aligned depth, after alignment, before the final fusion: half-size of the window of the local plane fit
    that denoises each depth map (:func:`~lyra_isaac.geometry.depth_maps.smooth_depth_maps`; 0 = off). Surfaces
    4-9 m away that one to three views see were fused from about one noisy pixel per voxel, and that was where the
    courtyard lost its precision (15 % of the collision surface seen by 1-3 views beyond 5 cm, 0.3 % of that seen by
    10 or more). On the 12 CI fixtures: F@5cm mean 0.971 -> 0.978 (courtyard seeds 0 and 2 0.936 -> 0.956 and
    0.939 -> 0.974; no fixture worse by more than 0.001). A 5 x 5 window (``2``) measured lower than 3 x 3, and
    smoothing before alignment changed the per-view fits for the worse (apartment seed 0 0.986 -> 0.971)."""
    smooth_max_residual: float = 0.03
    """... a pixel keeps its depth where the fit's RMS residual exceeds this fraction of its inverse depth."""
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
    refine_scales: bool = True
    """After alignment, fit every view's depth scale jointly to the correspondences with its long-baseline partners
    (the depth factor's; :func:`lyra_isaac.geometry.view_warps.refine_view_warps` with one term, the mean change over
    views held at zero), then measure the shared depth factor again on them. Consensus alignment matches each view
    to its neighbours, so a scale drift along the path survives it, largest at the path's ends (up to 7.5 % on the
    CI fixtures); the baselines measure it. Applied only when it explains enough of the disagreement
    (``refine_scales_min_gain``)."""
    refine_scales_min_gain: float = 0.1
    """... applied only when it lowers the long-baseline disagreement (robust sigma, metres) by at least this
    fraction. Where the views' scales drift, fitting them explains much of it: 11.5-16.6 % on the CI fixtures that
    drift (courtyard seed 1 at 160 x 90: F@5cm 0.910 -> 0.966, terrain seed 1: 0.977 -> 0.988). Elsewhere it explains
    1.2-8.5 %, what the warps (not yet refined) and the noise leave, and fitting that moved scales the wrong way as
    often as not (courtyard seed 0 at 128 x 72, the pipeline test's size: 3.1 %, 0.938 -> 0.914; courtyard seed 2:
    1.2 %, 0.973 -> 0.958). Ungated over the 12 fixtures of 160 x 90: F@5cm mean 0.977 -> 0.981, the lowest 0.910 ->
    0.946. The first-to-last view pair of courtyard seed 0 (the path's ends overlap only 2-3 neighbours, seen from
    very different directions) disagrees by 3.6 % where the truth says 0.8 %; down-weighting whole view pairs that
    disagree did not help."""
    refine_scales_prior: float = 0.01
    """... prior standard deviation of each view's scale change (relative depth)."""
    refine_scales_max_change: float = 0.1
    """... not applied when it would change a view's depth by more than this fraction (logged)."""
    refine_warps: bool = True
    """After the depth factor, fit every view's smooth depth warp jointly to the correspondences between views
    (:mod:`lyra_isaac.geometry.view_warps`): consensus alignment leaves each view's warp (0.5-1.5 %)."""
    refine_warps_scale_prior: float = 0.002
    """... prior standard deviation of each view's constant term (relative depth)."""
    refine_warps_shape_prior: float = 0.005
    """... prior standard deviation of each view's other warp terms (relative depth)."""
    refine_warps_max_change: float = 0.05
    """... not applied when it would change a view's depth by more than this fraction anywhere (logged)."""
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
    render_mode: Literal["auto", "splat", "centres"] = "centres"
    """Depth renderer for scenes that are not pixel-aligned (:mod:`lyra_isaac.geometry.point_render`): "splat"
    (each Gaussian's projected footprint and opacity, median depth front to back; flat Gaussians give their plane's
    depth), "centres" (centres into a nearest-cluster z-buffer) or "auto" (splat when most Gaussians are flat, as in
    optimized 3DGS). Default "centres": on the optimized apartment fixture (seed 0, cameras.json) "splat" took
    F@5cm 0.941 -> 0.957 and floor holes 11 -> 5 %, but F@2cm 0.90 -> 0.64 and floor error 0.6 -> 2.4 cm (a bias
    not yet understood); not yet measured on the other scenes."""
    render_alpha: float = 0.5
    """Splat renderer: a pixel's depth is where the accumulated opacity reaches this (fewer: no depth)."""
    render_splat_radius_px: int = 8
    """Splat renderer: largest footprint radius, pixels (3 sigma of the projected Gaussian, capped here)."""
    render_max_radius_px: int = 0
    """Centres renderer: largest footprint radius, pixels, of a point splatted into a rendered depth map."""
    render_cluster_gap: float = 0.15
    """Nearest-cluster z-buffer: points within max(gap_m, gap_rel * depth) behind the nearest form the cluster."""
    render_cluster_gap_rel: float = 0.05
    synth_spacing: float = 2.0
    """Views synthesized without cameras: grid spacing of the positions, m."""
    synth_height: float = 1.5
    """... eye height above the local floor, m."""
    synth_clearance: float = 0.3
    """... minimum distance from the Gaussians (from the ``SYNTH_FLOATER_POINTS``-th nearest: a few floaters in free
    space do not block a position), m."""
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



def _shared_factor(pairs: ViewPairs, cfg: SurfaceConfig) -> tuple[DepthFactorEstimate, bool]:
    """The depth factor all views share (:func:`.depth_factor.depth_factor_from_pairs`) and whether to apply it:
    its standard error and its change within ``cfg.depth_factor_max_error`` and ``depth_factor_max_change``."""
    estimate = depth_factor_from_pairs(pairs)
    applied = (estimate.std_error <= cfg.depth_factor_max_error
               and abs(estimate.factor - 1.0) <= cfg.depth_factor_max_change)
    return estimate, bool(applied)


def fuse_and_mesh(views: DepthViews, cfg: SurfaceConfig, progress: Progress, where: Any,
                  backend: Any) -> tuple[TriangleMesh, dict[str, Any], dict[str, float]]:
    """Align (optional), fuse and mesh depth views; shared by the CPU and GPU paths (``backend`` integrates).

    Returns:
        (mesh, stats, timings in seconds per step).
    """
    stats: dict[str, Any] = {"fusion_backend": backend.name}
    timings: dict[str, float] = {}
    t = time.perf_counter()
    box = scene_box(views)
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
        params = np.tile(identity_params(model), (len(views), 1))
        coarse_voxel = voxel * cfg.align_voxel_factor
        trunc = max(cfg.align_truncation, 2 * coarse_voxel)
        rng = np.random.default_rng(0)
        sigmas = np.full(len(views), np.nan)
        corrected = depth
        view_gain = np.ones(len(views))  # mean over the image of each view's joint scale and warp refinements
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
            params = normalize_params(params, model)
            corrected = np.stack([apply_correction(depth[f], params[f], model, views.pixel_offset,
                                                   views.intrinsics[f]) for f in range(len(views))])
        gather = getattr(backend, "gather_view_pairs", gather_view_pairs)

        def view_pairs(depth_maps: np.ndarray, partner_order: str) -> ViewPairs:
            return gather(depth_maps, views.w2c, views.intrinsics, views.pixel_offset,
                          samples=cfg.depth_factor_samples, partners=cfg.depth_factor_partners,
                          partner_order=partner_order)

        # the views against each other, partners with the longest baselines: the baselines measure the depth factor
        # all views share and each view's own scale (not only its agreement with its neighbours: a scale drift along
        # the path, largest at its ends, shows there)
        long_pairs = view_pairs(corrected, "baseline") if cfg.depth_factor or cfg.refine_scales else None
        t_factor = time.perf_counter()
        progress.update("surface: shared depth factor", 0.55)
        estimate, applied = _shared_factor(long_pairs, cfg) if cfg.depth_factor else (None, False)
        if cfg.refine_scales:
            # each view's scale about the shared factor (the mean over views of the change held at zero), then the
            # shared factor again on the rescaled correspondences
            scales = refine_view_warps(long_pairs, estimate.factor if applied else 1.0,
                                       scale_prior=cfg.refine_scales_prior,
                                       max_change=cfg.refine_scales_max_change, terms=1)
            gain = 1.0 - scales.residual_after_m / scales.residual_before_m if scales.residual_before_m > 0 else 0.0
            if scales.applied and not gain >= cfg.refine_scales_min_gain:
                scales = replace(scales, applied=False)
            if scales.applied:
                corrected = corrected * scales.multipliers(*corrected.shape[1:])
                view_gain *= 1.0 + scales.coefficients[:, 0]
                if cfg.depth_factor:
                    estimate, applied = _shared_factor(scales.applied_to(long_pairs), cfg)
            stats["view_scales"] = {**scales.as_dict(), "gain": round(float(gain), 4)}
            logger.info("surface: view scales refined jointly over %d long-baseline correspondences: disagreement "
                        "%.3f -> %.3f m (%.1f %% less), largest change %.1f %% (%s)", scales.correspondences,
                        scales.residual_before_m, scales.residual_after_m, 100 * gain, 100 * scales.max_change,
                        "applied" if scales.applied else
                        f"not applied: needs {100 * cfg.refine_scales_min_gain:.0f} % less and changes within "
                        f"{100 * cfg.refine_scales_max_change:.0f} %")
        if cfg.depth_factor:
            if applied:
                params = params * estimate.factor
                corrected = corrected * np.float32(estimate.factor)
            stats["depth_factor"] = {**estimate.as_dict(), "applied": bool(applied)}
            logger.info("surface: depth factor shared by all views %.4f +- %.4f from %d view pairs (%d points): %s",
                        estimate.factor, estimate.std_error, estimate.pairs, estimate.correspondences,
                        "applied" if applied else "not applied (uncertain or implausible)")
        timings["depth_factor"] = time.perf_counter() - t_factor
        if cfg.refine_warps:
            # partners that see most of each view: correspondences over its whole image, so its warp is fitted
            # where it applies (long-baseline partners see a part of it: the warp then extrapolates)
            t_warps = time.perf_counter()
            progress.update("surface: view warps", 0.57)
            refinement = refine_view_warps(view_pairs(corrected, "overlap"), scale_prior=cfg.refine_warps_scale_prior,
                                           shape_prior=cfg.refine_warps_shape_prior,
                                           max_change=cfg.refine_warps_max_change)
            if refinement.applied:
                corrected = corrected * refinement.multipliers(*corrected.shape[1:])
                view_gain *= 1.0 + refinement.coefficients[:, 0] + (refinement.coefficients[:, 3]
                                                                    + refinement.coefficients[:, 5]) / 3.0
            stats["view_warps"] = refinement.as_dict()
            logger.info("surface: view warps refined jointly over %d correspondences: disagreement %.3f -> %.3f m, "
                        "largest change %.1f %% (%s)", refinement.correspondences, refinement.residual_before_m,
                        refinement.residual_after_m, 100 * refinement.max_change,
                        "applied" if refinement.applied else "not applied")
            timings["view_warps"] = time.perf_counter() - t_warps
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
        stats["align_view_scale"] = [round(float(x), 5) for x in view_mean_scale(params, model) * view_gain]
        stats["align_residual_m"] = round(float(np.nanmedian(sigmas)), 4) if np.isfinite(sigmas).any() else None
        stats["outlier_pixels_dropped"] = int(rejected)
        logger.info("surface: aligned %d views (%s): scale %.3f..%.3f, median residual %.3f m, %d pixels rejected",
                    len(views), model, scale.min(), scale.max(), stats["align_residual_m"] or float("nan"), rejected)
        timings["align"] = time.perf_counter() - t
    if cfg.smooth_radius > 0 and views.source == "pixels":
        # after alignment: the per-view fits and correspondences see the depths as they were
        t = time.perf_counter()
        depth = depth.copy() if depth is views.depth else depth
        stats["depth_pixels_smoothed"] = smooth_depth_maps(depth, cfg.smooth_radius, cfg.smooth_max_residual)
        timings["smooth"] = time.perf_counter() - t
    t = time.perf_counter()
    tsdf = fuse_views(views, depth, voxel, cfg.truncation_voxels * voxel, cfg.near_weight_power, box, backend,
                      progress, "surface: fuse", (0.65, 0.9))
    timings["fuse"] = time.perf_counter() - t
    stats["tsdf_blocks"] = int(tsdf.n_blocks)
    stats["tsdf_observed_voxels"] = tsdf.n_observed
    t = time.perf_counter()
    progress.update("surface: marching cubes", 0.9)
    extract = getattr(backend, "extract_mesh", None)  # the torch backend's runs on its device
    mesh = extract(tsdf, cfg.min_weight) if extract is not None else tsdf.extract_mesh(cfg.min_weight)
    timings["marching_cubes"] = time.perf_counter() - t
    if mesh.n_triangles == 0:
        raise ConversionError(where, f"surface extraction produced no triangles ({stats['tsdf_observed_voxels']} "
                                     "observed voxels): check the depth maps / cameras")
    stats["raw_vertices"] = int(len(mesh.vertices))
    stats["raw_triangles"] = int(mesh.n_triangles)
    return mesh, stats, timings
