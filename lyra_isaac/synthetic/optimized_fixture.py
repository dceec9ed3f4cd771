"""Truth fixtures of *optimized* 3DGS scenes (INRIA-trained PLYs): a known mesh -> Gaussians as a 3DGS optimizer
leaves them, plus the truth.

Lyra's Gaussians are pixel-aligned depth maps (:mod:`.lyra_fixture`); a scene trained with INRIA's 3DGS
(graphdeco-inria/gaussian-splatting) is not: its Gaussians are one multi-view-consistent set, in COLMAP's frame,
with other faults. :func:`make_optimized_fixture` models what such a PLY looks like. Each trait and what it rests
on:

- **On the surfaces the training views saw.** 3DGS starts from the SfM points of the training images and only
  densifies where a view's photometric gradient asks for it, so Gaussians lie on visible surfaces only. Here:
  every training view is ray cast and its hit points are the candidates (no Gaussian on unseen surfaces).
- **Density varying with distance and texture.** Densification splits Gaussians until they are about a pixel
  wide in the views that see them best, so near surfaces are dense and far ones sparse; textured regions
  (edges, grout lines) densify more than flat colour. Here: a candidate's spacing is ``spacing_px`` x its pixel
  footprint (depth / focal) in the view that saw it, halved where the colour gradient is high; candidates are
  thinned per octave of spacing, finest first, and a coarse candidate is dropped where a finer one already covers
  its cell (the nearest view decides the density, as in training).
- **Flattened, oriented to the surface.** Trained Gaussians on surfaces are discs: two axes in the tangent plane
  of about 0.5-3 x the local spacing and a thin normal axis (the flatness that 2DGS / Gaussian-surfels papers
  and the "scale regularization" of SuGaR measure on trained 3DGS); their rotations carry the surface normal.
  Here: tangent sigmas ``tangent_range`` x spacing, normal sigma ``normal_sigma_range`` x spacing, a random
  in-plane angle, and the normal on a random one of the three axes (the optimizer does not order them).
- **Centres off the surface.** Centres sit a few mm off the surface, a share of them a little behind it (colour
  is blended front to back, so Gaussians under the first layer still contribute). Here: ``offset_sigma_m``
  along the normal, ``behind_fraction`` of them ``behind_range_m`` behind.
- **Opacities.** Opacity logits are mostly high (saturated surfaces) with a tail of low ones (3DGS prunes below
  0.005 and resets opacities periodically, leaving many semi-transparent Gaussians). Here: a mixture of
  ``N(opacity_high)`` and ``N(opacity_low)`` with ``low_opacity_fraction``.
- **Floaters.** A few percent of Gaussians float in free space near the training cameras (the well-known 3DGS
  "floaters" that view-dependent effects and few views leave; often large and semi-transparent). Here:
  ``floater_fraction`` of the surface count, along training-view rays at 10-80 % of the surface depth, most large
  and faint, some small and opaque.
- **Background.** Outdoor captures get large, far Gaussians for the sky (3DGS has no background model: sky pixels
  are explained by big splats at the far edge of the scene). Here: sky pixels (no hit) of each view, thinned, at
  ``sky_depth_range_m`` with sigmas of ``sky_size_range`` x depth.
- **SH degree 3.** INRIA writes ``f_rest_0..44`` (channel-major); trained scenes have small higher bands. Here:
  ``N(0, sh_rest_sigma)`` coefficients, written in the INRIA layout by :func:`lyra_isaac.splats.ply.write_ply`.
- **Row order.** Densification and pruning leave no spatial or view order: rows are shuffled.
- **Frame.** COLMAP's frame has an arbitrary origin, orientation and scale: here a random similarity, up along
  COLMAP's customary -Y (cameras upright) or a random direction, ``scale_range`` units per metre (log-uniform),
  an offset of a few units.

Files (an INRIA model folder): ``point_cloud/iteration_30000/point_cloud.ply``; ``cameras.json`` at the root in
INRIA's layout (``utils/camera_utils.py`` ``camera_to_JSON``: ``position`` and ``rotation`` are the camera-to-world
transform); ``cameras.npz`` in Lyra's layout (``w2c_render``, ``intrinsics_render``, image size) for comparison;
``truth.npz`` and ``truth_mesh.ply`` as in :mod:`.lyra_fixture`, so :func:`lyra_isaac.synthetic.evaluate_world`
measures a conversion unchanged. ``cameras="none"`` writes neither camera file (the truth still records the
training cameras: the visible truth is what they saw).
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..splats.ply import write_ply
from ..splats.scene import SH_C0, GaussianScene, quat_multiply, rotation_matrix_to_quat
from ..world import atomic_directory, write_mesh_ply
from .lyra_fixture import (
    CAMERAS_NAME,
    TRUTH_FORMAT_VERSION,
    TRUTH_MESH_NAME,
    TRUTH_NAME,
    FaultConfig,
    Fixture,
    _sample_probes,
    load_fixture,
    w2c_in_source,
)
from .path import CameraConfig, camera_path
from .render import Raycaster, pixel_rays
from .scenes import SyntheticScene, build_scene

logger = logging.getLogger(__name__)

INRIA_PLY = Path("point_cloud") / "iteration_30000" / "point_cloud.ply"
"""Where INRIA's trainer writes the splats inside a model folder."""
INRIA_CAMERAS = "cameras.json"
CAMERA_MODES = ("json", "npz", "both", "none")
"""Which camera files :func:`make_optimized_fixture` writes."""
MAX_LEVELS = 12
"""Octaves of spacing the thinning distinguishes."""


@dataclass
class OptimizedConfig:
    """How the optimized-3DGS Gaussians are drawn (see the module docstring for what each trait rests on).

    Lengths in metres unless named otherwise; ranges are (low, high) of uniform draws.
    """

    spacing_px: float = 1.5
    """Gaussian spacing in pixel footprints (depth / focal) of the view that saw the surface best."""
    texture_densify: float = 0.5
    """Spacing factor where the colour gradient is high (denser in texture)."""
    texture_gradient: float = 0.04
    """Colour gradient (per pixel) above which a pixel counts as textured."""
    tangent_range: tuple[float, float] = (0.5, 3.0)
    """Tangent-axis sigmas, multiples of the local spacing."""
    normal_sigma_range: tuple[float, float] = (0.02, 0.15)
    """Normal-axis sigma, multiples of the local spacing."""
    offset_sigma_m: float = 0.003
    """Centre offset along the normal (both sides)."""
    behind_fraction: float = 0.1
    """Share of surface Gaussians pushed behind the surface ..."""
    behind_range_m: tuple[float, float] = (0.005, 0.03)
    """... by this much."""
    opacity_high: tuple[float, float] = (4.0, 1.5)
    """(mean, std) of the high opacity logits."""
    opacity_low: tuple[float, float] = (-1.0, 1.5)
    """(mean, std) of the low opacity logits."""
    low_opacity_fraction: float = 0.2
    floater_fraction: float = 0.03
    """Floaters, as a fraction of the surface Gaussians."""
    floater_depth_range: tuple[float, float] = (0.1, 0.8)
    """Floater depth, fraction of the surface depth along its ray."""
    floater_large_fraction: float = 0.7
    """Share of floaters that are large and faint (the rest small and opaque)."""
    floater_large_sigma_m: tuple[float, float] = (0.05, 0.3)
    sky_depth_range_m: tuple[float, float] = (40.0, 150.0)
    sky_size_range: tuple[float, float] = (0.01, 0.05)
    """Sky Gaussian sigmas, fraction of their depth."""
    sky_stride_px: int = 4
    """One sky Gaussian per this many pixels along each image axis of each view."""
    sh_rest_sigma: float = 0.05
    scale_range: tuple[float, float] = (0.3, 5.0)
    """Source units per metre (drawn log-uniformly)."""
    colmap_up_probability: float = 0.5
    """Probability that the source up is COLMAP's -Y (else a random direction)."""
    offset_sigma_units: float = 3.0
    """Standard deviation of the source origin's offset, source units."""
    color_noise: float = 0.02

    @classmethod
    def clean(cls) -> OptimizedConfig:
        """Surface Gaussians only: no floaters, sky, low opacities or Gaussians behind the surface."""
        return cls(behind_fraction=0.0, low_opacity_fraction=0.0, floater_fraction=0.0, sky_stride_px=0,
                   offset_sigma_m=0.0, color_noise=0.0)


def random_similarity(rng: np.random.Generator, cfg: OptimizedConfig) -> tuple[np.ndarray, float]:
    """A random COLMAP-like frame: ``(source_to_world (4, 4), scale)`` with ``p_world = M @ [p_src, 1]``.

    ``M = [R / scale | t]``: the source's up (truth +Z) is -Y with probability ``colmap_up_probability`` (then a
    random yaw about it and a tilt under 3 degrees), else a random direction; ``scale`` units per metre.
    """
    scale = float(np.exp(rng.uniform(*np.log(cfg.scale_range))))
    if rng.random() < cfg.colmap_up_probability:
        # world (Z up) -> source: +Z -> -Y; yaw about the up axis, then a small tilt
        base = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # rows: world x, y, z in source
        yaw = rng.uniform(0, 2 * np.pi)
        c, s = np.cos(yaw), np.sin(yaw)
        r_yaw = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        tilt_axis = rng.standard_normal(3)
        r_tilt = _axis_angle(tilt_axis, np.radians(rng.uniform(0, 3)))
        world_to_source_rot = r_tilt @ base.T @ r_yaw
    else:
        q = rng.standard_normal(4)
        q /= np.linalg.norm(q)
        w, x, y, z = q
        world_to_source_rot = np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
    offset_src = rng.normal(0.0, cfg.offset_sigma_units, 3)
    # p_src = scale * Rws @ p_world + offset  ->  p_world = Rws^T (p_src - offset) / scale
    m = np.eye(4)
    m[:3, :3] = world_to_source_rot.T / scale
    m[:3, 3] = -world_to_source_rot.T @ offset_src / scale
    return m, scale


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64) / max(float(np.linalg.norm(axis)), 1e-12)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _thin_by_level(points: np.ndarray, spacing: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of (N, 3) candidates kept so that each octave of ``spacing`` (N,) holds about one per cell of its
    spacing, finest first; a coarser candidate in a cell a finer kept one already occupies is dropped."""
    base = float(spacing.min())
    level = np.clip(np.floor(np.log2(spacing / base)), 0, MAX_LEVELS - 1).astype(np.int64)
    order = rng.permutation(len(points))
    kept_all: list[np.ndarray] = []
    kept_points = np.zeros((0, 3))
    for lv in range(MAX_LEVELS):
        idx = order[level[order] == lv]
        if len(idx) == 0:
            continue
        cell = base * 2.0**lv
        keys = np.floor(points[idx] / cell).astype(np.int64)
        _, first = np.unique(keys, axis=0, return_index=True)
        idx = idx[np.sort(first)]
        if len(kept_points):
            occupied = np.unique(np.floor(kept_points / cell).astype(np.int64), axis=0)
            mine = np.floor(points[idx] / cell).astype(np.int64)
            taken = _rows_in(mine, occupied)
            idx = idx[~taken]
        kept_all.append(idx)
        kept_points = np.concatenate([kept_points, points[idx]])
    return np.concatenate(kept_all) if kept_all else np.zeros(0, dtype=np.int64)


def _rows_in(rows: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(N,) bool: whether each int64 row of (N, 3) ``rows`` appears in (M, 3) ``table``."""
    both = np.concatenate([table, rows])
    lo = both.min(axis=0)
    span = both.max(axis=0) - lo + 1
    def flat(a: np.ndarray) -> np.ndarray:
        a = a - lo
        return (a[:, 0] * span[1] + a[:, 1]) * span[2] + a[:, 2]
    return np.isin(flat(rows), flat(table))


def matrices_to_quats(matrices: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotation matrices -> (N, 4) float64 wxyz unit quaternions (w >= 0), vectorized Shepperd's method."""
    m = np.asarray(matrices, dtype=np.float64)
    diag = np.stack([m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], axis=1)
    trace = diag.sum(axis=1)
    # 4 candidate formulas; each is well conditioned when its pivot (trace or a diagonal entry) is largest
    pivots = np.column_stack([trace, diag])
    case = np.argmax(pivots, axis=1)
    q = np.empty((len(m), 4))
    r = np.sqrt(np.maximum(1.0 + np.where(case == 0, trace, 2 * pivots[np.arange(len(m)), case] - trace), 1e-12))
    s = 0.5 / r
    m21, m12, m02, m20, m10, m01 = m[:, 2, 1], m[:, 1, 2], m[:, 0, 2], m[:, 2, 0], m[:, 1, 0], m[:, 0, 1]
    c0, c1, c2, c3 = case == 0, case == 1, case == 2, case == 3
    q[c0] = np.column_stack([0.5 * r, (m21 - m12) * s, (m02 - m20) * s, (m10 - m01) * s])[c0]
    q[c1] = np.column_stack([(m21 - m12) * s, 0.5 * r, (m01 + m10) * s, (m02 + m20) * s])[c1]
    q[c2] = np.column_stack([(m02 - m20) * s, (m01 + m10) * s, 0.5 * r, (m12 + m21) * s])[c2]
    q[c3] = np.column_stack([(m10 - m01) * s, (m02 + m20) * s, (m12 + m21) * s, 0.5 * r])[c3]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return np.where(q[:, :1] < 0, -q, q)


def _disc_quaternions(normals: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rotations whose axes are two random tangent directions and the normal, the normal on a random axis.

    Returns:
        (N, 4) float32 wxyz quaternions and (N,) int64 index (0-2) of the axis that carries the normal.
    """
    n = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    helper = np.where(np.abs(n[:, :1]) < 0.9, np.array([[1.0, 0, 0]]), np.array([[0.0, 1, 0]]))
    t1 = np.cross(n, helper)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    t2 = np.cross(n, t1)
    angle = rng.uniform(0, 2 * np.pi, len(n))[:, None]
    a = np.cos(angle) * t1 + np.sin(angle) * t2
    b = np.cross(n, a)
    normal_axis = rng.integers(0, 3, len(n))
    # cyclic shifts of the right-handed frame (a, b, n) keep it right-handed and put n on axis 0, 1 or 2
    frame = np.stack([a, b, n], axis=-1)  # (N, 3, 3) columns a, b, n
    shift = (normal_axis - 2) % 3  # columns rolled right by this puts n (column 2) at normal_axis
    cols = np.empty_like(frame)
    for k in range(3):
        sel = shift == k
        cols[sel] = np.roll(frame[sel], k, axis=2)
    return matrices_to_quats(cols).astype(np.float32), normal_axis


def make_optimized_fixture(scene: str | SyntheticScene = "apartment", out_dir: str | Path = "optimized_fixture", *,
                           n_views: int = 24, width: int = 160, height: int = 90, seed: int = 0, size: float = 1.0,
                           cameras: str = "both", config: OptimizedConfig | None = None,
                           camera: CameraConfig | None = None, n_probes: int = 200,
                           overwrite: bool = False) -> Fixture:
    """Build an optimized-3DGS (INRIA) splat scene with known truth in ``out_dir`` (written atomically).

    Args:
        scene: a name in :data:`~lyra_isaac.synthetic.scenes.SCENES` or a built :class:`SyntheticScene`.
        out_dir: the model folder to create (see the module docstring for its files).
        n_views: training cameras along the scene's route.
        width, height: training image size, pixels (sets the Gaussian density: one per ``spacing_px`` pixel
            footprints of the nearest view).
        seed: seeds the scene, the path, the Gaussians and the frame; deterministic given it.
        size: footprint scale of a named scene.
        cameras: "json" (INRIA ``cameras.json``), "npz" (Lyra-layout ``cameras.npz``), "both" or "none".
        config: the Gaussians' traits (default :class:`OptimizedConfig`).
        camera: camera motion (default :class:`CameraConfig`).
        n_probes: walkable floor probes to record.
        overwrite: replace an existing ``out_dir``.

    Returns:
        A :class:`~lyra_isaac.synthetic.Fixture`: ``ply_path`` is the model's ``point_cloud.ply``,
        ``cameras_path`` the camera file written (``cameras.json`` for "json" and "both", else ``cameras.npz``;
        None for "none"), ``scale`` the source units per metre, ``source_to_world`` the true frame; ``stats``
        counts the Gaussians by kind. ``view_scale`` is ones and ``warp`` zeros (no per-view depth error: an
        optimized scene is one consistent set).

    Raises:
        ConfigError: unknown scene or camera mode, invalid sizes. OutputError: ``out_dir`` exists.
    """
    if cameras not in CAMERA_MODES:
        raise ConfigError(f"make_optimized_fixture: cameras {cameras!r} unknown (known: {', '.join(CAMERA_MODES)})")
    if width < 8 or height < 8 or n_views < 1:
        raise ConfigError(f"make_optimized_fixture: need n_views >= 1 and at least 8x8 images, got {n_views} views "
                          f"of {width}x{height}")
    started = time.perf_counter()
    cfg = config or OptimizedConfig()
    cam_cfg = camera or CameraConfig()
    truth_scene = build_scene(scene, size=size, seed=seed) if isinstance(scene, str) else scene
    stream = [seed, zlib.crc32(truth_scene.name.encode()), 77]
    rng = np.random.default_rng(stream)
    rc = Raycaster(truth_scene.vertices, truth_scene.faces, truth_scene.colors)
    c2w, intrinsics, floor_z = camera_path(truth_scene, n_views, width, height, seed=seed, config=cam_cfg,
                                           raycaster=rc)
    focal = float(intrinsics[0, 0])
    rays = pixel_rays(intrinsics, width, height)

    # ---- candidates: every training view's hits, with normal, colour, spacing; sky and floater rays
    pts, nrm, col, spc = [], [], [], []
    sky_pts, sky_sig, sky_col = [], [], []
    flo_pts = []
    for i in range(n_views):
        render = rc.render(c2w[i], intrinsics, width, height)
        hit = np.isfinite(render.depth)
        cam_pts = rays * np.where(hit, render.depth, 0.0)[..., None]
        world = cam_pts @ c2w[i, :3, :3].T + c2w[i, :3, 3]
        grad = np.zeros((height, width))
        grad[:, 1:] = np.abs(np.diff(render.color, axis=1)).max(axis=2)
        grad[1:, :] = np.maximum(grad[1:, :], np.abs(np.diff(render.color, axis=0)).max(axis=2))
        spacing = cfg.spacing_px * render.depth / focal
        spacing = np.where(grad > cfg.texture_gradient, spacing * cfg.texture_densify, spacing)
        pts.append(world[hit])
        nrm.append(render.normal[hit])
        col.append(render.color[hit])
        spc.append(spacing[hit])
        if cfg.sky_stride_px > 0 and truth_scene.sky:
            sky = ~hit
            grid = np.zeros_like(sky)
            grid[rng.integers(0, cfg.sky_stride_px)::cfg.sky_stride_px, rng.integers(0, cfg.sky_stride_px)::
                 cfg.sky_stride_px] = True
            sky &= grid
            if sky.any():
                dirs = rays[sky] @ c2w[i, :3, :3].T
                dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
                depth = rng.uniform(*cfg.sky_depth_range_m, len(dirs))
                sky_pts.append(c2w[i, :3, 3] + dirs * depth[:, None])
                sky_sig.append(depth * rng.uniform(*cfg.sky_size_range, len(dirs)))
                sky_col.append(render.color[sky])
        if cfg.floater_fraction > 0 and hit.any():
            flo_pts.append((c2w[i, :3, 3], world[hit], render.color[hit]))
    points = np.concatenate(pts).astype(np.float64)
    normals = np.concatenate(nrm).astype(np.float64)
    colors = np.concatenate(col).astype(np.float64)
    spacing = np.concatenate(spc).astype(np.float64)
    # normals face the cameras that saw them (the ray caster's normals are the faces')
    keep = _thin_by_level(points, spacing, rng)
    points, normals, colors, spacing = points[keep], normals[keep], colors[keep], spacing[keep]
    n_surf = len(points)

    # ---- surface Gaussians: discs on the surface, centres a few mm off, some behind
    quats, normal_axis = _disc_quaternions(normals, rng)
    sig = spacing[:, None] * rng.uniform(*cfg.tangent_range, (n_surf, 3))
    sig[np.arange(n_surf), normal_axis] = spacing * rng.uniform(*cfg.normal_sigma_range, n_surf)
    offset = rng.normal(0.0, cfg.offset_sigma_m, n_surf) if cfg.offset_sigma_m > 0 else np.zeros(n_surf)
    behind = rng.random(n_surf) < cfg.behind_fraction
    # the outward normal points towards the cameras: behind = against it
    towards = _outward(points, normals, c2w[:, :3, 3])
    offset[behind] = -rng.uniform(*cfg.behind_range_m, int(behind.sum()))
    points = points + towards * offset[:, None]
    low = rng.random(n_surf) < cfg.low_opacity_fraction
    opacity = np.where(low, rng.normal(*cfg.opacity_low, n_surf), rng.normal(*cfg.opacity_high, n_surf))
    opacity[behind] = np.minimum(opacity[behind], rng.normal(*cfg.opacity_low, int(behind.sum())) + 1.0)

    # ---- floaters near the cameras, along training-view rays
    n_flo = int(round(cfg.floater_fraction * n_surf))
    f_pts = np.zeros((0, 3))
    f_sig = np.zeros((0, 3))
    f_col = np.zeros((0, 3))
    f_op = np.zeros(0)
    if n_flo > 0 and flo_pts:
        per_view = rng.multinomial(n_flo, np.full(len(flo_pts), 1.0 / len(flo_pts)))
        chunks = []
        for (center, hits, hit_col), count in zip(flo_pts, per_view, strict=True):
            pick = rng.integers(0, len(hits), count)
            t = rng.uniform(*cfg.floater_depth_range, count)[:, None]
            chunks.append((center + t * (hits[pick] - center), hit_col[pick]))
        f_pts = np.concatenate([c[0] for c in chunks])
        f_col = np.concatenate([c[1] for c in chunks])
        large = rng.random(len(f_pts)) < cfg.floater_large_fraction
        size = np.where(large, rng.uniform(*cfg.floater_large_sigma_m, len(f_pts)), rng.uniform(0.005, 0.03,
                                                                                                  len(f_pts)))
        f_sig = size[:, None] * rng.uniform(0.3, 1.0, (len(f_pts), 3))
        f_op = np.where(large, rng.normal(-1.5, 1.0, len(f_pts)), rng.normal(2.0, 1.5, len(f_pts)))
    s_pts = np.concatenate(sky_pts) if sky_pts else np.zeros((0, 3))
    s_sig = (np.concatenate(sky_sig)[:, None] * rng.uniform(0.5, 1.0, (len(s_pts), 3)) if sky_pts
             else np.zeros((0, 3)))
    s_col = np.concatenate(sky_col) if sky_col else np.zeros((0, 3))
    s_op = rng.normal(3.0, 1.5, len(s_pts))

    all_pts = np.concatenate([points, f_pts, s_pts])
    all_sig = np.concatenate([sig, f_sig, s_sig])
    all_col = np.concatenate([colors, f_col, s_col])
    all_op = np.concatenate([opacity, f_op, s_op])
    n_total = len(all_pts)
    rand_q = rng.standard_normal((n_total - n_surf, 4))
    rand_q /= np.linalg.norm(rand_q, axis=1, keepdims=True)
    all_q = np.concatenate([quats, rand_q.astype(np.float32)])
    kind = np.concatenate([np.zeros(n_surf, np.int8), np.ones(len(f_pts), np.int8), np.full(len(s_pts), 2, np.int8)])
    if cfg.color_noise > 0:
        all_col = all_col + cfg.color_noise * rng.standard_normal(all_col.shape)

    # ---- into a random COLMAP-like frame, rows shuffled, SH degree 3
    source_to_world, scale = random_similarity(rng, cfg)
    world_to_source = np.linalg.inv(source_to_world)
    means = all_pts @ world_to_source[:3, :3].T + world_to_source[:3, 3]
    rot_ws = world_to_source[:3, :3] * scale  # rotation part
    q_frame = rotation_matrix_to_quat(rot_ws)
    quats_src = quat_multiply(np.broadcast_to(q_frame, all_q.shape).astype(np.float64), all_q.astype(np.float64))
    order = rng.permutation(n_total)
    sh_rest = (cfg.sh_rest_sigma * rng.standard_normal((n_total, 15, 3))).astype(np.float32)
    gaussians = GaussianScene(
        means=means[order].astype(np.float32), quats=quats_src[order].astype(np.float32),
        log_scales=np.log(all_sig[order] * scale).astype(np.float32),
        opacity_logits=all_op[order].astype(np.float32),
        sh_dc=((np.clip(all_col[order], 0, 1) - 0.5) / SH_C0).astype(np.float32), sh_rest=sh_rest,
        source_format="inria")
    w2c_src = w2c_in_source(c2w, source_to_world, scale)
    c2w_src = np.linalg.inv(w2c_src)
    counts = {"surface": n_surf, "floaters": int(len(f_pts)), "sky": int(len(s_pts)), "gaussians": n_total,
              "behind": int(behind.sum()), "low_opacity": int(low.sum())}
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        (tmp / INRIA_PLY).parent.mkdir(parents=True)
        write_ply(tmp / INRIA_PLY, gaussians, format="inria")
        if cameras in ("json", "both"):
            entries = [{"id": i, "img_name": f"{i:05d}", "width": width, "height": height,
                        "position": c2w_src[i, :3, 3].tolist(), "rotation": [r.tolist() for r in c2w_src[i, :3, :3]],
                        "fy": float(intrinsics[1, 1]), "fx": float(intrinsics[0, 0])} for i in range(n_views)]
            (tmp / INRIA_CAMERAS).write_text(json.dumps(entries))
        if cameras in ("npz", "both"):
            np.savez(tmp / CAMERAS_NAME, w2c_render=w2c_src.astype(np.float32),
                     intrinsics_render=np.repeat(intrinsics[None], n_views, axis=0).astype(np.float32),
                     image_height=np.int64(height), image_width=np.int64(width))
        probes = _sample_probes(rc, c2w, floor_z, intrinsics, width, height, n_probes,
                                np.random.default_rng([*stream, 3]))
        mesh = truth_scene.to_mesh()
        write_mesh_ply(mesh, tmp / TRUTH_MESH_NAME)
        stats = {**counts, "seconds": round(time.perf_counter() - started, 3), "probes": len(probes),
                 "cameras": cameras}
        np.savez_compressed(
            tmp / TRUTH_NAME, format_version=TRUTH_FORMAT_VERSION, scene=truth_scene.name,
            size=float(truth_scene.params.get("size", size)), seed=seed, vertices=truth_scene.vertices,
            faces=truth_scene.faces, colors=mesh.colors, sky=truth_scene.sky, source_to_world=source_to_world,
            scale=scale, eye_height_m=cam_cfg.eye_height_m, probes=probes, c2w_world=c2w, intrinsics=intrinsics,
            width=width, height=height, floor_z=floor_z, view_scale=np.ones(n_views), warp=np.zeros((n_views, 6)),
            n_gaussians=n_total, route=truth_scene.route, faults=json.dumps(asdict(FaultConfig.none(scale))),
            camera=json.dumps(asdict(cam_cfg)), params=json.dumps(truth_scene.params), stats=json.dumps(stats),
            ply_format="inria", optimized=json.dumps(asdict(cfg)), kind=kind[order])
    out = Path(out_dir).absolute()
    logger.info("optimized fixture %s in %s: %d Gaussians (%d surface, %d floaters, %d sky), scale %.3f, %d probes, "
                "%.1f s", truth_scene.name, out, n_total, n_surf, len(f_pts), len(s_pts), scale, len(probes),
                stats["seconds"])
    return load_optimized_fixture(out)


def _outward(points: np.ndarray, normals: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """(N, 3) unit normals flipped to face the nearest camera centre (the side the surface was seen from)."""
    from scipy.spatial import cKDTree

    _, nearest = cKDTree(centers).query(points)
    to_cam = centers[nearest] - points
    n = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    return np.where((np.einsum("ij,ij->i", n, to_cam) < 0)[:, None], -n, n)


def load_optimized_fixture(directory: str | Path) -> Fixture:
    """Read a folder written by :func:`make_optimized_fixture` (a :class:`Fixture` whose ``ply_path`` is the INRIA
    model's ``point_cloud.ply`` and whose ``cameras_path`` is ``cameras.json``, else ``cameras.npz``, else None).

    Raises:
        InputError: as :func:`~lyra_isaac.synthetic.load_fixture`.
    """
    fixture = load_fixture(directory)
    json_path = fixture.directory / INRIA_CAMERAS
    npz_path = fixture.directory / CAMERAS_NAME
    cameras_path = json_path if json_path.is_file() else (npz_path if npz_path.is_file() else None)
    return replace(fixture, ply_path=fixture.directory / INRIA_PLY, cameras_path=cameras_path, ply_format="inria")
