"""Benchmark: the two mesh steps the GPU path moved to torch, side by side with their CPU versions on one input.

1. Marching cubes of a sparse TSDF: ``SparseTSDF.extract_mesh`` (scikit-image, one CPU thread) against
   ``marching_torch.extract_mesh_torch`` (the ``--device`` given), with the triangle counts and areas of both.
2. The decimation error check: the distance from 50k of the mesh's vertices to its halving, numpy's upper bound
   (``distance.point_mesh_distance(exact=False)``, what the CPU path runs without open3d), open3d's BVH where it is
   installed, and ``distance_torch.point_mesh_distance_torch`` (exact) on the device.

The TSDF is analytic (a wavy floor, a ball and a box room's walls: about a million triangles at the default 1 cm
voxels over 8 x 6 x 3 m), so the script needs no fixture. On a machine without CUDA it runs the torch versions on
the CPU, which is slow and only checks they run.

    python benchmarks/gpu_mesh_steps.py --device cuda
    python benchmarks/gpu_mesh_steps.py --device cpu --voxel 0.03   # a quick look without a GPU
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lyra_isaac.geometry.tsdf import BLOCK, SparseTSDF

ROOM = (np.array([-4.0, -3.0, -0.3]), np.array([4.0, 3.0, 2.8]))


def make_tsdf(voxel: float) -> SparseTSDF:
    """A TSDF band (4 voxels) around a wavy floor, a ball and the room's four walls, every block near them
    allocated, weights 1."""
    low, high = ROOM
    tsdf = SparseTSDF(low, high, voxel_size=voxel, truncation=4 * voxel)
    coords = np.stack(np.meshgrid(*[np.arange(d) for d in tsdf.block_dims], indexing="ij"), -1).reshape(-1, 3)
    centers = low + (coords + 0.5) * BLOCK * voxel
    near = np.abs(_distance(centers)) < BLOCK * voxel + tsdf.truncation
    flat = (coords[near, 0] * tsdf.block_dims[1] + coords[near, 1]) * tsdf.block_dims[2] + coords[near, 2]
    vox, index = tsdf.block_voxels(tsdf.allocate_blocks(flat))
    for start in range(0, len(index), 1 << 24):
        part = slice(start, start + (1 << 24))
        value = np.clip(_distance(tsdf.voxel_centers(vox[part]).astype(np.float64)) / tsdf.truncation, -1, 1)
        tsdf.accumulate(index[part], value.astype(np.float32), np.ones(len(index[part]), np.float32))
    return tsdf


def _distance(p: np.ndarray) -> np.ndarray:
    """Signed distance (approximately) to the free space of the room: floor, ball and walls, metres."""
    floor = p[:, 2] - 0.05 * np.sin(2 * p[:, 0]) * np.cos(3 * p[:, 1])
    ball = np.linalg.norm(p - [1.0, 0.5, 0.8], axis=1) - 0.6
    walls = np.minimum.reduce([p[:, 0] + 3.8, 3.8 - p[:, 0], p[:, 1] + 2.8, 2.8 - p[:, 1]])
    return np.minimum.reduce([floor, ball, walls])


def _area(mesh) -> float:
    tri = mesh.vertices.astype(np.float64)[mesh.faces]
    return float(0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum())


def _timed(call, synchronize=None):
    start = time.perf_counter()
    out = call()
    if synchronize is not None:
        synchronize()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="torch device for the torch versions (default cuda)")
    parser.add_argument("--voxel", type=float, default=0.01, help="TSDF voxel edge, metres (default 0.01)")
    parser.add_argument("--samples", type=int, default=50_000, help="points of the distance check")
    args = parser.parse_args()
    import fast_simplification
    import torch

    from lyra_isaac.geometry.distance import point_mesh_distance
    from lyra_isaac.geometry.distance_torch import point_mesh_distance_torch
    from lyra_isaac.geometry.marching_torch import extract_mesh_torch, triangle_table
    from lyra_isaac.geometry.raycast import resolve_backend

    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    tsdf, seconds = _timed(lambda: make_tsdf(args.voxel))
    print(f"TSDF: {tsdf.n_blocks:,} blocks of {BLOCK}^3 voxels of {args.voxel} m (built in {seconds:.1f} s); "
          f"torch {torch.__version__} on {device}")
    n = tsdf.n_blocks * BLOCK**3
    values = torch.as_tensor(tsdf.tsdf[:n], device=device)
    weights = torch.as_tensor(tsdf.weight[:n], device=device)
    triangle_table()
    extract_mesh_torch(tsdf, values, weights)  # warm-up: kernels, caches
    cpu_mesh, cpu_s = _timed(lambda: tsdf.extract_mesh(0.0))
    torch_mesh, torch_s = _timed(lambda: extract_mesh_torch(tsdf, values, weights), sync)
    print(f"marching cubes  scikit-image {cpu_s:6.2f} s ({cpu_mesh.n_triangles:,} triangles, {_area(cpu_mesh):.2f} m^2)"
          f"   torch {torch_s:6.3f} s ({torch_mesh.n_triangles:,} triangles, {_area(torch_mesh):.2f} m^2)"
          f"   {cpu_s / max(torch_s, 1e-9):.1f}x")

    verts, faces = cpu_mesh.vertices.astype(np.float64), cpu_mesh.faces.astype(np.int32)
    rng = np.random.default_rng(0)
    sample = verts[rng.choice(len(verts), size=min(args.samples, len(verts)), replace=False)]
    half_v, half_f = fast_simplification.simplify(verts, faces, target_reduction=0.5)
    upper, numpy_s = _timed(lambda: point_mesh_distance(half_v, half_f, sample, exact=False))
    exact_torch, torch_s = _timed(lambda: point_mesh_distance_torch(half_v, half_f, sample, cell=0.02,
                                                                    device=device), sync)
    line = (f"decimation check ({len(half_f):,} triangles, {len(sample):,} points)  numpy upper bound {numpy_s:6.2f} s"
            f" (p95 {np.percentile(upper, 95) * 1000:.2f} mm)   torch exact {torch_s:6.3f} s"
            f" (p95 {np.percentile(exact_torch, 95) * 1000:.2f} mm)   {numpy_s / max(torch_s, 1e-9):.1f}x")
    if resolve_backend("auto") == "open3d":
        from lyra_isaac.geometry.mesh import surface_distance

        _, o3d_s = _timed(lambda: surface_distance(half_v, half_f, sample))
        line += f"   open3d {o3d_s:6.2f} s"
    print(line)


if __name__ == "__main__":
    main()
