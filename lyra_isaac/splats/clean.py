"""Cleaning a splat scene before surface extraction: :func:`clean_scene`.

Filters, in order (each counts what it drops, on what the earlier filters kept):

1. ``non_finite``: rows with NaN/inf positions, scales, rotations or colours, or a NaN opacity logit (+-inf logits
   are valid saturated opacities in Lyra's writer and are kept).
2. ``opacity``: sigmoid(opacity) below :attr:`CleanConfig.geometry_min_opacity` (geometry set) or
   :attr:`CleanConfig.render_min_opacity` (render set).
3. ``oversize``: largest per-axis standard deviation above ``oversize_fraction * reference_depth``.
4. ``sky``: distance to the nearest camera centre above ``sky_factor * reference_depth``.
5. ``outliers`` (geometry set only): Gaussians whose voxel holds fewer than ``outlier_min_points`` Gaussians in
   both of two half-voxel-shifted grids. The base voxel edge is calibrated on a subsample so that the median
   Gaussian shares its voxel with about ``outlier_target_count`` others (density differs by orders of magnitude
   between a 128-view Lyra scene and a sparse scan), and it doubles per octave of distance from the cameras,
   because pixel-aligned splats thin out with depth.

Scenes that are not pixel-aligned (optimized 3DGS) keep the flat Gaussians (discs) that filters 3 or 5 would drop
when discs in their own plane surround them (:attr:`CleanConfig.flat_support`): large, sparse discs cover the
textureless floors there; counted as ``stats["flat_supported"]``.

**Units.** The scene is not metric (nor gravity-aligned) when it is cleaned, so every size threshold is relative
to ``reference_depth``: the median distance from a Gaussian to the nearest camera centre (the typical viewing
depth; a few metres indoors). Without cameras the median point stands in for the camera path and the median
distance to it for the depth. Set :attr:`CleanConfig.reference_depth` to fix it in source units.

Row indices: the reader stores ``scene.extra["row_index"]`` ((N,) int64 rows of the file; absent = identity) and
``scene.extra["rows_in_file"]``. Both subsets carry ``row_index`` composed with the kept mask, so the surface
stage can map a Gaussian back to its view and pixel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConversionError
from ..threads import cpu_threads
from .cameras import CameraPath
from .scene import GaussianScene, flat_rows

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
"""Rows processed at once where a per-row float64 temporary would otherwise span the whole scene."""
MAX_ANCHORS = 64
DISTANCE_GRID = 96
"""Cells along the longest side of the lookup grid for distances to the camera path."""
"""Camera centres used for the distance-to-camera-path (evenly subsampled along the path)."""
SKETCH_BITS = 24
"""Voxel counts use a count-min sketch of two hash tables of 2^SKETCH_BITS int64 bins (2 x 128 MiB): one pass, no
sort; it can only overcount, and does so for under 2 % of voxels at 2M occupied voxels."""
REFERENCE_SAMPLE = 200_000
"""Gaussians sampled to estimate the reference depth."""
MAX_OCTAVE = 6
"""Depth octaves of the density filter span 2^-2 .. 2^MAX_OCTAVE times the reference depth."""
CALIBRATION_MIN_SAMPLES = 500
"""Subsampled Gaussians an octave needs to calibrate its own density voxel."""
FLAT_SUPPORT_NEIGHBOURS = 16
"""A disc's support: among its this many nearest flat Gaussians, ..."""
FLAT_SUPPORT_SIGMAS = 3.0
"""... those within this many of its largest sigmas ..."""
FLAT_PLANE_TOLERANCE = 0.2
"""... whose distance from its plane is at most this fraction of that radius (about 11 degrees) ..."""
FLAT_NORMAL_DEG = 25.0
"""... and that are flat with their normal within this angle of its normal count as its support."""


@dataclass
class CleanConfig:
    """Thresholds of :func:`clean_scene`. Sizes are relative to ``reference_depth`` (see the module docstring)."""

    geometry_min_opacity: float = 0.1
    """Opacity (after sigmoid, 0..1) below which a Gaussian is dropped from the geometry set."""
    render_min_opacity: float = 0.01
    """Opacity below which a Gaussian is dropped from the render set."""
    oversize_fraction: float = 0.1
    """Drop Gaussians whose largest standard deviation exceeds this fraction of ``reference_depth``
    (0.1 * 3 m typical indoor depth = 0.3 m)."""
    sky_factor: float = 8.0
    """Drop Gaussians farther than this many ``reference_depth`` from the nearest camera centre (sky, far haze)."""
    outlier_target_count: float = 16.0
    """The density filter's voxel is sized so that the median Gaussian's voxel holds about this many."""
    outlier_voxel_range: tuple[float, float] = (0.002, 0.1)
    """Bounds of the calibrated voxel edge, as fractions of the octave's depth (``reference_depth * 2^octave``)."""
    outlier_min_points: int = 3
    """A Gaussian survives the density filter if its voxel in either shifted grid holds at least this many."""
    outliers: bool = True
    """Run the statistical-outlier (density) filter on the geometry set."""
    outliers_pixel_aligned: bool = False
    """Run it also on scenes whose Gaussians are pixel-aligned depth maps of their cameras (Lyra 2.0). There the
    surface stage's per-view consensus rejects floaters itself, and the density filter only thins the far floor into
    holes (measured on the truth fixtures: apartment F@5cm 0.944 -> 0.970 without it, corridor floor holes 23 % ->
    8 %, courtyard F@5cm 0.63 -> 0.58, terrain unchanged)."""
    flat_support: bool = True
    """Scenes that are not pixel-aligned (optimized 3DGS): a flat Gaussian (a disc: smallest sigma under
    ``splats.scene.FLAT_RATIO`` x the middle one) that the oversize or density filter would drop is kept when at least
    ``outlier_min_points`` of its nearest Gaussians are discs in its plane, facing its way (:func:`_plane_supported`):
    a trainer covers a textureless floor with few large discs, sparse by the centre count and larger than a floater,
    and dropping them opened the floor holes of the optimized fixtures (apartment, seed 0: 9 of 200 floor probes,
    where 90 % of the floor Gaussians around them had gone). Floaters are blobs, or discs without a surface in their
    plane around them."""
    oversize_flat_fraction: float = 0.5
    """... such a disc is still dropped when its largest sigma exceeds this fraction of ``reference_depth``."""
    render_drop_oversize: bool = False
    """Also drop oversized Gaussians from the render set (they blur but rarely harm rendering)."""
    render_drop_sky: bool = False
    """Also drop sky Gaussians from the render set (keep them to render the sky)."""
    reference_depth: float | None = None
    """Typical viewing depth in source units; None estimates it (median distance to the nearest camera)."""
    min_geometry_gaussians: int = 1000
    """Fewer surviving geometry Gaussians than this raise ConversionError (all sky / empty scene)."""


@dataclass
class CleanResult:
    """What :func:`clean_scene` returns.

    Attributes:
        geometry: Gaussians for surface extraction (strict filters), ``extra["row_index"]`` composed.
        render: Gaussians for rendering (lenient filters), ``extra["row_index"]`` composed.
        stats: counts: ``input``, ``geometry_kept``, ``render_kept``, ``dropped`` (filter -> count, geometry set),
            ``render_dropped`` (filter -> count), ``reference_depth`` (source units), thresholds used.
    """

    geometry: GaussianScene
    render: GaussianScene
    stats: dict[str, Any] = field(default_factory=dict)


def clean_scene(scene: GaussianScene, cameras: CameraPath | None, cfg: CleanConfig | None = None, *,
                pixel_aligned: bool = False) -> CleanResult:
    """Split a scene into a geometry set and a render set, dropping floaters, sky, oversize and invalid Gaussians.

    Args:
        scene: Gaussians in the source frame (any units).
        cameras: the generation camera path in the same frame, or None.
        cfg: thresholds; defaults to :class:`CleanConfig`.
        pixel_aligned: the Gaussians are one-per-pixel depth maps of the views (the caller checked): the density
            filter then runs only if ``cfg.outliers_pixel_aligned``.

    Returns:
        CleanResult with both subsets and per-filter counts.

    Raises:
        ConversionError: (naming the scene file) when nothing usable is left for the geometry.
    """
    cfg = cfg or CleanConfig()
    n = len(scene)
    source = scene.source_path
    if n == 0:
        raise ConversionError(source, "the scene holds no Gaussians")

    finite = _finite_rows(scene)
    opacity = scene.opacities()
    geo = finite & (opacity >= cfg.geometry_min_opacity)
    ren = finite & (opacity >= cfg.render_min_opacity)
    del opacity
    dropped = {"non_finite": int(n - finite.sum()), "opacity": int(finite.sum() - geo.sum())}
    render_dropped = {"non_finite": dropped["non_finite"], "opacity": int(finite.sum() - ren.sum())}
    if not ren.any():
        raise ConversionError(source, f"no Gaussian of {n} is finite with opacity >= {cfg.render_min_opacity}")

    centers = cameras.centers() if cameras is not None and len(cameras) > 0 else None
    pool = geo if geo.any() else ren
    anchor = centers if centers is not None else np.median(scene.means[_sample(pool, REFERENCE_SAMPLE)], axis=0)[None]
    distance = _nearest_distance(scene.means, anchor.astype(np.float64))
    if cfg.reference_depth is not None:
        reference = float(cfg.reference_depth)
    else:
        reference = float(np.median(distance[_sample(pool, REFERENCE_SAMPLE)]))
    if not np.isfinite(reference) or reference <= 0:
        raise ConversionError(source, "cannot estimate the scene's depth scale (all Gaussians at the cameras)")

    largest = _row_max(scene.log_scales)
    with np.errstate(invalid="ignore"):
        oversize = largest > np.float32(np.log(cfg.oversize_fraction * reference))
    sky = distance > cfg.sky_factor * reference
    # flat Gaussians (discs) of optimized scenes may be larger than blobs if the surface around them holds them
    rescue_flat = cfg.flat_support and not pixel_aligned
    if rescue_flat:
        with np.errstate(invalid="ignore"):
            flat = flat_rows(scene.log_scales) & ~(largest > np.float32(np.log(cfg.oversize_flat_fraction
                                                                                  * reference)))
        held = geo & oversize & flat & ~sky  # judged by their support below, with the density filter's failures
    else:
        flat = held = None
    del largest

    dropped["oversize"] = int((geo & oversize).sum())
    geo &= ~oversize
    dropped["sky"] = int((geo & sky).sum())
    geo &= ~sky
    if cfg.render_drop_oversize:
        render_dropped["oversize"] = int((ren & oversize).sum())
        ren &= ~oversize
    if cfg.render_drop_sky:
        render_dropped["sky"] = int((ren & sky).sum())
        ren &= ~sky
    del oversize, sky

    sparse = np.zeros(n, dtype=bool)
    if cfg.outliers and (cfg.outliers_pixel_aligned or not pixel_aligned) and geo.any():
        idx = np.flatnonzero(geo)
        dense, stats_voxel = _density_filter(scene.means[idx], distance[idx], reference, cfg)
        dropped["outliers"] = int(len(idx) - dense.sum())
        sparse[idx[~dense]] = True
        geo[idx[~dense]] = False
    else:
        dropped["outliers"], stats_voxel = 0, None
    del distance
    flat_kept = {"oversize": 0, "outliers": 0}
    if rescue_flat:
        candidates = np.flatnonzero((held | sparse) & flat)
        support = np.flatnonzero(geo | held | sparse)
        supported = candidates[_plane_supported(scene, candidates, support, cfg)]
        geo[supported] = True
        flat_kept = {"oversize": int(held[supported].sum()), "outliers": int(sparse[supported].sum())}
        dropped["oversize"] -= flat_kept["oversize"]
        dropped["outliers"] -= flat_kept["outliers"]
    del sparse, held, flat

    kept = int(geo.sum())
    if kept < cfg.min_geometry_gaussians:
        raise ConversionError(
            source,
            f"only {kept} of {n} Gaussians are left for the geometry after cleaning "
            f"(dropped {', '.join(f'{k} {v}' for k, v in dropped.items())}); the scene is empty or all sky/floaters",
        )
    geometry = _subset_with_rows(scene, geo)
    render = _subset_with_rows(scene, ren)
    stats = {
        "input": n,
        "geometry_kept": kept,
        "render_kept": int(ren.sum()),
        "dropped": dropped,
        "render_dropped": render_dropped,
        "reference_depth": reference,
        "oversize_threshold": cfg.oversize_fraction * reference,
        "sky_threshold": cfg.sky_factor * reference,
        "anchor": "cameras" if centers is not None else "median_point",
        "outlier_voxel": stats_voxel,  # depth octave -> voxel edge, source units
        "flat_supported": flat_kept,  # flat Gaussians kept by their surface support, per filter they failed
    }
    logger.info(
        "clean: %d Gaussians -> geometry %d, render %d (reference depth %.3g src units from %s; dropped %s)",
        n, kept, stats["render_kept"], reference, stats["anchor"],
        ", ".join(f"{k} {v}" for k, v in dropped.items()),
    )
    return CleanResult(geometry=geometry, render=render, stats=stats)


def _finite_rows(scene: GaussianScene) -> np.ndarray:
    """(N,) bool: position, scales, rotation and colour finite, opacity not NaN (+-inf opacity is valid).

    A row sum is non-finite exactly when a value is (or when finite values near 1e38 overflow: garbage anyway).
    Rows are summed column by column (left to right, as ``sum(axis=1)`` does) CHUNK rows at a time: a reduction
    over a 3- or 4-wide axis is slow in numpy (0.73 -> 0.08 s at 11M Gaussians)."""
    n = len(scene)
    ok = np.empty(n, dtype=bool)
    arrays = [a.reshape(n, -1) for a in (scene.means, scene.log_scales, scene.quats, scene.sh_dc)]
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, n, CHUNK):
            rows = ok[start:start + CHUNK]
            np.logical_not(np.isnan(scene.opacity_logits[start:start + CHUNK]), out=rows)
            for array in arrays:
                block = array[start:start + CHUNK]
                total = block[:, 0].copy()
                for k in range(1, block.shape[1]):
                    total += block[:, k]
                rows &= np.isfinite(total)
    return ok


def _row_max(array: np.ndarray) -> np.ndarray:
    """(N,) maximum over the columns of (N, K) ``array`` (NaN propagates), column by column."""
    out = array[:, 0].copy()
    for k in range(1, array.shape[1]):
        np.maximum(out, array[:, k], out=out)
    return out


def _plane_supported(scene: GaussianScene, candidates: np.ndarray, support: np.ndarray,
                     cfg: CleanConfig) -> np.ndarray:
    """(C,) bool: which flat Gaussians (indices ``candidates`` into ``scene``) lie on a surface of discs.

    A disc is supported when at least ``cfg.outlier_min_points`` of its ``FLAT_SUPPORT_NEIGHBOURS`` nearest flat
    Gaussians of ``support`` (indices; itself not counted) have their centres within
    ``FLAT_SUPPORT_SIGMAS`` x its largest sigma and within ``FLAT_PLANE_TOLERANCE`` x that radius of its plane (the
    plane through its centre normal to its thinnest axis), and their own thin axis within ``FLAT_NORMAL_DEG`` of its
    normal: the surface goes on around it. A wall, a blob or a cloud of floaters that its plane happens to cut does
    not count. Sizes are relative, so no unit is assumed; the nearest neighbours bound the work (all neighbours
    within the radius of a large disc: 0.4 -> 4 s of cleaning for the 170k Gaussians of the optimized apartment).
    """
    from scipy.spatial import cKDTree

    if len(candidates) == 0 or len(support) == 0:
        return np.zeros(len(candidates), dtype=bool)
    centres = scene.means[candidates].astype(np.float64)
    radius = FLAT_SUPPORT_SIGMAS * np.exp(scene.log_scales[candidates].astype(np.float64).max(axis=1))
    normal = _thin_axes(scene, candidates)
    support = support[flat_rows(scene.log_scales[support])]  # blobs beside a disc say nothing of its plane
    if len(support) == 0:
        return np.zeros(len(candidates), dtype=bool)
    tree = cKDTree(scene.means[support], balanced_tree=False, compact_nodes=False)
    k = min(FLAT_SUPPORT_NEIGHBOURS + 1, len(support))
    distance, index = tree.query(centres, k=k, workers=cpu_threads())
    distance, index = distance.reshape(len(centres), k), index.reshape(len(centres), k)
    owner, column = np.nonzero(distance <= radius[:, None])
    found = support[index[owner, column]]
    near = np.unique(found)
    slot = np.searchsorted(near, found)
    offset = scene.means[found].astype(np.float64) - centres[owner]
    height = np.abs(np.einsum("ij,ij->i", offset, normal[owner]))
    parallel = np.abs(np.einsum("ij,ij->i", _thin_axes(scene, near)[slot], normal[owner]))
    ok = ((height <= FLAT_PLANE_TOLERANCE * radius[owner])
          & (parallel >= np.cos(np.radians(FLAT_NORMAL_DEG))) & (found != candidates[owner]))
    return np.bincount(owner, weights=ok, minlength=len(candidates)) >= cfg.outlier_min_points


def _thin_axes(scene: GaussianScene, rows: np.ndarray) -> np.ndarray:
    """(len(rows), 3) float64 unit direction of each Gaussian's thinnest axis (a disc's normal), scene frame."""
    from .scene import quat_to_rotation_matrix

    rotation = quat_to_rotation_matrix(scene.quats[rows].astype(np.float64))
    thinnest = np.argmin(scene.log_scales[rows], axis=1)
    return rotation[np.arange(len(rows)), :, thinnest]


def _sample(mask: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` evenly strided indices of the True rows of ``mask`` (deterministic)."""
    idx = np.flatnonzero(mask)
    if len(idx) > count:
        idx = idx[:: int(np.ceil(len(idx) / count))]
    return idx


def _nearest_distance(points: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """(N,) float32 distance from each of (N, 3) points to the nearest of (A, 3) anchors (NaN rows -> inf).

    Anchors: at most MAX_ANCHORS (a camera path is subsampled evenly). Points inside the robust bounding box are
    looked up in a grid of at most DISTANCE_GRID^3 cells whose centres' distances are exact (error <= half a cell
    diagonal, far below the thresholds that use this distance); the rest (sky, far ground) get exact KD-tree
    distances."""
    from scipy.spatial import cKDTree

    anchors = np.asarray(anchors, dtype=np.float64)
    if len(anchors) > MAX_ANCHORS:
        anchors = anchors[np.linspace(0, len(anchors) - 1, MAX_ANCHORS).round().astype(int)]
    tree = cKDTree(anchors)
    out = np.full(len(points), np.inf, dtype=np.float32)
    sample = points[:: max(1, len(points) // REFERENCE_SAMPLE)]
    sample = sample[np.isfinite(sample).all(axis=1)]
    if len(sample) == 0:
        return out
    low, high = np.percentile(sample, 2, axis=0), np.percentile(sample, 98, axis=0)
    pad = 0.05 * (high - low) + 1e-6
    low, high = low - pad, high + pad
    cell = float((high - low).max()) / DISTANCE_GRID
    shape = np.maximum(np.ceil((high - low) / cell).astype(int), 1)
    axes = [low[i] + cell * (np.arange(shape[i]) + 0.5) for i in range(3)]
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    table = tree.query(centres, workers=cpu_threads())[0].astype(np.float32)
    low32, inv = low.astype(np.float32), np.float32(1.0 / cell)
    for start in range(0, len(points), CHUNK):
        chunk = points[start:start + CHUNK]
        inside = np.ones(len(chunk), dtype=bool)
        finite = np.ones(len(chunk), dtype=bool)
        index = []
        with np.errstate(invalid="ignore"):
            for k in range(3):  # column by column: reductions over the 3-wide axis are slow
                column = np.floor((chunk[:, k] - low32[k]) * inv)
                inside &= (column >= 0) & (column < shape[k])
                finite &= np.isfinite(chunk[:, k])
                index.append(column)
        rows = np.flatnonzero(inside)
        flat = np.ravel_multi_index([column[rows].astype(np.intp) for column in index], shape)
        result = np.full(len(chunk), np.inf, dtype=np.float32)
        result[rows] = table[flat]
        outside = np.flatnonzero(~inside & finite)
        if len(outside):
            result[outside] = tree.query(chunk[outside], workers=cpu_threads())[0]
        out[start:start + len(chunk)] = result
    return out


def _density_filter(points: np.ndarray, distance: np.ndarray, reference: float,
                    cfg: CleanConfig) -> tuple[np.ndarray, dict[int, float]]:
    """(M,) bool: True where a Gaussian's voxel is dense enough in either shifted grid; and the voxel edge used per
    depth octave (source units).

    Points are grouped in octaves of distance from the cameras (relative to ``reference``); each octave gets its
    own voxel edge, calibrated to ``outlier_target_count`` (pixel-aligned splats thin out with depth).
    """
    ratio = np.maximum(distance, 1e-12) / reference
    octave = np.clip(np.floor(np.log2(ratio)), -2, MAX_OCTAVE).astype(np.int64)
    del ratio
    edges = _calibrate_voxels(points, octave, reference, cfg)
    table = np.zeros(MAX_OCTAVE + 3)
    for level, edge in edges.items():
        table[level + 2] = edge
    voxel = table[octave + 2]
    keep = np.zeros(len(points), dtype=bool)
    for shift in (0.0, 0.5):
        counts = _voxel_counts(points, voxel, octave, shift)
        keep |= counts >= cfg.outlier_min_points
        del counts
    return keep, edges


def _voxel_keys(points: np.ndarray, voxel: np.ndarray, octave: np.ndarray, shift: float) -> np.ndarray:
    """(M,) int64 key of each point's voxel: octave (4 bits) and 19 bits per axis (+-262k voxels)."""
    keys = np.empty(len(points), dtype=np.int64)
    for start in range(0, len(points), CHUNK):
        sl = slice(start, start + CHUNK)
        cell = np.floor(points[sl] / voxel[sl, None] + shift).astype(np.int64)
        cell = np.clip(cell, -(1 << 18), (1 << 18) - 1) + (1 << 18)
        keys[sl] = ((octave[sl] + 2) << 57) | (cell[:, 0] << 38) | (cell[:, 1] << 19) | cell[:, 2]
    return keys


def _voxel_counts(points: np.ndarray, voxel: np.ndarray, octave: np.ndarray, shift: float) -> np.ndarray:
    """(M,) number of points sharing each point's voxel (count-min sketch: exact or, rarely, over)."""
    keys = _voxel_keys(points, voxel, octave, shift).view(np.uint64)
    if len(keys) < (1 << 16):  # small inputs: exact
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        return counts[inverse]
    best = None
    for multiplier in (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)):
        with np.errstate(over="ignore"):
            bins = ((keys * multiplier) >> np.uint64(64 - SKETCH_BITS)).astype(np.intp)
        counts = np.bincount(bins, minlength=1 << SKETCH_BITS)[bins]
        best = counts if best is None else np.minimum(best, counts)
        del bins, counts
    return best


def _calibrate_voxels(points: np.ndarray, octave: np.ndarray, reference: float, cfg: CleanConfig) -> dict[int, float]:
    """Voxel edge per octave (source units) giving about ``outlier_target_count`` points per point's voxel.

    Counts are measured on a strided subsample and extrapolated assuming surface-like (2-D) density:
    others ~ edge^2 / sampling fraction. Octaves with too few samples inherit the edge of the calibrated
    octave nearest to them, doubled per octave.
    """
    step = max(1, len(points) // REFERENCE_SAMPLE)
    sub, sub_octave = points[::step], octave[::step]
    fraction = len(sub) / max(len(points), 1)
    edges: dict[int, float] = {}
    for level in np.unique(sub_octave):
        pts = sub[sub_octave == level]
        if len(pts) < CALIBRATION_MIN_SAMPLES:
            continue
        low, high = (f * reference * 2.0 ** level for f in cfg.outlier_voxel_range)
        trial = high
        for _ in range(4):
            others = float(np.mean(_voxel_counts(pts, np.full(len(pts), trial), np.zeros(len(pts), np.int64), 0.0)
                                   - 1.0)) / fraction
            new = float(np.clip(trial * np.sqrt(cfg.outlier_target_count / max(others + 1.0, 1e-9)), low, high))
            if abs(new - trial) < 0.05 * trial:
                break
            trial = new
        edges[int(level)] = trial
    if not edges:
        edges[0] = cfg.outlier_voxel_range[1] * reference
    known = np.array(sorted(edges))
    for level in np.unique(octave):
        level = int(level)
        if level not in edges:
            nearest = int(known[np.argmin(np.abs(known - level))])
            edges[level] = edges[nearest] * 2.0 ** (level - nearest)
    logger.debug("clean: density voxel per depth octave %s", {k: round(v, 4) for k, v in sorted(edges.items())})
    return edges


def _subset_with_rows(scene: GaussianScene, mask: np.ndarray) -> GaussianScene:
    """``scene.subset(mask)`` with ``extra["row_index"]`` ((M,) int64 file rows) composed with the (N,) bool mask.

    Where the mask keeps every row the result shares the scene's arrays (see :meth:`GaussianScene.subset`); a (N,)
    int64 ``row_index`` is selected once, by ``subset`` itself.
    """
    sub = scene.subset(mask)
    rows = scene.extra.get("row_index")
    if rows is None:
        sub.extra["row_index"] = np.flatnonzero(mask).astype(np.int64, copy=False)
    elif not (isinstance(rows, np.ndarray) and rows.shape == (len(scene),) and rows.dtype == np.int64):
        sub.extra["row_index"] = np.asarray(rows, dtype=np.int64).take(np.flatnonzero(mask))
    sub.extra.setdefault("rows_in_file", scene.extra.get("rows_in_file", len(scene)))
    return sub
