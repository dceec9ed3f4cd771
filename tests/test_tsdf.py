"""SparseTSDF addressing and trilinear sampling against a per-corner reference and an analytic field."""

from __future__ import annotations

import numpy as np
import pytest

from lyra_isaac.geometry.tsdf import BLOCK, SparseTSDF


def _plane_tsdf(rng: np.random.Generator, drop_fraction: float = 0.3) -> SparseTSDF:
    """A TSDF of the plane z = 0.37 (value = z - 0.37, within truncation), on a random subset of blocks."""
    tsdf = SparseTSDF(np.array([-1.0, -1.0, -0.5]), np.array([1.0, 1.0, 1.0]), voxel_size=0.05, truncation=0.2)
    flat = np.arange(int(np.prod(tsdf.block_dims)))
    keep = flat[rng.random(len(flat)) > drop_fraction]
    slots = tsdf.allocate_blocks(keep)
    vox, index = tsdf.block_voxels(slots)
    z = tsdf.voxel_centers(vox)[:, 2].astype(np.float64)
    value = np.clip((z - 0.37) / tsdf.truncation, -1, 1).astype(np.float32)
    tsdf.accumulate(index, value, np.full(len(index), 2.0, np.float32))
    return tsdf


def _reference_sample(tsdf: SparseTSDF, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each of the 8 corners looked up on its own with index_of."""
    g = (points - tsdf.origin) / tsdf.voxel_size - 0.5
    base = np.floor(g).astype(np.int64)
    frac = g - base
    value = np.zeros(len(points))
    weight = np.zeros(len(points))
    valid = np.ones(len(points), bool)
    for corner in range(8):
        offset = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        idx = tsdf.index_of(base + offset)
        w = np.prod(np.where(offset[None], frac, 1 - frac), axis=1)
        obs = np.where(idx >= 0, tsdf.weight[np.maximum(idx, 0)], 0)
        valid &= obs > 0
        value += w * np.where(idx >= 0, tsdf.tsdf[np.maximum(idx, 0)], 0)
        weight += w * obs
    value[~valid] = np.nan
    return value * tsdf.truncation, weight


def test_sample_matches_per_corner_reference():
    rng = np.random.default_rng(3)
    tsdf = _plane_tsdf(rng)
    points = rng.uniform([-1.3, -1.3, -0.8], [1.3, 1.3, 1.3], (20000, 3))  # some outside the box
    value, weight = tsdf.sample(points)
    ref_value, ref_weight = _reference_sample(tsdf, points)
    np.testing.assert_array_equal(np.isnan(value), np.isnan(ref_value))
    ok = ~np.isnan(value)
    assert 0.2 < ok.mean() < 0.9
    np.testing.assert_allclose(value[ok], ref_value[ok], atol=1e-5)
    np.testing.assert_allclose(weight, ref_weight, atol=1e-5)


def test_sample_is_exact_for_a_linear_field():
    """Trilinear interpolation of a linear field is exact: the sampled distance is z - 0.37 where observed."""
    rng = np.random.default_rng(4)
    tsdf = _plane_tsdf(rng, drop_fraction=0.0)
    points = rng.uniform([-0.8, -0.8, 0.25], [0.8, 0.8, 0.5], (5000, 3))
    value, weight = tsdf.sample(points)
    assert not np.isnan(value).any()
    np.testing.assert_allclose(value, points[:, 2] - 0.37, atol=1e-5)
    np.testing.assert_allclose(weight, 2.0, atol=1e-5)
    assert BLOCK == 4


def test_torch_sampler_matches_numpy_and_detaches_on_change():
    """TorchFusion.finish leaves a torch twin of sample() on the TSDF (the GPU path's view alignment samples the
    consensus through it); it agrees with the numpy sampler and is dropped as soon as the TSDF changes."""
    torch = pytest.importorskip("torch")
    from lyra_isaac.geometry.surface_gpu import TorchFusion, TorchTSDFSampler

    rng = np.random.default_rng(5)
    tsdf = _plane_tsdf(rng)
    points = rng.uniform([-1.3, -1.3, -0.8], [1.3, 1.3, 1.3], (20000, 3)).astype(np.float32)
    ref_value, ref_weight = tsdf.sample(points)

    fusion = TorchFusion("cpu")
    state = fusion._storage(tsdf)  # what integrate() fills on the device
    n = tsdf.n_blocks * BLOCK**3
    state["tsdf"][:n] = torch.as_tensor(tsdf.tsdf[:n])
    state["weight"][:n] = torch.as_tensor(tsdf.weight[:n])
    fusion.finish(tsdf)
    assert isinstance(tsdf._sampler, TorchTSDFSampler)
    value, weight = tsdf.sample(points)
    np.testing.assert_array_equal(np.isnan(value), np.isnan(ref_value))
    ok = ~np.isnan(value)
    np.testing.assert_allclose(value[ok], ref_value[ok], atol=1e-5)
    np.testing.assert_allclose(weight, ref_weight, atol=1e-5)

    tsdf.accumulate(np.arange(8), np.zeros(8, np.float32), np.ones(8, np.float32))
    assert tsdf._sampler is None  # changed on the CPU: the device copy is stale


def _reference_extract(tsdf: SparseTSDF, min_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """The plain tiled extraction: every tile's voxels looked up one by one with index_of, then the same marching
    cubes, edge filter, tile-order assembly and weld as SparseTSDF.extract_mesh. Returns (V, 3) float32 world
    vertices and (F, 3) int32 faces."""
    from skimage.measure import marching_cubes

    from lyra_isaac.geometry.tsdf import MC_TILE, weld_vertices

    n_vox = tsdf.n_blocks * BLOCK**3
    observed = tsdf.weight[:n_vox] > min_weight
    values = np.where(observed, tsdf.tsdf[:n_vox], 1.0).reshape(tsdf.n_blocks, -1)
    active = (values < 1.0).any(axis=1)
    tiles = np.unique(tsdf.block_coords[active].astype(np.int64) // (MC_TILE // BLOCK), axis=0)
    grid = np.stack(np.meshgrid(*[np.arange(MC_TILE + 1)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    shape = (MC_TILE + 1,) * 3
    verts_all, faces_all, n_verts = [], [], 0
    for tile in tiles:
        idx = tsdf.index_of(tile * MC_TILE + grid)
        ok = idx >= 0
        vol = np.ones(len(grid), np.float32)
        weight = np.zeros(len(grid), np.float32)
        vol[ok] = tsdf.tsdf[idx[ok]]
        weight[ok] = tsdf.weight[idx[ok]]
        obs = (weight > min_weight).reshape(shape)
        vol = np.where(obs, vol.reshape(shape), np.float32(1.0))
        if vol.min() >= 0 or vol.max() <= 0:
            continue
        verts, faces, _, _ = marching_cubes(vol, level=0.0, gradient_direction="descent", allow_degenerate=False)
        lo = np.floor(verts).astype(np.int64)
        hi = np.minimum(np.ceil(verts).astype(np.int64), MC_TILE)
        good_v = obs[lo[:, 0], lo[:, 1], lo[:, 2]] & obs[hi[:, 0], hi[:, 1], hi[:, 2]]
        faces = faces[good_v[faces].all(axis=1)]
        if len(faces):
            verts_all.append(verts + tile * MC_TILE)
            faces_all.append(faces + n_verts)
            n_verts += len(verts)
    verts, faces = weld_vertices(np.concatenate(verts_all), np.concatenate(faces_all), quantum=1.0 / 256)
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    used = np.zeros(len(verts), bool)
    used[faces.reshape(-1)] = True
    world = (verts[used] + 0.5) * tsdf.voxel_size + tsdf.origin
    return world.astype(np.float32), (np.cumsum(used) - 1)[faces].astype(np.int32)


@pytest.mark.parametrize("min_weight", [0.0, 1.0])
def test_extract_mesh_matches_per_voxel_reference(min_weight):
    """The block-gathered tiles give the exact mesh of per-voxel lookups, on a field spanning 3 x 3 x 2 tiles with
    unallocated blocks (inside tiles and at the box's edge) and voxels below the weight threshold."""
    rng = np.random.default_rng(7)
    tsdf = SparseTSDF(np.array([-1.2, -1.2, -0.5]), np.array([1.2, 1.2, 1.0]), voxel_size=0.03, truncation=0.12)
    assert np.all(tsdf.voxel_dims > [64, 64, 32])  # 3 x 3 x 2 marching-cubes tiles, the last ones cut by the box
    flat = np.arange(int(np.prod(tsdf.block_dims)))
    slots = tsdf.allocate_blocks(flat[rng.random(len(flat)) > 0.1])
    vox, index = tsdf.block_voxels(slots)
    p = tsdf.voxel_centers(vox).astype(np.float64)
    # a wavy floor and a ball: crossings in most tiles, of both orientations
    dist = np.minimum(p[:, 2] - 0.1 * np.sin(3 * p[:, 0]) * np.cos(2 * p[:, 1]), np.linalg.norm(p - [0.3, -0.2, 0.4],
                                                                                                axis=1) - 0.35)
    value = np.clip(dist / tsdf.truncation, -1, 1).astype(np.float32)
    weight = rng.choice(np.array([0.5, 2.0, 3.0], np.float32), len(index), p=[0.1, 0.6, 0.3])
    tsdf.accumulate(index, value, weight)

    mesh = tsdf.extract_mesh(min_weight)
    ref_vertices, ref_faces = _reference_extract(tsdf, min_weight)
    assert len(ref_faces) > 10000
    np.testing.assert_array_equal(mesh.vertices, ref_vertices)
    np.testing.assert_array_equal(mesh.faces, ref_faces)
