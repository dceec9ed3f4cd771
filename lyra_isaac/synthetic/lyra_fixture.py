"""Truth fixtures: a known mesh -> a Lyra 2.0-exact splat scene on disk, with Lyra's faults, plus the truth.

:func:`make_fixture` renders the truth scene along a Lyra-like camera path and writes, into one directory:

- ``reconstructed_scene.ply``: one Gaussian per pixel per view, view by view in row order, in Lyra 2.0's byte
  layout (17 float32: ``x y z nx ny nz f_dc_0..2 opacity scale_0..2 rot_0..3``, zero normals), in the **first
  camera's OpenCV frame** (+X right, +Y down, +Z forward, origin at that camera; not gravity aligned: the first
  camera is pitched and rolled), in scene units = metres x ``scale`` (the global scale error).
- ``cameras.npz``: Lyra's layout: ``w2c_render`` (F, 4, 4) world-to-camera in the PLY frame (rigid, translations
  in scene units), ``intrinsics_render`` (F, 3, 3) pixels, ``image_height``, ``image_width``.
- ``truth.npz`` and ``truth_mesh.ply``: the truth (mesh in the truth world frame: metres, Z up, floor at z = 0),
  the true ``source_to_world`` (4, 4) (``p_world = M @ [p_ply, 1]``), eye height, walkable floor probes, the
  cameras in the truth frame, and every fault drawn. :func:`load_fixture` reads it back.

Faults (:class:`FaultConfig`, defaults as harsh as Lyra's output): global scale error; per-view depth scale and
smooth polynomial warp (each view's depth is predicted on its own); per-pixel depth noise; flying pixels at depth
discontinuities (depth interpolated between foreground and background); sky Gaussians far away for pixels that
hit nothing; random floaters along pixel rays; opacity logits with spread and some +inf.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import from_dict
from ..errors import ConfigError, InputError
from ..splats.scene import SH_C0, GaussianScene
from ..world import TriangleMesh, atomic_directory, write_mesh_ply
from .path import CameraConfig, camera_path
from .render import Raycaster, Render, pixel_rays
from .scenes import SyntheticScene, build_scene

logger = logging.getLogger(__name__)

PLY_NAME = "reconstructed_scene.ply"
CAMERAS_NAME = "cameras.npz"
TRUTH_NAME = "truth.npz"
TRUTH_MESH_NAME = "truth_mesh.ply"
TRUTH_FORMAT_VERSION = 1
PLY_FORMATS = ("lyra2", "lyra1")
"""PLY layouts make_fixture writes (an INRIA layout of DC-only Gaussians is byte-identical to lyra2)."""
SKY_EDGE_DEPTH_M = 1000.0
"""Depth given to sky pixels when finding depth discontinuities in the truth render."""

PROBE_MAX_STEP_M = 0.35
"""Probes lie on surfaces within this height of the floor under the nearest camera (the floor walked on)."""
PROBE_CLEARANCE_M = 1.8
"""Free height required above a probe (a standing person)."""
PROBE_FLATNESS_M = 0.02
"""Probe support: four points 0.15 m around the probe lie within this height of it."""
PROBE_WALL_CLEARANCE_M = 0.15
"""Probes keep this far from walls and risers: horizontal rays in 8 directions, 5 cm above the probe, run free this
far. The support points alone do not see a wall, because the truth floor runs on under it, and had let probes lie
3-11 mm from a wall's foot, where no floor a foot can stand on is left once a surface is voxelized."""
PROBE_MAX_VIEW_DEPTH_M = 6.0
"""A probe counts as seen when a camera closer than this sees it unoccluded at a non-grazing angle, within the
image's outermost pixel centres (beyond them, in the outer half pixel, a view has no depth sample)."""
PROBE_MIN_COS_INCIDENCE = 0.26
"""Cosine of the largest angle (about 75 degrees) between a viewing ray and the probe's normal."""


@dataclass
class FaultConfig:
    """The errors Lyra's reconstruction makes, drawn per fixture (defaults: as harsh as Lyra's output).

    Attributes:
        scale: global scale error (scene units per metre); None draws it uniformly from ``scale_range``.
        scale_range: range of the drawn global scale.
        view_scale_sigma: standard deviation of each view's relative depth scale error.
        warp_amplitude: largest relative depth error of each view's smooth warp (quadratic in image coords).
        depth_noise: standard deviation of the per-pixel relative depth noise.
        flying_fraction: fraction of pixels at depth discontinuities that become flying pixels.
        edge_ratio: relative depth jump within a 3x3 window that makes a depth discontinuity.
        floater_fraction: fraction of pixels whose depth is replaced by a random fraction (0.1-0.7) of itself.
        sky_depth_range_m: range of each view's sky depth, metres (x (1 +- 10 %) per pixel).
        sky_opacity_logit_range: range of sky opacity logits.
        opacity_logit_mean, opacity_logit_std: surface opacity logits (normal distribution).
        inf_opacity_fraction: fraction of surface Gaussians with a +inf opacity logit.
        pixel_footprint_range: Gaussian standard deviation as a fraction of the pixel footprint (depth / focal).
        color_noise: standard deviation of the colour noise.
    """

    scale: float | None = None
    scale_range: tuple[float, float] = (0.7, 1.4)
    view_scale_sigma: float = 0.03
    warp_amplitude: float = 0.03
    depth_noise: float = 0.01
    flying_fraction: float = 0.7
    edge_ratio: float = 0.08
    floater_fraction: float = 0.002
    sky_depth_range_m: tuple[float, float] = (50.0, 200.0)
    sky_opacity_logit_range: tuple[float, float] = (-1.0, 2.0)
    opacity_logit_mean: float = 4.5
    opacity_logit_std: float = 1.0
    inf_opacity_fraction: float = 0.01
    pixel_footprint_range: tuple[float, float] = (0.5, 1.0)
    color_noise: float = 0.02

    @classmethod
    def none(cls, scale: float = 1.0) -> FaultConfig:
        """No faults: exact depths, no flying pixels or floaters, the given global scale (sky is still there:
        it is what Lyra writes for pixels that see nothing)."""
        return cls(scale=scale, view_scale_sigma=0.0, warp_amplitude=0.0, depth_noise=0.0, flying_fraction=0.0,
                   floater_fraction=0.0, inf_opacity_fraction=0.0, color_noise=0.0)


@dataclass
class Fixture:
    """A fixture on disk and its truth.

    Attributes:
        directory: the fixture folder.
        ply_path, cameras_path, truth_path, truth_mesh_path: its files.
        scene_name, size, seed: what was built.
        mesh: truth mesh, metres, truth world frame (Z up, floor at z = 0), vertex colours.
        source_to_world: (4, 4) float64, maps PLY-frame points to the truth world: ``p_world = M @ [p_ply, 1]``.
        scale: scene units per metre (the global scale error; ``source_to_world``'s linear part is R / scale).
        eye_height_m: camera height above the floor below it, metres.
        probes: (P, 3) float64 points on walkable floor seen by the cameras, truth world frame, metres.
        c2w_world: (F, 4, 4) float64 cameras in the truth world frame (OpenCV axes, metres).
        intrinsics: (3, 3) float64 pixels.
        width, height: image size, pixels.
        n_gaussians: rows in the PLY.
        view_scale: (F,) float64 per-view relative depth scale drawn.
        warp: (F, 6) float64 per-view warp coefficients (1, u, v, uv, u^2, v^2 terms; u, v in [-1, 1]).
        faults: the fault configuration used (with the drawn global scale filled in).
        camera: the camera configuration used.
        sky: whether the scene is open to the sky.
        stats: counts (sky, flying, floaters, inf opacity) and timings.
        ply_format: byte layout of the PLY ("lyra2" unless asked otherwise).
    """

    directory: Path
    ply_path: Path
    cameras_path: Path
    truth_path: Path
    truth_mesh_path: Path
    scene_name: str
    size: float
    seed: int
    mesh: TriangleMesh
    source_to_world: np.ndarray
    scale: float
    eye_height_m: float
    probes: np.ndarray
    c2w_world: np.ndarray
    intrinsics: np.ndarray
    width: int
    height: int
    n_gaussians: int
    view_scale: np.ndarray
    warp: np.ndarray
    faults: FaultConfig
    camera: CameraConfig
    sky: bool
    stats: dict[str, Any] = field(default_factory=dict)
    ply_format: str = "lyra2"

    @property
    def n_views(self) -> int:
        return int(self.c2w_world.shape[0])

    def world_to_source(self) -> np.ndarray:
        """(4, 4) inverse of :attr:`source_to_world`."""
        return np.linalg.inv(self.source_to_world)

    def w2c_source(self) -> np.ndarray:
        """(F, 4, 4) world-to-camera in the PLY frame (as in cameras.npz): rigid, translations in scene units."""
        return w2c_in_source(self.c2w_world, self.source_to_world, self.scale)

    def raycaster(self) -> Raycaster:
        """A :class:`~lyra_isaac.synthetic.render.Raycaster` of the truth mesh (truth world frame)."""
        colors = None if self.mesh.colors is None else self.mesh.colors.astype(np.float32) / 255.0
        return Raycaster(self.mesh.vertices, self.mesh.faces, colors)


def w2c_in_source(c2w_world: np.ndarray, source_to_world: np.ndarray, scale: float) -> np.ndarray:
    """(F, 4, 4) world-to-camera transforms in the PLY frame for cameras ``c2w_world`` (F, 4, 4) in the truth frame.

    ``w2c_src = diag(s, s, s, 1) @ inv(c2w_world) @ source_to_world``: rigid, camera coordinates in scene units.
    """
    w2c_world = np.linalg.inv(np.asarray(c2w_world, dtype=np.float64))
    scaling = np.diag([scale, scale, scale, 1.0])
    return scaling @ w2c_world @ np.asarray(source_to_world, dtype=np.float64)


def _quaternions(rng: np.random.Generator, n: int) -> np.ndarray:
    q = rng.standard_normal((n, 4)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q


def _warp_field(coeffs: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W) relative depth warp from 6 coefficients over normalized image coords u, v in [-1, 1]."""
    u = np.linspace(-1.0, 1.0, width)[None, :]
    v = np.linspace(-1.0, 1.0, height)[:, None]
    return coeffs[0] + coeffs[1] * u + coeffs[2] * v + coeffs[3] * u * v + coeffs[4] * u * u + coeffs[5] * v * v


def draw_warp(rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """(6,) warp coefficients whose field stays within +-``amplitude`` over the image (zero when amplitude is 0)."""
    if amplitude <= 0:
        return np.zeros(6)
    c = rng.standard_normal(6)
    peak = float(np.abs(_warp_field(c, 65, 65)).max())  # the grid misses the true peak by far less than 2 %
    return c * (amplitude * rng.uniform(0.5, 0.98) / peak) if peak > 0 else np.zeros(6)


def depth_discontinuities(depth: np.ndarray, ratio: float) -> np.ndarray:
    """(H, W) bool: pixels where the depth map (H, W) breaks (an occlusion boundary), not just bends.

    Inverse depth is affine in image coordinates over any plane, so its second difference along rows or columns
    vanishes on planar surfaces (however grazing) and jumps at occlusion boundaries; a pixel is a discontinuity
    when that second difference exceeds ``ratio`` times its own inverse depth.
    """
    inv = 1.0 / depth
    out = np.zeros(depth.shape, dtype=bool)
    d2u = np.abs(inv[:, :-2] - 2 * inv[:, 1:-1] + inv[:, 2:])
    d2v = np.abs(inv[:-2, :] - 2 * inv[1:-1, :] + inv[2:, :])
    out[:, 1:-1] |= d2u > ratio * inv[:, 1:-1]
    out[1:-1, :] |= d2v > ratio * inv[1:-1, :]
    return out


def lyra_view_gaussians(render: Render, c2w_source: np.ndarray, intrinsics: np.ndarray, scale: float,
                        view_scale: float, warp: np.ndarray, faults: FaultConfig, rng: np.random.Generator,
                        ) -> tuple[GaussianScene, dict[str, int]]:
    """The Gaussians Lyra writes for one view: one per pixel, in row order, in the PLY frame.

    Args:
        render: the truth render of the view (z-depth in metres, inf for sky; colour).
        c2w_source: (4, 4) camera-to-PLY-frame transform, rigid, translation in scene units.
        intrinsics: (3, 3) pixels.
        scale: scene units per metre.
        view_scale: this view's relative depth scale (1 = exact).
        warp: (6,) this view's warp coefficients.
        faults: noise, flying pixel, floater, sky and opacity settings.
        rng: random generator (consumed).

    Returns:
        (H * W Gaussians, counts ``{"sky", "flying", "floaters", "inf_opacity"}``).
    """
    from scipy import ndimage

    h, w = render.depth.shape
    n = h * w
    hit = np.isfinite(render.depth)
    depth = np.where(hit, render.depth, 1.0).astype(np.float64)
    # per-view depth error: scale, smooth warp and per-pixel noise
    depth = depth * view_scale * (1.0 + _warp_field(warp, w, h))
    if faults.depth_noise > 0:
        depth *= 1.0 + faults.depth_noise * rng.standard_normal((h, w)).clip(-4, 4)
    # sky: far away, one depth per view with a little per-pixel variation
    sky = ~hit
    if sky.any():
        base = rng.uniform(*faults.sky_depth_range_m)
        depth[sky] = base * (1.0 + 0.1 * rng.uniform(-1, 1, int(sky.sum())))
    # flying pixels: depth interpolated between the near and far side of a discontinuity
    flying = np.zeros((h, w), dtype=bool)
    if faults.flying_fraction > 0:
        lo = ndimage.minimum_filter(depth, size=3, mode="nearest")
        hi = ndimage.maximum_filter(depth, size=3, mode="nearest")
        true_depth = np.where(hit, render.depth, SKY_EDGE_DEPTH_M).astype(np.float64)
        edge = ndimage.binary_dilation(depth_discontinuities(true_depth, faults.edge_ratio), np.ones((3, 3), bool))
        flying = edge & (hi > lo * (1.0 + faults.edge_ratio)) & (rng.random((h, w)) < faults.flying_fraction)
        t = rng.uniform(0.1, 0.9, int(flying.sum()))
        depth[flying] = lo[flying] + t * (hi[flying] - lo[flying])
    floaters = np.zeros((h, w), dtype=bool)
    if faults.floater_fraction > 0:
        floaters = (rng.random((h, w)) < faults.floater_fraction) & ~flying
        depth[floaters] *= rng.uniform(0.1, 0.7, int(floaters.sum()))
    # positions: back-project (z-depth along unit-z rays), camera -> PLY frame, metres -> scene units
    rays = pixel_rays(intrinsics, w, h)
    cam = rays * (depth * scale)[..., None]
    c2w_source = np.asarray(c2w_source, dtype=np.float64)
    means = (cam.reshape(-1, 3) @ c2w_source[:3, :3].T + c2w_source[:3, 3]).astype(np.float32)
    # colour
    color = render.color.reshape(-1, 3).astype(np.float64)
    if faults.color_noise > 0:
        color = color + faults.color_noise * rng.standard_normal(color.shape)
    sh_dc = ((np.clip(color, 0.0, 1.0) - 0.5) / SH_C0).astype(np.float32)
    # opacity
    sky_f, flying_f, floaters_f = sky.reshape(-1), flying.reshape(-1), floaters.reshape(-1)
    opacity = rng.normal(faults.opacity_logit_mean, faults.opacity_logit_std, n)
    opacity[flying_f] = rng.normal(2.5, 1.5, int(flying_f.sum()))
    opacity[floaters_f] = rng.normal(1.0, 1.5, int(floaters_f.sum()))
    opacity[sky_f] = rng.uniform(*faults.sky_opacity_logit_range, int(sky_f.sum()))
    inf_mask = np.zeros(n, dtype=bool)
    if faults.inf_opacity_fraction > 0:
        inf_mask = (rng.random(n) < faults.inf_opacity_fraction) & ~sky_f & ~flying_f & ~floaters_f
        opacity[inf_mask] = np.inf
    # scales: a fraction of the pixel footprint, anisotropic; sky splats are larger
    footprint = (depth * scale / intrinsics[0, 0]).reshape(-1, 1)
    frac = rng.uniform(*faults.pixel_footprint_range, (n, 1)) * rng.uniform(0.6, 1.4, (n, 3))
    frac[sky_f] *= 3.0
    log_scales = np.log(footprint * frac).astype(np.float32)
    gaussians = GaussianScene(means=means, quats=_quaternions(rng, n), log_scales=log_scales,
                              opacity_logits=opacity.astype(np.float32), sh_dc=sh_dc, source_format="lyra2")
    counts = {"sky": int(sky.sum()), "flying": int(flying.sum()), "floaters": int(floaters.sum()),
              "inf_opacity": int(inf_mask.sum())}
    return gaussians, counts


def _sample_probes(rc: Raycaster, c2w: np.ndarray, floor_z: np.ndarray, intrinsics: np.ndarray,
                   width: int, height: int, n_probes: int, rng: np.random.Generator) -> np.ndarray:
    """(P, 3) points on walkable floor near the path, seen by a camera at a non-grazing angle (truth frame)."""
    centers = c2w[:, :3, 3]
    n_cand = max(4 * n_probes, 64)
    pick = rng.integers(0, len(c2w), n_cand)
    radius = rng.uniform(0.3, 4.0, n_cand)
    angle = rng.uniform(0, 2 * np.pi, n_cand)
    xy = centers[pick, :2] + np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    z, normal = rc.heights_below(xy, floor_z[pick] + 1.0, max_drop=2.0)
    ok = np.isfinite(z) & (normal[:, 2] > 0.97) & (np.abs(z - floor_z[pick]) < PROBE_MAX_STEP_M)
    # clearance above
    pts = np.column_stack([xy, np.nan_to_num(z)])
    up = np.tile([0.0, 0.0, 1.0], (len(pts), 1))
    ok &= rc.free_distance(pts + [0, 0, 0.01], up) > PROBE_CLEARANCE_M
    # flat support around it
    for dx, dy in ((0.15, 0), (-0.15, 0), (0, 0.15), (0, -0.15)):
        zz, _ = rc.heights_below(xy + [dx, dy], np.nan_to_num(z) + 0.3, max_drop=0.6)
        ok &= np.abs(np.nan_to_num(zz, nan=1e9) - np.nan_to_num(z)) < PROBE_FLATNESS_M
    # clear of walls and risers around it
    for angle in np.arange(8) * (np.pi / 4):
        direction = np.tile([np.cos(angle), np.sin(angle), 0.0], (len(pts), 1))
        ok &= rc.free_distance(pts + [0.0, 0.0, 0.05], direction) > PROBE_WALL_CLEARANCE_M
    # seen by some camera: unoccluded, close enough, non-grazing, inside the image's pixel centres
    seen = np.zeros(len(pts), dtype=bool)
    for i in range(len(c2w)):
        cand = np.flatnonzero(ok & ~seen)
        if len(cand) == 0:
            break
        to = pts[cand] - centers[i]
        dist = np.linalg.norm(to, axis=1)
        cam = to @ c2w[i, :3, :3]
        front = cam[:, 2] > 0.1
        u = intrinsics[0, 0] * cam[:, 0] / np.maximum(cam[:, 2], 1e-9) + intrinsics[0, 2]
        v = intrinsics[1, 1] * cam[:, 1] / np.maximum(cam[:, 2], 1e-9) + intrinsics[1, 2]
        # within the pixel centres: a view's depth samples lie there, the outer half pixel has none
        inside = (front & (u >= 0.5) & (u <= width - 0.5) & (v >= 0.5) & (v <= height - 0.5)
                  & (dist < PROBE_MAX_VIEW_DEPTH_M))
        cos_inc = -(to / np.maximum(dist[:, None], 1e-9)) @ np.array([0.0, 0.0, 1.0])
        inside &= cos_inc > PROBE_MIN_COS_INCIDENCE
        if not inside.any():
            continue
        idx = cand[inside]
        dirs = (pts[idx] - centers[i]) / dist[inside, None]
        free = rc.free_distance(np.broadcast_to(centers[i], dirs.shape), dirs)
        seen[idx[free > dist[inside] - 0.02]] = True
    keep = np.flatnonzero(ok & seen)[:n_probes]
    logger.info("probes: %d of %d candidates on walkable, seen floor (kept %d)", int((ok & seen).sum()), n_cand,
                len(keep))
    return pts[keep]


def make_fixture(scene: str | SyntheticScene = "apartment", out_dir: str | Path = "fixture", *, n_views: int = 32,
                 width: int = 160, height: int = 90, seed: int = 0, size: float = 1.0,
                 faults: FaultConfig | None = None, camera: CameraConfig | None = None, n_probes: int = 200,
                 ply_format: str = "lyra2", overwrite: bool = False) -> Fixture:
    """Build a Lyra 2.0-format splat scene with known truth in ``out_dir`` (written atomically).

    Args:
        scene: a name in :data:`~lyra_isaac.synthetic.scenes.SCENES` or a built :class:`SyntheticScene`.
        out_dir: the fixture folder to create (see the module docstring for its files).
        n_views: cameras along the route (Lyra: up to 128).
        width, height: image size in pixels (CI: ~160 x 90; Lyra: ~392 x 224, 87k Gaussians per view).
        seed: seeds the scene, the camera path and every fault; the fixture is deterministic given it.
        size: footprint scale of a named scene.
        faults: Lyra's errors (default :class:`FaultConfig`: Lyra-harsh); ``FaultConfig.none()`` for exact data.
        camera: camera motion (default :class:`CameraConfig`).
        n_probes: walkable floor probes to record (fewer if the path sees less floor).
        ply_format: "lyra2" (Lyra 2.0, the default) or "lyra1" (Lyra 1.0: 14 floats, no normals): the same
            Gaussians in another byte layout, for ingest tests.
        overwrite: replace an existing ``out_dir``.

    Returns:
        The :class:`Fixture` (paths and truth).

    Raises:
        OutputError: ``out_dir`` exists without ``overwrite`` or cannot be written.
        ConfigError: unknown scene name, invalid sizes or format.
    """
    from ..splats.ply import PlyStreamWriter

    if width < 8 or height < 8:
        raise ConfigError(f"make_fixture: image size {width}x{height} too small (at least 8x8)")
    if n_views < 1:
        raise ConfigError(f"make_fixture: n_views must be >= 1, got {n_views}")
    if ply_format not in PLY_FORMATS:
        raise ConfigError(f"make_fixture: ply_format {ply_format!r} unknown (known: {', '.join(PLY_FORMATS)})")
    started = time.perf_counter()
    faults = faults or FaultConfig()
    cam_cfg = camera or CameraConfig()
    truth_scene = build_scene(scene, size=size, seed=seed) if isinstance(scene, str) else scene
    # faults depend on the scene's name too, so one seed gives each scene its own scale error and noise
    stream = [seed, zlib.crc32(truth_scene.name.encode())]
    rng = np.random.default_rng([*stream, 1])
    rc = Raycaster(truth_scene.vertices, truth_scene.faces, truth_scene.colors)
    c2w, intrinsics, floor_z = camera_path(truth_scene, n_views, width, height, seed=seed, config=cam_cfg,
                                           raycaster=rc)
    scale = float(faults.scale) if faults.scale is not None else float(rng.uniform(*faults.scale_range))
    if not scale > 0:
        raise ConfigError(f"faults.scale must be positive, got {scale}")
    # the PLY frame: first camera's OpenCV axes, origin at it, scene units = metres * scale
    source_to_world = np.eye(4)
    source_to_world[:3, :3] = c2w[0, :3, :3] / scale
    source_to_world[:3, 3] = c2w[0, :3, 3]
    w2c_src = w2c_in_source(c2w, source_to_world, scale)
    c2w_src = np.linalg.inv(w2c_src)
    view_scale = 1.0 + faults.view_scale_sigma * rng.standard_normal(n_views).clip(-3, 3)
    warp = np.stack([draw_warp(rng, faults.warp_amplitude) for _ in range(n_views)])
    n_total = n_views * width * height
    counts = {"sky": 0, "flying": 0, "floaters": 0, "inf_opacity": 0}
    render_s = 0.0
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        with PlyStreamWriter(tmp / PLY_NAME, n_total=n_total, format=ply_format) as writer:
            for i in range(n_views):
                t0 = time.perf_counter()
                render = rc.render(c2w[i], intrinsics, width, height)
                render_s += time.perf_counter() - t0
                view_rng = np.random.default_rng([*stream, 2, i])
                gaussians, c = lyra_view_gaussians(render, c2w_src[i], intrinsics, scale, float(view_scale[i]),
                                                   warp[i], faults, view_rng)
                writer.write(gaussians)
                for k in counts:
                    counts[k] += c[k]
        np.savez(tmp / CAMERAS_NAME, w2c_render=w2c_src.astype(np.float32),
                 intrinsics_render=np.repeat(intrinsics[None], n_views, axis=0).astype(np.float32),
                 image_height=np.int64(height), image_width=np.int64(width))
        probe_rng = np.random.default_rng([*stream, 3])
        probes = _sample_probes(rc, c2w, floor_z, intrinsics, width, height, n_probes, probe_rng)
        mesh = truth_scene.to_mesh()
        colors_u8 = mesh.colors
        write_mesh_ply(mesh, tmp / TRUTH_MESH_NAME)
        faults_used = FaultConfig(**{**asdict(faults), "scale": scale})
        scene_size = float(truth_scene.params.get("size", size))
        stats = {**counts, "gaussians": n_total, "seconds": round(time.perf_counter() - started, 3),
                 "render_seconds": round(render_s, 3), "probes": len(probes)}
        np.savez_compressed(
            tmp / TRUTH_NAME, format_version=TRUTH_FORMAT_VERSION, scene=truth_scene.name, size=scene_size, seed=seed,
            vertices=truth_scene.vertices, faces=truth_scene.faces, colors=colors_u8, sky=truth_scene.sky,
            source_to_world=source_to_world, scale=scale, eye_height_m=cam_cfg.eye_height_m, probes=probes,
            c2w_world=c2w, intrinsics=intrinsics, width=width, height=height, floor_z=floor_z,
            view_scale=view_scale, warp=warp, n_gaussians=n_total, route=truth_scene.route,
            faults=json.dumps(asdict(faults_used)), camera=json.dumps(asdict(cam_cfg)),
            params=json.dumps(truth_scene.params), stats=json.dumps(stats), ply_format=ply_format)
    out = Path(out_dir).absolute()
    logger.info("fixture %s in %s: %d views of %dx%d, %d Gaussians (%d sky, %d flying, %d floaters), scale %.3f, "
                "%d probes, %.1f s", truth_scene.name, out, n_views, width, height, n_total, counts["sky"],
                counts["flying"], counts["floaters"], scale, len(probes), stats["seconds"])
    return load_fixture(out)


def load_fixture(directory: str | Path) -> Fixture:
    """Read a fixture folder written by :func:`make_fixture`.

    Raises:
        InputError: the folder or its ``truth.npz`` is missing or unreadable, or a key is absent.
    """
    directory = Path(directory).absolute()
    truth_path = directory / TRUTH_NAME
    if not truth_path.is_file():
        raise InputError(directory, f"not a synthetic fixture: {TRUTH_NAME} is missing")
    try:
        with np.load(truth_path, allow_pickle=False) as data:
            d = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(truth_path, f"unreadable truth record ({exc})") from None
    try:
        version = int(d["format_version"])
        if version != TRUTH_FORMAT_VERSION:
            raise InputError(truth_path, f"truth format_version {version}, this lyra_isaac reads "
                                         f"{TRUTH_FORMAT_VERSION}")
        faults = from_dict(FaultConfig, json.loads(str(d["faults"])))
        camera = from_dict(CameraConfig, json.loads(str(d["camera"])))
        return Fixture(
            directory=directory, ply_path=directory / PLY_NAME, cameras_path=directory / CAMERAS_NAME,
            truth_path=truth_path, truth_mesh_path=directory / TRUTH_MESH_NAME,
            scene_name=str(d["scene"]), size=float(d["size"]), seed=int(d["seed"]),
            mesh=TriangleMesh(d["vertices"], d["faces"], d["colors"]),
            source_to_world=d["source_to_world"].astype(np.float64), scale=float(d["scale"]),
            eye_height_m=float(d["eye_height_m"]), probes=d["probes"].astype(np.float64).reshape(-1, 3),
            c2w_world=d["c2w_world"].astype(np.float64), intrinsics=d["intrinsics"].astype(np.float64),
            width=int(d["width"]), height=int(d["height"]), n_gaussians=int(d["n_gaussians"]),
            view_scale=d["view_scale"], warp=d["warp"], faults=faults, camera=camera, sky=bool(d["sky"]),
            stats=json.loads(str(d["stats"])), ply_format=str(d.get("ply_format", "lyra2")),
        )
    except KeyError as exc:
        raise InputError(truth_path, f"truth record lacks key {exc}") from None
