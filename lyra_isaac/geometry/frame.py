"""Gravity, floor and scale: :func:`estimate_frame`, :func:`estimate_scale`, :func:`source_to_world_matrix`.

A Lyra scene lives in the OpenCV frame of its first camera (+Y down, not gravity-aligned) in roughly metric units.
The world is metres, Z up, floor at z = 0. This module finds the rotation that makes the floor level, the floor
height and the scale factor.

**Up and floor** (:func:`estimate_frame`):

- With cameras: the prior is the direction orthogonal to the cameras' right axes (horizontal unless the cameras
  roll, whatever their pitch), else the normal of the plane through the camera centres, else the mean camera up
  (-Y) axis (see ``_camera_prior``). The floor is then the *lowest large plane below the cameras* whose normal
  lies within :attr:`FrameConfig.max_prior_deviation_deg` of the prior: sequential RANSAC over a subsample finds
  the large planes (plus a search restricted to near-horizontal planes, as walls dominate corridors), the lowest
  one with enough support wins, and a robust (Cauchy-weighted) least-squares fit on a wide band around it gives
  the up axis.
- Then, whatever found the first estimate, the surface-patch consensus (``FrameConfig.patch_consensus``)
  refines it: the points are cut into cubic cells (a fifth of the
  viewing depth), one patch per view and cell (``views=``, e.g. :func:`view_groups`, keeps each generated view's
  own depth scale error out of other views' patches); planar patches vote, horizontal ones (floors, table tops,
  ceilings) for a parallel up axis, vertical ones (walls, furniture sides) for a perpendicular one, in a
  Cauchy-weighted least-squares solve, each cell once (by area, not by pixel count). Every generated view also
  carries a smooth depth warp that tilts its surfaces by up to ~1-2 deg, so only many views and many surfaces
  average it out; one plane fit, or a floor alone, does not. Uneven ground (horizontal patches spread by more
  than 2 deg and few vertical patches: natural terrain, whose local slopes are not level) instead takes the
  normal of one robust plane through the lowest point per cell of every view, each view with its own height
  offset (cameras needed): a regional slope shrinks as the region grows, and a plane fit weighs the widest extent
  most. The floor height then follows the new up axis.
- Without cameras: candidates are the normals (both signs) of the largest planes, plus planes near the source -Y
  axis (the first camera's up in a Lyra file); a candidate is valid when its plane is *low* (few points below
  it). Each valid candidate scores ``ln(area / largest area)`` plus weighted gravity cues (``_gravity_cues``) and
  the highest score wins. Area counts the cells the plane's inliers occupy, not points: an optimized 3DGS scene is
  densest where its training cameras were, so a wall seen from near outnumbers the floor. The cues: the source
  -Y prior (Lyra's first camera, COLMAP's usual up; worth a factor 2 of area); *contents* (things rest on the
  floor: surface patches parallel to the candidate lie low above a floor, on both sides of a wall's interior);
  *open above* (a wall faces another wall as large, a floor faces the sky or a ceiling the level-looking cameras
  saw less). A corridor's walls cover more area than its floor (optimized fixtures, seeds 0-2 and 3 random
  frames each: 90 deg wrong by area alone, 0.04-0.18 deg with the cues). The candidates, their cues and the
  margin over the best candidate of another direction are recorded in the stats and logged.
- Terrain (no plane, or the plane reaches under :attr:`FrameConfig.min_floor_coverage` of the ground cells): the
  up axis is the normal of a robust plane fit to the lowest point per ground cell, and the floor height is the
  median ground height right under the cameras.
- Yaw: the first camera's forward direction (or source +Z) maps to +X; indoors, when the large vertical planes
  agree on a rectangular layout, the yaw snaps to the nearest wall axis.

RANSAC thresholds are relative to the typical viewing depth (median distance from a point to the nearest camera,
or to the median point without cameras), because the scene is not metric yet: 2.5 % of a 3 m depth is 7.5 cm.

**Scale** (:func:`estimate_scale`): the file's scale by default, with a warning when the camera eye height falls
outside :attr:`ScaleConfig.eye_height_range`; an explicit factor or a known camera height override it. The eye
height is the median over cameras of each camera's height above the ground right under it (terrain rises and
falls; floors carry per-view offsets), or above the floor plane where no ground is seen under the cameras.

Measured on Lyra-harsh truth fixtures (24 views of 128x72, seeds 0-2, up error in deg; before the patch
consensus in brackets): apartment 0.06-0.27 (0.19-0.52), corridor 0.18-0.35 (0.12-1.33), courtyard 0.05-0.12
(0.13-0.18), rolling terrain 0.21-0.66 (0.22-1.30). On exact terrain data (no faults) ground-only estimators
still err by 0.5-0.6 deg on two of three seeds: the visible ground itself is tilted by that much.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import ConfigError, ConversionError
from ..splats.cameras import CameraPath
from .row_keys import group_keys

logger = logging.getLogger(__name__)

LYRA_SOURCE_UP = np.array([0.0, -1.0, 0.0])
"""Up direction of a Lyra source frame when its first camera is level (OpenCV axes: +Y down)."""
LYRA_FORWARD = np.array([0.0, 0.0, 1.0])
"""Forward direction of the first camera in a Lyra source frame; it becomes world +X."""
SCORE_SAMPLE = 6000
"""Points that score each RANSAC hypothesis (the winner is then refit on all inliers of the subsample)."""
RIGHT_AXES_MIN_SPREAD = 0.02
"""The cameras' right axes span the horizontal plane when the middle eigenvalue of their scatter exceeds this
(a yaw spread of about +-10 deg) ..."""
RIGHT_AXES_CONDITION = 8.0
"""... and exceeds the smallest eigenvalue (roll noise) this many times."""
LOCAL_GROUND_RADIUS = 0.15
"""Half-width of the square under a camera searched for its ground, as a fraction of the viewing depth."""
LOCAL_GROUND_MIN_POINTS = 30
"""Points a camera needs under it to measure its own height."""
PATCH_MIN_POINTS = 15
"""A surface patch (one view's points in one cell, see ``_patch_normals``) needs this many points."""
PATCH_PLANARITY = 0.1
"""A patch is planar when the smallest eigenvalue of its covariance is under this fraction of the middle one."""
PATCH_HORIZONTAL_DEG = 12.0
"""Patches whose normal lies within this angle of up are horizontal (parallel to up; ramps of 14 deg are not)."""
PATCH_VERTICAL_DEG = 10.0
"""Patches whose normal lies within this angle of horizontal are vertical (perpendicular to up)."""
PATCH_CAUCHY_DEG = 3.0
"""Scale of the Cauchy weights on the patches' angular residuals."""
PATCH_ROUNDS = 3
"""Re-level and re-cut the patches this many times (the cells follow the current up)."""
PATCH_MIN_HORIZONTAL = 20
"""The patch consensus needs at least this many horizontal patches."""
UNEVEN_SPREAD_DEG = 2.0
"""Horizontal patches spread by more than this (median angle from the consensus) may describe uneven ground ..."""
BUILT_VERTICAL_RATIO = 0.2
"""... unless the scene holds at least this many vertical patches per horizontal one: walls and furniture sides
make it a built scene, whose level surfaces are trusted (fixtures: rooms, corridors, courtyards 0.6-3 vertical
patches per horizontal one, rolling terrain under 0.01). Uneven ground takes its up axis from the pooled ground
plane."""
POOLED_GROUND_CLEARANCE = 0.1
"""The pooled ground plane uses points at least this fraction of the viewing depth below the median camera."""
HORIZONTAL_PLANES = 3
"""Planes found by the extra search restricted to near-horizontal normals (below the cameras)."""
REFINE_BAND = 3.0
"""The final floor fit uses points within this many RANSAC thresholds of the plane (soft-weighted)."""
SOURCE_UP_PREFERENCE_DEG = 35.0
"""Without cameras, a floor candidate this close to the source -Y axis is preferred (see module docstring)."""
ROW_ORDER_RATIO = 0.25
"""File rows are in spatial (view) order when consecutive rows lie closer than this fraction of random pairs."""
AREA_CELL = 4.0
"""Without cameras, planes are ranked by area: the cells (edge this many RANSAC thresholds) their inliers occupy."""
GRAVITY_PRIOR_WEIGHT = float(np.log(2.0))
"""Without cameras, score bonus of a floor candidate within ``SOURCE_UP_PREFERENCE_DEG`` of source -Y (the
conventional frame: Lyra's first camera, COLMAP's usual up): worth a factor 2 of area."""
GRAVITY_CONTENTS_WEIGHT = 1.5
"""Score weight of the contents cue (see ``_contents_cue``: things rest on the floor), in [-1, 1]."""
GRAVITY_OPEN_WEIGHT = 2.0
"""Score weight of the open-above cue (see ``_open_above_cue``: less faces the floor from above), in [0, 1]."""
GRAVITY_PATCH_CELL = 0.05
"""Edge of the cells whose planar patches the no-camera cues count, as a fraction of the viewing depth ...
(fixtures: 9-16 point spacings) ..."""
GRAVITY_PATCH_SPACINGS = 8.0
"""... and at least this many typical point spacings (median nearest-neighbour distance), so that sparse clouds
still fill their patches with ``PATCH_MIN_POINTS``."""
GRAVITY_PARALLEL_DEG = 12.0
"""A patch (or plane) within this angle of a candidate's plane counts as parallel to it."""
GRAVITY_BOTTOM_BAND = 0.08
"""Parallel patches up to this fraction of the scene's height above a candidate belong to the candidate's plane;
above ``GRAVITY_TOP_BAND`` to the surface facing it (ceiling, opposite wall); those between are contents."""
GRAVITY_TOP_BAND = 0.85
GRAVITY_CONTENTS_PRIOR = 5
"""Pseudo-count that damps the contents cue where few content patches exist."""


@dataclass
class FrameConfig:
    """Settings of :func:`estimate_frame`. Lengths are fractions of the typical viewing depth (source units)."""

    max_points: int = 200_000
    """Points subsampled for all estimates."""
    ransac_iterations: int = 600
    """Plane hypotheses per RANSAC round."""
    ransac_threshold: float = 0.025
    """Inlier distance of a plane, as a fraction of the viewing depth (0.025 * 3 m = 7.5 cm). Generated scenes
    have per-view depth scale errors of a few percent, so a floor seen by many views is several cm thick; the final
    fit is a robust (Cauchy-weighted) least-squares plane, much finer than this band."""
    max_planes: int = 6
    """Planes extracted by sequential RANSAC (floor candidates, walls, tables, ceiling)."""
    min_plane_fraction: float = 0.02
    """A plane needs this fraction of the subsample as inliers to count."""
    min_floor_fraction: float = 0.25
    """The floor is the lowest plane holding at least this fraction of the largest horizontal plane's inliers."""
    min_floor_coverage: float = 0.3
    """A floor plane must reach this fraction of the ground cells (cells holding points below the cameras) with
    at least one inlier; otherwise the ground is treated as terrain."""
    max_prior_deviation_deg: float = 20.0
    """Largest angle between the camera prior and the floor normal."""
    max_below_fraction: float = 0.03
    """Without cameras, a floor candidate may have at most this fraction of points below it (beyond 3 thresholds)."""
    align_walls: bool = True
    """Snap the yaw to dominant wall normals when they are unambiguous."""
    wall_min_fraction: float = 0.03
    """The dominant wall plane needs this fraction of the subsample."""
    wall_agreement_deg: float = 4.0
    """Walls agree on a rectangular layout when their normals are within this angle modulo 90 deg."""
    terrain_cell_fraction: float = 0.05
    """Terrain fallback: ground cell edge as a fraction of the viewing depth."""
    patch_consensus: bool = True
    """Refine the up axis from the normals of planar surface patches (horizontal ones parallel to up, vertical
    ones perpendicular), or on uneven ground from a ground plane pooled over views (see the module docstring)."""
    patch_cell_fraction: float = 0.2
    """Edge of the cubic cells that cut the points into surface patches, as a fraction of the viewing depth."""
    surface_level: bool = True
    """After surface extraction, refine the up axis from the fused surface's face normals and rotate the world
    about a floor point to match (:mod:`lyra_isaac.geometry.level`): the aligned, fused views show level surfaces
    more clearly than the raw Gaussians do."""
    surface_level_cauchy_deg: float = 2.0
    """Scale of the angular weights of that consensus, degrees."""
    surface_level_max_deg: float = 3.0
    """A larger surface-level correction is not applied, degrees."""
    surface_level_min_area: float = 1.0
    """The fused surface's level faces must cover at least this much for its correction to apply, m^2 (world)."""
    min_cameras_inside: float = 0.5
    """At least this fraction of camera centres must lie inside the points' (padded) bounding box."""
    min_visible_fraction: float = 0.02
    """The median camera must see at least this fraction of the points in front of it, inside its image."""
    seed: int = 0
    """Seed of the subsampling and RANSAC draws (results are deterministic)."""


@dataclass
class FrameEstimate:
    """Result of :func:`estimate_frame`.

    Attributes:
        rotation: (3, 3) float64 rotation from the source frame to the Z-up frame (p_up = rotation @ p_src).
        floor_height: z of the floor in the rotated frame, source units.
        up_source: (3,) unit up direction in the source frame (= rotation[2]).
        method: "cameras+plane", "points+plane" or "cameras+terrain".
        stats: decisions and diagnostics (inlier counts, angles in degrees, thresholds in source units).
    """

    rotation: np.ndarray
    floor_height: float
    up_source: np.ndarray
    method: str
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScaleConfig:
    """Settings of :func:`estimate_scale`."""

    eye_height_range: tuple[float, float] = (1.2, 1.8)
    """Plausible camera heights above the floor, metres; outside it the scale gets a warning."""
    surface_camera_height: bool = True
    """With a camera height given, measure the cameras' height above the fused surface after the surface stage and
    re-scale the world to make it the given one (:mod:`lyra_isaac.geometry.camera_height`): the frame stage's floor
    is the raw Gaussians', which carry each view's own depth errors."""
    surface_ground_radius: float = 0.3
    """Radius of the disc under each camera whose upward faces give the ground height there, metres."""
    surface_max_change: float = 0.05
    """A larger re-scaling (as a fraction) is not applied; the scale stays as the frame stage set it."""


@dataclass
class ScaleEstimate:
    """Result of :func:`estimate_scale`.

    Attributes:
        factor: metres per source unit.
        method: "file" (kept), "user" (explicit factor) or "camera_height" (from a known camera height).
        eye_height_m: median camera height above the floor after scaling, metres (None without cameras).
        warnings: human-readable warnings (also logged).
    """

    factor: float
    method: str
    eye_height_m: float | None
    warnings: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------------------
# public API


def estimate_frame(points: np.ndarray, cameras: CameraPath | None, cfg: FrameConfig | None = None, *,
                   views: np.ndarray | None = None) -> FrameEstimate:
    """Find the up axis, the floor height and a yaw for a point cloud in its source frame.

    Args:
        points: (N, 3) float, source frame and units (e.g. the cleaned Gaussian centres).
        cameras: the camera path in the same frame, or None.
        cfg: settings; defaults to :class:`FrameConfig`.
        views: optional (N,) int, the view (or block of consecutive file rows, see :func:`view_groups`) each point
            came from. With it the surface patches of the up refinement stay within one view: each generated
            view carries its own depth scale error, which shifts its surfaces and would thicken a patch that
            mixes views (and tilts a plane fitted across views).

    Returns:
        FrameEstimate; ``rotation @ p_src`` has Z up and the floor at ``floor_height``.

    Raises:
        ConversionError: no floor can be found, too few points, or the cameras disagree with the points
            (another frame: points behind the cameras or cameras far outside the cloud).
    """
    cfg = cfg or FrameConfig()
    rng = np.random.default_rng(cfg.seed)
    where = cameras.source_path if cameras is not None else None
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if views is not None:
        views = np.asarray(views).reshape(-1)
        if len(views) != len(pts):
            raise ValueError(f"views has {len(views)} entries for {len(pts)} points")
    finite = np.isfinite(pts).all(axis=1)
    pts = pts[finite]
    views = None if views is None else views[finite]
    if len(pts) < 100:
        raise ConversionError(where, f"only {len(pts)} finite points: too few to find the floor")
    if len(pts) > cfg.max_points:
        pick = rng.choice(len(pts), cfg.max_points, replace=False)
        pts = pts[pick]
        views = None if views is None else views[pick]

    centers = None
    if cameras is not None and len(cameras) > 0:
        centers = cameras.centers()
        check_cameras(pts, cameras, cfg)
    depth = _viewing_depth(pts, centers)
    threshold = cfg.ransac_threshold * depth
    stats: dict[str, Any] = {"points": len(pts), "viewing_depth": depth, "ransac_threshold": threshold}

    planes = _sequential_ransac(pts, threshold, cfg, rng)
    stats["planes"] = [{"normal": p.normal.round(4).tolist(), "inliers": p.count} for p in planes]

    if centers is not None:
        prior, prior_kind = _camera_prior(cameras)
        stats["prior"] = prior_kind
        up, floor_plane = _floor_below_cameras(pts, centers, prior, planes, threshold, cfg)
        if floor_plane is not None:
            coverage = _ground_coverage(pts, centers, up, floor_plane.offset(up), depth, threshold, cfg)
            stats["floor_coverage"] = coverage
            if coverage < cfg.min_floor_coverage:
                logger.info("frame: plane covers %.0f%% of the ground cells: treating the ground as terrain",
                            100 * coverage)
                floor_plane = None
        if floor_plane is None:
            up, floor_height, ground = _terrain_floor(pts, centers, prior, depth, threshold, cfg, where)
            method = "cameras+terrain"
            stats["terrain_ground_cells"] = ground
        else:
            method = "cameras+plane"
        stats["prior_to_up_deg"] = angle_deg(prior, up)
    else:
        # walls can hide the floor from the free search (corridors): also search planes near the Lyra source up
        near_source_up = _sequential_ransac(pts, threshold, replace(cfg, max_planes=HORIZONTAL_PLANES),
                                            np.random.default_rng(cfg.seed + 2), LYRA_SOURCE_UP,
                                            SOURCE_UP_PREFERENCE_DEG)
        up, floor_plane = _floor_without_cameras(pts, planes + near_source_up, threshold, depth, cfg, stats)
        method = "points+plane"
    if floor_plane is not None:
        up, floor_height, rms, count = _refine_plane(pts, up, floor_plane.offset(up), threshold)
        stats.update(floor_inliers=count, floor_rms=rms)
    stats["up_from"] = "floor plane" if floor_plane is not None else "terrain plane"
    if cfg.patch_consensus:
        refined = _patch_up(pts, views, up, cfg.patch_cell_fraction * depth, stats)
        uneven = (refined is not None and stats["patch_spread_deg"] > UNEVEN_SPREAD_DEG
                  and stats["patches_vertical"] < BUILT_VERTICAL_RATIO * stats["patches_horizontal"])
        if uneven and centers is not None:
            refined = _pooled_ground_up(pts, views, centers, up, depth, cfg)  # uneven ground
            stats["up_from"] = "pooled ground plane"
        elif refined is not None:
            stats["up_from"] = "surface patches"
        if refined is not None and angle_deg(refined, up) <= cfg.max_prior_deviation_deg:
            stats["up_change_deg"] = angle_deg(refined, up)
            up = refined
            if floor_plane is not None:
                floor_height = _refine_offset(pts, up, floor_height, threshold)
            else:
                floor_height = _ground_height(pts, centers, up, cfg.terrain_cell_fraction * depth, threshold,
                                              where)
        else:
            stats["up_from"] += " (patch consensus not used)"

    forward = _forward_hint(cameras, up)
    rotation = _level_rotation(up, forward)
    yaw_source = "cameras" if cameras is not None else "source_axes"
    if cfg.align_walls:
        yaw = _wall_yaw(pts @ rotation.T, floor_height, threshold, cfg, rng, stats)
        if yaw is not None:
            rotation = _rot_z(-yaw) @ rotation
            yaw_source = "walls"
    stats["yaw_source"] = yaw_source
    if centers is not None:
        heights = (centers @ rotation.T)[:, 2] - floor_height
        stats["camera_height_median"] = float(np.median(heights))
        local = _local_camera_heights(pts @ rotation.T, centers @ rotation.T, floor_height, depth, threshold)
        if local is not None:
            stats["camera_height_local_median"] = float(np.median(local))
        if np.median(heights) <= 0:
            raise ConversionError(where, "the floor found lies above the camera path: the cameras disagree with "
                                         "the points (check that cameras.npz belongs to this scene)")
    logger.info("frame: %s, up (source) %s, floor at %.4g src units, %s; yaw from %s", method,
                np.round(up, 4).tolist(), floor_height,
                f"{stats.get('floor_inliers', 0)} floor inliers (thr {threshold:.3g})", yaw_source)
    return FrameEstimate(rotation=rotation, floor_height=float(floor_height), up_source=rotation[2].copy(),
                         method=method, stats=stats)


def estimate_scale(frame: FrameEstimate, cameras: CameraPath | None, cfg: ScaleConfig | None = None,
                   scale: float | None = None, camera_height: float | None = None) -> ScaleEstimate:
    """Choose the metres-per-source-unit factor.

    Args:
        frame: the estimate from :func:`estimate_frame` (its floor height sets the camera heights).
        cameras: camera path in the source frame (needed for ``camera_height`` and the eye-height check).
        cfg: settings; defaults to :class:`ScaleConfig`.
        scale: explicit factor (metres per source unit); overrides everything.
        camera_height: known median camera height above the floor, metres; the factor makes it so.

    Raises:
        ConfigError: both ``scale`` and ``camera_height`` given, or a non-positive value.
        ConversionError: ``camera_height`` without cameras, or cameras at or below the floor.
    """
    cfg = cfg or ScaleConfig()
    if scale is not None and camera_height is not None:
        raise ConfigError("give either scale or camera_height, not both")
    for name, value in (("scale", scale), ("camera_height", camera_height)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise ConfigError(f"{name}: expected a positive number, got {value!r}")
    eye_src = None
    if cameras is not None and len(cameras) > 0:
        heights = (cameras.centers() @ frame.rotation.T)[:, 2] - frame.floor_height
        eye_src = float(frame.stats.get("camera_height_local_median", np.median(heights)))
    warnings: list[str] = []
    if scale is not None:
        factor, method = float(scale), "user"
    elif camera_height is not None:
        if eye_src is None:
            raise ConversionError(None, "camera_height needs the scene's cameras (cameras.npz), and none were given")
        if eye_src <= 0:
            raise ConversionError(cameras.source_path, "the cameras are not above the floor; cannot scale by "
                                                       "camera height")
        factor, method = camera_height / eye_src, "camera_height"
    else:
        factor, method = 1.0, "file"
    eye_m = None if eye_src is None else eye_src * factor
    low, high = cfg.eye_height_range
    if eye_m is not None and method != "camera_height" and not (low <= eye_m <= high):
        typical = 0.5 * (low + high)
        warnings.append(f"camera eye height is {eye_m:.2f} m, outside the usual {low:g}-{high:g} m: the scene scale "
                        f"may be off by about x{typical / eye_m:.2f}; pass camera_height (--camera-height) or "
                        "scale (--scale) to fix it")
    for message in warnings:
        logger.warning("scale: %s", message)
    logger.info("scale: factor %.5g (%s), eye height %s", factor, method,
                "unknown" if eye_m is None else f"{eye_m:.3f} m")
    return ScaleEstimate(factor=factor, method=method, eye_height_m=eye_m, warnings=warnings)


def source_to_world_matrix(frame: FrameEstimate, scale: float | ScaleEstimate) -> np.ndarray:
    """(4, 4) float64 similarity with ``p_world = M @ [p_src, 1]``: rotate to Z up, scale, floor to z = 0.

    Args:
        frame: from :func:`estimate_frame`.
        scale: metres per source unit, or a :class:`ScaleEstimate`.
    """
    factor = scale.factor if isinstance(scale, ScaleEstimate) else float(scale)
    matrix = np.eye(4)
    matrix[:3, :3] = factor * frame.rotation
    matrix[2, 3] = -factor * frame.floor_height
    return matrix


def depth_factor_correction(depth_factor: float, scale: ScaleEstimate) -> np.ndarray:
    """(4, 4) world-to-world similarity that re-levels the world after a depth factor shared by all views was removed.

    Surface extraction may find that every view's depth is off by one factor ``k`` against the camera baselines
    (:mod:`lyra_isaac.geometry.depth_factor`) and multiply the depths by it about each camera centre. The floor
    under the cameras, put at z = 0 from the uncorrected depths, then lies at ``(1 - k) * eye height``, and the
    cameras' height above it is ``k`` times what the scale stage measured. This matrix moves the floor back to
    z = 0 and, when the scale came from a known camera height, scales the world by ``1 / k`` so that height holds
    again (a file or user scale is kept: the camera baselines it sets are what ``k`` was measured against).

    Args:
        depth_factor: ``k`` (1.0: identity).
        scale: the scale stage's estimate (its method and eye height in metres).
    """
    matrix = np.eye(4)
    if depth_factor == 1.0 or scale.eye_height_m is None:
        return matrix
    ratio = 1.0 / depth_factor if scale.method == "camera_height" else 1.0
    matrix[:3, :3] *= ratio
    matrix[2, 3] = -ratio * (1.0 - depth_factor) * scale.eye_height_m
    return matrix


def check_cameras(points: np.ndarray, cameras: CameraPath, cfg: FrameConfig | None = None) -> dict[str, float]:
    """Check that cameras and points share a frame; return the measured fractions.

    Raises:
        ConversionError: fewer than ``min_cameras_inside`` of the camera centres lie inside the points' bounding
            box (1st-99th percentiles, padded on every axis by a quarter of its largest extent), or the median
            camera sees fewer than ``min_visible_fraction`` of the points.
    """
    cfg = cfg or FrameConfig()
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) > 50_000:
        pts = pts[:: len(pts) // 50_000]
    low, high = np.percentile(pts, 1, axis=0), np.percentile(pts, 99, axis=0)
    # padded by a quarter of the *largest* extent on every axis: flat terrain spans a few cm of height, and the
    # cameras above it lie well outside a box padded by its own height
    pad = 0.25 * float(np.max(high - low)) + 1e-9
    centers = cameras.centers()
    inside = float(np.mean(np.all((centers >= low - pad) & (centers <= high + pad), axis=1)))
    step = max(1, len(cameras) // 16)
    visible = []
    for i in range(0, len(cameras), step):
        cam = pts @ cameras.w2c[i, :3, :3].T + cameras.w2c[i, :3, 3]
        front = cam[:, 2] > 1e-9
        uv = cam[front, :2] / cam[front, 2:3] @ cameras.intrinsics[i, :2, :2].T + cameras.intrinsics[i, :2, 2]
        in_image = (uv[:, 0] >= 0) & (uv[:, 0] < cameras.width) & (uv[:, 1] >= 0) & (uv[:, 1] < cameras.height)
        visible.append(in_image.sum() / len(pts))
    seen = float(np.median(visible))
    where = cameras.source_path
    if inside < cfg.min_cameras_inside:
        raise ConversionError(where, f"only {inside:.0%} of the camera centres lie inside the point cloud: the "
                                     "cameras are in another frame or belong to another scene")
    if seen < cfg.min_visible_fraction:
        raise ConversionError(where, f"the median camera sees only {seen:.1%} of the points (most lie behind the "
                                     "cameras or outside their images): the cameras are in another frame")
    return {"cameras_inside": inside, "median_visible": seen}


# ----------------------------------------------------------------------------------------------------------------
# planes


@dataclass
class _Plane:
    normal: np.ndarray  # unit, sign arbitrary
    point: np.ndarray  # a point on the plane (centroid of inliers)
    count: int
    inliers: np.ndarray  # indices into the subsample

    def offset(self, up: np.ndarray) -> float:
        """Height of the plane along ``up`` (at its centroid)."""
        return float(self.point @ up)


def _fit_plane(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centroid = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - centroid, full_matrices=False)
    return vt[2], centroid


def _ransac_plane(pts: np.ndarray, threshold: float, iterations: int, rng: np.random.Generator,
                  axis: np.ndarray | None = None, max_angle_deg: float = 90.0) -> tuple[np.ndarray, float] | None:
    """Best plane (normal, d with n.p = d) by inlier count on ``pts``; optionally constrained near ``axis``."""
    if len(pts) < 3:
        return None
    score_pts = pts if len(pts) <= SCORE_SAMPLE else pts[rng.choice(len(pts), SCORE_SAMPLE, replace=False)]
    tri = pts[rng.integers(0, len(pts), (iterations, 3))]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(normals, axis=1)
    ok = norm > 1e-12
    normals, tri = normals[ok] / norm[ok, None], tri[ok]
    if axis is not None:
        ok = np.abs(normals @ axis) >= np.cos(np.radians(max_angle_deg))
        normals, tri = normals[ok], tri[ok]
    if len(normals) == 0:
        return None
    offsets = np.einsum("ij,ij->i", normals, tri[:, 0])
    best, best_count = None, -1
    for start in range(0, len(normals), 64):
        dist = np.abs(score_pts @ normals[start:start + 64].T - offsets[start:start + 64])
        counts = (dist < threshold).sum(axis=0)
        i = int(np.argmax(counts))
        if counts[i] > best_count:
            best, best_count = start + i, int(counts[i])
    return normals[best], float(offsets[best])


def _sequential_ransac(pts: np.ndarray, threshold: float, cfg: FrameConfig, rng: np.random.Generator,
                       axis: np.ndarray | None = None, max_angle_deg: float = 90.0) -> list[_Plane]:
    """Up to ``cfg.max_planes`` planes, largest first, each refined by least squares on its inliers."""
    remaining = np.arange(len(pts))
    planes: list[_Plane] = []
    min_count = cfg.min_plane_fraction * len(pts)
    for _ in range(cfg.max_planes):
        found = _ransac_plane(pts[remaining], threshold, cfg.ransac_iterations, rng, axis, max_angle_deg)
        if found is None:
            break
        normal, offset = found
        for _ in range(2):  # least-squares refinement on the inliers
            inl = remaining[np.abs(pts[remaining] @ normal - offset) < threshold]
            if len(inl) < 3:
                break
            new_normal, centroid = _fit_plane(pts[inl])
            if new_normal @ normal < 0:
                new_normal = -new_normal
            normal, offset = new_normal, float(centroid @ new_normal)
        inl = remaining[np.abs(pts[remaining] @ normal - offset) < threshold]
        if len(inl) < min_count:
            break
        planes.append(_Plane(normal, pts[inl].mean(axis=0), len(inl), inl))
        remaining = np.setdiff1d(remaining, inl, assume_unique=True)
    return planes


def _refine_plane(pts: np.ndarray, up: np.ndarray, offset: float,
                  threshold: float) -> tuple[np.ndarray, float, float, int]:
    """Robust least-squares refit of the floor plane: Cauchy-weighted (scale ``threshold``) PCA of the points
    within ``REFINE_BAND * threshold``, iterated as the band follows the plane.

    A generated floor is several cm thick (per-view depth errors); a hard band as thin as the RANSAC threshold
    keeps a slice of it that is biased towards the current tilt, which a wide band with soft weights avoids
    (measured on Lyra-like fixtures: 0.5-1.0 deg -> 0.35-0.6 deg). Returns up, offset, weighted rms residual and
    the number of points in the band."""
    count, rms = 0, float("nan")
    for _ in range(8):
        dist = pts @ up - offset
        near = np.abs(dist) < REFINE_BAND * threshold
        count = int(near.sum())
        if count < 3:
            break
        sub = pts[near]
        weights = 1.0 / (1.0 + (dist[near] / threshold) ** 2)
        centroid = (sub * weights[:, None]).sum(axis=0) / weights.sum()
        centered = (sub - centroid) * np.sqrt(weights[:, None])
        normal = np.linalg.svd(centered, full_matrices=False)[2][2]
        if normal @ up < 0:
            normal = -normal
        up, offset = normal, float(centroid @ normal)
        residual = sub @ up - offset
        rms = float(np.sqrt(np.average(residual ** 2, weights=weights)))
    return up, offset, rms, count


# ----------------------------------------------------------------------------------------------------------------
# up direction


def _camera_prior(cameras: CameraPath) -> tuple[np.ndarray, str]:
    """Up prior from the cameras, in order of preference:

    1. ``camera_right_axes``: the direction orthogonal to every camera's right (+X) axis. Cameras rarely roll, so
       their right axes are horizontal whatever their pitch (Lyra's paths look down by ~20 deg, which biases the
       mean up axis by as much); it needs the yaw to vary (right axes spanning the horizontal plane).
    2. ``camera_plane``: the normal of the plane through the camera centres, when the path spans a plane.
    3. ``camera_up_axes``: the mean camera up (-Y) axis made orthogonal to the mean right axis.
    """
    right, down, _ = cameras.axes()
    mean_up = -down.mean(axis=0)
    if np.linalg.norm(mean_up) < 1e-6:
        raise ConversionError(cameras.source_path, "the cameras' up axes cancel out: cannot find gravity from them")
    mean_up /= np.linalg.norm(mean_up)
    scatter = right.T @ right / len(right)
    values, vectors = np.linalg.eigh(scatter)  # ascending
    if values[1] > RIGHT_AXES_MIN_SPREAD and values[1] > RIGHT_AXES_CONDITION * max(values[0], 1e-12):
        normal = vectors[:, 0] if vectors[:, 0] @ mean_up > 0 else -vectors[:, 0]
        if angle_deg(normal, mean_up) < 45.0:
            return normal, "camera_right_axes"
    centers = cameras.centers()
    if len(centers) >= 4:
        spread = centers - centers.mean(axis=0)
        _, sv, vt = np.linalg.svd(spread, full_matrices=False)
        # a planar path: two large directions, a small third (level walk); take its normal if near the mean up
        if sv[1] > 0.2 * sv[0] and sv[2] < 0.15 * sv[1]:
            normal = vt[2] if vt[2] @ mean_up > 0 else -vt[2]
            if angle_deg(normal, mean_up) < 45.0:
                return normal, "camera_plane"
    mean_right = right.mean(axis=0)
    if np.linalg.norm(mean_right) > 1e-6:
        mean_right /= np.linalg.norm(mean_right)
        mean_up = mean_up - (mean_up @ mean_right) * mean_right
        mean_up /= np.linalg.norm(mean_up)
    return mean_up, "camera_up_axes"


def _floor_below_cameras(pts: np.ndarray, centers: np.ndarray, prior: np.ndarray, planes: list[_Plane],
                         threshold: float, cfg: FrameConfig) -> tuple[np.ndarray, _Plane | None]:
    """The lowest large plane below the cameras with a normal near the prior (or None)."""
    cos_max = np.cos(np.radians(cfg.max_prior_deviation_deg))
    camera_level = float(np.median(centers @ prior))
    candidates = []
    for plane in planes:
        normal = plane.normal if plane.normal @ prior > 0 else -plane.normal
        if normal @ prior < cos_max:
            continue
        if plane.offset(normal) >= float(np.median(centers @ normal)) - 2 * threshold:
            continue  # at or above the cameras: ceiling
        candidates.append((plane, normal))
    # walls can dominate the free search (corridors): also search near-horizontal planes directly
    below = pts[pts @ prior < camera_level - 2 * threshold]
    if len(below) >= 3:
        extra = _sequential_ransac(below, threshold, replace(cfg, max_planes=HORIZONTAL_PLANES),
                                   np.random.default_rng(cfg.seed + 1), prior, cfg.max_prior_deviation_deg)
        for plane in extra:
            normal = plane.normal if plane.normal @ prior > 0 else -plane.normal
            plane = _Plane(normal, plane.point, plane.count, plane.inliers)
            candidates.append((plane, normal))
    if not candidates:
        return prior, None
    largest = max(p.count for p, _ in candidates)
    if largest < cfg.min_plane_fraction * len(pts):
        return prior, None
    big = [(p, n) for p, n in candidates if p.count >= cfg.min_floor_fraction * largest]
    plane, normal = min(big, key=lambda item: item[0].offset(prior))
    logger.debug("frame: floor plane %d inliers of %d candidates (largest %d)", plane.count, len(candidates), largest)
    return normal, plane


def _floor_without_cameras(pts: np.ndarray, planes: list[_Plane], threshold: float, depth: float, cfg: FrameConfig,
                           stats: dict[str, Any]) -> tuple[np.ndarray, _Plane]:
    """Choose the floor among large planes with no camera prior (see the module docstring).

    Candidates are both sides of every plane that has at most ``cfg.max_below_fraction`` of the points below it
    (the floor, but also walls and a seen ceiling). Each scores ``ln(area / largest area)`` plus the gravity cues
    of :func:`_gravity_cues` times their weights (``GRAVITY_*_WEIGHT``); the highest score wins. The scores and
    cues of every candidate are recorded in ``stats["candidates"]``."""
    areas = [_plane_area(pts[plane.inliers], AREA_CELL * threshold) for plane in planes]
    centres, normals = _flat_patches(pts, _gravity_patch_cell(pts, depth))
    valid = []
    for plane, area in zip(planes, areas, strict=True):
        for sign in (1.0, -1.0):
            normal = sign * plane.normal
            below = float(np.mean(pts @ normal < plane.offset(normal) - 3 * threshold))
            if below <= cfg.max_below_fraction:
                cues = _gravity_cues(pts, centres, normals, normal, plane.offset(normal), area, planes, areas)
                valid.append((plane, normal, below, area, cues))
    if not valid:
        raise ConversionError(None, "no floor found: no large plane has the points on one side of it "
                                    f"({len(planes)} planes tried)")
    best = max(item[3] for item in valid)
    scores = [np.log(max(area, 1) / best) + GRAVITY_PRIOR_WEIGHT * cues["prior"]
              + GRAVITY_CONTENTS_WEIGHT * cues["contents"] + GRAVITY_OPEN_WEIGHT * cues["open"]
              for _, _, _, area, cues in valid]
    pick = int(np.argmax(scores))
    plane, normal, below, area, cues = valid[pick]
    runner_up = max((s for i, s in enumerate(scores) if angle_deg(valid[i][1], normal) > 30.0), default=None)
    decision = "highest score (area, source -Y prior, contents, open above)"
    stats["no_camera_decision"] = decision
    stats["no_camera_margin"] = None if runner_up is None else float(scores[pick] - runner_up)
    stats["candidates"] = [{"normal": n.round(4).tolist(), "inliers": p.count, "area_cells": a, "below": round(b, 4),
                            **{k: round(v, 3) for k, v in c.items()}, "score": round(float(s), 3)}
                           for (p, n, b, a, c), s in zip(valid, scores, strict=True)]
    logger.info("frame: no cameras; %d low-plane candidates, chose %s (%d area cells, source -Y prior %.0f, "
                "contents %.2f, open above %.2f; margin %s)", len(valid), decision, area, cues["prior"],
                cues["contents"], cues["open"],
                "n/a" if runner_up is None else f"{scores[pick] - runner_up:.2f}")
    return normal, plane


def _gravity_cues(pts: np.ndarray, centres: np.ndarray, normals: np.ndarray, up: np.ndarray, offset: float,
                  area: int, planes: list[_Plane], areas: list[int]) -> dict[str, float]:
    """Evidence that ``up`` (unit, source frame) points up from a floor at height ``offset`` along it.

    Args:
        pts: (N, 3) the points, source frame.
        centres, normals: (P, 3) centres and unit normals of the planar patches (:func:`_flat_patches`).
        up, offset, area: the candidate floor: its normal (towards the points), height along it (source units)
            and area (cells, :func:`_plane_area`).
        planes, areas: all planes found and their areas (cells).

    Returns:
        ``prior`` (1 within ``SOURCE_UP_PREFERENCE_DEG`` of source -Y, else 0), ``contents``
        (:func:`_contents_cue`) and ``open`` (:func:`_open_above_cue`).
    """
    height = pts @ up - offset
    top = float(np.percentile(height, 99))  # the scene's extent above the candidate (robust to floaters)
    patch_height = centres @ up - offset
    parallel = np.abs(normals @ up) > np.cos(np.radians(GRAVITY_PARALLEL_DEG))
    prior = float(angle_deg(up, LYRA_SOURCE_UP) <= SOURCE_UP_PREFERENCE_DEG)
    return {"prior": prior, "contents": _contents_cue(patch_height[parallel], top),
            "open": _open_above_cue(patch_height[parallel], top, up, offset, area, planes, areas)}


def _contents_cue(heights: np.ndarray, top: float) -> float:
    """Things rest on the floor: in [-1, 1], how much more of the scene's contents lies low than high.

    ``heights`` (P,) are the heights of the patches parallel to the candidate floor (table and crate tops, seats,
    steps on a floor; the fronts of furniture against a wall), ``top`` the scene's height above it (source units).
    Patches strictly between the candidate's own band and the band of the surface facing it
    (``GRAVITY_BOTTOM_BAND``, ``GRAVITY_TOP_BAND`` of ``top``) are contents; the cue is (low - high) /
    (low + high + ``GRAVITY_CONTENTS_PRIOR``), split at half the height. On the floor every piece of furniture
    is low; on a wall only the pieces against that wall are (optimized fixtures, seeds 0-2: floors 0.6-0.9,
    walls -0.9-0.7)."""
    inner = heights[(heights > GRAVITY_BOTTOM_BAND * top) & (heights < GRAVITY_TOP_BAND * top)]
    low = float(np.sum(inner < 0.5 * top))
    high = float(len(inner) - low)
    return (low - high) / (low + high + GRAVITY_CONTENTS_PRIOR)


def _open_above_cue(heights: np.ndarray, top: float, up: np.ndarray, offset: float, area: int,
                    planes: list[_Plane], areas: list[int]) -> float:
    """Free space above the floor: in [0, 1], how little faces the candidate from the far side of the scene.

    A wall faces another wall about as large, whereas above a floor lies the sky or a ceiling that the cameras
    (at eye height, looking level or down) saw much less. The mean of two measures, each 1 - (facing / own)
    clipped to [0, 1]: the largest plane parallel to the candidate on the far half of the scene against the
    candidate's ``area`` (cells), and the parallel patches (``heights`` (P,), source units) in the top band (above
    ``GRAVITY_TOP_BAND * top``) against those in the candidate's own band. Optimized fixtures, seeds 0-2: floors
    0.7-1.0, corridor walls 0.0-0.5."""
    facing = [other for plane, other in zip(planes, areas, strict=True)
              if abs(plane.normal @ up) > np.cos(np.radians(GRAVITY_PARALLEL_DEG))
              and plane.offset(up) - offset > 0.5 * top]
    by_planes = 1.0 - min(1.0, max(facing, default=0) / max(area, 1))
    bottom = float(np.sum(heights <= GRAVITY_BOTTOM_BAND * top))
    facing_patches = float(np.sum((heights >= GRAVITY_TOP_BAND * top) & (heights <= top)))
    by_patches = 1.0 - min(1.0, facing_patches / max(bottom, 1.0))
    return 0.5 * (by_planes + by_patches)


def _gravity_patch_cell(pts: np.ndarray, depth: float, sample: int = 5000) -> float:
    """Cell edge (source units) of the no-camera cues' patches: ``GRAVITY_PATCH_CELL * depth``, at least
    ``GRAVITY_PATCH_SPACINGS`` times the median nearest-neighbour distance of ``sample`` of the points (N, 3)."""
    from scipy.spatial import cKDTree

    probe = pts[:: max(1, len(pts) // sample)]
    spacing = float(np.median(cKDTree(pts).query(probe, k=2)[0][:, 1]))
    return max(GRAVITY_PATCH_CELL * depth, GRAVITY_PATCH_SPACINGS * spacing)


def _flat_patches(pts: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """(P, 3) centres and (P, 3) unit normals (sign arbitrary) of the planar patches of ``pts`` (N, 3): the points
    in each cubic cell of edge ``cell`` (source units) with at least ``PATCH_MIN_POINTS`` of them and a flat
    covariance (smallest eigenvalue under ``PATCH_PLANARITY`` times the middle one)."""
    origin = pts.mean(axis=0)
    _, inverse, counts = np.unique(group_keys(np.floor(pts / cell).astype(np.int64)), return_inverse=True,
                                   return_counts=True)
    big, mean, normal, flat = _group_planes(pts - origin, inverse.reshape(-1), counts)
    return mean[flat] + origin, normal[flat]


def _group_planes(centred: np.ndarray, inverse: np.ndarray,
                  counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Plane fits of groups of points: (G,) bool groups with at least ``PATCH_MIN_POINTS`` points ("big"), and for
    the big ones their (B, 3) mean, (B, 3) unit normal (sign arbitrary) and (B,) bool flatness (smallest covariance
    eigenvalue under ``PATCH_PLANARITY`` times the middle one).

    Args:
        centred: (N, 3) points minus a common origin (the one-pass covariance needs small coordinates).
        inverse: (N,) group of each point, 0..G-1; counts: (G,) points per group.
    """
    big = counts >= PATCH_MIN_POINTS
    mean = np.stack([np.bincount(inverse, centred[:, i], len(counts)) for i in range(3)], axis=1)[big]
    mean /= counts[big, None]
    cov = np.empty((int(big.sum()), 3, 3))
    for i in range(3):
        for j in range(i, 3):
            cov[:, i, j] = cov[:, j, i] = (np.bincount(inverse, centred[:, i] * centred[:, j], len(counts))[big]
                                           / counts[big] - mean[:, i] * mean[:, j])
    values, vectors = np.linalg.eigh(cov)  # ascending
    return big, mean, vectors[:, :, 0], values[:, 0] < PATCH_PLANARITY * values[:, 1]


def _plane_area(inliers: np.ndarray, cell: float) -> int:
    """Area of a plane's inliers (M, 3) as the number of cubic cells of edge ``cell`` they occupy: a surface seen
    from near holds many more points per square metre than one seen from afar, so the point count ranks planes
    by how close the cameras came, the occupied cells by their size."""
    if len(inliers) == 0:
        return 0
    return int(len(np.unique(group_keys(np.floor(inliers / cell).astype(np.int64)))))


def _ground_cells(local: np.ndarray, cell: float, groups: np.ndarray | None = None):
    """(C, 3) lowest point per XY cell of points in a levelled frame; with ``groups`` (N,) the lowest point per
    group and cell, returned with its (C,) group."""
    keys = np.floor(local[:, :2] / cell).astype(np.int64)
    if groups is not None:
        keys = np.c_[keys, groups]
    order = np.lexsort((local[:, 2], *keys.T[::-1]))
    keys, local = keys[order], local[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = np.any(keys[1:] != keys[:-1], axis=1)
    return local[first] if groups is None else (local[first], keys[first, 2])


def _ground_coverage(pts: np.ndarray, centers: np.ndarray, up: np.ndarray, offset: float, depth: float,
                     threshold: float, cfg: FrameConfig) -> float:
    """Fraction of ground cells (XY cells holding points below the cameras) that hold an inlier of the plane."""
    rotation = _level_rotation(up, None)
    local = pts @ rotation.T
    cam_z = float(np.median(centers @ up))
    below = local[local[:, 2] < cam_z - 2 * threshold]
    if len(below) == 0:
        return 0.0
    keys = np.floor(below[:, :2] / (cfg.terrain_cell_fraction * depth)).astype(np.int64)
    keys = keys[:, 0] * 2_000_003 + keys[:, 1]
    cells = np.unique(keys)
    covered = np.unique(keys[np.abs(below[:, 2] - offset) < threshold])
    return float(len(covered) / len(cells))


def _terrain_floor(pts: np.ndarray, centers: np.ndarray, prior: np.ndarray, depth: float, threshold: float,
                   cfg: FrameConfig, where) -> tuple[np.ndarray, float, int]:
    """Up from a robust plane through the lowest point per ground cell; floor = median ground under the cameras."""
    up = prior
    rotation = _level_rotation(up, None)
    cell = cfg.terrain_cell_fraction * depth
    ground = None
    for _ in range(3):
        local = pts @ rotation.T
        cam_z = float(np.median(centers @ rotation.T[:, 2]))
        below = local[local[:, 2] < cam_z - 2 * threshold]
        if len(below) < 50:
            break
        ground = _ground_cells(below, cell)
        if len(ground) < 20:
            break
        weights = np.ones(len(ground))
        for _ in range(5):  # iteratively reweighted plane fit (Cauchy weights)
            centroid = (ground * weights[:, None]).sum(axis=0) / weights.sum()
            diff = (ground - centroid) * np.sqrt(weights[:, None])
            normal = np.linalg.svd(diff, full_matrices=False)[2][2]
            normal = normal if normal[2] > 0 else -normal
            residual = (ground - centroid) @ normal
            scale = 1.4826 * np.median(np.abs(residual)) + 1e-12
            weights = 1.0 / (1.0 + (residual / (2.0 * scale)) ** 2)
        if np.degrees(np.arccos(np.clip(normal[2], -1, 1))) > cfg.max_prior_deviation_deg:
            break
        up = rotation.T @ normal
        rotation = _level_rotation(up, None)
    if ground is None or len(ground) < 20:
        raise ConversionError(where, "no floor found: no large plane and too few ground points below the cameras")
    floor = _ground_height(pts, centers, up, cell, threshold, where)
    logger.info("frame: terrain fallback, %d ground cells", len(ground))
    return up, floor, int(len(ground))


def _patch_normals(local: np.ndarray, views: np.ndarray, cell: float) -> np.ndarray:
    """(C, 3) unit normals of the planar surface patches of a levelled point cloud, one per occupied 3-D cell.

    Each view's points in a cubic cell of edge ``cell`` (source units) make a patch; a patch with at least
    ``PATCH_MIN_POINTS`` points whose covariance is flat (smallest eigenvalue under ``PATCH_PLANARITY`` times the
    middle one) contributes its normal. A patch stays inside one view, so the per-view depth scale errors (which
    shift a view's surfaces) do not thicken it; the cell's normal is the median over the views that see it.
    Normals point up (+z) when near-horizontal, else along the larger of +-x, +-y."""
    cells = np.floor(local / cell).astype(np.int64)
    unique, inverse, counts = np.unique(group_keys(np.c_[views, cells]), return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    big, _, normals, flat = _group_planes(local - local.mean(axis=0), inverse, counts)
    normals = normals[flat]
    if len(normals) == 0:
        return normals
    horizontal_axis = np.where(np.abs(normals[:, 0]) > np.abs(normals[:, 1]), normals[:, 0], normals[:, 1])
    sign = np.sign(np.where(np.abs(normals[:, 2]) > 0.5, normals[:, 2], horizontal_axis))
    normals = normals * np.where(sign == 0, 1.0, sign)[:, None]
    first = np.zeros(len(unique), dtype=np.int64)
    first[inverse[::-1]] = np.arange(len(inverse))[::-1]  # a point of each patch: its cell, without the view
    _, group = np.unique(group_keys(cells[first[big][flat]]), return_inverse=True)
    group = group.reshape(-1)
    order = np.argsort(group, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(group[order]) != 0])
    merged = np.array([np.median(chunk, axis=0) for chunk in np.split(normals[order], starts[1:])])
    return merged / np.linalg.norm(merged, axis=1, keepdims=True)


def _patch_up(pts: np.ndarray, views: np.ndarray | None, up: np.ndarray, cell: float,
              stats: dict[str, Any]) -> np.ndarray | None:
    """Up as the robust consensus of surface patch normals: horizontal patches (floors, table tops, ceilings,
    level ground) are parallel to up, vertical ones (walls, furniture sides) perpendicular to it.

    Solves ``min_u sum_h w_h |n_h x u|^2 + sum_v w_v (n_v . u)^2`` (the smallest eigenvector of a 3x3 matrix) with
    Cauchy weights on the angular residuals (scale ``PATCH_CAUCHY_DEG``), re-levelling and re-cutting the patches
    ``PATCH_ROUNDS`` times. Each 3-D cell counts once, so a surface counts by its area, not by how many pixels see
    it. Records the patch counts, the spread of the horizontal patches around the result (uneven ground spreads
    them) and the change from ``up``; None when fewer than ``PATCH_MIN_HORIZONTAL`` horizontal patches exist."""
    views = np.zeros(len(pts), dtype=np.int64) if views is None else views
    cos_h, sin_v = np.cos(np.radians(PATCH_HORIZONTAL_DEG)), np.sin(np.radians(PATCH_VERTICAL_DEG))
    start, horizontal, vertical = up, np.zeros((0, 3)), np.zeros((0, 3))
    for _ in range(PATCH_ROUNDS):
        rotation = _level_rotation(up, None)
        normals = _patch_normals(pts @ rotation.T, views, cell)
        if len(normals) == 0:
            return None
        horizontal = normals[normals[:, 2] > cos_h]
        vertical = normals[np.abs(normals[:, 2]) < sin_v]
        if len(horizontal) < PATCH_MIN_HORIZONTAL:
            return None
        local_up = np.array([0.0, 0.0, 1.0])
        for _ in range(10):
            local_up = consensus_up_step(horizontal, vertical, local_up, PATCH_CAUCHY_DEG)
        up = rotation.T @ local_up
    local_up = np.array([0.0, 0.0, 1.0]) if len(horizontal) == 0 else local_up
    stats["patches_horizontal"] = int(len(horizontal))
    stats["patches_vertical"] = int(len(vertical))
    stats["patch_spread_deg"] = float(np.median(np.degrees(np.arccos(np.clip(horizontal @ local_up, -1.0, 1.0)))))
    stats["patch_change_deg"] = angle_deg(up, start)
    return up


def consensus_up_step(horizontal: np.ndarray, vertical: np.ndarray, up: np.ndarray, cauchy_deg: float,
                      horizontal_weight: np.ndarray | None = None,
                      vertical_weight: np.ndarray | None = None) -> np.ndarray:
    """One reweighting step of the up-axis consensus of surface normals (:func:`_patch_up`,
    :func:`lyra_isaac.geometry.level.surface_up`).

    Solves ``min_u sum_h w_h |n_h x u|^2 + sum_v w_v (n_v . u)^2`` (the smallest eigenvector of a 3 x 3 matrix),
    each weight a Cauchy weight ``1 / (1 + (residual / cauchy_deg)^2)`` of the normal's angular residual about
    ``up``, times its optional base weight (e.g. an area).

    Args:
        horizontal: (H, 3) unit normals of level surfaces, pointing to the same side as ``up``.
        vertical: (V, 3) unit normals of vertical surfaces (either sign).
        up: (3,) unit current axis.
        cauchy_deg: scale of the Cauchy weights, degrees.
        horizontal_weight, vertical_weight: (H,), (V,) base weights (None: 1).

    Returns:
        (3,) unit axis with a positive z component.
    """
    residual_h = np.degrees(np.arccos(np.clip(horizontal @ up, -1.0, 1.0)))
    residual_v = np.degrees(np.arcsin(np.clip(np.abs(vertical @ up), 0.0, 1.0)))
    w_h = 1.0 / (1.0 + (residual_h / cauchy_deg) ** 2)
    w_v = 1.0 / (1.0 + (residual_v / cauchy_deg) ** 2)
    if horizontal_weight is not None:
        w_h = w_h * horizontal_weight
    if vertical_weight is not None:
        w_v = w_v * vertical_weight
    matrix = np.einsum("i,ij,ik->jk", w_h, -horizontal, horizontal) + w_h.sum() * np.eye(3)
    matrix += np.einsum("i,ij,ik->jk", w_v, vertical, vertical)
    new = np.linalg.eigh(matrix)[1][:, 0]
    return new if new[2] > 0 else -new


def _pooled_ground_up(pts: np.ndarray, views: np.ndarray | None, centers: np.ndarray, up: np.ndarray,
                      depth: float, cfg: FrameConfig) -> np.ndarray | None:
    """Up as the normal of one robust plane through the ground of all views, each view with its own height offset.

    For uneven ground: its slope averaged over a region shrinks as the region grows (relief / extent), and a
    plane fit weighs the far ends most, so this uses the widest extent. The ground of a view is the lowest point
    per XY cell (edge ``terrain_cell_fraction`` x depth) of its points well below the cameras; each view's
    ground is centred on its own weighted centroid, so per-view depth scale errors (which move a view's ground up
    or down) do not tilt the fit. Cauchy weights (scale 2 x MAD) reject rocks and objects. None when too few
    ground cells exist."""
    views = np.zeros(len(pts), dtype=np.int64) if views is None else views
    cell = cfg.terrain_cell_fraction * depth
    for _ in range(PATCH_ROUNDS):
        rotation = _level_rotation(up, None)
        local = pts @ rotation.T
        below = local[:, 2] < float(np.median(centers @ up)) - POOLED_GROUND_CLEARANCE * depth
        points, group = _ground_cells(local[below], cell, views[below])
        if len(points) < 50:
            return None
        _, group = np.unique(group, return_inverse=True)
        group = group.reshape(-1)
        weights = np.ones(len(points))
        normal = np.array([0.0, 0.0, 1.0])
        for _ in range(8):
            centroids = np.zeros((group.max() + 1, 3))
            np.add.at(centroids, group, points * weights[:, None])
            total = np.bincount(group, weights=weights, minlength=len(centroids))
            centred = points - centroids[group] / np.maximum(total, 1e-12)[group, None]
            normal = np.linalg.svd(centred * np.sqrt(weights[:, None]), full_matrices=False)[2][2]
            normal = normal if normal[2] > 0 else -normal
            residual = centred @ normal
            scale = 1.4826 * np.median(np.abs(residual)) + 1e-12
            weights = 1.0 / (1.0 + (residual / (2.0 * scale)) ** 2)
        up = rotation.T @ normal
    return up


def _ground_height(pts: np.ndarray, centers: np.ndarray, up: np.ndarray, cell: float, threshold: float,
                   where) -> float:
    """Floor height along ``up``: median over cameras of the 10th percentile height of the points under each."""
    rotation = _level_rotation(up, None)
    local = pts @ rotation.T
    cam_local = centers @ rotation.T
    radius = 4 * cell
    heights = []
    for c in cam_local:
        near = local[(np.abs(local[:, 0] - c[0]) < radius) & (np.abs(local[:, 1] - c[1]) < radius)
                     & (local[:, 2] < c[2] - 2 * threshold)]
        if len(near) >= 5:
            heights.append(np.percentile(near[:, 2], 10))
    if not heights:
        raise ConversionError(where, "no floor found: no ground under the camera path")
    return float(np.median(heights))


def view_groups(scene, cameras: CameraPath | None = None, blocks: int = 64) -> np.ndarray | None:
    """(N,) int group of each Gaussian for :func:`estimate_frame`'s ``views``: its view, or block of file rows.

    Lyra writes pixel-aligned Gaussians view by view, so consecutive file rows share a view (and its depth error).
    With ``scene.extra["row_index"]`` and ``["rows_in_file"]`` the rows are cut into ``len(cameras)`` equal
    blocks when that divides the row count (one block per view), else into ``blocks`` equal blocks (each mostly
    one view). Returns None without row indices, and when the rows are in no spatial order (see
    :func:`rows_in_spatial_order`: an optimized 3DGS file, or a shuffled one), whose blocks would be random
    subsets too thin to make surface patches (optimized fixtures with cameras: the corridor's up error was
    1.1-2.6 deg with blocks, 0.02-0.07 deg with one group).
    """
    rows = scene.extra.get("row_index")
    total = scene.extra.get("rows_in_file")
    if rows is None or total is None or int(total) <= 0:
        return None
    if not rows_in_spatial_order(scene.means):
        logger.info("frame: file rows are in no spatial order (optimized or shuffled splats): no view groups")
        return None
    total = int(total)
    count = len(cameras) if cameras is not None and len(cameras) > 0 and total % len(cameras) == 0 else blocks
    size = max(1, -(-total // count))
    return (np.asarray(rows, dtype=np.int64) // size).astype(np.int32)


def rows_in_spatial_order(points: np.ndarray, sample: int = 20_000) -> bool:
    """Whether consecutive rows of ``points`` (N, 3) lie near each other: the median distance between rows i and
    i + 1 (over the first ``sample`` rows) is under ``ROW_ORDER_RATIO`` times the median distance between random
    pairs. True for pixel-aligned files written view by view (neighbouring pixels), False for optimized 3DGS
    (densification and pruning leave no order) and shuffled files."""
    pts = np.asarray(points, dtype=np.float64)[:sample]
    if len(pts) < 100:
        return True
    consecutive = float(np.median(np.linalg.norm(np.diff(pts, axis=0), axis=1)))
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, len(pts), (2, len(pts)))
    random = float(np.median(np.linalg.norm(pts[pairs[0]] - pts[pairs[1]], axis=1)))
    return consecutive < ROW_ORDER_RATIO * random


def _refine_offset(pts: np.ndarray, up: np.ndarray, offset: float, threshold: float) -> float:
    """Cauchy-weighted mean height of the floor band along ``up`` (after ``up`` changed slightly)."""
    for _ in range(4):
        dist = pts @ up - offset
        near = np.abs(dist) < REFINE_BAND * threshold
        if near.sum() < 3:
            break
        weights = 1.0 / (1.0 + (dist[near] / threshold) ** 2)
        offset += float(np.average(dist[near], weights=weights))
    return offset


def _forward_hint(cameras: CameraPath | None, up: np.ndarray) -> np.ndarray:
    """Direction that should become world +X: the first camera's forward axis, else source +Z (or +X)."""
    if cameras is not None and len(cameras) > 0:
        forward = cameras.axes()[2][0]
    else:
        forward = LYRA_FORWARD
    if abs(forward @ up) > 0.95:
        forward = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    return forward


def _level_rotation(up: np.ndarray, forward: np.ndarray | None) -> np.ndarray:
    """(3, 3) rotation whose rows are (x, y, z) world axes in source coordinates: z = up, x = forward projected."""
    z = up / np.linalg.norm(up)
    if forward is None or abs(forward @ z) > 0.95:
        forward = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = forward - (forward @ z) * z
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])


def _wall_yaw(local: np.ndarray, floor_height: float, threshold: float, cfg: FrameConfig,
              rng: np.random.Generator, stats: dict[str, Any]) -> float | None:
    """Yaw (radians) of the dominant wall axis in the levelled frame, if walls agree; else None."""
    above = local[local[:, 2] > floor_height + 5 * threshold]
    if len(above) < 100:
        return None
    # vertical planes: sample point pairs, normal = horizontal perpendicular of their difference
    pairs = above[rng.integers(0, len(above), (cfg.ransac_iterations * 2, 2))]
    diff = pairs[:, 1, :2] - pairs[:, 0, :2]
    length = np.linalg.norm(diff, axis=1)
    ok = length > 10 * threshold
    normals = np.stack([-diff[ok, 1], diff[ok, 0]], axis=1) / length[ok, None]
    anchors = pairs[ok, 0, :2]
    if len(normals) == 0:
        return None
    sample = above[:, :2]
    if len(sample) > SCORE_SAMPLE:
        sample = sample[rng.choice(len(sample), SCORE_SAMPLE, replace=False)]
    counts = np.zeros(len(normals), dtype=np.int64)
    for start in range(0, len(normals), 64):
        dist = np.abs(sample @ normals[start:start + 64].T - np.einsum("ij,ij->i", normals[start:start + 64],
                                                                         anchors[start:start + 64]))
        counts[start:start + 64] = (dist < threshold).sum(axis=0)
    counts = counts * (len(above) / len(sample))
    angles = np.mod(np.arctan2(normals[:, 1], normals[:, 0]), np.pi / 2)  # modulo 90 deg
    best = int(np.argmax(counts))
    support = counts[best] / len(local)
    stats["wall_support"] = float(support)
    if support < cfg.wall_min_fraction:
        return None
    # refine the dominant direction by least squares on its inliers
    normal = normals[best]
    dist = above[:, :2] @ normal - anchors[best] @ normal
    inl = above[np.abs(dist) < threshold, :2]
    if len(inl) >= 3:
        centered = inl - inl.mean(axis=0)
        direction = np.linalg.svd(centered, full_matrices=False)[2][0]  # along the wall
        normal = np.array([-direction[1], direction[0]])
    angle = float(np.mod(np.arctan2(normal[1], normal[0]), np.pi / 2))
    # ambiguity: other strong vertical planes must agree modulo 90 deg
    strong = counts >= 0.3 * counts[best]
    delta = np.abs((angles[strong] - angle + np.pi / 4) % (np.pi / 2) - np.pi / 4)
    disagree = float(np.mean(np.degrees(delta) > cfg.wall_agreement_deg))
    stats["wall_disagreement"] = disagree
    if disagree > 0.2:
        logger.info("frame: walls ambiguous (%.0f%% of strong vertical planes off-axis), yaw kept", 100 * disagree)
        return None
    yaw = angle if angle <= np.pi / 4 else angle - np.pi / 2  # smallest rotation to the nearest axis
    stats["wall_yaw_deg"] = float(np.degrees(yaw))
    logger.info("frame: yaw aligned to walls (%.2f deg, support %.1f%%)", np.degrees(yaw), 100 * support)
    return yaw


# ----------------------------------------------------------------------------------------------------------------
# helpers


def _local_camera_heights(local: np.ndarray, cams: np.ndarray, floor: float, depth: float,
                          threshold: float) -> np.ndarray | None:
    """(F,) camera heights above the ground right under each camera (levelled frame, source units), or None.

    The ground under a camera is the Cauchy-weighted centre of the points within a vertical cylinder of radius
    ``LOCAL_GROUND_RADIUS * depth`` that lie in a band of ``REFINE_BAND`` thresholds around the lowest dense
    layer there (terrain rises and falls; a floor carries per-view offsets). Cameras with too few points under
    them are skipped; None when fewer than a third of the cameras have ground under them."""
    radius = LOCAL_GROUND_RADIUS * depth
    heights = []
    for c in cams:
        near = local[(np.abs(local[:, 0] - c[0]) < radius) & (np.abs(local[:, 1] - c[1]) < radius)
                     & (local[:, 2] < c[2] - 0.25 * (c[2] - floor))]
        if len(near) < LOCAL_GROUND_MIN_POINTS:
            continue
        z = near[:, 2]
        ground = float(np.percentile(z, 10)) + threshold  # start inside the lowest layer
        for _ in range(5):
            band = np.abs(z - ground) < REFINE_BAND * threshold
            if band.sum() < 3:
                break
            weights = 1.0 / (1.0 + ((z[band] - ground) / threshold) ** 2)
            ground = float(np.average(z[band], weights=weights))
        heights.append(c[2] - ground)
    if len(heights) < max(1, len(cams) // 3):
        return None
    return np.asarray(heights)


def _viewing_depth(pts: np.ndarray, centers: np.ndarray | None) -> float:
    """Median distance from a point to the nearest camera centre (or to the median point), source units."""
    from scipy.spatial import cKDTree

    sample = pts if len(pts) <= 50_000 else pts[:: len(pts) // 50_000]
    anchors = centers if centers is not None else np.median(sample, axis=0)[None]
    depth = float(np.median(cKDTree(anchors).query(sample)[0]))
    if not np.isfinite(depth) or depth <= 0:
        raise ConversionError(None, "cannot measure the scene's depth scale (points coincide with the cameras)")
    return depth


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two vectors, degrees."""
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
