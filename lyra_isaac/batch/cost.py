"""Expected conversion cost of a scene from cheap facts, read before converting: the batch runs the longest first.

With more scenes than workers, a batch ends when its last task ends; started in input order, one long scene
submitted last keeps one worker busy while the others idle. Longest-processing-time-first (LPT) order bounds the
makespan at 4/3 of the optimum and usually comes close to the lower bound ``max(longest task, total / workers)``.
It needs an estimate that ranks scenes by conversion time; it need not be accurate in seconds.

The facts (:class:`SceneFacts`) take about 0.1 s per scene (measured on a loaded 2-core machine; the driver's
SHA-256 of the PLY costs more): the PLY header (row count), ``cameras.npz`` (views, image size, camera centres), and
the centres of at most :data:`SAMPLE_ROWS` Gaussians read with a stride (the same rows every time).

Which fact predicts conversion time, measured (CPU seconds of ``convert`` with one thread, ``fast`` preset, on the
synthetic Lyra fixtures: apartment, corridor, courtyard and terrain with seeds 0-7 at 24 views of 128x72 (221k
Gaussians each), plus an apartment at 12 views of 64x48 (37k) and an apartment and a courtyard at 48 views of
192x108 (995k); 11.9 to 61.2 s; Spearman rank correlation with the time over the 11 scenes):

===========================================================  ========  =======
fact                                                         Spearman  Pearson
===========================================================  ========  =======
PLY rows = file size = pixels of the views (equal on 8 of 11)    0.46     0.64
camera path length                                              0.77     0.66
``voxels`` (below)                                              0.95     0.90
``estimate_cost_s``: ``voxels`` and rows                        0.97       -
===========================================================  ========  =======

``voxels`` counts the 0.5 m voxels occupied by the sampled centres that the clean stage keeps as geometry (within
``sky_factor`` x the median camera distance): the surface the TSDF, mesh and height-map stages work on, which is
where the time goes (the courtyard's open space and far walls cost 2-3x a corridor with as many Gaussians). On the
8 scenes of 221k Gaussians, counting every sampled centre instead (the terrain's distant hills) ranked worse
(Spearman 0.81), and so did 1 m voxels (0.88-0.93). The estimate's misranking: terrain seed 7 (estimated 40 s,
measured 29 s) above courtyard seed 6 and the 995k apartment (36 and 35 s estimated, 40 and 35 s measured).
Rows matter for large scenes: the 995k-Gaussian apartment took 35 s against 19 s for the 221k one; the row term
(``ROW_S``) sits between that and the 11.2M-Gaussian Lyra-size apartment (64 s on a faster, idle machine;
estimated 130 s), so large scenes rank high without swamping the spatial term on small ones.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

SAMPLE_ROWS = 20_000
"""Gaussian centres read (evenly strided over the file) for the spatial facts."""
VOXEL_M = 0.5
"""Edge of the voxels that count the space the sampled centres occupy, source units (metres for Lyra)."""
BASE_S = 1.0
VOXEL_S = 0.018
ROW_S = 1.0e-5
"""Seconds per kept voxel and per Gaussian in :func:`estimate_cost_s`, fitted on single-thread CPU times (module
docstring): they set the estimate's size; the ranking comes mostly from the voxels."""


@dataclass(frozen=True)
class SceneFacts:
    """What a scene's files say about its size, read cheaply before converting.

    Attributes:
        rows: Gaussians declared in the PLY header (0 if the header cannot be read).
        file_bytes: size of the PLY file.
        views: camera views in ``cameras.npz`` (0 without one).
        pixels: ``views * width * height`` of those views (0 without cameras).
        path_m: length of the camera path, source units (0 without cameras).
        sampled: Gaussian centres sampled (0: not a binary PLY with x, y, z, or truncated).
        voxels: ``VOXEL_M`` voxels occupied by the sampled centres that the clean stage would keep as geometry
            (nearer the cameras than ``CleanConfig.sky_factor`` x their median distance; without cameras, nearer
            the sample's median point): a measure of the scene's surface area that the surface, mesh and
            height-map stages work on.
    """

    rows: int
    file_bytes: int
    views: int = 0
    pixels: int = 0
    path_m: float = 0.0
    sampled: int = 0
    voxels: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def scene_facts(ply_path: str | Path, cameras_path: str | Path | None = None) -> SceneFacts:
    """Read a scene's :class:`SceneFacts`: the PLY header, ``SAMPLE_ROWS`` strided rows, and the camera file.

    Never raises for unreadable or odd files: what cannot be read counts as zero (the conversion reports the
    fault itself).

    Args:
        ply_path: the splat PLY.
        cameras_path: its ``cameras.npz`` (or None).
    """
    from ..splats.ply import read_header

    ply_path = Path(ply_path)
    try:
        file_bytes = ply_path.stat().st_size
        header = read_header(ply_path)
    except Exception as exc:  # InputError, OSError: the task reports it
        logger.debug("cost facts: %s: %s", ply_path, exc)
        return SceneFacts(rows=0, file_bytes=0)
    vertex = header.element("vertex")
    rows = vertex.count if vertex is not None else 0
    centers = None
    views = pixels = 0
    path_m = 0.0
    if cameras_path is not None:
        try:
            from ..splats.cameras import load_cameras

            cameras = load_cameras(cameras_path)
            views, pixels, path_m = len(cameras), len(cameras) * cameras.width * cameras.height, cameras.path_length()
            centers = cameras.centers()
        except Exception as exc:  # a bad camera file fails the task, not the planning
            logger.debug("cost facts: %s: %s", cameras_path, exc)
    xyz = _sample_centres(ply_path, header, rows)
    voxels = _kept_voxels(xyz, centers) if len(xyz) else 0
    return SceneFacts(rows=rows, file_bytes=file_bytes, views=views, pixels=pixels, path_m=round(path_m, 3),
                      sampled=len(xyz), voxels=voxels)


def estimate_cost_s(facts: SceneFacts) -> float:
    """Expected conversion seconds of a scene on one core: ``BASE_S + VOXEL_S * voxels + ROW_S * rows``.

    Args:
        facts: from :func:`scene_facts`.

    Returns:
        Seconds (> 0); meant to rank scenes, roughly right in size for the ``fast`` preset.
    """
    return BASE_S + VOXEL_S * facts.voxels + ROW_S * facts.rows


def _sample_centres(ply_path: Path, header: Any, rows: int) -> np.ndarray:
    """(N, 3) float64 finite centres of at most SAMPLE_ROWS evenly strided rows of a binary PLY; (0, 3) if the
    file is ASCII, has no float x/y/z, has list properties or is shorter than its header says."""
    empty = np.zeros((0, 3))
    vertex = header.element("vertex")
    names = {p.name for p in vertex.properties} if vertex is not None else set()
    if rows == 0 or header.format == "ascii" or not {"x", "y", "z"} <= names:
        return empty
    if any(p.is_list for e in header.elements for p in e.properties):
        return empty
    offset = header.body_offset
    for element in header.elements:
        if element is vertex:
            break
        offset += element.count * element.dtype(header.byte_order).itemsize
    dtype = vertex.dtype(header.byte_order)
    if ply_path.stat().st_size < offset + rows * dtype.itemsize:
        return empty  # truncated: the reader will say so
    stride = max(1, -(-rows // SAMPLE_ROWS))  # ceil: at most SAMPLE_ROWS rows
    try:
        table = np.memmap(ply_path, dtype=dtype, mode="r", offset=offset, shape=(rows,))[::stride]
        xyz = np.stack([np.asarray(table[axis], dtype=np.float64) for axis in ("x", "y", "z")], axis=1)
    except (OSError, ValueError) as exc:
        logger.debug("cost facts: cannot sample %s: %s", ply_path, exc)
        return empty
    return xyz[np.isfinite(xyz).all(axis=1)]


def _kept_voxels(xyz: np.ndarray, centers: np.ndarray | None) -> int:
    """Occupied VOXEL_M voxels of the centres within the clean stage's sky distance of the cameras."""
    from scipy.spatial import cKDTree

    from ..splats.clean import CleanConfig

    anchors = centers if centers is not None and len(centers) else np.median(xyz, axis=0)[None]
    distance, _ = cKDTree(np.asarray(anchors, dtype=np.float64)).query(xyz)
    reference = float(np.median(distance))
    kept = xyz[distance <= CleanConfig().sky_factor * reference] if reference > 0 else xyz
    return int(len(np.unique(np.floor(kept / VOXEL_M).astype(np.int64), axis=0)))
