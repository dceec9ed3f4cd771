"""Walkable area and spawn points: :func:`build_heightmap` and :func:`sample_points`.

The height map samples the collision mesh on a regular XY grid (metres, Z up, floor at 0) by vertical ray casts
(:func:`.raycast.vertical_layers`: open3d, or numpy without it). Each cell's downward ray is continued through
every surface it meets (up to :attr:`WalkableConfig.max_layers`), so overhangs, tables and ceilings are all seen:

- A hit on a triangle facing up (normal z > 0) is a *support* surface; its *clearance* is the distance up to the
  next surface above it (inf when none).
- The cell's **ground** is the lowest support surface with clearance >= :attr:`WalkableConfig.clearance_height`
  (the floor under a ceiling or a high overhang). With no such surface it is the highest support surface (a table
  top, the top of a low overhang). When that surface is an exposed top (nothing above it) whose underside has
  at least ``ROOF_MIN_GAP`` of free space below (the roof of a closed ceiling slab, not a table), the ground is the
  highest surface under it with that much free height (the table top under the ceiling). No ground:
  ``heights`` is NaN (no surface: a hole, or outside the mesh).
  A reconstructed wall, lintel or ceiling is a thin, folded sheet that a grazing ray crosses tens of times, so
  rays are followed through ``max_layers`` (64) surfaces: a ray stopped early above a doorway would take the
  lintel for the ground and wall the door up.
- Steep triangles (walls, risers, table sides) are sampled at half-cell spacing. A sample rising more than
  ``max_step_height`` above a cell's ground but below ``clearance_height`` (inside the robot's body) blocks the
  cell and raises its ``heights`` up to the cell's ceiling, so ``heights`` is the **top surface below the cell's
  ceiling**: walls stand as columns, as a 2.5-D height field must show them, and a ceiling never fills the map.
  Steep surfaces only above ``clearance_height`` in a cell nothing blocks (the sides of a lintel, a beam) hang
  over a free passage: they leave the cell's height at its ground. ``clearance`` stays the free height above
  the ground.
- A cell is **walkable** when its ground has head clearance, its surface normal is within
  :attr:`WalkableConfig.max_slope_deg` of up, no steep sample rises more than ``max_step_height`` inside its
  clearance, and no 4-neighbour differs in height by more than ``max_step_height``; then only the largest
  4-connected walkable region is kept (scipy.ndimage.label).

The same :class:`lyra_isaac.world.HeightMap` feeds the MuJoCo height field and the env's height scan.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..errors import ConversionError
from ..world import HeightMap, TriangleMesh

logger = logging.getLogger(__name__)

RAY_START_MARGIN = 1.0
"""Downward rays start this far (metres) above the mesh's highest point."""
RAY_EPSILON = 1e-3
"""A continued ray restarts this far (metres) past the surface it hit."""
UP_FACING_MIN_NZ = 0.05
"""A hit counts as a support surface when its triangle normal has z above this."""
ROOF_MIN_GAP = 1.0
"""Under an exposed top, a surface with this much free height (metres) above it marks a room below a roof."""
YAW_DIRECTIONS = 16
"""Headings tried when a spawn faces the most open direction."""
YAW_MAX_RANGE = 10.0
"""Farthest free distance (metres) looked for along each heading."""
LAYER_BAND_ENTRIES = 8_000_000
"""The ray casts run in bands of grid rows of at most this many (layer, ray) entries (~0.2 GB of arrays)."""
FPS_MAX_CANDIDATES = 50_000
"""Farthest-point sampling runs on at most this many candidate cells (random subset)."""


@dataclass
class WalkableConfig:
    """Settings of the height map, the walkable mask and spawn/goal sampling. Lengths in metres."""

    cell_size: float = 0.05
    """Grid cell edge."""
    padding: float = 0.1
    """Margin added around the mesh's XY bounds."""
    max_cells: int = 16_000_000
    """Largest grid; a bigger world gets a coarser cell (logged)."""
    max_layers: int = 64
    """Surfaces followed per downward ray. Reconstructed walls, lintels and ceilings are thin folded sheets that
    a ray grazing them crosses tens of times (up to ~45 in the fixtures); a ray stopped before the floor takes the
    overhang above it for the ground, so this must exceed the folds."""
    max_slope_deg: float = 30.0
    """Largest walkable slope (surface normal to up)."""
    slope_window: int = 3
    """The slope is that of the mean ground normal over this many cells square (1: each cell's own facet)."""
    min_obstacle_area: float = 0.01
    """Non-walkable specks enclosed by walkable area and smaller than this (m2) are reconstruction noise: they
    become walkable when their surface is within ``max_step_height`` of the area around them."""
    clearance_height: float = 1.9
    """Free height a robot needs above the ground (1.9 m suits an adult-size humanoid)."""
    max_step_height: float = 0.2
    """Largest height step between neighbouring walkable cells (stairs up to this riser stay connected)."""
    spawn_clearance: float = 0.5
    """Spawn points keep at least this distance from non-walkable cells (obstacles, edges, holes)."""
    goal_clearance: float = 0.3
    """Goal points keep at least this distance from non-walkable cells."""
    spawn_level_radius: float = 0.4
    """Spawn points stand on level ground: every walkable cell within this radius (a robot's footprint, ~0.25 m,
    and a margin for the edges a reconstruction rounds: at the CI fixtures' view size a 15 cm step comes out as a
    ramp ~40 cm wide, and at 0.3 m a spawn 0.24 m from the true edge passed) ..."""
    spawn_level_tolerance: float = 0.1
    """... lies within this height of the spawn point, and no two neighbouring cells within it differ by more than
    half of it (so no spawn straddles a stair riser, even one the mesh smoothed into a steep ramp a cell or two
    wide; ramps up to ~18 deg pass at the defaults). Where no cell is that level, the test is dropped (logged)."""
    num_spawn_points: int = 16
    """Spawn points sampled (fewer when the area is small)."""
    num_goal_points: int = 64
    """Goal candidates sampled."""
    spawn_yaw: Literal["open_space", "random"] = "open_space"
    """Spawn heading: towards the longest free run along the walkable area, or uniformly random."""


def build_heightmap(mesh: TriangleMesh, cfg: WalkableConfig | None = None) -> HeightMap:
    """Sample the collision mesh into a :class:`HeightMap` with the walkable mask (see the module docstring).

    Args:
        mesh: collision surface, metres, world frame (Z up, floor at z = 0).
        cfg: settings; defaults to :class:`WalkableConfig`.

    Returns:
        HeightMap whose ``heights`` (H, W) float32 are the top surface below each cell's ceiling (NaN = no
        surface), ``clearance`` (H, W) float32 the free height above the ground (inf = open sky) and ``walkable``
        (H, W) bool the largest connected walkable region.

    Raises:
        ConversionError: the mesh is empty or has no walkable area (the message says which criterion failed).
        InputError: the mesh has non-finite vertices or out-of-range face indices.
    """
    cfg = cfg or WalkableConfig()
    if mesh.n_triangles == 0 or len(mesh.vertices) == 0:
        raise ConversionError(None, "the collision mesh is empty: no walkable area")
    mesh.validate("collision mesh")  # non-finite vertices or bad indices: InputError naming the fault
    lo, hi = mesh.bounds()
    cell = float(cfg.cell_size)
    span = hi[:2] - lo[:2] + 2 * cfg.padding
    if np.prod(np.ceil(span / cell) + 1) > cfg.max_cells:
        cell = float(np.sqrt(np.prod(span) / cfg.max_cells)) * 1.01
        logger.warning("walkable: %.0f x %.0f m world exceeds %d cells at %.3f m; using %.3f m cells",
                       span[0], span[1], cfg.max_cells, cfg.cell_size, cell)
    width = int(np.ceil(span[0] / cell)) + 1
    height = int(np.ceil(span[1] / cell)) + 1
    origin = (float(lo[0] - cfg.padding), float(lo[1] - cfg.padding))
    xs = origin[0] + cell * np.arange(width)
    ys = origin[1] + cell * np.arange(height)

    ground, ground_normal, clearance, truncated = _ground_by_bands(mesh, xs, ys, float(hi[2]) + RAY_START_MARGIN,
                                                                   cfg)
    ground = ground.reshape(height, width)
    ground_nz = _smoothed_nz(ground_normal.reshape(height, width, 3), np.isfinite(ground), cfg.slope_window)
    clearance = clearance.reshape(height, width)

    heights, blocked = _raise_with_steep(mesh, ground, clearance, origin, cell, cfg)
    standable = np.isfinite(ground) & (clearance >= cfg.clearance_height)
    flat = ground_nz >= np.cos(np.radians(cfg.max_slope_deg))
    smooth = ~_step_edges(heights, cfg.max_step_height)
    candidate = standable & flat & ~blocked & smooth
    candidate, specks = _fill_specks(candidate, heights, cfg, cell)
    walkable, regions = _largest_region(candidate)
    area = float(walkable.sum()) * cell * cell
    stats = {
        "cells": int(heights.size), "surface_cells": int(np.isfinite(heights).sum()),
        "clear_cells": int(standable.sum()), "flat_cells": int((standable & flat).sum()),
        "candidate_cells": int(candidate.sum()), "regions": regions, "walkable_cells": int(walkable.sum()),
        "specks_filled": specks, "rays_truncated": truncated,
    }
    if truncated:
        logger.warning("walkable: %d rays met %d surfaces, the most followed; surfaces below are not seen (raise "
                       "walkable.max_layers)", truncated, cfg.max_layers)
    logger.info("walkable: %dx%d cells of %.3f m; %d with a surface, %d with %.2f m clearance, %d flat, "
                "%d candidates in %d regions; largest %.1f m2", width, height, cell, stats["surface_cells"],
                stats["clear_cells"], cfg.clearance_height, stats["flat_cells"], stats["candidate_cells"],
                regions, area)
    if not walkable.any():
        raise ConversionError(None, "no walkable area: of {cells} cells {surface_cells} have a surface, "
                                    "{clear_cells} have head clearance, {flat_cells} of those are flat, "
                                    "{candidate_cells} are free of obstacles and steps".format(**stats)
                              + f" (clearance {cfg.clearance_height} m, slope {cfg.max_slope_deg} deg, step "
                                f"{cfg.max_step_height} m)")
    return HeightMap(origin=origin, cell_size=cell, heights=heights.astype(np.float32), walkable=walkable,
                     clearance=clearance.astype(np.float32))


def heightmap_stats(heightmap: HeightMap) -> dict[str, Any]:
    """Summary for world.json: walkable area (m2), grid shape, cell size, fraction of cells without surface."""
    cell_area = heightmap.cell_size ** 2
    return {
        "walkable_area_m2": float(heightmap.walkable.sum() * cell_area),
        "grid": list(heightmap.heights.shape),
        "cell_size": heightmap.cell_size,
        "no_surface_fraction": float(np.mean(~np.isfinite(heightmap.heights))),
    }


def sample_points(heightmap: HeightMap, cfg: WalkableConfig | None = None,
                  rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Spread-out spawn poses and goal points on the walkable area, away from obstacles and edges.

    Candidates are walkable cells at least ``spawn_clearance`` (goals: ``goal_clearance``) from any non-walkable
    cell (Euclidean distance transform); spawn candidates also stand on level ground (``spawn_level_radius``,
    ``spawn_level_tolerance``: not across a stair riser). Farthest-point sampling spreads them out from a random
    first pick.

    Args:
        heightmap: from :func:`build_heightmap`.
        cfg: settings; defaults to :class:`WalkableConfig`.
        rng: numpy Generator or seed.

    Returns:
        spawn: (S, 4) float64 [x, y, z, yaw], metres and radians about +Z (z = ground height).
        goals: (G, 3) float64 [x, y, z], metres.

    Raises:
        ConversionError: no walkable cell is far enough from obstacles for a spawn point.
    """
    from scipy import ndimage

    cfg = cfg or WalkableConfig()
    rng = np.random.default_rng(rng)
    walkable = np.asarray(heightmap.walkable, dtype=bool)
    padded = np.pad(walkable, 1, constant_values=False)  # the grid border is an edge too
    distance = ndimage.distance_transform_edt(padded)[1:-1, 1:-1] * heightmap.cell_size
    spawn_cells = np.argwhere(walkable & (distance >= cfg.spawn_clearance))
    if len(spawn_cells) == 0:
        raise ConversionError(None, f"no walkable cell lies {cfg.spawn_clearance} m from obstacles and edges "
                                    f"(widest free spot: {distance.max():.2f} m); lower walkable.spawn_clearance")
    level = _level_cells(heightmap.heights, walkable, cfg.spawn_level_radius / heightmap.cell_size,
                         cfg.spawn_level_tolerance)
    level_cells = np.argwhere(walkable & (distance >= cfg.spawn_clearance) & level)
    if len(level_cells):
        spawn_cells = level_cells
    else:
        logger.warning("walkable: no walkable cell %.2f m from edges is level within %.2f m over %.2f m; spawn "
                       "points may stand on slopes or steps", cfg.spawn_clearance, cfg.spawn_level_tolerance,
                       cfg.spawn_level_radius)
    goal_cells = np.argwhere(walkable & (distance >= cfg.goal_clearance))
    spawn_rc = _farthest_points(spawn_cells, cfg.num_spawn_points, rng)
    goal_rc = _farthest_points(goal_cells, cfg.num_goal_points, rng)

    def to_xyz(rc: np.ndarray) -> np.ndarray:
        x = heightmap.origin[0] + rc[:, 1] * heightmap.cell_size
        y = heightmap.origin[1] + rc[:, 0] * heightmap.cell_size
        return np.stack([x, y, heightmap.heights[rc[:, 0], rc[:, 1]]], axis=1).astype(np.float64)

    spawn_xyz = to_xyz(spawn_rc)
    if cfg.spawn_yaw == "random":
        yaw = rng.uniform(-np.pi, np.pi, len(spawn_rc))
    else:
        yaw = _open_yaw(walkable, spawn_rc, heightmap.cell_size)
    spawn = np.concatenate([spawn_xyz, yaw[:, None]], axis=1)
    goals = to_xyz(goal_rc)
    logger.info("walkable: %d spawn points (of %d cells >= %.2f m from edges), %d goals", len(spawn),
                len(spawn_cells), cfg.spawn_clearance, len(goals))
    return spawn, goals


# ----------------------------------------------------------------------------------------------------------------


def _cast_layers(mesh: TriangleMesh, xs: np.ndarray, ys: np.ndarray, z_start: float,
                 max_layers: int) -> tuple[np.ndarray, np.ndarray]:
    """Downward multi-hit ray casts at every (y, x) cell centre.

    Returns:
        z: (L, H*W) float32 hit heights, top first, NaN after the last hit.
        normals: (L, H*W, 3) float32 the hit triangles' unit normals (winding orientation), NaN after the last hit.
    """
    from .raycast import vertical_layers

    return vertical_layers(mesh.vertices, mesh.faces, xs, ys, z_start, max_layers, merge_distance=RAY_EPSILON)


def _ground_by_bands(mesh: TriangleMesh, xs: np.ndarray, ys: np.ndarray, z_start: float,
                     cfg: WalkableConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Ray cast and choose the ground in bands of grid rows, so the (layers, rays) arrays stay within
    ``LAYER_BAND_ENTRIES`` whatever ``max_layers`` is.

    Returns:
        ground: (H*W,) float32 ground height (NaN: none), metres.
        normal: (H*W, 3) float32 the ground triangle's unit normal (NaN: none).
        clearance: (H*W,) float32 free height above the ground (inf: open sky), metres.
        truncated: rays that met ``max_layers`` surfaces (any surface below those is not seen).
    """
    layers = max(int(cfg.max_layers), 1)
    rows_per_band = max(1, LAYER_BAND_ENTRIES // (layers * len(xs)))
    ground, normal, clearance = [], [], []
    truncated = 0
    for r0 in range(0, len(ys), rows_per_band):
        z_hits, normal_hits = _cast_layers(mesh, xs, ys[r0:r0 + rows_per_band], z_start, layers)
        if len(z_hits) == layers:
            truncated += int(np.isfinite(z_hits[-1]).sum())
        g, layer, c = _choose_ground(z_hits, normal_hits[..., 2], cfg.clearance_height)
        ground.append(g)
        normal.append(normal_hits[layer, np.arange(len(layer))])
        clearance.append(c)
    return np.concatenate(ground), np.concatenate(normal), np.concatenate(clearance), truncated


def _choose_ground(z: np.ndarray, nz: np.ndarray, clearance_height: float) -> tuple[np.ndarray, ...]:
    """Per ray: ground height (NaN: none), its layer index and its clearance (see the module docstring).
    Shapes (L, N) -> (N,)."""
    layers, n = z.shape
    above = np.full_like(z, np.inf)
    above[1:] = z[:-1]  # the surface hit just before (above) each hit
    clearance = above - z
    support = np.isfinite(z) & (nz > UP_FACING_MIN_NZ)
    standable = support & (clearance >= clearance_height)
    # lowest standable layer = largest layer index with standable
    rev = standable[::-1]
    has_standable = rev.any(axis=0)
    lowest = layers - 1 - np.argmax(rev, axis=0)
    # else: highest support layer = smallest index with support
    has_support = support.any(axis=0)
    highest = np.argmax(support, axis=0)
    layer = np.where(has_standable, lowest, highest)
    cols = np.arange(n)
    # an exposed top (nothing above) whose underside has a room below it is a roof or deck: the ground is the
    # highest roomy surface under it (a table under a closed ceiling slab)
    exposed = has_standable & np.isinf(clearance[layer, cols])
    under = np.minimum(layer + 1, layers - 1)
    below_under = np.minimum(layer + 2, layers - 1)
    underside = (layer + 1 < layers) & (nz[under, cols] < -UP_FACING_MIN_NZ)
    gap = np.where((layer + 2 < layers) & np.isfinite(z[below_under, cols]),
                   z[under, cols] - z[below_under, cols], -np.inf)
    roofed = exposed & underside & (gap >= ROOF_MIN_GAP)
    roomy = (np.arange(layers)[:, None] > layer[None, :]) & support & (clearance >= ROOF_MIN_GAP)
    layer = np.where(roofed, np.argmax(roomy, axis=0), layer)
    ground = np.where(has_support, z[layer, cols], np.nan).astype(np.float32)
    ground_clear = np.where(has_support, clearance[layer, cols], np.nan).astype(np.float32)
    return ground, layer, ground_clear


def _smoothed_nz(normals: np.ndarray, valid: np.ndarray, window: int) -> np.ndarray:
    """(H, W) z of the unit mean of the ground normals over a ``window`` x ``window`` neighbourhood (valid cells
    only): reconstructed meshes carry small facets much steeper than their surface, a single hit's normal is noise.
    NaN where the cell has no ground."""
    from scipy import ndimage

    vec = np.where(valid[..., None], np.nan_to_num(normals), 0.0).astype(np.float64)
    if window > 1:
        vec = np.stack([ndimage.uniform_filter(vec[..., i], size=window, mode="nearest") for i in range(3)], axis=-1)
    norm = np.linalg.norm(vec, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        nz = vec[..., 2] / norm
    return np.where(valid & (norm > 0), nz, np.nan)


def _steep_samples(mesh: TriangleMesh, spacing: float, cos_max_slope: float) -> np.ndarray:
    """(M, 3) points on the mesh's steep triangles (normal more than the slope limit from up), <= ``spacing``
    apart: a barycentric grid per triangle, subdivided by its longest edge."""
    tri = mesh.vertices[mesh.faces].astype(np.float64)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(normal, axis=1)
    ok = length > 1e-12
    steep = ok & (np.abs(normal[:, 2]) < cos_max_slope * np.where(ok, length, 1.0))
    tri = tri[steep]
    if len(tri) == 0:
        return np.zeros((0, 3))
    edges = np.stack([np.linalg.norm(tri[:, i] - tri[:, (i + 1) % 3], axis=1) for i in range(3)], axis=1)
    divisions = np.clip(np.ceil(edges.max(axis=1) / spacing), 1, 400).astype(np.int64)
    out = []
    for d in np.unique(divisions):
        group = tri[divisions == d]
        i, j = np.meshgrid(np.arange(d + 1), np.arange(d + 1), indexing="ij")
        keep = i + j <= d
        a = (i[keep] / d)[:, None]
        b = (j[keep] / d)[:, None]
        bary = np.concatenate([1 - a - b, a, b], axis=1)  # (K, 3)
        out.append(np.einsum("kc,tcx->tkx", bary, group).reshape(-1, 3))
    return np.concatenate(out)


def _raise_with_steep(mesh: TriangleMesh, ground: np.ndarray, clearance: np.ndarray, origin: tuple[float, float],
                      cell: float, cfg: WalkableConfig) -> tuple[np.ndarray, np.ndarray]:
    """Heights raised to steep surfaces inside each cell's clearance, and the cells they block.

    A steep sample blocks its cell when it rises more than ``max_step_height`` above the ground but stays below
    ``clearance_height`` above it (inside the robot's body). Samples higher than that, up to the cell's ceiling,
    raise the cell's height only where the cell is blocked (a wall or a tall cabinet, standing up from the floor
    into the ceiling); in a cell they do not block they hang from the ceiling above a free body height (a lintel
    over a doorway, a beam, a high shelf) and the cell keeps its ground height, so the height field keeps the
    passage under them open."""
    heights = ground.astype(np.float64).copy()
    blocked = np.zeros(ground.shape, dtype=bool)
    samples = _steep_samples(mesh, 0.5 * cell, np.cos(np.radians(cfg.max_slope_deg)))
    if len(samples) == 0:
        return heights, blocked
    cols = np.floor((samples[:, 0] - origin[0]) / cell + 0.5).astype(np.int64)
    rows = np.floor((samples[:, 1] - origin[1]) / cell + 0.5).astype(np.int64)
    h, w = ground.shape
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    rows, cols, z = rows[inside], cols[inside], samples[inside, 2]
    base = ground[rows, cols]
    limit = base + np.where(np.isfinite(clearance[rows, cols]), clearance[rows, cols], np.inf)
    within = np.isfinite(base) & (z > base) & (z < limit - RAY_EPSILON)
    rise = within & (z > base + cfg.max_step_height) & (z < base + cfg.clearance_height)
    blocked[rows[rise], cols[rise]] = True
    counts = within & ((z < base + cfg.clearance_height) | blocked[rows, cols])
    np.maximum.at(heights, (rows[counts], cols[counts]), z[counts])
    return heights, blocked


def _step_edges(heights: np.ndarray, max_step: float, missing_is_edge: bool = True) -> np.ndarray:
    """(H, W) bool: cells with a 4-neighbour more than ``max_step`` higher or lower; with ``missing_is_edge`` also
    cells without a surface (NaN), next to one, or on the grid border (else those only never count)."""
    edge = ~np.isfinite(heights) if missing_is_edge else np.zeros(heights.shape, dtype=bool)
    padded = np.pad(heights, 1, constant_values=np.nan)
    centre = padded[1:-1, 1:-1]
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        neighbour = padded[1 + dr:padded.shape[0] - 1 + dr, 1 + dc:padded.shape[1] - 1 + dc]
        with np.errstate(invalid="ignore"):
            step = np.abs(neighbour - centre)
            edge |= ~(step <= max_step) if missing_is_edge else step > max_step
    return edge


def _fill_specks(mask: np.ndarray, heights: np.ndarray, cfg: WalkableConfig, cell: float) -> tuple[np.ndarray, int]:
    """Make small non-walkable components enclosed by ``mask`` walkable when their surface (or hole) lies within
    ``max_step_height`` of the surrounding walkable cells; returns the new mask and the number of specks filled."""
    from scipy import ndimage

    enclosed = ndimage.binary_fill_holes(mask) & ~mask
    labels, count = ndimage.label(enclosed)
    if count == 0:
        return mask, 0
    sizes = np.bincount(labels.ravel())
    small = (sizes * cell * cell < cfg.min_obstacle_area) & (np.arange(len(sizes)) > 0)
    labels = np.where(small[labels], labels, 0)
    ids = np.flatnonzero(small)
    if len(ids) == 0:
        return mask, 0
    # the walkable ring around each speck carries the speck's label
    ring = ndimage.grey_dilation(labels, size=3) * (mask & np.isfinite(heights))
    around = np.asarray(ndimage.median(np.nan_to_num(heights), ring, ids), dtype=np.float64)
    finite = np.isfinite(heights)
    inside_labels = np.where(finite, labels, 0)
    high = np.asarray(ndimage.maximum(np.nan_to_num(heights), inside_labels, ids), dtype=np.float64)
    low = np.asarray(ndimage.minimum(np.nan_to_num(heights), inside_labels, ids), dtype=np.float64)
    has_inside = np.asarray(ndimage.sum(finite, labels, ids)) > 0
    has_ring = np.asarray(ndimage.sum(ring > 0, ring, ids)) > 0
    ok = has_ring & (~has_inside | ((high - around <= cfg.max_step_height) & (around - low <= cfg.max_step_height)))
    good = np.zeros(len(sizes), dtype=bool)
    good[ids[ok]] = True
    return mask | good[labels], int(ok.sum())


def _largest_region(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The largest 4-connected component of ``mask`` and the number of components."""
    from scipy import ndimage

    labels, count = ndimage.label(mask)
    if count == 0:
        return np.zeros_like(mask), 0
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes)), int(count)


def _level_cells(heights: np.ndarray, walkable: np.ndarray, radius_cells: float, tolerance: float) -> np.ndarray:
    """(H, W) bool: walkable cells whose walkable neighbours within ``radius_cells`` (a disk) all lie within
    ``tolerance`` (metres) of their height, with no riser (two neighbouring walkable cells more than
    ``tolerance / 2`` apart) within the disk."""
    from scipy import ndimage

    radius_cells = float(radius_cells) + 1e-6  # a radius of a whole number of cells includes that ring
    r = max(int(np.floor(radius_cells)), 0)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = yy**2 + xx**2 <= radius_cells**2
    h = np.asarray(heights, dtype=np.float64)
    high = ndimage.maximum_filter(np.where(walkable, h, -np.inf), footprint=disk, mode="constant", cval=-np.inf)
    low = ndimage.minimum_filter(np.where(walkable, h, np.inf), footprint=disk, mode="constant", cval=np.inf)
    with np.errstate(invalid="ignore"):
        level = walkable & (high - h <= tolerance) & (h - low <= tolerance)
    # a riser: neighbouring walkable cells differing by more than half the tolerance (a reconstructed step edge is a
    # steep ramp a cell or two wide, whose middle would pass the test above with both sides within tolerance)
    riser = _step_edges(np.where(walkable, h, np.nan), tolerance / 2, missing_is_edge=False)
    near_riser = ndimage.binary_dilation(riser, structure=disk)
    return level & ~near_riser


def _farthest_points(cells: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Farthest-point sampling of (C, 2) integer cells; the first pick is random. Returns (min(count, C), 2)."""
    if len(cells) == 0 or count <= 0:
        return np.zeros((0, 2), dtype=np.int64)
    if len(cells) > FPS_MAX_CANDIDATES:
        cells = cells[rng.choice(len(cells), FPS_MAX_CANDIDATES, replace=False)]
    points = cells.astype(np.float64)
    chosen = [int(rng.integers(len(points)))]
    nearest = np.linalg.norm(points - points[chosen[0]], axis=1)
    for _ in range(min(count, len(points)) - 1):
        nxt = int(np.argmax(nearest))
        if nearest[nxt] <= 0:
            break
        chosen.append(nxt)
        nearest = np.minimum(nearest, np.linalg.norm(points - points[nxt], axis=1))
    return cells[chosen]


def _open_yaw(walkable: np.ndarray, cells: np.ndarray, cell_size: float) -> np.ndarray:
    """(S,) heading (radians about +Z) of the longest walkable run from each cell, over YAW_DIRECTIONS headings;
    among equally long runs, the middle of the widest fan of them (facing the open space, not its edge)."""
    angles = np.linspace(-np.pi, np.pi, YAW_DIRECTIONS, endpoint=False)
    steps = np.arange(1, int(YAW_MAX_RANGE / cell_size) + 1)
    h, w = walkable.shape
    yaws = np.zeros(len(cells))
    for k, (r, c) in enumerate(cells):
        rr = np.rint(r + np.sin(angles)[:, None] * steps[None]).astype(np.int64)  # rows follow +y
        cc = np.rint(c + np.cos(angles)[:, None] * steps[None]).astype(np.int64)
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        free = np.zeros(rr.shape, dtype=bool)
        free[inside] = walkable[rr[inside], cc[inside]]
        run = np.where(free.all(axis=1), len(steps), np.argmin(free, axis=1))
        yaws[k] = angles[_middle_of_widest(run == run.max())]
    return yaws


def _middle_of_widest(mask: np.ndarray) -> int:
    """Index at the middle of the longest circular run of True in ``mask`` (at least one True)."""
    n = len(mask)
    if mask.all():
        return 0
    start = int(np.argmin(mask))  # a False: unroll the circle from there
    rolled = np.roll(mask, -start)
    best_len, best_mid, length = 0, 0, 0
    for i, value in enumerate(np.append(rolled, False)):
        if value:
            length += 1
        else:
            if length > best_len:
                best_len, best_mid = length, i - 1 - (length - 1) // 2
            length = 0
    return int((best_mid + start) % n)
