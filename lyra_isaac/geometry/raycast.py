"""Ray casting against a triangle mesh for regular ray grids: open3d's ``RaycastingScene`` or a numpy rasterizer.

Two ray layouts cover every cast in the pipeline:

- :func:`vertical_layers`: one downward ray per cell of a regular XY grid, continued through every surface it meets
  (the walkable height map).
- :func:`first_visible`: one ray per pixel of a pinhole camera; the first hit on a *front* face whose point is not
  ``hidden`` (the perspective previews, which look through back faces and a ceiling cut-away).

Backends (``backend=``): ``"open3d"`` casts rays through open3d's BVH (``RaycastingScene``); ``"numpy"`` needs no
open3d: each triangle is rasterized over the ray grid (the grid cells, or pixels, inside its projected bounding
box become candidate rays) and every candidate is tested exactly with the Moller-Trumbore ray-triangle test, in
chunks of at most ``CHUNK_CANDIDATES``. For these grid layouts that is as exact as a BVH and needs no acceleration
structure. ``"auto"`` (default) takes open3d when it imports and numpy otherwise: open3d is a core dependency here,
but it is too large to travel to some GPU machines, so the whole conversion also runs without it. Tests compare the
two backends.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterator
from typing import Literal

import numpy as np

logger = logging.getLogger(__name__)

Backend = Literal["auto", "open3d", "numpy"]

CHUNK_CANDIDATES = 4_000_000
"""At most this many (ray, triangle) candidate pairs are tested at once by the numpy backend (~0.5 GB)."""
EDGE_TOLERANCE = 1e-7
"""Barycentric slack: a ray through a shared edge or vertex hits (both) neighbouring triangles, never neither."""
MIN_DETERMINANT = 1e-12
"""Rays (nearly) parallel to a triangle's plane do not hit it."""
GRID_SLACK = 1e-6
"""Metres: a grid ray this close outside a triangle's bounding box is still tested against it."""
NEAR_PLANE = 1e-4
"""Camera-space depth (metres) below which a vertex counts as behind the camera (its triangle is not projected)."""


def resolve_backend(backend: Backend = "auto") -> str:
    """"open3d" or "numpy": ``auto`` is open3d when it can be imported."""
    if backend not in ("auto", "open3d", "numpy"):
        raise ValueError(f"unknown ray-cast backend '{backend}' (choose auto, open3d or numpy)")
    if backend != "auto":
        return backend
    global _open3d_not_installed
    if _open3d_not_installed:
        return "numpy"
    try:
        import open3d  # noqa: F401  (slow import; only its presence matters here)
    except ImportError:
        # a failed import searches every sys.path entry again on each call (0.6 s of a conversion on the H100
        # machine): remembered when open3d is truly not installed, not when an import of it is blocked
        try:
            _open3d_not_installed = importlib.util.find_spec("open3d") is None
        except (ImportError, ValueError):
            pass
        logger.info("ray casting: open3d is not installed, using the numpy rasterizer")
        return "numpy"
    return "open3d"


_open3d_not_installed = False
"""Set once :func:`resolve_backend` found that open3d is not installed (see there)."""


def open3d_scene(vertices: np.ndarray, faces: np.ndarray):
    """An open3d ``RaycastingScene`` holding the (V, 3) float mesh with (F, 3) int faces (open3d must import)."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
                        o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)))
    return scene


def pinhole_rays(eye: np.ndarray, target: np.ndarray, width: int, height: int,
                 fov_deg: float) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """A Z-up pinhole camera at ``eye`` looking at ``target`` with horizontal field of view ``fov_deg``.

    Returns:
        directions: (height * width, 3) float64 unit ray directions, row-major pixels (row 0 at the top).
        project: the matching ``project`` callable for :func:`first_visible`: (K, 3) points -> (K, 3) (column,
            row, depth along the camera axis), column and row NaN at or behind ``NEAR_PLANE``.
    """
    eye = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-6:
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    focal = 0.5 * width / np.tan(np.radians(fov_deg) / 2)
    u, v = np.meshgrid(np.arange(width) + 0.5 - width / 2, np.arange(height) + 0.5 - height / 2)
    directions = forward[None] * focal + u.reshape(-1, 1) * right[None] - v.reshape(-1, 1) * up[None]
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)

    def project(points: np.ndarray) -> np.ndarray:
        rel = points - eye[None]
        depth = rel @ forward
        safe = np.where(depth > NEAR_PLANE, depth, np.nan)
        return np.stack([focal * (rel @ right) / safe + width / 2 - 0.5,
                         -focal * (rel @ up) / safe + height / 2 - 0.5, depth], axis=1)

    return directions, project


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3) float32 unit normals from the winding (v1 - v0) x (v2 - v0); zero for degenerate faces."""
    v = vertices[faces].astype(np.float64)
    n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return (n / np.where(length > 0, length, 1.0)).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# vertical layers


def vertical_layers(vertices: np.ndarray, faces: np.ndarray, xs: np.ndarray, ys: np.ndarray, z_start: float,
                    max_layers: int, merge_distance: float = 1e-3,
                    backend: Backend = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Downward rays from height ``z_start`` at every grid point (x, y), each continued through every surface.

    Args:
        vertices: (V, 3) float, metres, Z up.
        faces: (F, 3) int vertex indices.
        xs: (W,) float increasing x of the grid columns; ys: (H,) float increasing y of the grid rows. Rays are
            ordered row-major: ray ``r * W + c`` is at (xs[c], ys[r]) (``np.meshgrid(xs, ys)`` raveled).
        z_start: height the rays start from (above the mesh), metres.
        max_layers: at most this many hits per ray, the highest first.
        merge_distance: a hit less than this (metres) below the previous hit of the same ray is the same surface
            (a shared edge, or open3d's continuation step).
        backend: see the module docstring.

    Returns:
        z: (L, H*W) float32 hit heights, top first, NaN after a ray's last hit (L <= max_layers, at least 1).
        normals: (L, H*W, 3) float32 unit normals of the hit triangles (winding orientation), NaN where no hit.
    """
    vertices = np.asarray(vertices, dtype=np.float32)
    faces = np.asarray(faces, dtype=np.int64)
    xs = np.asarray(xs, dtype=np.float32)
    ys = np.asarray(ys, dtype=np.float32)
    if resolve_backend(backend) == "open3d":
        return _vertical_layers_open3d(vertices, faces, xs, ys, z_start, max_layers, merge_distance)
    return _vertical_layers_numpy(vertices, faces, xs, ys, z_start, max_layers, merge_distance)


def _vertical_layers_open3d(vertices, faces, xs, ys, z_start, max_layers, merge_distance):
    import open3d as o3d

    scene = open3d_scene(vertices, faces)
    gx, gy = np.meshgrid(xs, ys)
    n = gx.size
    rays = np.zeros((n, 6), dtype=np.float32)
    rays[:, 0], rays[:, 1], rays[:, 2], rays[:, 5] = gx.ravel(), gy.ravel(), z_start, -1.0
    z_layers, normal_layers = [], []
    active = np.arange(n)
    current_z = np.full(n, z_start, dtype=np.float32)
    for _ in range(max_layers):
        if len(active) == 0:
            break
        rays[active, 2] = current_z[active]
        result = scene.cast_rays(o3d.core.Tensor(rays[active]))
        t_hit = result["t_hit"].numpy()
        hit = np.isfinite(t_hit)
        z = np.full(n, np.nan, dtype=np.float32)
        layer_normals = np.full((n, 3), np.nan, dtype=np.float32)
        idx = active[hit]
        z[idx] = current_z[idx] - t_hit[hit]
        layer_normals[idx] = result["primitive_normals"].numpy()[hit]
        z_layers.append(z)
        normal_layers.append(layer_normals)
        current_z[idx] = z[idx] - merge_distance
        active = idx
    if not z_layers:
        return np.full((1, n), np.nan, np.float32), np.full((1, n, 3), np.nan, np.float32)
    return np.stack(z_layers), np.stack(normal_layers)


def _vertical_layers_numpy(vertices, faces, xs, ys, z_start, max_layers, merge_distance):
    n = len(xs) * len(ys)
    width = len(xs)
    normals = face_normals(vertices, faces)
    tri = vertices[faces].astype(np.float64)  # (F, 3, 3)
    col_lo, col_hi = _grid_span(tri[:, :, 0], xs)
    row_lo, row_hi = _grid_span(tri[:, :, 1], ys)
    keep = (col_hi >= col_lo) & (row_hi >= row_lo) & (np.abs(normals[:, 2]) > 0)  # vertical faces: no hit
    rays, ts, prims = [], [], []
    direction = np.array([0.0, 0.0, -1.0])
    for face, col, row in _candidates(np.flatnonzero(keep), col_lo, col_hi, row_lo, row_hi):
        origins = np.stack([xs[col].astype(np.float64), ys[row].astype(np.float64),
                            np.full(len(col), z_start, dtype=np.float64)], axis=1)
        t, _, hit = _moller_trumbore(origins, direction[None], tri[face])
        rays.append(row[hit] * width + col[hit])
        ts.append(t[hit])
        prims.append(face[hit])
    if not rays or not sum(len(r) for r in rays):
        return np.full((1, n), np.nan, np.float32), np.full((1, n, 3), np.nan, np.float32)
    ray, t, prim = np.concatenate(rays), np.concatenate(ts), np.concatenate(prims)
    order = np.lexsort((t, ray))
    ray, t, prim = ray[order], t[order], prim[order]
    same_ray = np.r_[False, ray[1:] == ray[:-1]]
    duplicate = same_ray & (np.r_[np.inf, np.diff(t)] < merge_distance)
    ray, t, prim = ray[~duplicate], t[~duplicate], prim[~duplicate]
    first = np.r_[True, ray[1:] != ray[:-1]]
    rank = np.arange(len(ray)) - np.maximum.accumulate(np.where(first, np.arange(len(ray)), 0))
    use = rank < max_layers
    ray, t, prim, rank = ray[use], t[use], prim[use], rank[use]
    layers = int(rank.max()) + 1
    z = np.full((layers, n), np.nan, dtype=np.float32)
    layer_normals = np.full((layers, n, 3), np.nan, dtype=np.float32)
    z[rank, ray] = (z_start - t).astype(np.float32)
    layer_normals[rank, ray] = normals[prim]
    return z, layer_normals


def _grid_span(coords: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last index of the increasing ``axis`` samples within [min, max] (+- ``GRID_SLACK``) of each row of
    ``coords`` (F, 3); last < first when none."""
    axis = axis.astype(np.float64)
    lo = np.searchsorted(axis, coords.min(axis=1) - GRID_SLACK, side="left")
    hi = np.searchsorted(axis, coords.max(axis=1) + GRID_SLACK, side="right") - 1
    return lo.astype(np.int64), hi.astype(np.int64)


def _candidates(face_ids: np.ndarray, col_lo: np.ndarray, col_hi: np.ndarray, row_lo: np.ndarray,
                row_hi: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(face, col, row) int64 arrays of every grid point in each face's box, at most ``CHUNK_CANDIDATES`` a chunk.

    A single face whose box alone exceeds the chunk comes as a chunk of its own."""
    ncols = col_hi[face_ids] - col_lo[face_ids] + 1
    counts = ncols * (row_hi[face_ids] - row_lo[face_ids] + 1)
    ends = np.cumsum(counts)
    start = 0
    while start < len(face_ids):
        base = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, base + CHUNK_CANDIDATES, side="right")), start + 1)
        ids, cnt, nc = face_ids[start:stop], counts[start:stop], ncols[start:stop]
        face = np.repeat(ids, cnt)
        local = np.arange(int(cnt.sum()), dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        width = np.repeat(nc, cnt)
        yield face, col_lo[face] + local % width, row_lo[face] + local // width
        start = stop


def _moller_trumbore(origins: np.ndarray, directions: np.ndarray,
                     triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray-triangle intersection, pairwise. origins (N, 3), directions (N, 3) or (1, 3), triangles (N, 3, 3).

    Returns t (N,) distance along the direction, uv (N, 2) barycentrics of v1 and v2, hit (N,) bool (t > 0)."""
    v0 = triangles[:, 0]
    e1 = triangles[:, 1] - v0
    e2 = triangles[:, 2] - v0
    d = np.broadcast_to(directions, origins.shape)
    p = np.cross(d, e2)
    det = np.einsum("ij,ij->i", e1, p)
    ok = np.abs(det) > MIN_DETERMINANT
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s = origins - v0
    u = np.einsum("ij,ij->i", s, p) * inv
    q = np.cross(s, e1)
    v = np.einsum("ij,ij->i", d, q) * inv
    t = np.einsum("ij,ij->i", e2, q) * inv
    hit = ok & (u >= -EDGE_TOLERANCE) & (v >= -EDGE_TOLERANCE) & (u + v <= 1 + EDGE_TOLERANCE) & (t > 0)
    return t, np.stack([u, v], axis=1), hit


# ----------------------------------------------------------------------------------------------------------------
# pinhole views


def first_visible(vertices: np.ndarray, faces: np.ndarray, eye: np.ndarray, directions: np.ndarray,
                  width: int, height: int, project: Callable[[np.ndarray], np.ndarray] | None = None,
                  hidden: Callable[[np.ndarray], np.ndarray] | None = None, max_skips: int = 8,
                  cull_back_faces: bool = True,
                  backend: Backend = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First front-face hit per pixel ray that is not ``hidden``; back faces and hidden points are looked through.

    Args:
        vertices: (V, 3) float, metres; faces: (F, 3) int.
        eye: (3,) camera centre, metres.
        directions: (height * width, 3) float unit ray directions, row-major pixels.
        width, height: image size in pixels.
        project: (K, 3) points -> (K, 3) float (column, row, depth): pixel coordinates (pixel centres at integers)
            and depth along the camera axis, metres (column and row are only read where depth > ``NEAR_PLANE``);
            required by the numpy backend (it rasterizes each triangle's projected box, clipped at the near
            plane).
        hidden: (K, 3) hit points -> (K,) bool, True to look through the point (e.g. above a cut-away height).
        max_skips: the open3d backend continues a ray past at most this many back faces or hidden hits (the numpy
            backend has no limit).
        cull_back_faces: False to take the first hit on any face (a plain render of a closed scene).
        backend: see the module docstring.

    Returns:
        t: (N,) float64 hit distance in units of each direction's length (inf: none); prim: (N,) int64 face index
        (-1: none); uv: (N, 2) float64 barycentrics of the face's v1 and v2 at the hit; normals: (N, 3) float64
        unit face normals.
    """
    vertices = np.asarray(vertices, dtype=np.float32)
    faces = np.asarray(faces, dtype=np.int64)
    eye = np.asarray(eye, dtype=np.float64)
    directions = np.asarray(directions, dtype=np.float64)
    if resolve_backend(backend) == "open3d":
        return _first_visible_open3d(vertices, faces, eye, directions, hidden, max_skips, cull_back_faces)
    if project is None:
        raise ValueError("the numpy ray-cast backend needs project= to rasterize triangles")
    return _first_visible_numpy(vertices, faces, eye, directions, width, height, project, hidden, cull_back_faces)


def _first_visible_open3d(vertices, faces, eye, dirs, hidden, max_skips, cull_back_faces=True):
    import open3d as o3d

    scene = open3d_scene(vertices, faces)
    n = len(dirs)
    origins = np.repeat(eye[None], n, axis=0)
    t_total = np.zeros(n)
    hit_t = np.full(n, np.inf)
    prim = np.full(n, -1, dtype=np.int64)
    uvs = np.zeros((n, 2))
    normals = np.zeros((n, 3))
    active = np.arange(n)
    for _ in range(max_skips + 1):
        rays = np.concatenate([origins[active] + dirs[active] * t_total[active, None], dirs[active]], axis=1)
        result = scene.cast_rays(o3d.core.Tensor(rays.astype(np.float32)))
        t = result["t_hit"].numpy().astype(np.float64)
        nrm = result["primitive_normals"].numpy().astype(np.float64)
        hit = np.isfinite(t)
        front = hit & ((np.einsum("ij,ij->i", nrm, dirs[active]) < 0) | (not cull_back_faces))
        if hidden is not None and front.any():
            where = np.flatnonzero(front)
            points = origins[active[where]] + dirs[active[where]] * (t_total[active[where]] + t[where])[:, None]
            front[where[hidden(points)]] = False
        idx = active[front]
        hit_t[idx] = t_total[idx] + t[front]
        prim[idx] = result["primitive_ids"].numpy()[front]
        uvs[idx] = result["primitive_uvs"].numpy()[front]
        normals[idx] = nrm[front]
        back = hit & ~front
        t_total[active[back]] += t[back] + 1e-4
        active = active[back]
        if len(active) == 0:
            break
    return hit_t, prim, uvs, normals


def _first_visible_numpy(vertices, faces, eye, dirs, width, height, project, hidden, cull_back_faces=True):
    n = width * height
    normals = face_normals(vertices, faces).astype(np.float64)
    tri = vertices[faces].astype(np.float64)
    # Front faces only (a ray meets a plane from its front side exactly when the eye is in front of the plane).
    front = np.einsum("ij,ij->i", normals, tri[:, 0] - eye[None]) < 0
    if not cull_back_faces:
        front[:] = True
    proj = np.asarray(project(tri.reshape(-1, 3)), dtype=np.float64).reshape(-1, 3, 3)
    depth = proj[:, :, 2]
    in_front = depth > NEAR_PLANE
    keep = front & in_front.any(axis=1)
    pix = np.where(in_front[:, :, None], proj[:, :, :2], np.nan)  # (F, 3, 2); NaN behind the near plane
    straddle = np.flatnonzero(keep & ~in_front.all(axis=1))
    if len(straddle):
        # Clip at the near plane: the crossing point of every edge with one end on each side joins the box.
        clipped = [pix[straddle]]
        for a, b in ((0, 1), (1, 2), (2, 0)):
            da, db = depth[straddle, a], depth[straddle, b]
            crosses = (da > NEAR_PLANE) != (db > NEAR_PLANE)
            w = np.where(crosses, (2 * NEAR_PLANE - da) / np.where(crosses, db - da, 1.0), 0.0)
            point = tri[straddle, a] + w[:, None] * (tri[straddle, b] - tri[straddle, a])
            crossing = np.asarray(project(point), dtype=np.float64)[:, :2]
            clipped.append(np.where(crosses[:, None], crossing, np.nan)[:, None, :])
        pix_s = np.concatenate(clipped, axis=1)
    lo = np.full((len(faces), 2), np.inf)
    hi = np.full((len(faces), 2), -np.inf)
    both = keep & in_front.all(axis=1)
    lo[both], hi[both] = pix[both].min(axis=1), pix[both].max(axis=1)
    if len(straddle):
        lo[straddle], hi[straddle] = np.nanmin(pix_s, axis=1), np.nanmax(pix_s, axis=1)
    keep &= np.isfinite(lo).all(axis=1) & np.isfinite(hi).all(axis=1)
    lo = np.where(keep[:, None], lo, 0.0)
    hi = np.where(keep[:, None], hi, -1.0)
    col_lo = np.clip(np.ceil(lo[:, 0] - 1e-6), 0, width).astype(np.int64)
    col_hi = np.clip(np.floor(hi[:, 0] + 1e-6), -1, width - 1).astype(np.int64)
    row_lo = np.clip(np.ceil(lo[:, 1] - 1e-6), 0, height).astype(np.int64)
    row_hi = np.clip(np.floor(hi[:, 1] + 1e-6), -1, height - 1).astype(np.int64)
    keep &= (col_hi >= col_lo) & (row_hi >= row_lo)
    best_t = np.full(n, np.inf)
    best_prim = np.full(n, -1, dtype=np.int64)
    best_uv = np.zeros((n, 2))
    for face, col, row in _candidates(np.flatnonzero(keep), col_lo, col_hi, row_lo, row_hi):
        ray = row * width + col
        t, uv, hit = _moller_trumbore(np.broadcast_to(eye, (len(ray), 3)), dirs[ray], tri[face])
        if hidden is not None and hit.any():
            where = np.flatnonzero(hit)
            hit[where[hidden(eye[None] + dirs[ray[where]] * t[where, None])]] = False
        ray, t, uv, face = ray[hit], t[hit], uv[hit], face[hit]
        closer = t < best_t[ray]
        ray, t, uv, face = ray[closer], t[closer], uv[closer], face[closer]
        order = np.lexsort((t, ray))
        first = order[np.r_[True, ray[order][1:] != ray[order][:-1]]] if len(order) else order
        best_t[ray[first]] = t[first]
        best_prim[ray[first]] = face[first]
        best_uv[ray[first]] = uv[first]
    hit_normals = np.zeros((n, 3))
    found = best_prim >= 0
    hit_normals[found] = normals[best_prim[found]]
    return best_t, best_prim, best_uv, hit_normals


# ----------------------------------------------------------------------------------------------------------------
# arbitrary rays


def cast_rays(vertices: np.ndarray, faces: np.ndarray, origins: np.ndarray, directions: np.ndarray,
              backend: Backend = "auto") -> dict[str, np.ndarray]:
    """Closest hit (front or back face) of arbitrary rays.

    Args:
        vertices: (V, 3) float, metres; faces: (F, 3) int.
        origins: (N, 3) float ray origins; directions: (N, 3) float directions (need not be unit length).
        backend: see the module docstring. The numpy backend tests every ray against every face (chunked): cost
            O(N * F), meant for small meshes (synthetic truth scenes, a few hundred faces) or few rays.

    Returns:
        ``t_hit`` (N,) float32 hit parameter in units of the direction's length (inf: none), ``prim`` (N,) int64
        face index (-1: none), ``normal`` (N, 3) float32 unit face normal (zero: none), ``uv`` (N, 2) float32
        barycentrics of the face's v1 and v2.
    """
    vertices = np.asarray(vertices, dtype=np.float32)
    faces = np.asarray(faces, dtype=np.int64)
    origins = np.asarray(origins, dtype=np.float64).reshape(-1, 3)
    directions = np.asarray(directions, dtype=np.float64).reshape(-1, 3)
    if resolve_backend(backend) == "open3d":
        import open3d as o3d

        scene = open3d_scene(vertices, faces)
        out = scene.cast_rays(o3d.core.Tensor(np.concatenate([origins, directions], axis=1).astype(np.float32)))
        prim = out["primitive_ids"].numpy().astype(np.int64)
        prim[prim == np.iinfo(np.uint32).max] = -1
        return {"t_hit": out["t_hit"].numpy(), "prim": prim, "normal": out["primitive_normals"].numpy(),
                "uv": out["primitive_uvs"].numpy()}
    n, n_faces = len(origins), len(faces)
    normals = face_normals(vertices, faces)
    tri = vertices[faces].astype(np.float64)
    best_t = np.full(n, np.inf)
    best_prim = np.full(n, -1, dtype=np.int64)
    best_uv = np.zeros((n, 2))
    rays_per_chunk = max(1, CHUNK_CANDIDATES // max(n_faces, 1))
    for start in range(0, n, rays_per_chunk):
        ray = np.repeat(np.arange(start, min(start + rays_per_chunk, n)), n_faces)
        face = np.tile(np.arange(n_faces), len(ray) // max(n_faces, 1))
        t, uv, hit = _moller_trumbore(origins[ray], directions[ray], tri[face])
        t = np.where(hit, t, np.inf).reshape(-1, n_faces)
        k = np.argmin(t, axis=1)
        rows = np.arange(len(t))
        found = np.isfinite(t[rows, k])
        idx = start + rows[found]
        best_t[idx] = t[rows, k][found]
        best_prim[idx] = k[found]
        best_uv[idx] = uv.reshape(-1, n_faces, 2)[rows, k][found]
    normal = np.zeros((n, 3), dtype=np.float32)
    normal[best_prim >= 0] = normals[best_prim[best_prim >= 0]]
    return {"t_hit": best_t.astype(np.float32), "prim": best_prim, "normal": normal,
            "uv": best_uv.astype(np.float32)}
