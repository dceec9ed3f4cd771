"""The conversion pipeline: one splat scene in, one world directory out (DESIGN.md section 2).

Read :func:`convert` top to bottom to follow a Gaussian's way through lyra_isaac:

1. load the PLY (and ``cameras.npz`` beside it)            splats/ply.py, splats/cameras.py
2. clean: non-finite, opacity, oversize, sky, outliers      splats/clean.py
3. up axis + floor (camera prior, RANSAC), then scale       geometry/frame.py
4. move Gaussians and cameras into the world frame          GaussianScene.transformed (Z up, metres, floor z=0)
5. surface extraction (CPU default, CUDA path)              geometry/surface.py (+ depth_maps, point_render,
                                                            alignment, fusion), geometry/surface_gpu.py;
   then the world is re-levelled from the fused surface     geometry/level.py
6. mesh finishing: components, holes, decimation, colours   geometry/mesh.py
7. height map, walkable area, spawn and goal points         geometry/walkable.py
8. write everything into a temp dir, rename into place      world.py, usd/, mjcf/, preview.py
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .config import from_dict, load_toml, merge, to_dict
from .errors import ConfigError, InputError, MissingDependencyError, OutputError
from .geometry.camera_height import camera_height_correction
from .geometry.depth_maps import detect_pixel_alignment, pixel_grid_cameras
from .geometry.frame import (
    FrameConfig,
    ScaleConfig,
    ScaleEstimate,
    depth_factor_correction,
    estimate_frame,
    estimate_scale,
    source_to_world_matrix,
    view_groups,
)
from .geometry.level import surface_level_correction
from .geometry.mesh import MeshConfig, color_sources, colorize, finish_mesh
from .geometry.surface import SurfaceConfig, SurfaceResult, extract_surface
from .geometry.walkable import WalkableConfig, build_heightmap, sample_points
from .mjcf.scene import MjcfConfig, write_mjcf_scene
from .preview import preview_jobs
from .progress import NO_PROGRESS, Progress
from .resources import config_dir
from .splats.cameras import CameraPath, find_cameras, load_cameras
from .splats.clean import CleanConfig, clean_scene
from .splats.ply import load_scene, resolve_scene_path
from .splats.scene import GaussianScene
from .threads import cpu_threads
from .usd.stage import UsdConfig, write_usd_stage
from .world import (
    COLLISION_PLY,
    HEIGHTMAP_NPZ,
    VISUAL_PLY,
    TriangleMesh,
    World,
    WorldDir,
    WorldManifest,
    atomic_directory,
    load_world,
    sha256_file,
    write_manifest,
    write_mesh_ply,
)

logger = logging.getLogger(__name__)

PRESETS = ("fast", "quality")
DEVICES = ("cpu", "cuda")

# Share of the progress bar each stage takes (measured roughly on Lyra-size scenes).
STAGE_WEIGHTS = {"load": 0.08, "clean": 0.07, "frame": 0.05, "surface": 0.45, "mesh": 0.12, "walkable": 0.08,
                 "write": 0.15}
WRITE_FIRST = (3,)
WRITE_LAST = (4, 0, 1, 2)
"""Order :func:`write_world_files` starts its writers in on a thread pool (indices into its list, which is in file
order: collision PLY, visual PLY, height map, USD, MuJoCo, then the previews: top-down map and each perspective
view): USD (with the splats) first, then the previews (perspective views, then the top-down map), then MuJoCo, the
PLY files and the height map (longest first, so that the last to start are the quick ones)."""
WRITER_MODULES = ("pxr.Gf", "pxr.Kind", "pxr.Sdf", "pxr.Usd", "pxr.UsdGeom", "pxr.UsdLux", "pxr.UsdPhysics",
                  "pxr.UsdShade", "pxr.UsdVol", "pxr.Vt", "PIL.Image", "matplotlib.backends.backend_agg",
                  "matplotlib.cm", "matplotlib.colors", "matplotlib.figure", "matplotlib.patches", "scipy.ndimage",
                  "trimesh", "open3d")
"""Native modules the writers import lazily: :func:`write_world_files` imports them on the calling thread before
its pool starts. First imports on two threads at once can hang for good: pxr.Tf and PIL._imaging, each loading on
its own thread, did in 1 of 3 fresh processes (most likely USD's load-time initializers wait for the GIL while
holding the dynamic loader's lock, which the other thread, holding the GIL, waits for)."""


STAGE_MODULES = ("numpy.fft", "numpy.linalg", "numpy.polynomial", "numpy.ma", "scipy.linalg", "scipy.ndimage",
                 "scipy.sparse", "scipy.spatial", "scipy.special", "scipy.stats")
"""Native modules the load, clean and frame stages import lazily. With ``device="cuda"`` they are imported on the
calling thread before torch starts on a worker thread, so that the two never load native modules at once (see
:data:`WRITER_MODULES`: first imports on two threads can hang for good). A test checks that these stages import no
other native module."""


@dataclass
class ConvertConfig:
    """Every setting of the conversion, one section per stage (config/default.toml mirrors it)."""

    seed: int = 0
    clean: CleanConfig = field(default_factory=CleanConfig)
    frame: FrameConfig = field(default_factory=FrameConfig)
    scale: ScaleConfig = field(default_factory=ScaleConfig)
    surface: SurfaceConfig = field(default_factory=SurfaceConfig)
    mesh: MeshConfig = field(default_factory=MeshConfig)
    walkable: WalkableConfig = field(default_factory=WalkableConfig)
    usd: UsdConfig = field(default_factory=UsdConfig)
    mjcf: MjcfConfig = field(default_factory=MjcfConfig)


def load_convert_config(preset: str = "fast", config: ConvertConfig | str | Path | dict | None = None) -> ConvertConfig:
    """Build the conversion config: ``config/default.toml``, then ``config/presets/<preset>.toml``, then ``config``.

    Args:
        preset: "fast" or "quality".
        config: a ConvertConfig (returned as is), a TOML path, or a dict of overrides.

    Raises:
        ConfigError: unknown preset, unreadable file, unknown key or wrong type (the message names the field).
    """
    if isinstance(config, ConvertConfig):
        return config
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset '{preset}' (choose from {', '.join(PRESETS)})")
    data = merge(load_toml(config_dir() / "default.toml"), load_toml(config_dir() / "presets" / f"{preset}.toml"))
    if isinstance(config, (str, Path)):
        data = merge(data, load_toml(config))
    elif isinstance(config, dict):
        data = merge(data, config)
    elif config is not None:
        raise ConfigError(f"config must be a ConvertConfig, a TOML path or a dict, not {type(config).__name__}")
    return from_dict(ConvertConfig, data)


def resolve_source(source: str | Path, cameras: str | Path | None = None) -> tuple[Path, Path | None]:
    """Find the PLY and its cameras: ``source`` is a PLY file or a Lyra output folder.

    Returns:
        (ply_path, cameras_path or None). Cameras: the explicit path, else ``cameras.npz`` beside the PLY.
    """
    ply_path = resolve_scene_path(source)
    if cameras is not None:
        cameras = Path(cameras)
        if not cameras.is_file():
            raise InputError(cameras, "cameras file not found")
        return ply_path, cameras
    return ply_path, find_cameras(ply_path)


@contextmanager
def _stage(name: str, timings: dict[str, float], progress: Progress, done_before: float) -> Iterator[None]:
    progress.update(name, done_before)
    start = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - start, 3)
    logger.info("stage %-8s %.2f s", name, timings[name])


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def _check_output(out: Path, overwrite: bool) -> None:
    """Fail before any work if OUT cannot be written (atomic_directory checks again at the end)."""
    if out.exists() and not overwrite:
        raise OutputError(out, "output directory exists (pass --overwrite to replace it)")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not _writable(parent):
        raise OutputError(out, f"cannot write into {parent}")


def _writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK | os.X_OK)


def convert(
    source: str | Path,
    out: str | Path,
    *,
    cameras: str | Path | None = None,
    config: ConvertConfig | str | Path | dict | None = None,
    preset: str = "fast",
    scale: float | None = None,
    camera_height: float | None = None,
    device: str = "cpu",
    overwrite: bool = False,
    progress: Progress = NO_PROGRESS,
) -> WorldDir:
    """Convert a splat scene into a world directory (written atomically: complete or absent).

    Args:
        source: a splat PLY (Lyra 2.0, Lyra 1, INRIA 3DGS, or any PLY with the 3DGS properties) or a Lyra output
            folder holding ``reconstructed_scene.ply`` and ``cameras.npz``.
        out: the world directory to create.
        cameras: ``cameras.npz`` path; default: the one beside the PLY, if any (without cameras the pipeline
            synthesizes views in free space).
        config: ConvertConfig, TOML path, or dict of overrides on top of the preset.
        preset: "fast" (default) or "quality".
        scale: explicit factor from scene units to metres (exclusive with ``camera_height``).
        camera_height: the cameras' median height above the floor, metres; sets the scale.
        device: "cpu" or "cuda" (GPU surface extraction; needs the ``gpu`` extra).
        overwrite: replace ``out`` if it exists.
        progress: receives stage progress; its cancel() aborts the conversion (nothing is written).

    Returns:
        The written world, opened with :func:`lyra_isaac.world.load_world`.

    Raises:
        InputError: unreadable or invalid scene/cameras. ConversionError: no floor, all sky, no walkable area,
        cameras inconsistent with the points. OutputError: ``out`` exists or is not writable. ConfigError.
    """
    started = time.perf_counter()
    out = Path(out)
    if device not in DEVICES:
        raise ConfigError(f"unknown device '{device}' (choose from {', '.join(DEVICES)})")
    if scale is not None and camera_height is not None:
        raise ConfigError("give either scale or camera_height, not both")
    for name, value in (("scale", scale), ("camera_height", camera_height)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise ConfigError(f"{name} must be a positive number, got {value}")
    cfg = load_convert_config(preset, config)
    ply_path, cameras_path = resolve_source(source, cameras)
    _check_output(out, overwrite)
    device_ready = _start_device_early(device)
    timings: dict[str, float] = {}
    done = 0.0

    with _stage("load", timings, progress, done), _hashing(ply_path) as source_hash:
        scene = load_scene(ply_path)
        camera_path: CameraPath | None = load_cameras(cameras_path) if cameras_path is not None else None
        surface_cameras_source = _surface_cameras(camera_path, cameras_path)
        pixel_aligned = _pixel_aligned(scene, surface_cameras_source, cfg.surface)
        source_sha = source_hash()
        logger.info("loaded %s: %d Gaussians (%s, SH degree %d), %s", ply_path.name, len(scene), scene.source_format,
                    scene.sh_degree, f"{len(camera_path)} cameras" if camera_path is not None else "no cameras")
    done += STAGE_WEIGHTS["load"]

    with _stage("clean", timings, progress, done):
        cleaned = clean_scene(scene, camera_path, cfg.clean, pixel_aligned=pixel_aligned)
    del scene
    done += STAGE_WEIGHTS["clean"]

    with _stage("frame", timings, progress, done):
        # views: which Gaussians share a view (and so its depth error): per-view floor normals refine the up axis
        frame = estimate_frame(cleaned.geometry.means, camera_path, cfg.frame,
                               views=view_groups(cleaned.geometry, camera_path))
        scale_estimate = estimate_scale(frame, camera_path, cfg.scale, scale=scale, camera_height=camera_height)
        source_to_world = source_to_world_matrix(frame, scale_estimate)
        geometry = cleaned.geometry.transformed(source_to_world, frame="world")
        surface_cameras = (surface_cameras_source.transformed(source_to_world)
                           if surface_cameras_source is not None else None)
        for warning in scale_estimate.warnings:
            logger.warning("%s: %s", ply_path.name, warning)
        logger.info("frame: up (source) = %s via %s; scale x%.4f (%s); eye height %s", np.round(frame.up_source, 4),
                    frame.method, scale_estimate.factor, scale_estimate.method,
                    "n/a" if scale_estimate.eye_height_m is None else f"{scale_estimate.eye_height_m:.2f} m")
    done += STAGE_WEIGHTS["frame"]

    camera_height_stats: dict[str, Any] | None = None
    with _stage("surface", timings, progress, done):
        if device == "cuda":
            from .geometry.surface_gpu import extract_surface as extract_surface_gpu

            device_ready()
            surface = extract_surface_gpu(geometry, surface_cameras, cfg.surface, progress)
        else:
            surface = extract_surface(geometry, surface_cameras, cfg.surface, progress)
        source_to_world, scale_estimate = _remove_depth_factor(surface, source_to_world, scale_estimate)
        if cfg.frame.surface_level:
            source_to_world = _level_from_surface(surface, source_to_world, cfg.frame, frame.stats)
        if camera_height is not None and cfg.scale.surface_camera_height:
            source_to_world, scale_estimate, camera_height_stats = _scale_from_surface(
                surface, source_to_world, scale_estimate, camera_path, camera_height, cfg.scale)
        render = cleaned.render.transformed(source_to_world, frame="world")
    done += STAGE_WEIGHTS["surface"]

    with _stage("mesh", timings, progress, done):
        collision, mesh_stats, visual = _finish_and_colorize(surface.mesh, render, cfg.mesh, device)
    done += STAGE_WEIGHTS["mesh"]

    with _stage("walkable", timings, progress, done):
        heightmap = build_heightmap(collision, cfg.walkable)
        spawn_points, goal_points = sample_points(heightmap, cfg.walkable, np.random.default_rng(cfg.seed))
        walkable_area = float(heightmap.walkable.sum() * heightmap.cell_size**2)
        logger.info("walkable area %.1f m^2, %d spawn points, %d goal candidates", walkable_area,
                    len(spawn_points), len(goal_points))
    done += STAGE_WEIGHTS["walkable"]

    stats: dict[str, Any] = {
        "read": cleaned.geometry.read_report.as_dict(),
        "clean": cleaned.stats,
        "frame": {**frame.stats, "method": frame.method, "up_source": np.asarray(frame.up_source).tolist()},
        "scale": {"factor": scale_estimate.factor, "method": scale_estimate.method,
                  "eye_height_m": scale_estimate.eye_height_m, "warnings": list(scale_estimate.warnings),
                  "depth_factor_removed": surface.depth_factor, "surface_camera_height": camera_height_stats},
        "surface": surface.stats,
        "mesh": mesh_stats,
        "collision_triangles": collision.n_triangles,
        "visual_triangles": visual.n_triangles,
        "splats_kept_for_rendering": len(render),
        "spawn_points": len(spawn_points),
        "goal_points": len(goal_points),
        "device": device,
        "preset": preset,
    }
    manifest = WorldManifest(
        source={"path": str(ply_path.resolve()), "sha256": source_sha, "format": cleaned.geometry.source_format,
                "gaussians": int(cleaned.geometry.read_report.rows_in_file),
                "cameras": str(cameras_path.resolve()) if cameras_path is not None else None},
        source_to_world=np.asarray(source_to_world).tolist(),
        scale_factor=float(scale_estimate.factor),
        bounds=collision.bounds().tolist(),
        walkable_area_m2=walkable_area,
        spawn_points=np.asarray(spawn_points).tolist(),
        goal_points=np.asarray(goal_points).tolist(),
        files={},
        stats=stats,
        config=to_dict(cfg),
        version=__version__,
    )
    world = World(collision=collision, visual=visual, heightmap=heightmap, spawn_points=spawn_points,
                  goal_points=goal_points, manifest=manifest, splats=render)

    progress.update("write", done)
    with atomic_directory(out, overwrite=overwrite) as temp:
        write_started = time.perf_counter()
        write_world_files(world, temp, cfg.usd, cfg.mjcf)
        timings["write"] = round(time.perf_counter() - write_started, 3)
        timings["total"] = round(time.perf_counter() - started, 3)
        stats["timings_s"] = timings
        stats["peak_rss_mb"] = _peak_rss_mb()
        write_manifest(manifest, temp)
    progress.update("done", 1.0)
    logger.info("wrote %s in %.1f s (peak RSS %.0f MB)", out, time.perf_counter() - started, stats["peak_rss_mb"])
    return load_world(out)


def _start_device_early(device: str) -> Callable[[], None]:
    """Start the surface stage's device now: for ``device="cuda"``, torch's import and CUDA context (~2-4 s, once
    per process) run on a worker thread while the scene loads, is cleaned and levelled (where that work releases the
    GIL: reading, numpy's bulk operations). Returns a call that waits until the device is ready (and raises what
    starting it raised). Without torch this fails now, before any work, with the pip extra to install.
    """
    if device != "cuda":
        return lambda: None
    if importlib.util.find_spec("torch") is None:
        raise MissingDependencyError("torch", "gpu", "GPU surface extraction (--device cuda)")
    from .geometry.surface_gpu import start_device

    if cpu_threads() < 2:
        return start_device
    _import_modules(STAGE_MODULES)  # first imports stay on this thread (see STAGE_MODULES)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="device-start")
    started = pool.submit(start_device)
    pool.shutdown(wait=False)  # the thread ends with its one task; a conversion that fails first does not wait
    return started.result


def _remove_depth_factor(surface: SurfaceResult, source_to_world: np.ndarray,
                         scale: ScaleEstimate) -> tuple[np.ndarray, ScaleEstimate]:
    """Re-level (and, for a camera-height scale, re-scale) the world after the surface stage removed a depth factor
    shared by all views; moves ``surface.mesh`` in place. Returns the new (source_to_world, scale estimate)."""
    factor = surface.depth_factor
    correction = depth_factor_correction(factor, scale)
    if np.allclose(correction, np.eye(4)):
        return source_to_world, scale
    _move_mesh(surface.mesh, correction)
    ratio = float(correction[0, 0])
    eye = None if scale.eye_height_m is None else scale.eye_height_m * factor * ratio  # above the re-levelled floor
    new_scale = replace(scale, factor=scale.factor * ratio, eye_height_m=eye)
    logger.info("frame: depths x%.4f (shared by all views): floor moved %+.3f m back to z = 0, scale x%.4f -> x%.4f",
                factor, correction[2, 3], scale.factor, new_scale.factor)
    return correction @ source_to_world, new_scale


def _level_from_surface(surface: SurfaceResult, source_to_world: np.ndarray, cfg: FrameConfig,
                        frame_stats: dict[str, Any]) -> np.ndarray:
    """Re-level the world from the fused surface (:func:`surface_level_correction`); moves ``surface.mesh`` in place,
    records the decision in ``frame_stats["surface_level"]`` and returns the new source_to_world."""
    mesh = surface.mesh
    correction, frame_stats["surface_level"] = surface_level_correction(
        mesh.vertices, mesh.faces, cauchy_deg=cfg.surface_level_cauchy_deg, max_change_deg=cfg.surface_level_max_deg,
        min_horizontal_area_m2=cfg.surface_level_min_area)
    if np.allclose(correction, np.eye(4)):
        return source_to_world
    _move_mesh(mesh, correction)
    return correction @ source_to_world


def _scale_from_surface(surface: SurfaceResult, source_to_world: np.ndarray, scale: ScaleEstimate,
                        cameras: CameraPath, camera_height: float,
                        cfg: ScaleConfig) -> tuple[np.ndarray, ScaleEstimate, dict[str, Any]]:
    """Re-scale the world so the cameras stand ``camera_height`` above the fused surface
    (:func:`camera_height_correction`); moves ``surface.mesh`` in place. Returns the new (source_to_world, scale
    estimate, stats of the decision)."""
    mesh = surface.mesh
    centers = cameras.centers() @ source_to_world[:3, :3].T + source_to_world[:3, 3]
    correction, stats = camera_height_correction(mesh.vertices, mesh.faces, centers, camera_height,
                                                 radius=cfg.surface_ground_radius, max_change=cfg.surface_max_change)
    if not stats["applied"]:
        return source_to_world, scale, stats
    _move_mesh(mesh, correction)
    ratio = float(correction[0, 0])
    return correction @ source_to_world, replace(scale, factor=scale.factor * ratio, eye_height_m=camera_height), stats


def _move_mesh(mesh: TriangleMesh, matrix: np.ndarray) -> None:
    """Apply a (4, 4) world-to-world similarity to ``mesh``'s vertices in place (computed in float64)."""
    mesh.vertices = (mesh.vertices.astype(np.float64) @ matrix[:3, :3].T + matrix[:3, 3]).astype(mesh.vertices.dtype)


@contextmanager
def _hashing(path: Path) -> Iterator[Callable[[], str]]:
    """Yield a function that returns the file's SHA-256 (:func:`sha256_file`). With more than one thread
    (:func:`cpu_threads`) the hash is computed on a worker thread meanwhile (hashlib releases the GIL: ~0.6-1 s of a
    760 MB scene overlaps its loading); the block is left only when the worker has finished, even on an error."""
    if cpu_threads() < 2:
        yield lambda: sha256_file(path)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256") as pool:
        digest = pool.submit(sha256_file, path)
        yield digest.result


def _finish_and_colorize(raw: TriangleMesh, render: GaussianScene, cfg: MeshConfig,
                         device: str = "cpu") -> tuple[TriangleMesh, dict[str, Any], TriangleMesh]:
    """:func:`finish_mesh` (on ``device``) then :func:`colorize`: (collision mesh, mesh stats, visual mesh). With
    more than one thread (:func:`cpu_threads`) the colour sources (a subset of the splats and its KD-tree, ~1 s at
    Lyra size, independent of the mesh) are made on a worker thread while the mesh is finished; the result is the
    same."""
    if cpu_threads() < 2:
        collision, stats = finish_mesh(raw, cfg, device=device)
        return collision, stats, colorize(collision, render)
    importlib.import_module("scipy.spatial")  # first imports stay on this thread (see WRITER_MODULES)
    with ThreadPoolExecutor(max_workers=1) as pool:
        sources = pool.submit(color_sources, render)
        collision, stats = finish_mesh(raw, cfg, device=device)
        return collision, stats, colorize(collision, render, sources=sources.result())


def _surface_cameras(camera_path: CameraPath | None, cameras_path: Path | None) -> CameraPath | None:
    """The views to extract the surface from (source frame).

    Lyra 2.0's cameras.npz holds the render trajectory (``w2c_render``) and, apart from it, the views whose pixels
    became the Gaussians (``w2c_da3``): those are the views the Gaussians are pixel-aligned with, so they are used
    when present; otherwise the render trajectory.
    """
    if camera_path is None or cameras_path is None:
        return None
    if "da3" in camera_path.meta.get("available_views", ()) and camera_path.meta.get("views") != "da3":
        da3 = load_cameras(cameras_path, views="da3")
        logger.info("surface: using the %d DA3 views of %s (the Gaussians' source views)", len(da3), cameras_path.name)
        return da3
    return camera_path


def _pixel_aligned(scene: GaussianScene, cameras: CameraPath | None, cfg: SurfaceConfig) -> bool:
    """Whether the Gaussians are one-per-pixel depth maps of ``cameras`` (checked by reprojection, source frame)."""
    if cameras is None:
        return False
    offset, reason = detect_pixel_alignment(scene, pixel_grid_cameras(scene, cameras), cfg)
    logger.info("pixel alignment: %s", reason)
    return offset is not None


def write_world_files(world: World, directory: Path, usd_cfg: UsdConfig, mjcf_cfg: MjcfConfig) -> dict[str, Any]:
    """Write every file of a world except world.json into ``directory``; fills ``world.manifest.files``.

    The writers (collision and visual PLY, height map, USD stage, MuJoCo scene, and each preview image:
    :func:`~lyra_isaac.preview.preview_jobs`) write different files, so
    with more than one thread (:func:`cpu_threads`) they run on a pool of that many threads, the slow ones first
    (they overlap where they release the GIL: numpy's bulk operations, zlib, open3d's ray casting; USD's authoring
    and saving mostly hold it). The files are the same either way and ``files`` lists them in the same order. When
    writers fail, every writer is let finish first (nothing writes into ``directory`` after this returns or
    raises), then the error of the first failing one in that order is raised, as the serial order would have.
    """
    writers: list[Callable[[], dict[str, Any]]] = [
        lambda: _written({"collision": COLLISION_PLY}, write_mesh_ply, world.collision, directory / COLLISION_PLY),
        lambda: ({} if world.visual is None
                 else _written({"visual": VISUAL_PLY}, write_mesh_ply, world.visual, directory / VISUAL_PLY)),
        lambda: _written({"heightmap": HEIGHTMAP_NPZ}, world.heightmap.save, directory / HEIGHTMAP_NPZ),
        lambda: write_usd_stage(world, directory, usd_cfg),
        lambda: write_mjcf_scene(world, directory, mjcf_cfg),
    ]
    first_preview = len(writers)
    writers += preview_jobs(world, directory)
    threads = min(cpu_threads(), len(writers))
    if threads < 2:
        parts = [write() for write in writers]
    else:
        _import_modules(WRITER_MODULES)
        previews = list(range(first_preview, len(writers)))
        order = [*WRITE_FIRST, *previews[1:], previews[0], *WRITE_LAST]
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="write") as pool:
            futures = {i: pool.submit(writers[i]) for i in order}
            wait(futures.values())
        parts = [futures[i].result() for i in range(len(writers))]  # the first failure in file order raises
    files: dict[str, Any] = {}
    for part in parts[:first_preview]:
        files.update(part)
    written_previews = [path for part in parts[first_preview:] for path in part.values()]
    logger.info("previews: wrote %s", ", ".join(written_previews))
    files["previews"] = sorted(written_previews)
    world.manifest.files = files
    return files


def _import_modules(names: tuple[str, ...]) -> None:
    """Import the modules ``names`` now, those that are installed (a step that needs a missing one reports it)."""
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _written(files: dict[str, Any], write: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """Call ``write(*args)`` and return ``files`` (the manifest entries of what it wrote)."""
    write(*args)
    return files
