"""Marching cubes over a sparse TSDF in torch: :func:`extract_mesh_torch`, the GPU path's twin of
:meth:`lyra_isaac.geometry.tsdf.SparseTSDF.extract_mesh` (scikit-image's, on the CPU and holding the GIL: ~2 s of a
Lyra-size conversion on the H100 machine).

Only the cubes near observed voxels below zero are visited, all at once on the device. The triangle table is made
here from first principles (:func:`triangle_table`), not copied: in each of the 256 sign cases the cut edges are
joined face by face (on a face with four cut edges, the two segments cut off the face's negative corners, a rule
that depends on the face's corners alone, so neighbouring cubes agree and the mesh is closed), the segments chained
into loops, each loop fanned into triangles and turned so that its normal points from the negative corners to the
positive ones. Scikit-image's Lewiner tables resolve ambiguous cubes with extra tests, so the two meshes differ in
those rare cubes; elsewhere they cut the same edges at the same points.

The rest follows :meth:`~lyra_isaac.geometry.tsdf.SparseTSDF.extract_mesh`: unobserved voxels read +1 (free
space), a triangle is kept only where both ends of every edge it cuts are observed with weight above
``min_weight``, vertices closer than 1/256 voxel are welded and faces that collapse are dropped; normals face free
space (positive TSDF) and faces wind counter-clockwise seen from there.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..world import TriangleMesh
from .tsdf import BLOCK, SparseTSDF

CORNERS = np.array([((c >> 2) & 1, (c >> 1) & 1, c & 1) for c in range(8)], dtype=np.int64)
"""(8, 3) offsets of a cube's corners from its lowest one: corner c has x = bit 2, y = bit 1, z = bit 0."""
EDGES = np.array([(a, a | (1 << (2 - axis))) for axis in range(3) for a in range(8) if not (a >> (2 - axis)) & 1],
                 dtype=np.int64)
"""(12, 2) the cube's edges as (lower corner, upper corner); edge e runs along axis ``e // 4``."""
CUBE_CHUNK = 1 << 22
"""Cubes examined per device pass (bounds memory to about 1 GB)."""
WELD_QUANTUM = 1.0 / 256
"""Voxels: vertices closer than this are merged (as the CPU extraction does)."""


@functools.lru_cache(maxsize=1)
def triangle_table() -> tuple[np.ndarray, np.ndarray]:
    """The marching-cubes table: ((256,) int64 triangle counts, (256, T, 3) int64 edge indices of each case's
    triangles, padded with -1). Case bit c is set when corner c (see ``CORNERS``) is below zero."""
    faces = []
    for axis in range(3):
        for side in (0, 1):
            ring = [c for c in range(8) if ((c >> (2 - axis)) & 1) == side]
            # order the face's 4 corners around it: neighbours differ in one bit
            ordered = [ring[0]]
            while len(ordered) < 4:
                last = ordered[-1]
                ordered.append(next(c for c in ring if c not in ordered and bin(c ^ last).count("1") == 1))
            faces.append(ordered)
    edge_of = {frozenset(map(int, e)): i for i, e in enumerate(EDGES)}
    counts = np.zeros(256, dtype=np.int64)
    tables = []
    for case in range(256):
        below = [(case >> c) & 1 == 1 for c in range(8)]
        segments = []
        for ring in faces:
            cut = [edge_of[frozenset((ring[i], ring[(i + 1) % 4]))] for i in range(4)
                   if below[ring[i]] != below[ring[(i + 1) % 4]]]
            if len(cut) == 2:
                segments.append(tuple(cut))
            elif len(cut) == 4:  # two negative corners on a diagonal: cut each off
                for i in range(4):
                    if below[ring[i]]:
                        segments.append((edge_of[frozenset((ring[i - 1], ring[i]))],
                                         edge_of[frozenset((ring[i], ring[(i + 1) % 4]))]))
        triangles = []
        for loop in _loops(segments):
            loop = _oriented(loop, below)
            triangles += [(loop[0], loop[i], loop[i + 1]) for i in range(1, len(loop) - 1)]
        counts[case] = len(triangles)
        tables.append(triangles)
    table = np.full((256, max(counts.max(), 1), 3), -1, dtype=np.int64)
    for case, triangles in enumerate(tables):
        if triangles:
            table[case, :len(triangles)] = triangles
    return counts, table


def _loops(segments: list[tuple[int, int]]) -> list[list[int]]:
    """Chain segments (pairs of edge indices, each edge in exactly two) into closed loops of edge indices."""
    neighbours: dict[int, list[int]] = {}
    for a, b in segments:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    loops, seen = [], set()
    for start in sorted(neighbours):
        if start in seen:
            continue
        loop, previous, current = [start], None, start
        seen.add(start)
        while True:
            following = [n for n in neighbours[current] if n != previous]
            nxt = following[0] if following else neighbours[current][0]
            if nxt == start:
                break
            loop.append(nxt)
            seen.add(nxt)
            previous, current = current, nxt
        loops.append(loop)
    return loops


def _oriented(loop: list[int], below: list[bool]) -> list[int]:
    """The loop (edge indices) in the order whose polygon normal (right-hand rule, through the edge midpoints)
    points from its edges' negative corners to their positive ones."""
    mid = np.array([CORNERS[EDGES[e]].mean(axis=0) for e in loop], dtype=np.float64)
    normal = np.zeros(3)
    for i in range(len(mid)):  # Newell's method
        normal += np.cross(mid[i], mid[(i + 1) % len(mid)])
    ends = [CORNERS[c] for e in loop for c in EDGES[e]]
    signs = [below[c] for e in loop for c in EDGES[e]]
    outward = (np.mean([p for p, s in zip(ends, signs, strict=True) if not s], axis=0)
               - np.mean([p for p, s in zip(ends, signs, strict=True) if s], axis=0))
    return loop if normal @ outward > 0 else loop[::-1]


def extract_mesh_torch(tsdf: SparseTSDF, values: Any, weights: Any, min_weight: float = 0.0) -> TriangleMesh:
    """Marching cubes at the zero level over the observed voxels of ``tsdf``, on the device of ``values``.

    Args:
        tsdf: the TSDF (its block layout: slots, coordinates, dimensions, voxel size, origin).
        values: (n_blocks * BLOCK^3,) float32 tensor of normalized TSDF values in slot order (on the device).
        weights: the same layout's fusion weights.
        min_weight: voxels with weight <= this count as unobserved.

    Returns:
        TriangleMesh, world frame, metres (may be empty).
    """
    import torch

    if tsdf.n_blocks == 0:
        return TriangleMesh(np.zeros((0, 3)), np.zeros((0, 3)))
    dev = values.device
    with torch.no_grad():
        n_vox = tsdf.n_blocks * BLOCK**3
        observed = weights[:n_vox] > min_weight
        field = torch.where(observed, values[:n_vox], torch.ones_like(values[:n_vox]))
        below_blocks = (field < 0).reshape(tsdf.n_blocks, -1).any(dim=1)
        # cubes with a corner below zero have their lowest corner in such a block or the block before it on
        # each axis
        block_dims = [int(d) for d in tsdf.block_dims]
        corner = torch.as_tensor(CORNERS, device=dev)
        coords = torch.as_tensor(tsdf.block_coords[:tsdf.n_blocks].astype(np.int64), device=dev)[below_blocks]
        shifted = (coords[:, None, :] + (corner - 1)[None]).reshape(-1, 3)
        shifted = shifted[(shifted >= 0).all(dim=1)]
        flat = torch.unique((shifted[:, 0] * block_dims[1] + shifted[:, 1]) * block_dims[2] + shifted[:, 2])
        candidates = torch.stack([flat // (block_dims[1] * block_dims[2]), (flat // block_dims[2]) % block_dims[1],
                                  flat % block_dims[2]], dim=1)
        dims = torch.as_tensor(tsdf.voxel_dims.astype(np.int64), device=dev)
        slot_of_block = torch.as_tensor(tsdf.block_slot.astype(np.int64), device=dev)
        local = corner.new_tensor(np.stack(np.meshgrid(*[np.arange(BLOCK)] * 3, indexing="ij"), -1).reshape(-1, 3))
        counts, table = (torch.as_tensor(t, device=dev) for t in triangle_table())
        edges = torch.as_tensor(EDGES, device=dev)
        verts_pos, verts_ok = [], []
        per_chunk = max(1, CUBE_CHUNK // BLOCK**3)
        for start in range(0, len(candidates), per_chunk):
            block = candidates[start:start + per_chunk]
            cube = (block[:, None, :] * BLOCK + local[None]).reshape(-1, 3)  # lowest corner of each cube, voxels
            corners = cube[:, None, :] + corner[None]  # (C, 8, 3)
            value, seen = _lookup(corners, field, observed, slot_of_block, block_dims, dims)
            case = ((value < 0).long() << torch.arange(8, device=dev)).sum(dim=1)
            keep = (case > 0) & (case < 255)
            cube, value, seen, case = cube[keep], value[keep], seen[keep], case[keep]
            n_tri = counts[case]
            owner = torch.repeat_interleave(torch.arange(cube.shape[0], device=dev), n_tri)
            k = torch.arange(owner.shape[0], device=dev) - (torch.cumsum(n_tri, 0) - n_tri)[owner]
            tri_edges = table[case[owner], k]  # (T, 3) edge indices
            e = tri_edges.reshape(-1)
            c = owner.repeat_interleave(3)
            a, b = edges[e, 0], edges[e, 1]
            va, vb = value[c, a], value[c, b]
            t = va / (va - vb)
            low = cube[c] + corner[a]
            axis = e // 4
            pos = low.double() + t.double()[:, None] * torch.nn.functional.one_hot(axis, 3).double()
            verts_pos.append(pos)
            verts_ok.append(seen[c, a] & seen[c, b])
        if not verts_pos:
            return TriangleMesh(np.zeros((0, 3)), np.zeros((0, 3)))
        pos = torch.cat(verts_pos)
        good = torch.cat(verts_ok).reshape(-1, 3).all(dim=1)  # both ends of every cut edge observed
        pos = pos.reshape(-1, 3, 3)[good].reshape(-1, 3)
        if pos.shape[0] == 0:
            return TriangleMesh(np.zeros((0, 3)), np.zeros((0, 3)))
        # every cube that cuts an edge computes the same point on it: welding equal (and, as the CPU extraction
        # does, nearly equal: corners at exactly zero) positions makes one vertex per cut
        quantized = torch.round(pos / WELD_QUANTUM).long() + 1  # >= 0: positions lie in [0, dims]
        span = [int(d + 2) * int(round(1 / WELD_QUANTUM)) for d in tsdf.voxel_dims]
        if span[0] * span[1] * span[2] < 1 << 63:  # one int64 key per position
            key = (quantized[:, 0] * span[1] + quantized[:, 1]) * span[2] + quantized[:, 2]
            _, weld_index = torch.unique(key, return_inverse=True)
        else:
            _, weld_index = torch.unique(quantized, dim=0, return_inverse=True)
        face = weld_index.reshape(-1, 3)
        keep = (face[:, 0] != face[:, 1]) & (face[:, 1] != face[:, 2]) & (face[:, 0] != face[:, 2])
        face = face[keep]
        used, remap = torch.unique(face.reshape(-1), return_inverse=True)
        first = torch.full((int(weld_index.max()) + 1,), pos.shape[0], dtype=torch.long, device=dev)
        first.scatter_reduce_(0, weld_index, torch.arange(pos.shape[0], device=dev), reduce="amin")
        vertices = pos[first[used]]
        world = ((vertices + 0.5) * tsdf.voxel_size + torch.as_tensor(tsdf.origin, device=dev)).float()
        return TriangleMesh(world.cpu().numpy(), remap.reshape(-1, 3).int().cpu().numpy())


def _lookup(corners: Any, field: Any, observed: Any, slot_of_block: Any, block_dims: list[int],
            dims: Any) -> tuple[Any, Any]:
    """((C, 8) values, (C, 8) observed) at (C, 8, 3) voxel coordinates: +1 and unobserved outside the grid or in
    unallocated blocks."""
    import torch

    from .surface_gpu import voxel_storage_index

    index, present = voxel_storage_index(corners, slot_of_block, block_dims, dims)
    value = torch.where(present, field[index], torch.ones_like(field[index]))
    return value, present & observed[index]
