"""The numpy/scipy point-to-mesh distance (the open3d-free metrics path) against brute force over every triangle
and against open3d, on meshes mixing huge and tiny triangles, with degenerate faces and near, far and inside
points."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from lyra_isaac.geometry import distance
from lyra_isaac.geometry.distance import point_mesh_distance


def brute_force(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N,) distance from (N, 3) points to every triangle, by a formula independent of the one under test: the
    plane projection where it falls inside the triangle (barycentric solve), else the nearest of the three edges."""
    tri = vertices[faces].astype(np.float64)  # (F, 3, 3)
    a, e1, e2 = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    rel = points[:, None, :] - a[None]  # (N, F, 3)
    g11, g12, g22 = (e1 * e1).sum(1), (e1 * e2).sum(1), (e2 * e2).sum(1)
    det = g11 * g22 - g12 * g12
    r1, r2 = (rel * e1).sum(2), (rel * e2).sum(2)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (g22 * r1 - g12 * r2) / det
        v = (g11 * r2 - g12 * r1) / det
    foot = a[None] + u[..., None] * e1[None] + v[..., None] * e2[None]
    inside = (det > 1e-18 * np.maximum(g11, g22) ** 2) & (u >= 0) & (v >= 0) & (u + v <= 1)
    best = np.where(inside, np.linalg.norm(points[:, None] - foot, axis=2), np.inf)
    for i, j in ((0, 1), (1, 2), (2, 0)):
        p0, d = tri[:, i], tri[:, j] - tri[:, i]
        length2 = (d * d).sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.clip(((points[:, None] - p0[None]) * d[None]).sum(2) / length2, 0, 1)
        s = np.nan_to_num(s)
        best = np.minimum(best, np.linalg.norm(points[:, None] - p0[None] - s[..., None] * d[None], axis=2))
    return best.min(axis=1)


DEGENERATE_VERTS = np.array([[1, 1, 1], [1, 1, 1], [3, 2, 1.5], [-4, 0, 2], [-2, 1, 2], [0, 2, 2], [6, 6, 6]],
                            dtype=float)
DEGENERATE_FACES = np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1], [3, 4, 5], [5, 3, 4], [6, 6, 6]])
"""A repeated vertex (in each of its three positions), collinear vertices (two orders) and a single point."""


def mixed_mesh(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A 20 m floor of two triangles, a closed 2 m box of 12, huge slivers, a patch of centimetre triangles and
    random tiny ones, plus degenerate faces (a repeated vertex, collinear vertices, one point)."""
    verts, faces = [], []

    def add(v, f):
        faces.append(np.asarray(f) + sum(len(x) for x in verts))
        verts.append(np.asarray(v, dtype=np.float64))

    add([[-10, -10, 0], [10, -10, 0], [10, 10, 0], [-10, 10, 0]], [[0, 1, 2], [0, 2, 3]])
    box = np.array([[x, y, z] for x in (0, 2) for y in (3, 5) for z in (0.5, 2.5)], dtype=float)
    add(box, [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6],
              [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    add([[-9, 5, 0.2], [9, 5.05, 0.3], [0, 5.1, 3.0], [-8, -6, 1.0], [8, -6, 1.0], [0, -6.02, 1.01]],
        [[0, 1, 2], [3, 4, 5]])
    xs = np.linspace(-3, -2, 21)
    gx, gy = np.meshgrid(xs, xs)
    grid = np.column_stack([gx.ravel(), gy.ravel() + 5, 0.8 + 0.05 * np.sin(7 * gx.ravel())])
    i, j = np.meshgrid(np.arange(20), np.arange(20))
    q = (j * 21 + i).ravel()
    add(grid, np.concatenate([np.column_stack([q, q + 1, q + 22]), np.column_stack([q, q + 22, q + 21])]))
    centers = rng.uniform([-9, -9, 0], [9, 9, 3], (300, 1, 3))
    add((centers + rng.normal(0, 0.01, (300, 3, 3))).reshape(-1, 3), np.arange(900).reshape(300, 3))
    add(DEGENERATE_VERTS, DEGENERATE_FACES)
    return np.concatenate(verts), np.concatenate(faces)


def query_points(rng: np.random.Generator, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """On-surface samples with centimetre noise, points inside the closed box, far points and the vertices."""
    tri = vertices[faces]
    pick = rng.integers(0, len(faces), 600)
    w = rng.dirichlet(np.ones(3), 600)
    near = np.einsum("nk,nkd->nd", w, tri[pick]) + rng.normal(0, 0.02, (600, 3))
    inside = rng.uniform([0.1, 3.1, 0.6], [1.9, 4.9, 2.4], (100, 3))
    far = rng.normal(0, 1, (60, 3)) * rng.uniform(15, 60, (60, 1))
    return np.concatenate([near, inside, far, vertices[rng.integers(0, len(vertices), 40)]])


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_brute_force_on_mixed_sizes(seed):
    rng = np.random.default_rng(seed)
    verts, faces = mixed_mesh(rng)
    pts = query_points(rng, verts, faces)
    want = brute_force(verts, faces, pts)
    got = point_mesh_distance(verts, faces, pts)
    assert got.shape == (len(pts),) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_both_stages_and_subdivision_are_exercised(monkeypatch):
    """With one first candidate and a small subdivision budget most points go through the ball query, and the
    floor is split: the answer stays exact."""
    rng = np.random.default_rng(2)
    verts, faces = mixed_mesh(rng)
    pts = query_points(rng, verts, faces)
    want = brute_force(verts, faces, pts)
    for first, budget in ((1, 5000), (3, 1 << 17), (64, 3300)):
        monkeypatch.setattr(distance, "FIRST_CANDIDATES", first)
        monkeypatch.setattr(distance, "SUBDIVISION_BUDGET_MIN", budget)
        np.testing.assert_allclose(point_mesh_distance(verts, faces, pts), want, rtol=0, atol=1e-9)


def test_nearest_centroid_candidates_alone_would_miss():
    """The case that motivated the exact version: the nearest centroids of a point above a two-triangle floor
    belong to small triangles far away, so the old 12-candidate fallback answered wrongly here."""
    rng = np.random.default_rng(3)
    floor = np.array([[-10, -10, 0], [10, -10, 0], [10, 10, 0], [-10, 10, 0]], dtype=float)
    small = rng.uniform(-0.05, 0.05, (60, 3)) + [0.0, 0.0, 2.0]
    verts = np.concatenate([floor, small])
    faces = np.concatenate([[[0, 1, 2], [0, 2, 3]], 4 + np.arange(60).reshape(20, 3)])
    pts = np.array([[9.5, -9.0, 0.3], [0.0, 0.0, 0.5], [-9.0, 9.9, -0.2]])
    np.testing.assert_allclose(point_mesh_distance(verts, faces, pts), [0.3, 0.5, 0.2], atol=1e-12)
    np.testing.assert_allclose(point_mesh_distance(verts, faces, pts), brute_force(verts, faces, pts), atol=1e-12)


@pytest.mark.parametrize("budget", [1, 1 << 17])
def test_degenerate_faces_are_their_edges(monkeypatch, budget):
    """Zero-area faces measure as segments: the projection onto a repeated-vertex face's segment counts (the
    barycentric formula alone answers the repeated vertex there), whether or not the faces are subdivided."""
    monkeypatch.setattr(distance, "SUBDIVISION_BUDGET_MIN", budget)
    rng = np.random.default_rng(7)
    seg = DEGENERATE_VERTS[[0, 2]]
    along = seg[0] + rng.uniform(-0.2, 1.2, (200, 1)) * (seg[1] - seg[0])
    pts = np.concatenate([along + rng.normal(0, 0.3, (200, 3)), rng.uniform(-5, 7, (200, 3))])
    for faces in (DEGENERATE_FACES, DEGENERATE_FACES[:1]):
        want = brute_force(DEGENERATE_VERTS, faces, pts)
        np.testing.assert_allclose(point_mesh_distance(DEGENERATE_VERTS, faces, pts), want, rtol=0, atol=1e-9)
    mid = np.array([[2.0, 1.5, 1.25 + 1.0]])  # 1 m above the middle of the segment (1,1,1)-(3,2,1.5) along z
    expected = np.linalg.norm(np.cross(mid[0] - seg[0], seg[1] - seg[0])) / np.linalg.norm(seg[1] - seg[0])
    np.testing.assert_allclose(point_mesh_distance(DEGENERATE_VERTS, DEGENERATE_FACES[:1], mid), [expected])


def test_subdivision_covers_the_same_surface():
    """Bisection keeps the total area, stays within the budget and lowers the largest radius."""
    rng = np.random.default_rng(4)
    verts, faces = mixed_mesh(rng)
    tri = verts[faces]
    out, radius = distance._subdivide_large(tri, 20000)

    def area(t):
        return 0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1).sum()

    assert len(tri) < len(out) <= 20000
    assert area(out) == pytest.approx(area(tri), rel=1e-12)
    assert distance._radius(out).max() < distance._radius(tri).max() / 10
    np.testing.assert_array_equal(radius, distance._radius(out))  # radii carried along match recomputed ones


def test_radius_matches_reference_formula():
    """The written-out centroid and radius give the reductions' float64 values bit for bit."""
    rng = np.random.default_rng(7)
    tri = rng.normal(size=(5000, 3, 3)) * rng.uniform(1e-3, 3.0, size=(5000, 1, 1)) + rng.normal(size=(5000, 1, 3))
    np.testing.assert_array_equal(distance._centroid(tri), tri.mean(axis=1))
    reference = np.sqrt(((tri - tri.mean(axis=1, keepdims=True)) ** 2).sum(axis=2).max(axis=1))
    np.testing.assert_array_equal(distance._radius(tri), reference)


def test_small_inputs():
    verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=float)
    faces = np.array([[0, 1, 2]])
    assert point_mesh_distance(verts, faces, np.zeros((0, 3))).shape == (0,)
    got = point_mesh_distance(verts, faces, np.array([[0.2, 0.2, -2.0], [2.0, 0.0, 0.0], [-3.0, -4.0, 0.0]]))
    np.testing.assert_allclose(got, [2.0, 1.0, 5.0], atol=1e-12)
    with pytest.raises(ValueError, match="at least one triangle"):
        point_mesh_distance(verts, np.zeros((0, 3), dtype=int), np.zeros((1, 3)))


def test_matches_open3d():
    o3d = pytest.importorskip("open3d")
    rng = np.random.default_rng(5)
    verts, faces = mixed_mesh(rng)
    pts = query_points(rng, verts, faces)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(verts.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32)))
    want = scene.compute_distance(o3d.core.Tensor(pts.astype(np.float32))).numpy()
    got = point_mesh_distance(verts, faces, pts)
    # open3d works in float32: allow its rounding at the scale of the coordinates (up to ~60 m here)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=5e-5)


def test_surface_distance_and_raycaster_without_open3d(monkeypatch):
    """With open3d unimportable, mesh.surface_distance and Raycaster.distance take the exact path."""
    from lyra_isaac.geometry.mesh import surface_distance
    from lyra_isaac.synthetic.render import Raycaster

    rng = np.random.default_rng(6)
    verts, faces = mixed_mesh(rng)
    pts = query_points(rng, verts, faces)
    want = brute_force(verts.astype(np.float32).astype(np.float64), faces, pts)
    monkeypatch.setitem(sys.modules, "open3d", None)  # import open3d -> ImportError
    np.testing.assert_allclose(surface_distance(verts.astype(np.float32).astype(np.float64), faces, pts), want,
                               atol=1e-9)
    rc = Raycaster(verts, faces)
    got = rc.distance(pts)
    assert got.dtype == np.float32 and got.shape == (len(pts),)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_upper_bound_mode_bounds_the_exact_distance_and_meets_it_on_fine_meshes():
    """exact=False (the decimation error check) never reports less than the true distance, and on a fine mesh
    queried by points near it (a mesh's own vertices against its decimation) it is the true distance."""
    rng = np.random.default_rng(5)
    verts, faces = mixed_mesh(rng)
    pts = query_points(rng, verts, faces)
    exact = point_mesh_distance(verts, faces, pts)
    bound = point_mesh_distance(verts, faces, pts, exact=False)
    assert (bound >= exact - 1e-12).all()
    xs = np.linspace(0.0, 2.0, 41)
    gx, gy = np.meshgrid(xs, xs)
    fine = np.column_stack([gx.ravel(), gy.ravel(), 0.1 * np.sin(3 * gx.ravel()) * np.cos(2 * gy.ravel())])
    i, j = np.meshgrid(np.arange(40), np.arange(40))
    q = (j * 41 + i).ravel()
    fine_faces = np.concatenate([np.column_stack([q, q + 1, q + 42]), np.column_stack([q, q + 42, q + 41])])
    near = fine[rng.integers(0, len(fine), 500)] + rng.normal(0, 0.005, (500, 3))
    np.testing.assert_allclose(point_mesh_distance(fine, fine_faces, near, exact=False),
                               point_mesh_distance(fine, fine_faces, near), rtol=0, atol=1e-12)
