"""The torch grid search for point-to-mesh distance (the GPU path's decimation error check) against brute force,
on the numpy tests' meshes mixing huge and tiny triangles, degenerate faces and near, inside and far points; on the
CPU here, on CUDA where there is one."""

from __future__ import annotations

import numpy as np
import pytest
from test_point_mesh_distance import DEGENERATE_FACES, DEGENERATE_VERTS, brute_force, mixed_mesh, query_points

from lyra_isaac.geometry import distance_torch
from lyra_isaac.geometry.distance_torch import point_mesh_distance_torch

torch = pytest.importorskip("torch")
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]
TOLERANCE = 1e-9
"""Metres: float64 rounding (a formula other than brute force's)."""


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cell", [0.05, 0.5, 4.0])
def test_matches_brute_force_on_mixed_sizes(device, cell):
    """Near points resolve in the first grid, far ones (up to ~100 m away) on coarser ones; huge triangles are
    split to the grid, slivers and degenerate faces included."""
    rng = np.random.default_rng(0)
    verts, faces = mixed_mesh(rng)
    pts = query_points(rng, verts, faces)
    got = point_mesh_distance_torch(verts, faces, pts, cell=cell, device=device)
    assert got.shape == (len(pts),) and got.dtype == np.float64
    np.testing.assert_allclose(got, brute_force(verts, faces, pts), rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("device", DEVICES)
def test_degenerate_faces_are_their_edges(device):
    rng = np.random.default_rng(7)
    seg = DEGENERATE_VERTS[[0, 2]]
    along = seg[0] + rng.uniform(-0.2, 1.2, (200, 1)) * (seg[1] - seg[0])
    pts = np.concatenate([along + rng.normal(0, 0.3, (200, 3)), rng.uniform(-5, 7, (200, 3))])
    for faces in (DEGENERATE_FACES, DEGENERATE_FACES[:1]):
        got = point_mesh_distance_torch(DEGENERATE_VERTS, faces, pts, cell=0.2, device=device)
        np.testing.assert_allclose(got, brute_force(DEGENERATE_VERTS, faces, pts), rtol=0, atol=TOLERANCE)


def test_small_passes_and_chunks_give_the_same_answer(monkeypatch):
    """A tiny pair budget (many chunks) and a tiny cell (several coarsening passes) change nothing."""
    rng = np.random.default_rng(1)
    verts, faces = mixed_mesh(rng)
    pts = query_points(rng, verts, faces)
    want = point_mesh_distance_torch(verts, faces, pts, cell=0.5, device="cpu")
    monkeypatch.setattr(distance_torch, "PAIR_BUDGET", 5000)
    np.testing.assert_allclose(point_mesh_distance_torch(verts, faces, pts, cell=0.01, device="cpu"), want,
                               rtol=0, atol=TOLERANCE)


def test_split_keeps_the_surface_and_bounds_the_extent():
    verts, faces = mixed_mesh(np.random.default_rng(2))
    tri = torch.as_tensor(verts[faces], dtype=torch.float64)
    split = distance_torch._split_to_cells(tri, 0.25)

    def area(t):
        return 0.5 * torch.linalg.norm(torch.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0], dim=1), dim=1).sum()

    assert float(area(split)) == pytest.approx(float(area(tri)), rel=1e-4)
    extent = (split.max(dim=1).values - split.min(dim=1).values).max(dim=1).values
    assert float(extent.max()) <= distance_torch.MAX_CELLS_PER_AXIS * 0.25 and split.shape[0] > tri.shape[0]


def test_bad_arguments():
    verts, faces = mixed_mesh(np.random.default_rng(3))
    with pytest.raises(ValueError, match="at least one triangle"):
        point_mesh_distance_torch(verts, np.zeros((0, 3), dtype=int), verts[:3], cell=0.1, device="cpu")
    with pytest.raises(ValueError, match="cell must be positive"):
        point_mesh_distance_torch(verts, faces, verts[:3], cell=0.0, device="cpu")
    assert point_mesh_distance_torch(verts, faces, np.zeros((0, 3)), cell=0.1, device="cpu").shape == (0,)


def test_surface_distance_uses_it_only_on_a_cuda_device(monkeypatch):
    """mesh.surface_distance(device="cuda") takes the grid search when torch sees a GPU, else the CPU path."""
    from lyra_isaac.geometry import mesh

    calls = []
    monkeypatch.setattr(distance_torch, "point_mesh_distance_torch",
                        lambda *args, **kwargs: calls.append(kwargs) or np.zeros(len(args[2])))
    verts, faces = mixed_mesh(np.random.default_rng(4))
    pts = verts[:5]
    monkeypatch.setattr(mesh, "_cuda_available", lambda: False)
    assert np.allclose(mesh.surface_distance(verts, faces, pts, device="cuda"), 0.0, atol=1e-9) and not calls
    monkeypatch.setattr(mesh, "_cuda_available", lambda: True)
    mesh.surface_distance(verts, faces, pts, device="cuda", cell=0.03)
    mesh.surface_distance(verts, faces, pts, device="cpu")
    assert calls == [{"cell": 0.03, "device": "cuda"}]
