"""A block-sparse truncated signed distance field on the CPU (numpy), and marching cubes over its occupied tiles.

Layout (like open3d's VoxelBlockGrid, without hashing): the bounding box of the scene is cut into blocks of
``B^3`` voxels; a dense int32 grid ``block_slot`` maps each block to a slot in the voxel storage (or -1 while the
block is unallocated). A voxel's storage index is ``slot * B^3 + local``. Lookups are O(1) gathers, never sorts,
so integrating a view costs time proportional to the voxels it touches.

Values: ``tsdf`` is the weighted mean of truncated projective distances in units of the truncation distance
(+1 = free space in front of a surface, -1 = behind it); ``weight`` the sum of observation weights; voxels with
weight 0 are unobserved and never produce triangles.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from ..world import TriangleMesh

logger = logging.getLogger(__name__)

BLOCK = 4
"""Voxels per block edge."""
MC_TILE = 32
"""Voxels per marching-cubes tile edge (a multiple of BLOCK); one scikit-image call per occupied tile."""


_LOCAL_GRID = np.stack(np.meshgrid(*[np.arange(BLOCK)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
"""(BLOCK^3, 3) local voxel coordinates in storage order."""


class SparseTSDF:
    """Block-sparse TSDF over an axis-aligned box.

    Args:
        lower: (3,) float64 world coordinates of the box's minimum corner, metres.
        upper: (3,) float64 maximum corner, metres.
        voxel_size: voxel edge, metres.
        truncation: truncation distance, metres (stored values are distance / truncation, clipped to [-1, 1]).
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray, voxel_size: float, truncation: float):
        self.voxel_size = float(voxel_size)
        self.truncation = float(truncation)
        self.origin = np.asarray(lower, dtype=np.float64) - 2 * self.voxel_size
        extent = np.asarray(upper, dtype=np.float64) + 2 * self.voxel_size - self.origin
        self.block_dims = np.maximum(np.ceil(extent / (voxel_size * BLOCK)).astype(np.int64), 1)
        self.voxel_dims = self.block_dims * BLOCK
        self.block_slot = np.full(int(np.prod(self.block_dims)), -1, dtype=np.int32)
        self.block_coords = np.zeros((0, 3), dtype=np.int32)
        capacity = 1024
        self.tsdf = np.zeros(capacity * BLOCK**3, dtype=np.float32)
        self.weight = np.zeros(capacity * BLOCK**3, dtype=np.float32)
        self.n_blocks = 0
        self._sampler: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None

    # ----------------------------------------------------------------------------------------------- addressing
    def voxel_of(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N, 3) int64 voxel coordinates (may be outside the box)."""
        return np.floor((points - self.origin) / self.voxel_size).astype(np.int64)

    def voxel_centers(self, voxels: np.ndarray) -> np.ndarray:
        """(N, 3) int voxel coordinates -> (N, 3) float32 world centres, metres."""
        return ((voxels + 0.5) * self.voxel_size + self.origin).astype(np.float32)

    def inside(self, voxels: np.ndarray) -> np.ndarray:
        return np.all((voxels >= 0) & (voxels < self.voxel_dims), axis=1)

    def _block_flat(self, voxels: np.ndarray) -> np.ndarray:
        b = voxels // BLOCK
        return (b[:, 0] * self.block_dims[1] + b[:, 1]) * self.block_dims[2] + b[:, 2]

    def allocate(self, voxels: np.ndarray) -> None:
        """Allocate the blocks holding (N, 3) voxel coordinates (all inside the box)."""
        self.allocate_blocks(np.unique(self._block_flat(voxels)))

    def blocks_of(self, points: np.ndarray) -> np.ndarray:
        """Sorted unique flat block indices of the (N, 3) world points inside the box."""
        vox = self.voxel_of(points)
        return np.unique(self._block_flat(vox[self.inside(vox)]))

    def allocate_blocks(self, flat: np.ndarray) -> np.ndarray:
        """Allocate the blocks with the given unique flat indices; returns their (B,) int64 slots."""
        missing = self.block_slot[flat] < 0
        if not missing.any():
            return self.block_slot[flat].astype(np.int64)
        self._sampler = None
        new = flat[missing]
        start = self.n_blocks
        self.n_blocks += len(new)
        self.block_slot[new] = np.arange(start, self.n_blocks, dtype=np.int32)
        coords = np.stack(np.unravel_index(new, tuple(self.block_dims)), axis=1).astype(np.int32)
        self.block_coords = np.concatenate([self.block_coords, coords])
        need = self.n_blocks * BLOCK**3
        old = self.tsdf.shape[0]
        if need > old:
            size = max(need, 2 * old)
            for name in ("tsdf", "weight"):
                grown = np.zeros(size, dtype=np.float32)
                grown[:old] = getattr(self, name)
                setattr(self, name, grown)
        return self.block_slot[flat].astype(np.int64)

    def block_voxels(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All voxels of allocated blocks: ((B * BLOCK^3, 3) int64 voxel coordinates, (B * BLOCK^3,) storage
        indices)."""
        local = _LOCAL_GRID
        vox = (self.block_coords[slots].astype(np.int64)[:, None, :] * BLOCK + local[None]).reshape(-1, 3)
        index = (slots[:, None] * BLOCK**3 + np.arange(BLOCK**3)[None]).reshape(-1)
        return vox, index

    def index_of(self, voxels: np.ndarray) -> np.ndarray:
        """(N, 3) voxel coordinates -> (N,) int64 storage indices, -1 where outside the box or unallocated."""
        inside = self.inside(voxels)
        out = np.full(voxels.shape[0], -1, dtype=np.int64)
        v = voxels[inside]
        slot = self.block_slot[self._block_flat(v)].astype(np.int64)
        local = v % BLOCK
        idx = slot * BLOCK**3 + (local[:, 0] * BLOCK + local[:, 1]) * BLOCK + local[:, 2]
        out[inside] = np.where(slot >= 0, idx, -1)
        return out

    # ----------------------------------------------------------------------------------------------- fusion
    def accumulate(self, index: np.ndarray, value: np.ndarray, weight: np.ndarray) -> None:
        """Add observations: (N,) storage indices (unique within the call), values in [-1, 1], weights > 0."""
        self._sampler = None
        old_w = self.weight[index]
        new_w = old_w + weight
        self.tsdf[index] = (self.tsdf[index] * old_w + value * weight) / new_w
        self.weight[index] = new_w

    def attach_sampler(self, sampler: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None) -> None:
        """Let :meth:`sample` run through ``sampler`` (an accelerated twin with the same contract, e.g. on a GPU copy
        of this TSDF) until the TSDF changes: any later allocation or accumulation detaches it."""
        self._sampler = sampler

    def sample(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Trilinear TSDF at (N, 3) world points, metres (distance, not normalized).

        The 8 corners share their per-axis block and in-block coordinates (two values per axis), so the addressing
        is computed once per axis, not per corner (3x faster than looking each corner up on its own).

        Returns:
            (N,) float32 signed distance in metres (NaN where any of the 8 neighbours is unobserved) and (N,) float32
            interpolated weight.
        """
        if self._sampler is not None:
            return self._sampler(points)
        n = points.shape[0]
        g = (np.asarray(points, dtype=np.float64) - self.origin) / self.voxel_size - 0.5
        base = np.floor(g)
        frac = (g - base).astype(np.float32)
        base = base.astype(np.int64)
        # per axis and corner offset o in {0, 1}: inside the box, block coordinate, in-block coordinate, weight
        inside, block, local, axis_w = [], [], [], []
        for axis in range(3):
            coords = (base[:, axis], base[:, axis] + 1)
            inside.append([(c >= 0) & (c < self.voxel_dims[axis]) for c in coords])
            block.append([c // BLOCK for c in coords])
            local.append([c % BLOCK for c in coords])
            axis_w.append((1.0 - frac[:, axis], frac[:, axis]))
        dims = self.block_dims
        value = np.zeros(n, dtype=np.float32)
        weight = np.zeros(n, dtype=np.float32)
        valid = np.ones(n, dtype=bool)
        for corner in range(8):
            o = ((corner >> 2) & 1, (corner >> 1) & 1, corner & 1)
            ok = inside[0][o[0]] & inside[1][o[1]] & inside[2][o[2]]
            flat = (block[0][o[0]] * dims[1] + block[1][o[1]]) * dims[2] + block[2][o[2]]
            slot = np.where(ok, self.block_slot[np.where(ok, flat, 0)], -1).astype(np.int64)
            ok = slot >= 0
            idx = slot * BLOCK**3 + (local[0][o[0]] * BLOCK + local[1][o[1]]) * BLOCK + local[2][o[2]]
            idx = np.where(ok, idx, 0)
            obs = np.where(ok, self.weight[idx], np.float32(0.0))
            w_c = axis_w[0][o[0]] * axis_w[1][o[1]] * axis_w[2][o[2]]
            valid &= obs > 0
            value += w_c * np.where(ok, self.tsdf[idx], np.float32(0.0))
            weight += w_c * obs
        value[~valid] = np.nan
        return value * np.float32(self.truncation), weight

    @property
    def n_observed(self) -> int:
        return int(np.count_nonzero(self.weight[: self.n_blocks * BLOCK**3]))

    # ----------------------------------------------------------------------------------------------- meshing
    def _tile_blocks(self, tiles: np.ndarray) -> np.ndarray:
        """Storage slots of the blocks that marching-cubes tiles read.

        Args:
            tiles: (T, 3) int64 tile coordinates (tile ``t`` covers voxels ``t * MC_TILE`` to ``t * MC_TILE +
                MC_TILE`` inclusive on each axis).

        Returns:
            (T, S, S, S) int64 slots of the ``S = MC_TILE // BLOCK + 1`` blocks per axis under each tile (the last
            layer for the one voxel of overlap with the next tile); ``n_blocks`` (a sentinel) where the block is
            unallocated or outside the box.
        """
        per_tile = MC_TILE // BLOCK
        blocks = tiles[:, :, None] * per_tile + np.arange(per_tile + 1)  # (T, 3, S) block coordinate per axis
        inside = blocks < self.block_dims[None, :, None]
        bx, by, bz = blocks[:, 0, :, None, None], blocks[:, 1, None, :, None], blocks[:, 2, None, None, :]
        ok = inside[:, 0, :, None, None] & inside[:, 1, None, :, None] & inside[:, 2, None, None, :]
        flat = (bx * self.block_dims[1] + by) * self.block_dims[2] + bz
        slots = np.where(ok, self.block_slot[np.where(ok, flat, 0)], -1).astype(np.int64)
        slots[slots < 0] = self.n_blocks
        return slots

    def extract_mesh(self, min_weight: float = 0.0) -> TriangleMesh:
        """Marching cubes at the zero level over the observed voxels.

        Triangles are kept only where both ends of every edge they cut are observed with weight > ``min_weight``
        (no surface is invented at the border of the observed band). Normals face free space (positive TSDF), and
        faces wind counter-clockwise seen from there.

        The volume is cut into tiles of ``MC_TILE^3`` voxels (one scikit-image call per tile that holds a crossing);
        each tile's values are gathered block by block (:meth:`_tile_blocks`), not voxel by voxel.

        Returns:
            TriangleMesh, world frame, metres (may be empty).
        """
        from skimage.measure import marching_cubes

        n_vox = self.n_blocks * BLOCK**3
        if self.n_blocks == 0:
            return TriangleMesh(np.zeros((0, 3)), np.zeros((0, 3)))
        # storage with a sentinel block at slot n_blocks (unobserved, value +1) for unallocated / outside blocks;
        # unobserved voxels read +1 (free space) so they never make a crossing of their own
        observed = np.zeros((self.n_blocks + 1) * BLOCK**3, dtype=bool)
        np.greater(self.weight[:n_vox], min_weight, out=observed[:n_vox])
        values = np.ones((self.n_blocks + 1) * BLOCK**3, dtype=np.float32)
        np.copyto(values[:n_vox], self.tsdf[:n_vox], where=observed[:n_vox])
        tsdf = values[:n_vox].reshape(self.n_blocks, -1)
        # a block can hold a crossing if it has observed voxels of both signs, or observed voxels at all (the
        # crossing may lie between it and a neighbour): take blocks with any observed voxel below +1 (negative or
        # near zero; unobserved voxels read +1)
        active = (tsdf < 1.0).any(axis=1)
        per_tile = MC_TILE // BLOCK
        tile_of_block = self.block_coords[active].astype(np.int64) // per_tile
        tiles = np.unique(tile_of_block, axis=0)
        slots = self._tile_blocks(tiles)
        values = values.reshape(self.n_blocks + 1, BLOCK, BLOCK, BLOCK)
        observed = observed.reshape(self.n_blocks + 1, BLOCK, BLOCK, BLOCK)
        verts_all, faces_all = [], []
        n_verts = 0
        for tile, tile_slots in zip(tiles, slots, strict=True):
            vol = _tile_volume(values, tile_slots)
            if vol.min() >= 0 or vol.max() <= 0:
                continue
            try:
                verts, faces, _, _ = marching_cubes(vol, level=0.0, gradient_direction="descent",
                                                    allow_degenerate=False)
            except (ValueError, RuntimeError):
                continue
            obs_vol = _tile_volume(observed, tile_slots)
            lo = np.floor(verts).astype(np.int64)
            hi = np.minimum(np.ceil(verts).astype(np.int64), MC_TILE)
            good_v = obs_vol[lo[:, 0], lo[:, 1], lo[:, 2]] & obs_vol[hi[:, 0], hi[:, 1], hi[:, 2]]
            good_f = good_v[faces].all(axis=1)
            if not good_f.any():
                continue
            faces = faces[good_f]
            verts_all.append(verts + tile * MC_TILE)
            faces_all.append(faces + n_verts)
            n_verts += verts.shape[0]
        if not faces_all:
            return TriangleMesh(np.zeros((0, 3)), np.zeros((0, 3)))
        verts = np.concatenate(verts_all)
        faces = np.concatenate(faces_all)
        # weld the vertices shared by neighbouring tiles (identical edge, identical interpolation up to rounding)
        verts, faces = weld_vertices(verts, faces, quantum=1.0 / 256)
        keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
        faces = faces[keep]
        used = np.zeros(len(verts), dtype=bool)
        used[faces.reshape(-1)] = True
        remap = np.cumsum(used) - 1
        verts, faces = verts[used], remap[faces]
        world = (verts + 0.5) * self.voxel_size + self.origin
        return TriangleMesh(world.astype(np.float32), faces.astype(np.int32))


def _tile_volume(blocks: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """One tile's dense voxel volume from block storage.

    Args:
        blocks: (n_blocks + 1, BLOCK, BLOCK, BLOCK) per-block voxel values (any dtype), the last one a sentinel.
        slots: (S, S, S) int64 slots of the tile's blocks, ``S = MC_TILE // BLOCK + 1`` (see
            :meth:`SparseTSDF._tile_blocks`).

    Returns:
        (MC_TILE + 1,) * 3 C-contiguous array of the tile's voxels, indexed [x, y, z] from the tile's corner.
    """
    s = slots.shape[0] * BLOCK
    vol = blocks[slots].transpose(0, 3, 1, 4, 2, 5).reshape(s, s, s)
    return np.ascontiguousarray(vol[: MC_TILE + 1, : MC_TILE + 1, : MC_TILE + 1])


def weld_vertices(verts: np.ndarray, faces: np.ndarray, quantum: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices that coincide after rounding to ``quantum`` (same units as ``verts``).

    Returns the (V', 3) unique vertices (first occurrence kept) and the faces re-indexed into them.
    """
    q = np.round(verts / quantum).astype(np.int64)
    q -= q.min(axis=0)
    span = q.max(axis=0) + 1
    if np.prod(span.astype(np.float64)) < 2.0**62:
        key = (q[:, 0] * span[1] + q[:, 1]) * span[2] + q[:, 2]
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(q, axis=0, return_index=True, return_inverse=True)
    return verts[first], inverse.reshape(-1)[faces]
