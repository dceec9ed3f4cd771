"""Mesh finishing: from the raw extracted surface to the collision mesh, and vertex colours from splats.

:func:`finish_mesh` runs, in order: weld duplicate vertices; drop degenerate and duplicate faces; keep connected
components that are large (area) or touch the floor; fill small holes in floor-like (near-horizontal,
upward-facing) surfaces, because a robot falls through a hole in the walkable floor; extend the open borders of
large floor-like surfaces a little (:func:`extend_floor_frontiers`: a fused surface stops short of the edge of what
the views saw; not the edges of ledges, whose drop the views saw); decimate with fast-simplification to an error
bound. :func:`colorize` gives each vertex the colour of the splats near it.

All meshes are world frame, metres, Z up, floor at z = 0.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from ..errors import ConversionError
from ..splats.scene import GaussianScene
from ..threads import cpu_threads
from ..world import TriangleMesh
from .raycast import open3d_scene, resolve_backend
from .row_keys import row_keys

logger = logging.getLogger(__name__)


@dataclass
class MeshConfig:
    """Settings of :func:`finish_mesh`. Lengths in metres, areas in square metres."""

    weld_tolerance: float = 1e-5
    """Vertices closer than this are merged, m."""
    min_component_area: float = 0.05
    """Connected components smaller than this are dropped (floaters) unless they touch the floor, m^2."""
    min_component_fraction: float = 0.0
    """... or smaller than this fraction of the largest component's area (0 = off)."""
    floor_height: float = 0.0
    """Height of the floor, m (the world frame puts it at 0)."""
    floor_band: float = 0.1
    """A component whose lowest point is within this of the floor height touches the floor, m."""
    fill_holes: bool = True
    max_hole_area: float = 1.0
    """Holes in floor-like surfaces up to this area (projected on XY) are filled, m^2."""
    max_hole_height_range: float = 0.1
    """A hole counts as floor-like when its boundary spans at most this height, m."""
    frontier_extension: float = 0.15
    """Open borders of large floor-like surfaces are extended outward by this much, m (0 = off). A TSDF surface
    ends short of the edge of what the views saw (marching cubes needs every corner of a cube observed, and the
    outermost half pixel of a view has no depth sample): on Lyra-like fixtures seen floor is missing in a 5-15 cm
    band along the edge of the coverage. On the CI-size fixtures (apartment and terrain, seeds 0-2) 0.15 m instead
    of 0.1 m took floor holes from 0-1.5 % to 0-0.5 % for 0.003 of F@5cm. Borders closed by a wall, a riser or the
    curtain a TSDF hangs below an edge seen from above are not open, so drops are not bridged."""
    frontier_max_slope_deg: float = 20.0
    """Faces within this angle of horizontal (facing up) count as floor for the frontier extension."""
    frontier_min_area: float = 1.0
    """Only borders of connected surfaces of at least this area (m^2) are extended (not specks or floaters)."""
    decimate: bool = True
    max_error: float = 0.01
    """Decimation stops before the ``error_percentile`` distance of the original vertices to the result exceeds
    this, m."""
    error_percentile: float = 95.0
    """Percentile of the vertex-to-result distances held to ``max_error``. Not the maximum: a raw TSDF mesh has a
    ragged fringe of border vertices that any collapse moves by a few cm, which says nothing about the surface."""
    tail_percentile: float = 99.9
    """A second, looser bound on the far tail of the same distances: ``tail_percentile`` held to ``max_tail_error``."""
    max_tail_error: float = 0.05
    """... m. The 95th percentile alone let a smooth surface decimate until a few small features went (Lyra-size
    apartment, depth smoothing on: 6,650 triangles with p99.9 6.5 cm and 89 of 50k sampled vertices beyond 5 cm, up
    to 21 cm; the tail bound stops at 13,302 triangles, p99.9 4.7 cm)."""
    min_triangles: int = 2000
    """Never decimate below this many triangles."""
    max_triangles: int = 2_000_000
    """Decimate at least to this many triangles, whatever the error (bounds file size and physics cost)."""
    error_samples: int = 50_000
    """Original vertices sampled to measure the decimation error."""


# ============================================================================================== entry point
def finish_mesh(mesh: TriangleMesh, cfg: MeshConfig | None = None,
                device: str | None = None) -> tuple[TriangleMesh, dict[str, Any]]:
    """Clean, hole-fill and decimate a raw surface mesh.

    Args:
        mesh: raw mesh (e.g. from :func:`lyra_isaac.geometry.surface.extract_surface`), world frame, metres.
        cfg: settings (defaults: :class:`MeshConfig`).
        device: "cuda" to measure the decimation error on the GPU (when torch sees one; see :func:`decimate`).

    Returns:
        (finished mesh, stats): counts of what each step removed or added, the decimation error reached, seconds.
        Vertex colours, if any, are dropped by decimation (use :func:`colorize` afterwards).

    Raises:
        ConversionError: the mesh is empty, or nothing survives the component filter.
    """
    cfg = cfg or MeshConfig()
    t0 = time.perf_counter()
    stats: dict[str, Any] = {"input_vertices": len(mesh.vertices), "input_triangles": mesh.n_triangles}
    if mesh.n_triangles == 0:
        raise ConversionError(None, "surface mesh has no triangles to finish")
    verts, faces = mesh.vertices.astype(np.float64), mesh.faces.astype(np.int64)
    colors = mesh.colors
    verts, faces, colors, n_merged = weld(verts, faces, colors, cfg.weld_tolerance)
    stats["vertices_merged"] = n_merged
    faces, n_degenerate, n_duplicate = drop_bad_faces(verts, faces)
    stats["degenerate_faces_dropped"] = n_degenerate
    stats["duplicate_faces_dropped"] = n_duplicate
    faces, comp_stats = filter_components(verts, faces, cfg)
    stats.update(comp_stats)
    if len(faces) == 0:
        raise ConversionError(None, "no surface component survived the component filter "
                                    f"(min_component_area {cfg.min_component_area} m^2)")
    if cfg.fill_holes:
        verts, faces, colors, hole_stats = fill_floor_holes(verts, faces, colors, cfg)
        stats.update(hole_stats)
    if cfg.frontier_extension > 0:
        verts, faces, colors, frontier_stats = extend_floor_frontiers(verts, faces, colors, cfg)
        stats.update(frontier_stats)
    verts, faces, colors = compact(verts, faces, colors)
    if cfg.decimate:
        verts, faces, dec_stats = decimate(verts, faces, cfg, device=device)
        stats.update(dec_stats)
        colors = None
    out = TriangleMesh(verts.astype(np.float32), faces.astype(np.int32), colors)
    stats["output_vertices"] = len(out.vertices)
    stats["output_triangles"] = out.n_triangles
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    logger.info("mesh: %d -> %d triangles (%d components dropped, %d holes filled) in %.1f s",
                stats["input_triangles"], out.n_triangles, stats.get("components_dropped", 0),
                stats.get("holes_filled", 0), stats["seconds"])
    return out, stats


# ============================================================================================== cleaning
def weld(verts: np.ndarray, faces: np.ndarray, colors: np.ndarray | None,
         tolerance: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    """Merge vertices that round to the same ``tolerance`` grid cell. Returns (verts, faces, colors, merged).

    Vertices are kept in the lexicographic order of their grid cells (x, then y, then z), the first of each cell.
    """
    q = np.round(verts / max(tolerance, 1e-12)).astype(np.int64)
    _, first, inverse = _unique_rows(q)
    merged = len(verts) - len(first)
    return verts[first], inverse[faces], None if colors is None else colors[first], int(merged)


def _unique_rows(rows: np.ndarray, return_inverse: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``np.unique(rows, axis=0, return_index=True, return_inverse=return_inverse)`` for (N, K) int64 rows, on
    one int64 key per row where the ranges allow (same results, several times faster than the row-wise sort).

    Returns:
        (unique rows (U, K), index of each one's first occurrence (U,), inverse (N,) or None).
    """
    keys = row_keys(rows)
    if keys is None:
        result = np.unique(rows, axis=0, return_index=True, return_inverse=return_inverse)
    else:
        result = np.unique(keys, return_index=True, return_inverse=return_inverse)
        result = (rows[result[1]], *result[1:])
    if not return_inverse:
        return result[0], result[1], None
    return result[0], result[1], result[2].reshape(-1)


def drop_bad_faces(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Drop faces with repeated vertices or (near) zero area, and duplicates (same vertex set, any order).

    Returns:
        (faces, degenerate dropped, duplicates dropped).
    """
    repeated = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 0] == faces[:, 2])
    area2 = np.linalg.norm(np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]]),
                           axis=1)
    degenerate = repeated | ~(area2 > 1e-14)
    faces = faces[~degenerate]
    _, first, _ = _unique_rows(np.sort(faces, axis=1), return_inverse=False)
    n_dup = len(faces) - len(first)
    return faces[np.sort(first)], int(degenerate.sum()), int(n_dup)


def face_areas(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F,) triangle areas, m^2."""
    return 0.5 * np.linalg.norm(np.cross(verts[faces[:, 1]] - verts[faces[:, 0]],
                                         verts[faces[:, 2]] - verts[faces[:, 0]]), axis=1)


def components(n_verts: int, faces: np.ndarray) -> np.ndarray:
    """(F,) connected-component label of each face (faces sharing a vertex are connected)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows = np.concatenate([faces[:, 0], faces[:, 1]])
    cols = np.concatenate([faces[:, 1], faces[:, 2]])
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n_verts, n_verts))
    _, labels = connected_components(graph, directed=False)
    return labels[faces[:, 0]]


def filter_components(verts: np.ndarray, faces: np.ndarray, cfg: MeshConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """Keep components with area >= min_component_area (and the fraction of the largest), or touching the floor.

    The largest component is always kept.
    """
    labels = components(len(verts), faces)
    n = int(labels.max()) + 1
    area = np.bincount(labels, weights=face_areas(verts, faces), minlength=n)
    low = np.full(n, np.inf)
    np.minimum.at(low, labels, verts[faces].reshape(-1, 9)[:, 2::3].min(axis=1))
    keep = area >= cfg.min_component_area
    if cfg.min_component_fraction > 0:
        keep &= area >= cfg.min_component_fraction * area.max()
    keep |= np.abs(low - cfg.floor_height) <= cfg.floor_band
    keep[int(np.argmax(area))] = True
    kept_faces = faces[keep[labels]]
    stats = {"components": n, "components_dropped": int((~keep).sum()),
             "component_area_dropped_m2": round(float(area[~keep].sum()), 4)}
    logger.info("mesh: %d components, dropped %d (%.3f m^2) below %.3f m^2 and off the floor", n,
                stats["components_dropped"], stats["component_area_dropped_m2"], cfg.min_component_area)
    return kept_faces, stats


def compact(verts: np.ndarray, faces: np.ndarray,
            colors: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Drop unreferenced vertices and re-index faces."""
    used = np.zeros(len(verts), dtype=bool)
    used[faces.reshape(-1)] = True
    remap = np.cumsum(used) - 1
    return verts[used], remap[faces], None if colors is None else colors[used]


# ============================================================================================== holes
def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """Closed loops of boundary edges (edges used by exactly one face), as vertex index arrays.

    Loops follow the faces' winding: for faces counter-clockwise seen from above, an outer border runs
    counter-clockwise and a hole clockwise (seen from above). Vertices where the boundary is not manifold (more
    than one outgoing boundary edge) are followed in an arbitrary order; loops that do not close are skipped.
    """
    edges = _directed_edges(faces)
    n = int(faces.max()) + 1
    code = _edge_codes(edges, n)
    # an edge a -> b has a twin when b -> a exists: their codes are 2k and 2k + 1, neighbours among the sorted
    # distinct codes; edges a -> a count as twinned
    distinct = _sorted_distinct(code)
    twinned = np.zeros(len(distinct), dtype=bool)
    pair = distinct[1:] == distinct[:-1] + 1
    pair &= (distinct[:-1] & 1) == 0
    twinned[:-1] |= pair
    twinned[1:] |= pair
    twinless = distinct[~twinned]
    boundary = edges[_edges_listed(edges, code, twinless, n, directed=True) & (edges[:, 0] != edges[:, 1])]
    if len(boundary) == 0:
        return []
    return chain_loops(boundary)


def chain_loops(edges: np.ndarray) -> list[np.ndarray]:
    """Closed loops, as vertex index arrays, chained from (E, 2) directed boundary edges a -> b (see
    :func:`boundary_loops`; non-manifold vertices are followed in an arbitrary order, open chains skipped)."""
    nxt: dict[int, list[int]] = {}
    for a, b in edges.tolist():
        nxt.setdefault(a, []).append(b)
    loops = []
    while nxt:
        start = next(iter(nxt))
        loop = [start]
        current = start
        closed = False
        for _ in range(len(edges) + 1):
            outs = nxt.get(current)
            if not outs:
                break
            following = outs.pop()
            if not outs:
                del nxt[current]
            if following == start:
                closed = True
                break
            loop.append(following)
            current = following
        if closed and len(loop) >= 3:
            loops.append(np.asarray(loop, dtype=np.int64))
    return loops


def _directed_edges(faces: np.ndarray) -> np.ndarray:
    """(3F, 2) int64 directed edges of (F, 3) faces as they wind: every face's 0 -> 1, then 1 -> 2, then 2 -> 0."""
    edges = np.empty((3 * len(faces), 2), dtype=np.int64)
    for k in range(3):
        edges[k * len(faces):(k + 1) * len(faces), 0] = faces[:, k]
        edges[k * len(faces):(k + 1) * len(faces), 1] = faces[:, (k + 1) % 3]
    return edges


def _edge_codes(edges: np.ndarray, n: int) -> np.ndarray:
    """(E,) int64 code of each directed (E, 2) edge over ``n`` vertices: ``2 * (min * n + max) + (a > b)``; an
    edge and its reverse differ in the last bit only, ``code >> 1`` names the undirected edge."""
    a, b = edges[:, 0], edges[:, 1]
    return 2 * (np.minimum(a, b) * n + np.maximum(a, b)) + (a > b)


def _sorted_distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values of a 1-D array (``np.unique`` without its extra passes)."""
    ordered = np.sort(values)
    if len(ordered) == 0:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _edges_listed(edges: np.ndarray, codes: np.ndarray, table: np.ndarray, n: int, *,
                  directed: bool) -> np.ndarray:
    """(E,) bool: which of the (E, 2) edges over ``n`` vertices have their ``codes`` in the sorted 1-D ``table``.

    Codes are :func:`_edge_codes` (``directed``) or those ``>> 1`` (undirected: ``min * n + max``). Only edges
    whose smaller vertex belongs to a listed edge are searched (a border is a small part of a mesh).
    """
    found = np.zeros(len(edges), dtype=bool)
    if len(table) == 0:
        return found
    listed = np.zeros(n, dtype=bool)
    listed[((table >> 1) if directed else table) // n] = True
    cand = np.flatnonzero(listed[np.minimum(edges[:, 0], edges[:, 1])])
    values = codes[cand]
    pos = np.minimum(np.searchsorted(table, values), len(table) - 1)
    found[cand] = table[pos] == values
    return found


def _signed_area_xy(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def fill_floor_holes(verts: np.ndarray, faces: np.ndarray, colors: np.ndarray | None,
                     cfg: MeshConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Fill holes of upward-facing, near-horizontal surfaces up to ``max_hole_area``.

    A boundary loop is such a hole when it runs clockwise seen from above (the inside of an upward surface),
    spans at most ``max_hole_height_range`` in z, and encloses at most ``max_hole_area`` (projected on XY). Each
    is closed with a fan of triangles around a new vertex at the loop's centroid (colour: the loop's mean), wound
    counter-clockwise seen from above like the floor around it.
    """
    loops = boundary_loops(faces)
    new_verts, new_faces, new_colors = [], [], []
    filled, filled_area, too_big = 0, 0.0, 0
    next_index = len(verts)
    for loop in loops:
        pts = verts[loop]
        if np.ptp(pts[:, 2]) > cfg.max_hole_height_range:
            continue
        area = _signed_area_xy(pts)
        if area >= 0:  # counter-clockwise from above: an outer border (or the underside of something)
            continue
        if -area > cfg.max_hole_area:
            too_big += 1
            continue
        center = pts.mean(axis=0)
        a = loop
        b = np.roll(loop, -1)
        # the hole's boundary runs clockwise from above; the fill triangle (b, a, centre) is counter-clockwise
        fan = np.stack([b, a, np.full(len(loop), next_index)], axis=1)
        new_verts.append(center[None])
        if colors is not None:
            new_colors.append(colors[loop].mean(axis=0, keepdims=True).round().astype(colors.dtype))
        new_faces.append(fan)
        next_index += 1
        filled += 1
        filled_area += -area
    stats = {"boundary_loops": len(loops), "holes_filled": filled, "hole_area_filled_m2": round(filled_area, 4),
             "floor_holes_too_big": too_big}
    logger.info("mesh: %d boundary loops, filled %d floor holes (%.3f m^2), %d floor-like holes above %.2f m^2",
                len(loops), filled, filled_area, too_big, cfg.max_hole_area)
    if filled == 0:
        return verts, faces, colors, stats
    verts = np.concatenate([verts, *new_verts])
    faces = np.concatenate([faces, *new_faces])
    if colors is not None:
        colors = np.concatenate([colors, *new_colors])
    return verts, faces, colors, stats


def extend_floor_frontiers(verts: np.ndarray, faces: np.ndarray, colors: np.ndarray | None,
                           cfg: MeshConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Extend the open borders of large floor-like surfaces outward by ``frontier_extension`` (see MeshConfig).

    A border edge (used by one face) of an upward face in a connected surface of at least ``frontier_min_area``,
    whose end vertices lie on floor (the mean normal of the faces within ``FRONTIER_NORMAL_RADIUS`` within
    ``frontier_max_slope_deg`` of up), gets a strip of two triangles on its outer side (to the
    right of the edge as the face winds it, counter-clockwise seen from above). Each border vertex moves once, along
    the mean outward direction of its border edges, following the slope of its border faces (capped at the slope
    limit); strips of neighbouring edges share those vertices, so the extended border stays connected. A border
    vertex stays where surface facing up lies :data:`FRONTIER_LEDGE_DROP` or more below where it would move to,
    within ``frontier_extension`` of it in XY: that border is a ledge's edge (a table top, a step down seen from
    above), not the edge of what the views saw.

    Args:
        verts: (V, 3) float64, metres, Z up.
        faces: (F, 3) int64, wound counter-clockwise seen from the front (above, for a floor).
        colors: (V, C) per-vertex colours or None (new vertices copy their source vertex).
        cfg: ``frontier_extension``, ``frontier_max_slope_deg``, ``frontier_min_area``.

    Returns:
        (verts, faces, colors, stats with ``frontier_edges_extended``, ``frontier_area_added_m2`` and
        ``frontier_ledge_vertices``: border vertices left as ledges' edges).
    """
    stats: dict[str, Any] = {"frontier_edges_extended": 0, "frontier_area_added_m2": 0.0}
    if len(faces) == 0:
        return verts, faces, colors, stats
    n = len(verts)
    edges = _directed_edges(faces)
    undirected = _edge_codes(edges, n) >> 1
    ordered = np.sort(undirected)
    single = np.ones(len(ordered), dtype=bool)  # the only edge with its vertex pair: used by one face
    single[1:] &= ordered[1:] != ordered[:-1]
    single[:-1] &= ordered[:-1] != ordered[1:]
    border = _edges_listed(edges, undirected, ordered[single], n, directed=False)
    tri = verts[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(normal, axis=1)
    labels = components(n, faces)
    area = np.bincount(labels, weights=0.5 * length)
    # edge k * F + i belongs to face i (see _directed_edges): per-face tests tile to the edges
    face_ok = (normal[:, 2] > 0) & (area[labels] >= cfg.frontier_min_area)
    candidate = np.flatnonzero(border & np.tile(face_ok, 3))
    # a fused surface's border is a ragged, curled fringe: judge the surface by its mean normal around the vertex
    ends = np.unique(edges[candidate].reshape(-1))
    smooth = np.zeros((n, 3))
    centroids = (tri[:, 0] + tri[:, 1] + tri[:, 2]) / 3.0
    smooth[ends] = _mean_normal_near(verts[ends], centroids, normal, FRONTIER_NORMAL_RADIUS)
    floor_vertex = smooth[:, 2] >= np.cos(np.radians(cfg.frontier_max_slope_deg))
    use = candidate[floor_vertex[edges[candidate, 0]] & floor_vertex[edges[candidate, 1]]]
    a, b = edges[use, 0], edges[use, 1]
    if len(a) == 0:
        logger.info("mesh: no open floor border to extend")
        return verts, faces, colors, stats
    d = verts[b, :2] - verts[a, :2]
    d_len = np.linalg.norm(d, axis=1)
    ok = d_len > 1e-9
    a, b, d, d_len = a[ok], b[ok], d[ok], d_len[ok]
    out = np.stack([d[:, 1], -d[:, 0]], axis=1) / d_len[:, None]  # right of a -> b: away from the face
    direction = np.zeros((n, 2))
    gradient = np.zeros((n, 2))
    weight = np.zeros(n)
    for v in (a, b):
        np.add.at(direction, v, out)
        np.add.at(gradient, v, -smooth[v, :2] / smooth[v, 2:3])  # dz/dxy of the surface around the vertex
        np.add.at(weight, v, 1.0)
    moved = np.unique(np.concatenate([a, b]))
    dir_len = np.linalg.norm(direction[moved], axis=1)
    good = dir_len > 1e-6  # a vertex whose border edges cancel out (a spike) stays
    step = np.zeros((n, 2))
    step[moved[good]] = direction[moved[good]] / dir_len[good, None] * cfg.frontier_extension
    slope = gradient / np.maximum(weight, 1.0)[:, None]
    rise = np.einsum("ij,ij->i", slope, step)
    limit = cfg.frontier_extension * np.tan(np.radians(cfg.frontier_max_slope_deg))
    rise = np.clip(rise, -limit, limit)
    # a border above surface that the views saw lower down is the edge of a ledge (a table or planter top, a step
    # down seen from above), not the edge of what they saw: it stays
    targets = verts[moved].copy()
    targets[:, :2] += step[moved]
    targets[:, 2] += rise[moved]
    ground_like = normal[:, 2] > 0.5 * length  # within 60 deg of up
    ledge = _surface_below(targets, centroids[ground_like], cfg.frontier_extension, FRONTIER_LEDGE_DROP)
    stats["frontier_ledge_vertices"] = int((good & ledge).sum())
    good &= ~ledge
    keep_edge = good[np.searchsorted(moved, a)] & good[np.searchsorted(moved, b)]
    a, b = a[keep_edge], b[keep_edge]
    new_index = np.full(n, -1, dtype=np.int64)
    sources = moved[good]
    new_index[sources] = n + np.arange(len(sources))
    new_verts = verts[sources].copy()
    new_verts[:, :2] += step[sources]
    new_verts[:, 2] += rise[sources]
    a2, b2 = new_index[a], new_index[b]
    strip = np.concatenate([np.stack([a2, b2, b], axis=1), np.stack([a2, b, a], axis=1)])
    verts = np.concatenate([verts, new_verts])
    faces = np.concatenate([faces, strip])
    if colors is not None:
        colors = np.concatenate([colors, colors[sources]])
    stats["frontier_edges_extended"] = int(len(a))
    stats["frontier_area_added_m2"] = round(float(face_areas(verts, strip).sum()), 4)
    logger.info("mesh: extended %d open floor border edges by %.2f m (%.3f m^2)", len(a), cfg.frontier_extension,
                stats["frontier_area_added_m2"])
    return verts, faces, colors, stats


FRONTIER_NORMAL_RADIUS = 0.1
"""Radius (m) over which a border vertex's surface normal is averaged (area-weighted face normals)."""
FRONTIER_LEDGE_DROP = 0.1
"""A border vertex is not extended where surface facing up (within 60 deg) lies this far (m) or more below where it
would move to, within ``frontier_extension`` of it in XY: the border is then a ledge's edge, its drop seen."""


def _surface_below(points: np.ndarray, centroids: np.ndarray, radius: float, drop: float) -> np.ndarray:
    """(N,) bool: some of the (F, 3) face centroids lie within ``radius`` of each of the (N, 3) points in XY and at
    least ``drop`` below it."""
    from scipy.spatial import cKDTree

    below = np.zeros(len(points), dtype=bool)
    if len(points) == 0 or len(centroids) == 0:
        return below
    near = _near_cells(points[:, :2], centroids[:, :2], radius)
    if len(near) == 0:
        return below
    pairs = cKDTree(points[:, :2]).sparse_distance_matrix(
        cKDTree(centroids[near, :2], balanced_tree=False, compact_nodes=False), radius, output_type="coo_matrix")
    lower = centroids[near[pairs.col], 2] <= points[pairs.row, 2] - drop
    below[pairs.row[lower]] = True
    return below


def _mean_normal_near(points: np.ndarray, centroids: np.ndarray, area_normals: np.ndarray,
                      radius: float) -> np.ndarray:
    """(N, 3) unit mean of the area-weighted face normals (F, 3) whose centroids (F, 3) lie within ``radius`` of
    each of (N, 3) points (zero where none).

    Only the centroids in grid cells (edge ``radius``) next to a point's cell can be that near: they alone go into
    the KD-tree (a Lyra-size mesh: 0.3M of 1.1M faces for 12k border vertices), and the pairs come as a sparse
    matrix, not Python lists: 0.85 -> 0.35 s there. Sums run in face order, as over all faces.
    """
    from scipy.sparse import coo_matrix
    from scipy.spatial import cKDTree

    near = _near_cells(points, centroids, radius)
    pairs = cKDTree(points).sparse_distance_matrix(
        cKDTree(centroids[near], balanced_tree=False, compact_nodes=False), radius, output_type="coo_matrix")
    adjacency = coo_matrix((np.ones(pairs.nnz), (pairs.row, pairs.col)), shape=(len(points), len(near))).tocsr()
    total = adjacency @ area_normals[near]
    norm = np.linalg.norm(total, axis=1, keepdims=True)
    return np.where(norm > 0, total / np.maximum(norm, 1e-12), 0.0)


NEAR_GRID_MAX_CELLS = 1 << 27
"""Largest boolean grid :func:`_near_cells` allocates (128 MiB); beyond it every candidate is kept."""


def _near_cells(points: np.ndarray, candidates: np.ndarray, radius: float) -> np.ndarray:
    """(M,) increasing indices of the (C, D) candidates in a cube cell (edge ``radius``) that is, or touches, the
    cell of one of the (N, D) points: a superset of the candidates within ``radius`` of a point (D = 2 or 3)."""
    if len(points) == 0 or len(candidates) == 0 or not radius > 0:
        return np.arange(len(candidates)) if len(points) else np.zeros(0, dtype=np.int64)
    low = points.min(axis=0) - 1.5 * radius
    shape = np.floor((points.max(axis=0) + 1.5 * radius - low) / radius).astype(np.int64) + 1
    if int(np.prod(shape)) > NEAR_GRID_MAX_CELLS:
        return np.arange(len(candidates))
    grid = np.zeros(tuple(shape), dtype=bool)
    cell = np.floor((points - low) / radius).astype(np.int64)
    for offset in itertools.product((-1, 0, 1), repeat=points.shape[1]):
        grid[tuple((cell + offset).T)] = True
    cand = np.floor((candidates - low) / radius)
    index = np.flatnonzero(np.all((cand >= 0) & (cand < shape), axis=1))
    cand = cand[index].astype(np.int64)
    return index[grid[tuple(cand.T)]]


# ============================================================================================== decimation
def surface_distance(verts: np.ndarray, faces: np.ndarray, points: np.ndarray, *, exact: bool = True,
                     device: str | None = None, cell: float = 0.02) -> np.ndarray:
    """(N,) unsigned distance of (N, 3) points to the triangle mesh (V, 3) verts, (F, 3) faces, metres.

    On a CUDA ``device`` (when torch sees one) the exact grid search of
    :func:`~lyra_isaac.geometry.distance_torch.point_mesh_distance_torch` (float64; ``cell``: its grid, metres, a few
    times the distances of interest). Otherwise open3d's BVH when open3d is installed (float32); otherwise the exact
    numpy/scipy :func:`~lyra_isaac.geometry.distance.point_mesh_distance` (float64), for any triangle sizes, or with
    ``exact=False`` its faster upper bound (exact where the mesh's triangles are small against the distances).
    """
    if device is not None and str(device).startswith("cuda") and _cuda_available():
        from .distance_torch import point_mesh_distance_torch

        return point_mesh_distance_torch(verts, faces, points, cell=cell, device=device)
    if resolve_backend("auto") == "open3d":
        import open3d as o3d

        scene = open3d_scene(verts, faces)
        return scene.compute_distance(o3d.core.Tensor(points.astype(np.float32))).numpy()
    from .distance import point_mesh_distance

    return point_mesh_distance(verts, faces, points, exact=exact)


def _cuda_available() -> bool:
    """Whether torch is installed and sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


COLOR_MAX_SOURCES = 3_000_000
"""At most this many Gaussians (a fixed random subset) colour the visual mesh."""


def closest_point_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(N, 3) closest points on triangles (a, b, c) (each (N, 3)) to points p (Ericson, Real-Time Collision
    Detection, 5.1.5), vectorized over N."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = np.einsum("ij,ij->i", ab, ap), np.einsum("ij,ij->i", ac, ap)
    bp = p - b
    d3, d4 = np.einsum("ij,ij->i", ab, bp), np.einsum("ij,ij->i", ac, bp)
    cp = p - c
    d5, d6 = np.einsum("ij,ij->i", ab, cp), np.einsum("ij,ij->i", ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = 1.0 / (va + vb + vc)
        v = vb * denom
        w = vc * denom
        out = a + ab * v[:, None] + ac * w[:, None]  # inside the face
        # edges
        t_ab = d1 / (d1 - d3)
        t_ac = d2 / (d2 - d6)
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
    on_bc = (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)
    out = np.where(on_bc[:, None], b + (c - b) * t_bc[:, None], out)
    on_ac = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
    out = np.where(on_ac[:, None], a + ac * t_ac[:, None], out)
    on_ab = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
    out = np.where(on_ab[:, None], a + ab * t_ab[:, None], out)
    # vertices
    out = np.where(((d6 >= 0) & (d5 <= d6))[:, None], c, out)
    out = np.where(((d3 >= 0) & (d4 <= d3))[:, None], b, out)
    out = np.where(((d1 <= 0) & (d2 <= 0))[:, None], a, out)
    out = np.where(np.isfinite(out), out, a)
    # zero-area triangles (repeated or collinear vertices) are their edges: the region tests above divide by zero
    # there and fell back to vertex a, which is wrong for a point beside the middle of the segment
    cross = np.cross(ab, ac)
    area2 = np.einsum("ij,ij->i", cross, cross)
    scale = np.einsum("ij,ij->i", ab, ab) * np.einsum("ij,ij->i", ac, ac)
    flat = np.flatnonzero(area2 <= 1e-12 * scale)
    if len(flat):
        candidates = [_closest_on_segment(p[flat], s, e) for s, e in ((a[flat], b[flat]), (a[flat], c[flat]),
                                                                     (b[flat], c[flat]))]
        dist = np.stack([np.einsum("ij,ij->i", q - p[flat], q - p[flat]) for q in candidates])
        out[flat] = np.stack(candidates)[np.argmin(dist, axis=0), np.arange(len(flat))]
    return out


def _closest_on_segment(p: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(N, 3) closest points on segments start-end (each (N, 3); a zero-length segment is its point) to p."""
    d = end - start
    length2 = np.einsum("ij,ij->i", d, d)
    t = np.einsum("ij,ij->i", p - start, d) / np.where(length2 > 0, length2, 1.0)
    return start + d * np.clip(np.where(length2 > 0, t, 0.0), 0.0, 1.0)[:, None]


def decimate(verts: np.ndarray, faces: np.ndarray, cfg: MeshConfig,
             device: str | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Quadric decimation (fast-simplification) to an error bound.

    The mesh is halved repeatedly; after each halving the ``error_percentile`` distance from (a sample of) the
    original vertices to the result is measured (without open3d as an upper bound from the nearest candidate
    triangles: conservative, and exact for these small triangles), and the last result within ``max_error`` is
    kept (so the triangle count is within a factor of two of the smallest one the error bound allows), with its
    ``tail_percentile`` distance within ``max_tail_error`` too, never below
    ``min_triangles``. Meshes above ``max_triangles`` are decimated to it first, whatever the error. With more
    than one thread (:func:`~lyra_isaac.threads.cpu_threads`) the next halving is computed while the current
    one's error is measured (the same result as one thread; a halving that is not kept is thrown away). On a CUDA
    ``device`` the error is measured there, exactly (:func:`surface_distance`; the CPU's upper bound can only be
    larger, so the two may keep different halvings where the bound is nearly reached).

    Returns:
        (verts, faces, stats with ``decimation_error_m`` (at ``error_percentile``), ``decimation_error_max_m`` and
        ``decimation_steps``).
    """
    import fast_simplification

    rng = np.random.default_rng(0)
    sample = verts[rng.choice(len(verts), size=min(cfg.error_samples, len(verts)), replace=False)]
    best_v, best_f, best_err = verts, faces, (0.0, 0.0, 0.0)
    steps = 0
    if len(faces) > cfg.max_triangles:
        best_v, best_f = fast_simplification.simplify(verts, faces.astype(np.int32), target_count=cfg.max_triangles)
        d = surface_distance(best_v, best_f, sample, exact=False, device=device, cell=2 * cfg.max_error)
        best_err = _decimation_errors(d, cfg)
        steps += 1
    with ThreadPoolExecutor(max_workers=1) if cpu_threads() > 1 else nullcontext() as pool:
        # with a spare thread, the next halving (fast-simplification releases the GIL) runs while this one's error
        # is measured; it is used only if this one is kept, so the result is that of the serial loop
        halving = _halve(pool, best_v, best_f) if len(best_f) // 2 >= cfg.min_triangles else None
        while halving is not None:
            v, f = halving()
            halving = None
            steps += 1
            if len(f) == 0 or len(f) >= len(best_f):
                break
            if len(f) // 2 >= cfg.min_triangles:
                halving = _halve(pool, v, f)
            d = surface_distance(v, f, sample, exact=False, device=device, cell=2 * cfg.max_error)
            err = _decimation_errors(d, cfg)
            if err[0] > cfg.max_error or err[2] > cfg.max_tail_error:
                break
            best_v, best_f, best_err = v, f, err
    stats = {"decimation_steps": steps, "decimation_error_m": round(best_err[0], 5),
             "decimation_error_percentile": cfg.error_percentile, "decimation_error_max_m": round(best_err[1], 5),
             "decimation_error_tail_m": round(best_err[2], 5), "decimation_error_tail_percentile": cfg.tail_percentile}
    logger.info("mesh: decimated %d -> %d triangles in %d halvings (p%g error %.4f m, bound %.4f m)", len(faces),
                len(best_f), steps, cfg.error_percentile, best_err[0], cfg.max_error)
    return np.asarray(best_v, dtype=np.float64), np.asarray(best_f, dtype=np.int64), stats


def _decimation_errors(distances: np.ndarray, cfg: MeshConfig) -> tuple[float, float, float]:
    """(``error_percentile`` distance, maximum, ``tail_percentile`` distance) of the sampled vertices, metres."""
    low, tail = np.percentile(distances, [cfg.error_percentile, cfg.tail_percentile])
    return float(low), float(distances.max()), float(tail)


def _halve(pool: ThreadPoolExecutor | None, verts: np.ndarray,
           faces: np.ndarray) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    """fast-simplification's halving of the mesh, as a call that returns (verts, faces): started now on ``pool``,
    or run when called where ``pool`` is None."""
    import fast_simplification

    if pool is None:
        return partial(fast_simplification.simplify, verts, faces.astype(np.int32), target_reduction=0.5)
    return pool.submit(fast_simplification.simplify, verts, faces.astype(np.int32), target_reduction=0.5).result


# ============================================================================================== colour
@dataclass
class ColorSources:
    """The Gaussians that colour a mesh (:func:`color_sources`), ready to query; they do not depend on the mesh,
    so they can be made while it is still being finished."""

    tree: Any
    """``scipy.spatial.cKDTree`` over the sources' (M, 3) centres, world frame, metres."""
    rgb: np.ndarray
    """(M, 3) float32 DC colour in [0, 1]."""
    alpha: np.ndarray
    """(M,) float32 opacity in [0, 1]."""


def color_sources(scene_world: GaussianScene) -> ColorSources | None:
    """The Gaussians :func:`colorize` takes colours from: all of ``scene_world``, or above ``COLOR_MAX_SOURCES`` a
    fixed random subset of that size (a Lyra scene has ~75 Gaussians per collision vertex), with an unbalanced
    KD-tree over their centres (together 7.5 s -> ~1 s at 11M Gaussians). None for an empty scene.
    """
    from scipy.spatial import cKDTree

    if len(scene_world) == 0:
        return None
    sources = scene_world
    if len(scene_world) > COLOR_MAX_SOURCES:  # colours and opacities of the subset only, not of every Gaussian
        sources = scene_world.subset(np.sort(np.random.default_rng(0).choice(len(scene_world), COLOR_MAX_SOURCES,
                                                                             replace=False)))
    tree = cKDTree(sources.means, balanced_tree=False, compact_nodes=False)
    return ColorSources(tree=tree, rgb=sources.colors(), alpha=sources.opacities())


def colorize(mesh: TriangleMesh, scene_world: GaussianScene, k: int = 8,
             sources: ColorSources | None = None) -> TriangleMesh:
    """Vertex colours from the splats near each vertex.

    Each vertex takes the opacity- and distance-weighted mean DC colour of its ``k`` nearest Gaussian centres
    (weight = opacity / (distance + 1 cm)), among :func:`color_sources` of the scene.

    Args:
        mesh: world frame, metres.
        scene_world: Gaussians in the same frame.
        k: neighbours per vertex.
        sources: ``color_sources(scene_world)`` when already made (e.g. on another thread while the mesh was
            finished); made here when None.

    Returns:
        A new TriangleMesh with (V, 3) uint8 colours (grey where the scene is empty).
    """
    if len(scene_world) == 0 or len(mesh.vertices) == 0:
        colors = np.full((len(mesh.vertices), 3), 128, dtype=np.uint8)
        return TriangleMesh(mesh.vertices, mesh.faces, colors)
    if sources is None:
        sources = color_sources(scene_world)
    k = int(min(k, len(sources.alpha)))
    dist, idx = sources.tree.query(mesh.vertices, k=k, workers=cpu_threads())
    if k == 1:
        dist, idx = dist[:, None], idx[:, None]
    w = sources.alpha[idx] / (dist + 0.01)
    w_sum = w.sum(axis=1, keepdims=True)
    color = (sources.rgb[idx] * w[..., None]).sum(axis=1) / np.maximum(w_sum, 1e-12)
    color = np.where(w_sum > 0, color, 0.5)
    return TriangleMesh(mesh.vertices, mesh.faces, np.clip(np.round(color * 255), 0, 255).astype(np.uint8))
