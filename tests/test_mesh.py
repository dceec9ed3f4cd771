"""Mesh finishing against meshes with known truth: holes, floaters, degenerate faces, decimation error bound."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from lyra_isaac.config import from_dict
from lyra_isaac.errors import ConversionError
from lyra_isaac.geometry.mesh import (
    MeshConfig,
    boundary_loops,
    chain_loops,
    color_sources,
    colorize,
    decimate,
    finish_mesh,
    surface_distance,
)
from lyra_isaac.splats.scene import SH_C0, GaussianScene
from lyra_isaac.world import TriangleMesh


def grid_plane(size: float = 4.0, cells: int = 40, z: float = 0.0, hole: tuple[float, float, float] | None = None):
    """A square XY plane centred at the origin, faces counter-clockwise from above; ``hole`` = (x, y, half-width)
    removes the cells whose centre lies in that square."""
    xs = np.linspace(-size / 2, size / 2, cells + 1)
    gx, gy = np.meshgrid(xs, xs, indexing="xy")
    verts = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, z)], axis=1)
    i, j = np.meshgrid(np.arange(cells), np.arange(cells), indexing="xy")
    a = (j * (cells + 1) + i).ravel()
    b, c, d = a + 1, a + cells + 2, a + cells + 1
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    if hole is not None:
        cell_center = 0.5 * (verts[a] + verts[c])
        centers = np.concatenate([cell_center, cell_center])
        inside = (np.abs(centers[:, 0] - hole[0]) < hole[2]) & (np.abs(centers[:, 1] - hole[1]) < hole[2])
        faces = faces[~inside]
    return verts, faces


def vertical_hits(mesh: TriangleMesh, xy: np.ndarray) -> np.ndarray:
    """(N,) bool: a downward ray from z = 5 at each xy hits the mesh."""
    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    origins = np.column_stack([xy, np.full(len(xy), 5.0)])
    dirs = np.tile([0.0, 0.0, -1.0], (len(xy), 1))
    from trimesh.ray.ray_triangle import RayMeshIntersector

    try:
        hit = RayMeshIntersector(tm).intersects_any(origins, dirs)
    except ImportError:  # rtree missing: use the distance to the mesh instead
        pts = np.column_stack([xy, np.zeros(len(xy))])
        hit = surface_distance(mesh.vertices, mesh.faces, pts) < 1e-3
    return hit


def test_plane_with_hole_is_filled_and_faces_up():
    verts, faces = grid_plane(hole=(0.5, -0.3, 0.25))
    mesh = TriangleMesh(verts, faces)
    probe = np.array([[0.5, -0.3], [0.6, -0.2], [0.4, -0.4]])
    assert not vertical_hits(mesh, probe).any()  # the hole is real
    assert len(boundary_loops(mesh.faces)) == 2  # outer border + hole
    out, stats = finish_mesh(mesh, MeshConfig(decimate=False))
    assert stats["holes_filled"] == 1
    assert stats["hole_area_filled_m2"] == pytest.approx(0.5 * 0.5, rel=0.05)
    assert vertical_hits(out, probe).all()
    assert len(boundary_loops(out.faces)) == 1  # only the outer border remains
    # the fill is wound like the floor: every face normal points up
    n = np.cross(out.vertices[out.faces[:, 1]] - out.vertices[out.faces[:, 0]],
                 out.vertices[out.faces[:, 2]] - out.vertices[out.faces[:, 0]])
    assert (n[:, 2] > 0).all()
    assert np.abs(out.vertices[:, 2]).max() < 1e-6


def test_large_hole_and_outer_border_are_not_filled():
    verts, faces = grid_plane(hole=(0.0, 0.0, 1.0))  # a 2 x 2 m hole: 4 m^2 > max_hole_area
    out, stats = finish_mesh(TriangleMesh(verts, faces), MeshConfig(decimate=False, max_hole_area=1.0))
    assert stats["holes_filled"] == 0
    assert stats["floor_holes_too_big"] == 1
    assert not vertical_hits(out, np.array([[0.0, 0.0]])).any()


def test_sloped_hole_is_not_a_floor_hole():
    verts, faces = grid_plane(hole=(0.5, 0.5, 0.3))
    verts = verts.copy()
    verts[:, 2] = 0.5 * verts[:, 0]  # a 27 degree slope: the hole boundary spans 0.3 m in z
    _, stats = finish_mesh(TriangleMesh(verts, faces), MeshConfig(decimate=False))
    assert stats["holes_filled"] == 0


def test_floaters_dropped_floor_objects_kept():
    verts, faces = grid_plane()
    parts_v, parts_f = [verts], [faces]
    offset = len(verts)

    def add(mesh: trimesh.Trimesh):
        nonlocal offset
        parts_v.append(mesh.vertices)
        parts_f.append(mesh.faces + offset)
        offset += len(mesh.vertices)

    add(trimesh.creation.box(extents=(0.05, 0.05, 0.05)).apply_translation((1.0, 1.0, 1.5)))  # floater 0.015 m^2
    add(trimesh.creation.box(extents=(0.1, 0.1, 0.1)).apply_translation((-1.0, 1.0, 1.2)))  # floater 0.06 m^2
    add(trimesh.creation.box(extents=(0.05, 0.05, 0.1)).apply_translation((-1.0, -1.0, 0.05)))  # small, on floor
    add(trimesh.creation.box(extents=(0.5, 0.5, 0.5)).apply_translation((1.0, -1.0, 1.5)))  # big, in the air
    mesh = TriangleMesh(np.concatenate(parts_v), np.concatenate(parts_f))
    out, stats = finish_mesh(mesh, MeshConfig(decimate=False, min_component_area=0.1))
    assert stats["components"] == 5
    assert stats["components_dropped"] == 2
    assert stats["component_area_dropped_m2"] == pytest.approx(6 * 0.05**2 + 6 * 0.1**2, rel=1e-6)
    v = out.vertices
    near = lambda x, y: (np.abs(v[:, 0] - x) < 0.3) & (np.abs(v[:, 1] - y) < 0.3) & (v[:, 2] > 0.5)  # noqa: E731
    assert not near(1.0, 1.0).any() and not near(-1.0, 1.0).any()  # both floaters gone
    assert near(1.0, -1.0).any()  # the big box in the air stays
    kept_small = (np.abs(v[:, 0] + 1.0) < 0.03) & (np.abs(v[:, 1] + 1.0) < 0.03) & (np.abs(v[:, 2] - 0.1) < 1e-6)
    assert kept_small.sum() == 4  # the small floor-touching box keeps its top corners


def test_degenerate_and_duplicate_faces_dropped():
    verts, faces = grid_plane(cells=4)
    extra = np.array([[0, 0, 1], [0, 1, 2], faces[3][::-1], faces[5]])  # repeated index, collinear, dup x2
    verts = np.concatenate([verts, [[10.0, 0, 0], [11.0, 0, 0], [12.0, 0, 0]]])
    n = len(verts)
    collinear = np.array([[n - 3, n - 2, n - 1]])
    mesh = TriangleMesh(verts, np.concatenate([faces, extra[[0]], collinear, extra[2:]]))
    out, stats = finish_mesh(mesh, MeshConfig(decimate=False, fill_holes=False, frontier_extension=0.0))
    assert stats["degenerate_faces_dropped"] == 2
    assert stats["duplicate_faces_dropped"] == 2
    assert out.n_triangles == len(faces)


def box_room(size=(6.0, 5.0, 2.8), pitch=0.02) -> trimesh.Trimesh:
    """A closed box room (floor at z = 0) subdivided into ~pitch triangles, normals facing inwards."""
    room = trimesh.creation.box(extents=size).apply_translation((0, 0, size[2] / 2))
    v, f = trimesh.remesh.subdivide_to_size(room.vertices, room.faces, max_edge=pitch)
    room = trimesh.Trimesh(v, f[:, ::-1], process=True)
    return room


def test_box_room_decimates_within_error_bound():
    room = box_room(pitch=0.05)
    rng = np.random.default_rng(0)
    v = room.vertices + rng.normal(0, 0.001, room.vertices.shape)  # 1 mm noise: nothing is exactly planar
    mesh = TriangleMesh(v, room.faces)
    cfg = MeshConfig(max_error=0.01, min_triangles=100)
    out, stats = finish_mesh(mesh, cfg)
    assert out.n_triangles < mesh.n_triangles / 8
    assert stats["decimation_error_m"] <= 0.01
    # independent check against the truth: dense samples of the true room lie within the bound of the result
    truth_pts, _ = trimesh.sample.sample_surface(trimesh.creation.box(extents=(6.0, 5.0, 2.8))
                                                 .apply_translation((0, 0, 1.4)), 20000, seed=1)
    d = surface_distance(out.vertices, out.faces, truth_pts)
    assert np.percentile(d, 99) < 0.012
    # the room's outline survives: floor at 0, ceiling at 2.8
    assert out.vertices[:, 2].min() == pytest.approx(0.0, abs=0.01)
    assert out.vertices[:, 2].max() == pytest.approx(2.8, abs=0.01)


def test_decimation_respects_tight_bound_by_stopping_early():
    verts, faces = grid_plane(cells=60)
    verts = verts.copy()
    verts[:, 2] = 0.05 * np.sin(3 * verts[:, 0]) * np.cos(2 * verts[:, 1])  # curved: error grows with decimation
    loose, s_loose = finish_mesh(TriangleMesh(verts, faces), MeshConfig(max_error=0.01, min_triangles=10))
    tight, s_tight = finish_mesh(TriangleMesh(verts, faces), MeshConfig(max_error=0.0005, min_triangles=10))
    assert tight.n_triangles > loose.n_triangles
    assert s_tight["decimation_error_m"] <= 0.0005
    assert s_loose["decimation_error_m"] <= 0.01


@pytest.mark.parametrize("max_error", [0.0005, 0.002, 0.01])  # stops at the 1st, 4th, 7th halving
def test_decimation_overlapped_with_error_checks_matches_serial(max_error, monkeypatch):
    """With a spare thread the next halving runs while the current one is measured: same mesh and stats as one
    thread, and one thread runs no halving it does not measure."""
    import fast_simplification

    verts, faces = grid_plane(cells=60)
    verts = verts.copy()
    verts[:, 2] = 0.05 * np.sin(3 * verts[:, 0]) * np.cos(2 * verts[:, 1])
    cfg = MeshConfig(max_error=max_error, min_triangles=10)
    calls = []
    simplify = fast_simplification.simplify
    monkeypatch.setattr(fast_simplification, "simplify", lambda *a, **k: calls.append(1) or simplify(*a, **k))
    results = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("OMP_NUM_THREADS", threads)
        calls.clear()
        results[threads] = finish_mesh(TriangleMesh(verts, faces), cfg)
        if threads == "1":
            assert len(calls) == results["1"][1]["decimation_steps"]
        else:
            assert len(calls) <= results["2"][1]["decimation_steps"] + 1
    (one, s_one), (two, s_two) = results["1"], results["2"]
    np.testing.assert_array_equal(one.vertices, two.vertices)
    np.testing.assert_array_equal(one.faces, two.faces)
    s_one.pop("seconds"), s_two.pop("seconds")
    assert s_one == s_two


def test_empty_mesh_raises():
    with pytest.raises(ConversionError, match="no triangles"):
        finish_mesh(TriangleMesh(np.zeros((0, 3)), np.zeros((0, 3))), MeshConfig())


def test_config_from_dict():
    cfg = from_dict(MeshConfig, {"max_error": 0.02, "fill_holes": False})
    assert cfg.max_error == 0.02 and cfg.fill_holes is False


@pytest.mark.parametrize("max_sources", [None, 500])
def test_colorize_takes_nearby_splat_colours(max_sources, monkeypatch):
    """Also with a subset of the splats as colour sources (large scenes), indices map back to the right splats."""
    if max_sources is not None:
        monkeypatch.setattr("lyra_isaac.geometry.mesh.COLOR_MAX_SOURCES", max_sources)
    verts, faces = grid_plane(cells=10)
    n = 2000
    rng = np.random.default_rng(0)
    means = np.column_stack([rng.uniform(-2, 2, (n, 2)), rng.normal(0, 0.005, n)]).astype(np.float32)
    red = means[:, 0] < 0
    rgb = np.where(red[:, None], [0.9, 0.1, 0.1], [0.1, 0.1, 0.9])
    scene = GaussianScene(means=means, quats=np.tile([1, 0, 0, 0], (n, 1)).astype(np.float32),
                          log_scales=np.full((n, 3), -4, np.float32), opacity_logits=np.full(n, 3, np.float32),
                          sh_dc=((rgb - 0.5) / SH_C0).astype(np.float32))
    out = colorize(TriangleMesh(verts, faces), scene)
    assert out.colors.dtype == np.uint8 and out.colors.shape == (len(verts), 3)
    left = verts[:, 0] < -0.3
    right = verts[:, 0] > 0.3
    assert np.abs(out.colors[left].astype(int) - [230, 26, 26]).max() <= 2
    assert np.abs(out.colors[right].astype(int) - [26, 26, 230]).max() <= 2
    # sources made beforehand (the converter makes them while the mesh is finished) give the same colours
    prepared = colorize(TriangleMesh(verts, faces), scene, sources=color_sources(scene))
    np.testing.assert_array_equal(prepared.colors, out.colors)


def test_surface_distance_fallback_is_exact(monkeypatch):
    """The scipy fallback (no open3d) gives point-to-triangle distances: check against analytic truth."""
    import sys

    verts, faces = grid_plane(size=2.0, cells=20)  # the square |x|, |y| <= 1 at z = 0
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(-1.5, 1.5, (5000, 2)), rng.uniform(-0.5, 0.5, 5000)])
    dx = np.maximum(np.abs(pts[:, 0]) - 1, 0)
    dy = np.maximum(np.abs(pts[:, 1]) - 1, 0)
    truth = np.sqrt(dx**2 + dy**2 + pts[:, 2] ** 2)
    monkeypatch.setitem(sys.modules, "open3d", None)  # import open3d -> ImportError
    got = surface_distance(verts, faces, pts)
    np.testing.assert_allclose(got, truth, atol=1e-9)


def test_unique_rows_matches_numpy_rowwise_unique():
    """The one-key-per-row unique (weld, duplicate faces) returns what np.unique(axis=0) does, and falls back to it
    when the value ranges exceed 63 bits."""
    from lyra_isaac.geometry.mesh import _unique_rows

    rng = np.random.default_rng(4)
    rows = rng.integers(-50, 50, size=(2000, 3))
    want = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    got = _unique_rows(rows)
    for w, g in zip(want, got, strict=True):
        np.testing.assert_array_equal(g, w.reshape(g.shape))
    wide = rows * (1 << 40)  # spans of 2^47 per column: no 63-bit key
    for w, g in zip(np.unique(wide, axis=0, return_index=True, return_inverse=True), _unique_rows(wide), strict=True):
        np.testing.assert_array_equal(g, w.reshape(g.shape))
    assert _unique_rows(rows, return_inverse=False)[2] is None


def test_mean_normal_near_matches_brute_force():
    """The grid-prefiltered neighbourhood mean equals the sum over every face within the radius."""
    from lyra_isaac.geometry.mesh import _mean_normal_near

    rng = np.random.default_rng(5)
    centroids = rng.uniform(-1.0, 1.0, size=(5000, 3))
    normals = rng.normal(size=(5000, 3))
    points = np.concatenate([rng.uniform(-1.2, 1.2, size=(200, 3)), [[5.0, 5.0, 5.0]]])  # the last has none
    radius = 0.15
    within = np.linalg.norm(points[:, None] - centroids[None], axis=2) <= radius
    total = within.astype(np.float64) @ normals
    norm = np.linalg.norm(total, axis=1, keepdims=True)
    want = np.where(norm > 0, total / np.maximum(norm, 1e-12), 0.0)
    np.testing.assert_allclose(_mean_normal_near(points, centroids, normals, radius), want, atol=1e-12)
    assert not _mean_normal_near(points, centroids, normals, radius)[-1].any()


def _reference_boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """boundary_loops as first written (twins found by searchsorted of every reversed edge): the reference."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    n = int(faces.max()) + 1
    key_sorted = np.sort(edges[:, 0] * n + edges[:, 1])
    rev = edges[:, 1] * n + edges[:, 0]
    pos = np.minimum(np.searchsorted(key_sorted, rev), len(key_sorted) - 1)
    # the edge detection is what changed; chaining the edges into loops is the same walk
    return chain_loops(edges[key_sorted[pos] != rev])


def test_boundary_loops_match_reference_on_a_messy_mesh():
    """Holes, a flipped face (two twinless edges on one vertex pair), a duplicated face (a non-manifold edge) and
    a face with a repeated vertex: the sorted-code twin search gives the reference's loops, in its order."""
    verts, faces = grid_plane(cells=30, hole=(0.6, 0.6, 0.3))
    centers = verts[faces].mean(axis=1)
    faces = faces[(np.abs(centers[:, 0] + 0.9) > 0.2) | (np.abs(centers[:, 1] + 0.5) > 0.2)]  # a second hole
    faces = faces[np.random.default_rng(6).permutation(len(faces))]
    faces[10] = faces[10, ::-1]
    faces = np.concatenate([faces, faces[20:21], [[5, 5, 6]]])
    want = _reference_boundary_loops(faces)
    got = boundary_loops(faces)
    assert len(got) == len(want) >= 3
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_closest_point_on_degenerate_triangles_is_on_their_edges():
    """A zero-area triangle (a repeated or collinear vertex) is its segment: a point beside the middle of the
    segment gets its projection, not vertex a (the general region tests divide by zero there)."""
    from lyra_isaac.geometry.mesh import closest_point_on_triangles

    a = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    b = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])  # (a, a, c) and collinear
    c = np.array([[2.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # ... a point; a real one
    p = np.array([[1.0, 0.5, 0.0], [1.5, -0.3, 0.2], [0.3, 0.4, 0.0], [0.2, 0.2, 1.0]])
    out = closest_point_on_triangles(p, a, b, c)
    np.testing.assert_allclose(out[0], [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(out[1], [1.5, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(out[2], [0.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(out[3], [0.2, 0.2, 0.0], atol=1e-12)  # a proper triangle: its face


def test_decimation_stops_where_the_far_tail_grows(monkeypatch):
    """The 95th-percentile bound alone decimates a smooth surface until small features go; the tail bound
    (``tail_percentile`` within ``max_tail_error``) stops first: here the third halving keeps p95 at 1 mm but moves
    1 % of the sampled vertices 20 cm, and the second halving's mesh is kept."""
    import lyra_isaac.geometry.mesh as mesh_module

    verts, faces = grid_plane(cells=60)
    steps = []

    def distances(v, f, points, **kwargs):
        steps.append(len(f))
        d = np.full(len(points), 0.001)
        if len(steps) >= 3:
            d[: len(points) // 100] = 0.2
        return d

    monkeypatch.setattr(mesh_module, "surface_distance", distances)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cfg = MeshConfig(max_error=0.01, min_triangles=10)
    _, _, stats = decimate(verts.astype(np.float64), faces.astype(np.int64), cfg)
    assert stats["decimation_steps"] == 3 and stats["decimation_error_tail_m"] == pytest.approx(0.001)
    _, _, loose = decimate(verts.astype(np.float64), faces.astype(np.int64),
                           MeshConfig(max_error=0.01, min_triangles=10, max_tail_error=1.0))
    assert loose["decimation_steps"] > 3  # without the tail bound it goes on
