"""Exact unsigned point-to-triangle-mesh distance in numpy and scipy: :func:`point_mesh_distance`.

The open3d-free path of :func:`lyra_isaac.geometry.mesh.surface_distance` and
:meth:`lyra_isaac.synthetic.render.Raycaster.distance` (open3d cannot travel to the GPU machines).

Method: every triangle lies inside the ball of radius ``r`` (its largest vertex distance) around its centroid ``c``,
so ``dist(p, triangle) >= |p - c| - r``. Triangles larger than a target radius are first split by midpoint
subdivision (each level makes four half-size copies whose union is the triangle, so distances are unchanged) until
no triangle has ``r`` above the target; the target is the smallest radius whose subdivision stays within
``SUBDIVISION_BUDGET`` triangles (a floor of two 7 m triangles becomes many centimetre-sized ones, a fine mesh is
left as it is). A KD-tree over the centroids gives each point its ``k`` nearest triangles, whose exact distances
(:func:`~lyra_isaac.geometry.mesh.closest_point_on_triangles`) give ``best``; every other triangle is at least
``d_k - r_max`` away (``d_k`` the distance to the ``k``-th centroid), so ``best`` is exact wherever
``best <= d_k - r_max``. The remaining points are queried again with four times ``k`` until that holds or ``k``
covers every triangle. Degenerate triangles (collinear or repeated vertices, which the barycentric formula does
not handle) are measured as the union of their three edges.

Points near the surface (the metrics' case) resolve in the first query; a point at distance ``D`` from a surface
tiled with triangles of spacing ``s`` needs about ``2 pi D / s`` candidates, so far points cost more.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..threads import cpu_threads
from .mesh import closest_point_on_triangles

FIRST_CANDIDATES = 8
"""Nearest-centroid triangles tested per point in the first query; unresolved points retry with 4x as many."""
BALL_CHUNK = 8192
"""Points per ball query (bounds the memory of the candidate lists)."""
SUBDIVISION_BUDGET_MIN = 1 << 17
"""Large triangles are subdivided to the smallest common radius that keeps the triangle count within
``max(SUBDIVISION_BUDGET_MIN, SUBDIVISION_BUDGET_FACTOR * F)``."""
SUBDIVISION_BUDGET_FACTOR = 2
"""See ``SUBDIVISION_BUDGET_MIN``."""
PAIR_CHUNK = 1 << 19
"""Point-triangle pairs evaluated per numpy batch (bounds temporary memory to about 100 MB)."""
DEGENERATE_RATIO = 1e-12
"""A triangle whose doubled area is at most this times its longest squared edge is treated as its three edges."""


def point_mesh_distance(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, *,
                        workers: int | None = None, exact: bool = True) -> np.ndarray:
    """Exact unsigned distance from points to a triangle mesh, without open3d.

    Args:
        vertices: (V, 3) float vertices, metres.
        faces: (F, 3) int vertex indices, F >= 1; degenerate faces (repeated or collinear vertices) are allowed.
        points: (N, 3) float query points, metres, same frame as ``vertices``.
        workers: threads for the KD-tree queries; default :func:`~lyra_isaac.threads.cpu_threads`.
        exact: False skips the second pass: each distance is then an upper bound (the nearest of the
            ``FIRST_CANDIDATES`` triangles with the nearest centroids), exact wherever the triangles near a point are
            small against its distance (a fine mesh's own vertices against its decimation). Several times faster.

    Returns:
        (N,) float64 distance from each point to the closest point of the mesh surface, metres (0 on the surface;
        unsigned, so inside and outside of closed meshes are alike). Exact up to float64 rounding (an upper bound
        when not ``exact``).

    Raises:
        ValueError: the mesh has no faces.
    """
    from scipy.spatial import cKDTree

    points = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(faces).reshape(-1, 3)
    if len(faces) == 0:
        raise ValueError("point_mesh_distance needs a mesh with at least one triangle")
    if len(points) == 0:
        return np.zeros(0)
    workers = cpu_threads() if workers is None else workers
    tri = np.asarray(vertices, dtype=np.float64)[faces]
    tri, radius = _subdivide_large(tri, max(SUBDIVISION_BUDGET_MIN, SUBDIVISION_BUDGET_FACTOR * len(tri)))
    centroid = _centroid(tri)
    r_max = float(radius.max())
    degenerate = _degenerate(tri)
    tree = cKDTree(centroid, balanced_tree=False, compact_nodes=False)

    # 1. the k nearest centroids: an upper bound ``best``, exact where no other triangle can be closer
    k = min(FIRST_CANDIDATES, len(tri))
    best = np.empty(len(points))
    unresolved = []
    step = max(1, PAIR_CHUNK // k)
    for s in range(0, len(points), step):
        rows = np.arange(s, min(s + step, len(points)))
        d_centroid, cand = tree.query(points[rows], k=k, workers=workers)
        d_centroid, cand = d_centroid.reshape(len(rows), k), cand.reshape(len(rows), k)
        d = _pair_distance(points, tri, degenerate, np.repeat(rows, k), cand.ravel())
        best[rows] = d.reshape(len(rows), k).min(axis=1)
        if exact and k < len(tri):
            unresolved.append(rows[best[rows] > d_centroid[:, -1] - r_max])
    # 2. elsewhere every triangle closer than ``best`` has its centroid within best + r_max: test those whose own
    #    bound |p - c| - r is below ``best``
    todo = np.concatenate(unresolved) if unresolved else np.zeros(0, dtype=np.int64)
    for s in range(0, len(todo), BALL_CHUNK):
        rows = todo[s:s + BALL_CHUNK]
        lists = tree.query_ball_point(points[rows], best[rows] + r_max, workers=workers, return_sorted=False)
        counts = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        cols = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64, count=int(counts.sum()))
        owner = np.repeat(rows, counts)
        bound = np.linalg.norm(points[owner] - centroid[cols], axis=1) - radius[cols]
        near = bound < best[owner]
        owner, cols = owner[near], cols[near]
        np.minimum.at(best, owner, _pair_distance(points, tri, degenerate, owner, cols))
    return best


def _subdivide_large(tri: np.ndarray, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3, 3) triangles whose union is that of the (F, 3, 3) input, split so that the largest centroid radius is
    as small as a budget of T <= ``budget`` triangles allows (within a factor of about sqrt(2)), and their (T,)
    centroid radii (:func:`_radius`).

    Longest-edge bisection: a triangle is cut in two at the midpoint of its longest edge, which shortens slivers
    (long thin wall triangles) along their length instead of making many thin copies. Rounds lower the target
    radius by ``sqrt(2)`` and split every triangle above it (repeatedly, until none is); a round that would pass
    the budget is not applied. Radii are computed once per triangle and carried along with it.
    """
    radius = _radius(tri)
    target = float(radius.max()) if len(radius) else 0.0
    while target > 0 and np.isfinite(target):
        target /= np.sqrt(2.0)
        big = radius > target
        if len(tri) + int(big.sum()) > budget:
            break
        keep, keep_radius = [tri[~big]], [radius[~big]]
        parts, parts_radius = tri[big], radius[big]
        kept = len(keep[0])
        while len(parts) and len(keep) < 64:  # bisection: every child's radius falls below target in a few cuts
            parts = _bisect_longest_edge(parts)
            if kept + len(parts) > budget:
                return tri, radius
            parts_radius = _radius(parts)
            small = parts_radius <= target
            keep.append(parts[small])
            keep_radius.append(parts_radius[small])
            kept += len(keep[-1])
            parts, parts_radius = parts[~small], parts_radius[~small]
        if len(parts):  # not reached for non-degenerate input; degenerate slivers keep what is left
            keep.append(parts)
            keep_radius.append(parts_radius)
        tri, radius = np.concatenate(keep), np.concatenate(keep_radius)
    return tri, radius


def _centroid(tri: np.ndarray) -> np.ndarray:
    """(T, 3) centroids of (T, 3, 3) triangles (the same float64 values as ``tri.mean(axis=1)``)."""
    centroid = tri[:, 0] + tri[:, 1]
    centroid += tri[:, 2]
    centroid /= 3.0
    return centroid


def _radius(tri: np.ndarray) -> np.ndarray:
    """(T,) largest distance from each (T, 3, 3) triangle's centroid to its vertices.

    Written out per vertex and axis: the same float64 values as
    ``sqrt(((tri - tri.mean(axis=1, keepdims=True)) ** 2).sum(axis=2).max(axis=1))``, about 3x faster (numpy's
    reductions over axes of length 3 are slow).
    """
    centroid = _centroid(tri)
    largest = None
    for k in range(3):
        d = tri[:, k] - centroid
        d *= d
        square = d[:, 0] + d[:, 1]
        square += d[:, 2]
        largest = square if largest is None else np.maximum(largest, square, out=largest)
    return np.sqrt(largest, out=largest)


def _bisect_longest_edge(tri: np.ndarray) -> np.ndarray:
    """(2T, 3, 3): each of (T, 3, 3) triangles cut in two at the midpoint of its longest edge."""
    length2 = np.stack([((tri[:, (i + 1) % 3] - tri[:, i]) ** 2).sum(axis=1) for i in range(3)], axis=1)
    i = length2.argmax(axis=1)  # longest edge runs from vertex i to i + 1; vertex i + 2 is opposite
    rows = np.arange(len(tri))
    a, b, c = tri[rows, i], tri[rows, (i + 1) % 3], tri[rows, (i + 2) % 3]
    m = 0.5 * (a + b)
    return np.concatenate([np.stack([a, m, c], axis=1), np.stack([m, b, c], axis=1)])


def _degenerate(tri: np.ndarray) -> np.ndarray:
    """(T,) bool: triangles of (T, 3, 3) with (numerically) zero area, measured as their edges instead."""
    e0, e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], tri[:, 2] - tri[:, 1]
    double_area = np.linalg.norm(np.cross(e0, e1), axis=1)
    longest = np.max([(e * e).sum(axis=1) for e in (e0, e1, e2)], axis=0)
    return double_area <= DEGENERATE_RATIO * longest


def _pair_distance(points: np.ndarray, tri: np.ndarray, degenerate: np.ndarray, rows: np.ndarray,
                   cols: np.ndarray) -> np.ndarray:
    """(M,) distance from ``points[rows]`` to triangles ``tri[cols]`` ((M,) index arrays; points (N, 3), tri
    (T, 3, 3), degenerate (T,) bool), in batches of ``PAIR_CHUNK`` pairs."""
    out = np.empty(len(rows))
    for s in range(0, len(rows), PAIR_CHUNK):
        p, j = points[rows[s:s + PAIR_CHUNK]], cols[s:s + PAIR_CHUNK]
        t = tri[j]
        closest = closest_point_on_triangles(p, t[:, 0], t[:, 1], t[:, 2])
        d2 = ((p - closest) ** 2).sum(axis=1)
        bad = degenerate[j]
        if bad.any():
            d2[bad] = _edges_distance_sq(p[bad], t[bad])
        out[s:s + PAIR_CHUNK] = np.sqrt(d2)
    return out


def _edges_distance_sq(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(M,) squared distance from (M, 3) points to the union of the three edges of (M, 3, 3) triangles."""
    best = np.full(len(p), np.inf)
    for i, j in ((0, 1), (1, 2), (2, 0)):
        a, ab = t[:, i], t[:, j] - t[:, i]
        length2 = (ab * ab).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.clip(((p - a) * ab).sum(axis=1) / length2, 0.0, 1.0)
        s = np.where(length2 > 0, s, 0.0)
        best = np.minimum(best, ((p - a - ab * s[:, None]) ** 2).sum(axis=1))
    return best
