"""Marching cubes in torch (the GPU path's extraction) against scikit-image's (SparseTSDF.extract_mesh): its own
triangle table is complete and closed, a sphere comes out closed and facing free space, and on a field with
unallocated blocks and under-weighted voxels it gives the CPU extraction's surface."""

from __future__ import annotations

import numpy as np
import pytest

from lyra_isaac.geometry.marching_torch import CORNERS, EDGES, extract_mesh_torch, triangle_table
from lyra_isaac.geometry.tsdf import BLOCK, SparseTSDF

torch = pytest.importorskip("torch")
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def test_triangle_table_cuts_exactly_the_sign_changes_and_closes_every_cube():
    counts, table = triangle_table()
    assert counts[0] == counts[255] == 0 and counts.max() <= 5
    for case in range(1, 255):
        below = [(case >> c) & 1 for c in range(8)]
        cut = {e for e, (a, b) in enumerate(EDGES) if below[a] != below[b]}
        triangles = table[case, :counts[case]]
        assert set(triangles.ravel()) == cut, case
        # inside the cube every triangle edge between two cut edges is shared by two triangles, except those that
        # lie on a cube face (the polygon's border): a face holds the two cut edges of one of its sides
        edges = {}
        for tri in triangles:
            for i in range(3):
                key = tuple(sorted((int(tri[i]), int(tri[(i + 1) % 3]))))
                edges[key] = edges.get(key, 0) + 1
        border = [k for k, n in edges.items() if n == 1]
        for a, b in border:
            corners = set(map(int, EDGES[a])) | set(map(int, EDGES[b]))
            assert any(len({int(CORNERS[c][axis]) for c in corners}) == 1 for axis in range(3)), (case, a, b)


def _field(tsdf: SparseTSDF, distance, rng=None, drop_blocks: float = 0.0):
    """Allocate blocks (a random share ``drop_blocks`` left out) and store clip(distance / truncation) with random
    weights 0.5 / 2 / 3."""
    rng = rng or np.random.default_rng(0)
    flat = np.arange(int(np.prod(tsdf.block_dims)))
    slots = tsdf.allocate_blocks(flat[rng.random(len(flat)) >= drop_blocks])
    vox, index = tsdf.block_voxels(slots)
    p = tsdf.voxel_centers(vox).astype(np.float64)
    value = np.clip(distance(p) / tsdf.truncation, -1, 1).astype(np.float32)
    weight = rng.choice(np.array([0.5, 2.0, 3.0], np.float32), len(index), p=[0.1, 0.6, 0.3])
    tsdf.accumulate(index, value, weight)
    return tsdf


def _torch_mesh(tsdf: SparseTSDF, min_weight: float, device: str):
    n = tsdf.n_blocks * BLOCK**3
    return extract_mesh_torch(tsdf, torch.as_tensor(tsdf.tsdf[:n], device=device),
                              torch.as_tensor(tsdf.weight[:n], device=device), min_weight)


def _edge_uses(faces: np.ndarray) -> tuple[int, int]:
    """(edges used once, edges used more than twice or twice in the same direction)."""
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    undirected, counts = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    _, directed_counts = np.unique(directed, axis=0, return_counts=True)
    return int((counts == 1).sum()), int((counts > 2).sum() + (directed_counts > 1).sum())


@pytest.mark.parametrize("device", DEVICES)
def test_sphere_is_closed_and_faces_free_space(device):
    tsdf = SparseTSDF(np.array([-1.0, -1.0, -1.0]), np.array([1.0, 1.0, 1.0]), voxel_size=0.04, truncation=0.16)
    center, radius = np.array([0.05, -0.03, 0.02]), 0.61
    _field(tsdf, lambda p: np.linalg.norm(p - center, axis=1) - radius)
    mesh = _torch_mesh(tsdf, 0.0, device)
    assert mesh.vertices.dtype == np.float32 and mesh.faces.dtype == np.int32 and mesh.n_triangles > 1000
    assert _edge_uses(mesh.faces) == (0, 0)  # closed, every edge once each way: consistently wound
    np.testing.assert_allclose(np.linalg.norm(mesh.vertices - center, axis=1), radius, atol=0.01)
    tri = mesh.vertices.astype(np.float64)[mesh.faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert np.all(np.einsum("ij,ij->i", normal, tri.mean(axis=1) - center) > 0)  # outwards: positive TSDF
    area = 0.5 * np.linalg.norm(normal, axis=1).sum()
    assert area == pytest.approx(4 * np.pi * radius**2, rel=0.02)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("min_weight", [0.0, 1.0])
def test_matches_the_cpu_extraction(device, min_weight):
    """A wavy floor and a ball over 3 x 3 x 2 tiles with 10 % of blocks unallocated and 10 % of voxels under
    weight 1: the same cut points (vertices), the same orientation; triangle counts and area differ only where
    cubes are ambiguous (scikit-image resolves them with Lewiner's tests: many here, around isolated unobserved
    voxels at min_weight 1)."""
    tsdf = SparseTSDF(np.array([-1.2, -1.2, -0.5]), np.array([1.2, 1.2, 1.0]), voxel_size=0.03, truncation=0.12)
    _field(tsdf, lambda p: np.minimum(p[:, 2] - 0.1 * np.sin(3 * p[:, 0]) * np.cos(2 * p[:, 1]),
                                      np.linalg.norm(p - [0.3, -0.2, 0.4], axis=1) - 0.35),
           np.random.default_rng(7), drop_blocks=0.1)
    ref = tsdf.extract_mesh(min_weight)
    got = _torch_mesh(tsdf, min_weight, device)
    assert ref.n_triangles > 5000
    from scipy.spatial import cKDTree

    distance, nearest = cKDTree(ref.vertices).query(got.vertices)
    assert np.mean(distance < 1e-5) > 0.97  # the same points on the same edges
    ref_tri, got_tri = ref.vertices.astype(np.float64)[ref.faces], got.vertices.astype(np.float64)[got.faces]
    ref_normal = np.cross(ref_tri[:, 1] - ref_tri[:, 0], ref_tri[:, 2] - ref_tri[:, 0])
    got_normal = np.cross(got_tri[:, 1] - got_tri[:, 0], got_tri[:, 2] - got_tri[:, 0])
    _, match = cKDTree(ref_tri.mean(axis=1)).query(got_tri.mean(axis=1))
    assert np.mean(np.einsum("ij,ij->i", got_normal, ref_normal[match]) > 0) > 0.99
    ref_area, got_area = (0.5 * np.linalg.norm(n, axis=1).sum() for n in (ref_normal, got_normal))
    assert got_area == pytest.approx(ref_area, rel=0.02 if min_weight == 0 else 0.2)


def test_empty_and_unobserved_tsdf_give_empty_meshes():
    tsdf = SparseTSDF(np.zeros(3), np.ones(3), voxel_size=0.05, truncation=0.2)
    assert _torch_mesh(tsdf, 0.0, "cpu").n_triangles == 0
    _field(tsdf, lambda p: p[:, 2] - 0.5)
    assert _torch_mesh(tsdf, 0.0, "cpu").n_triangles > 0
    assert _torch_mesh(tsdf, 10.0, "cpu").n_triangles == 0  # nothing observed above that weight


def test_huge_grids_weld_by_rows(monkeypatch):
    """Where one int64 key per quantized position would overflow, vertices are welded by their rows: same mesh."""
    from lyra_isaac.geometry import marching_torch

    tsdf = SparseTSDF(np.array([-1.0, -1.0, -1.0]), np.array([1.0, 1.0, 1.0]), voxel_size=0.05, truncation=0.2)
    _field(tsdf, lambda p: np.linalg.norm(p, axis=1) - 0.7)
    keyed = _torch_mesh(tsdf, 0.0, "cpu")
    monkeypatch.setattr(marching_torch, "WELD_QUANTUM", 1.0 / 2**40)  # spans of 2^40 per axis: no single key
    rows = _torch_mesh(tsdf, 0.0, "cpu")
    assert rows.n_triangles == keyed.n_triangles and _edge_uses(rows.faces) == (0, 0)
    np.testing.assert_allclose(np.sort(rows.vertices, axis=0), np.sort(keyed.vertices, axis=0), atol=1e-6)
