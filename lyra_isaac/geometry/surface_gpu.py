"""Surface extraction on a GPU: gsplat depth rendering and TSDF fusion in torch.

Same method and result as :mod:`.surface` (read its docstring), with two parts moved to torch:

- **Depth** for scenes that are not pixel-aligned is rendered with gsplat's
  ``rasterization(render_mode="RGB+ED")`` from the cameras (or from views synthesized in free space); pixels whose
  accumulated alpha is below ``ALPHA_MIN`` are invalid. Pixel-aligned scenes need no rendering: their Gaussians
  are the depth maps (and they are better depth maps than a render that blends all views' Gaussians).
- **Fusion** (:class:`TorchFusion`): per view, the voxels of the blocks near its surface are projected and updated
  on the device. It runs on any torch device, so CI checks it against the numpy backend on the CPU.

Marching cubes run on the device too (:mod:`.marching_torch`); block allocation bookkeeping and the per-view
alignment fits (a few thousand samples per view) stay on the CPU.
torch and gsplat are imported lazily (pip extra ``gpu``).
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

import numpy as np

from ..errors import ConversionError, InputError, MissingDependencyError
from ..progress import NO_PROGRESS, Progress
from ..splats.cameras import CameraPath
from ..splats.scene import GaussianScene
from ..world import TriangleMesh
from .depth_factor import ViewPairs, gather_view_pairs
from .depth_maps import DepthViews
from .fusion import INTERP_MAX_RATIO, MAX_SUBPIXEL, allocation_stride, stride_intrinsics
from .surface import SurfaceConfig, SurfaceResult, fuse_and_mesh, make_depth_views
from .tsdf import BLOCK, SparseTSDF

logger = logging.getLogger(__name__)

ALPHA_MIN = 0.5
"""Rendered pixels with accumulated alpha below this have no depth."""
RENDER_BATCH = 8
"""Views rendered per gsplat call."""
BATCH_VOXELS = 1 << 23
"""Voxel projections per device pass of :meth:`TorchFusion.integrate_views` (bounds its memory to ~1 GB)."""


def _torch():
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "gpu", "GPU surface extraction") from None
    return torch


def start_device(device: str | None = None) -> None:
    """Import torch and, on a CUDA device, create its context: the one-time start-up (~2-4 s) that
    :func:`lyra_isaac.convert.convert` runs on a worker thread while the scene loads, before the surface stage needs
    it.

    Raises:
        MissingDependencyError: torch is not installed (extra ``gpu``).
    """
    torch = _torch()
    device = device or default_device()
    if str(device).startswith("cuda") and torch.cuda.is_available():
        torch.zeros(1, device=device)


def default_device() -> str:
    """"cuda" when torch sees a GPU, else "cpu"."""
    torch = _torch()
    return "cuda" if torch.cuda.is_available() else "cpu"


class TorchFusion:
    """Projective TSDF integration in torch; the same arithmetic as :class:`.surface.NumpyFusion`.

    The voxel values live on ``device`` while a TSDF is being fused and are copied back into the
    :class:`SparseTSDF` by :meth:`finish`.
    """

    name = "torch"

    def __init__(self, device: str | None = None):
        self.torch = _torch()
        self.device = self.torch.device(device or default_device())
        self._state: dict[int, dict[str, Any]] = {}
        local = np.stack(np.meshgrid(*[np.arange(BLOCK)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
        self._local = self.torch.as_tensor(local, dtype=self.torch.int64, device=self.device)

    def _storage(self, tsdf: SparseTSDF) -> dict[str, Any]:
        torch = self.torch
        state = self._state.get(id(tsdf))
        need = tsdf.n_blocks * BLOCK**3
        if state is None:
            state = {"tsdf": torch.zeros(max(need, 1), device=self.device),
                     "weight": torch.zeros(max(need, 1), device=self.device), "tsdf_obj": tsdf}
            self._state[id(tsdf)] = state
        if state["tsdf"].shape[0] < need:
            grow = max(need, 2 * state["tsdf"].shape[0]) - state["tsdf"].shape[0]
            for key in ("tsdf", "weight"):
                state[key] = torch.cat([state[key], torch.zeros(grow, device=self.device)])
        return state

    def integrate(self, tsdf: SparseTSDF, depth: np.ndarray, w2c: np.ndarray, k: np.ndarray, offset: float,
                  power: float) -> int:
        """Fuse one (H, W) depth map (0 = no data) into ``tsdf``: :meth:`integrate_views` of one view (the backend
        interface :func:`.fusion.fuse_views` falls back to). Returns the number of voxel updates."""
        return self.integrate_views(tsdf, depth[None], w2c[None], k[None], offset, power)

    def integrate_views(self, tsdf: SparseTSDF, depth: np.ndarray, w2c: np.ndarray, intrinsics: np.ndarray,
                        offset: float, power: float) -> int:
        """Fuse (B, H, W) depth maps (0 = no data) into ``tsdf`` as integrating them one by one would, in a few
        device passes instead of B (each view's own calls cost milliseconds of launches and syncs, the arithmetic
        far less).

        The result is that of integrating the views in order: blocks get the same slots (a block first touched by
        view i is allocated with view i's new blocks, in index order), and each voxel the weighted mean of its old
        value and of the B views' values (summed in float64, deterministic; equal to the running means up to
        float32 rounding).

        Args:
            depth: (B, H, W) float32 depth maps, metres; w2c: (B, 4, 4) world-to-camera; intrinsics: (B, 3, 3),
                pixels; offset: pixel-centre offset; power: weight = depth^-power.

        Returns:
            The number of voxel updates.
        """
        torch = self.torch
        dev = self.device
        depth_t = torch.as_tensor(np.ascontiguousarray(depth, dtype=np.float32), device=dev)
        view, block = self.views_blocks(tsdf, depth, depth_t, w2c, intrinsics, offset)
        if len(block) == 0:
            return 0
        unique_blocks, first = np.unique(block, return_index=True)  # pairs are sorted by view: first = first view
        tsdf.allocate_blocks(unique_blocks[np.argsort(first, kind="stable")])
        slots = tsdf.block_slot[block].astype(np.int64)
        state = self._storage(tsdf)
        sum_w = torch.zeros_like(state["weight"])
        sum_vw = torch.zeros_like(state["tsdf"])
        f32 = np.float32
        rot = torch.as_tensor(np.transpose(w2c[:, :3, :3], (0, 2, 1)).astype(np.float32), device=dev)
        trans = torch.as_tensor(w2c[:, :3, 3].astype(np.float32), device=dev)
        fx, fy = (torch.as_tensor(intrinsics[:, i, i].astype(np.float32), device=dev) for i in (0, 1))
        cx, cy = (torch.as_tensor((intrinsics[:, i, 2] - offset).astype(np.float32), device=dev) for i in (0, 1))
        origin = torch.as_tensor(tsdf.origin, device=dev)
        local = torch.arange(BLOCK**3, device=dev)
        h, w = depth.shape[1:]
        updates = 0
        step = max(1, BATCH_VOXELS // BLOCK**3)
        for start in range(0, len(block), step):
            part = slice(start, start + step)
            vv = torch.as_tensor(view[part], device=dev).repeat_interleave(BLOCK**3)
            coords = torch.as_tensor(tsdf.block_coords[slots[part]].astype(np.int64), device=dev)
            vox = (coords[:, None, :] * BLOCK + self._local[None]).reshape(-1, 3)
            index = (torch.as_tensor(slots[part], device=dev)[:, None] * BLOCK**3 + local[None]).reshape(-1)
            centers = ((vox.double() + 0.5) * tsdf.voxel_size + origin).float()  # as SparseTSDF.voxel_centers
            pc = torch.bmm(centers[:, None, :], rot[vv]).squeeze(1) + trans[vv]
            z = pc[:, 2]
            uf = fx[vv] * pc[:, 0] / z + cx[vv]
            vf = fy[vv] * pc[:, 1] / z + cy[vv]
            ok = (z > 1e-3) & (uf > -0.5) & (uf < w - 0.5) & (vf > -0.5) & (vf < h - 0.5)
            sel = torch.nonzero(ok).squeeze(1)
            d = self._sample_depth(depth_t, uf[sel], vf[sel], vv[sel])
            sdf = d - z[sel]
            ok = (d > 0) & (sdf > -tsdf.truncation)
            idx = index[sel[ok]]
            if idx.shape[0] == 0:
                continue
            value = torch.clamp(sdf[ok] / f32(tsdf.truncation), max=1.0)
            weight = (1.0 / d[ok]) ** f32(power)
            # per voxel, the sum of its views' terms: float64 prefix sums over the terms sorted by voxel, differenced
            # at the voxels' ends (deterministic, unlike float atomics)
            order = torch.argsort(idx, stable=True)
            voxels, counts = torch.unique_consecutive(idx[order], return_counts=True)
            ends = torch.cumsum(counts, 0) - 1
            for total, terms in ((sum_w, weight), (sum_vw, value * weight)):
                prefix = torch.cumsum(terms[order].double(), 0)
                segment = prefix[ends] - torch.cat([prefix.new_zeros(1), prefix[ends[:-1]]])
                total[voxels] += segment.float()
            updates += int(idx.shape[0])
        touched = sum_w > 0
        new_w = state["weight"] + sum_w
        mean = (state["tsdf"] * state["weight"] + sum_vw) / torch.where(touched, new_w, 1.0)
        state["tsdf"] = torch.where(touched, mean, state["tsdf"])
        state["weight"] = new_w
        return updates

    def views_blocks(self, tsdf: SparseTSDF, depth: np.ndarray, depth_t: Any, w2c: np.ndarray,
                     intrinsics: np.ndarray, offset: float) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`view_blocks` of B views at once: the (view, block) pairs, as two (P,) int64 arrays sorted by view,
        then block (each view's blocks are the sorted unique flat indices :meth:`view_blocks` gives it).

        Args:
            depth: (B, H, W) float32 depth maps, metres (0 = no data), on the host; depth_t: the same on the device.
            w2c: (B, 4, 4); intrinsics: (B, 3, 3), pixels; offset: pixel-centre offset.
        """
        torch = self.torch
        groups: dict[int, list[tuple[int, np.ndarray]]] = {}
        for i in range(len(depth)):
            stride = allocation_stride(depth[i], intrinsics[i], tsdf.voxel_size)
            if stride > 0:  # the same grid as view_blocks
                groups.setdefault(stride, []).append((i, stride_intrinsics(intrinsics[i], stride, offset)))
        keys = []
        n_flat = int(np.prod(tsdf.block_dims))
        for stride, members in groups.items():
            index = np.array([i for i, _ in members])
            ks = np.stack([k for _, k in members])
            grid = depth_t[torch.as_tensor(index, device=self.device)][:, ::stride, ::stride]
            flat = self._blocks_of_grids(tsdf, grid, w2c[index], ks, offset)
            keys.append(flat[1] + torch.as_tensor(index, device=self.device)[flat[0]] * n_flat)
        if not keys:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        pairs = torch.unique(torch.cat(keys)).cpu().numpy().astype(np.int64)
        return pairs // n_flat, pairs % n_flat

    def _blocks_of_grids(self, tsdf: SparseTSDF, grid: Any, w2c: np.ndarray, ks: np.ndarray,
                         offset: float) -> tuple[Any, Any]:
        """(member, flat block) tensors of the blocks that G strided (G, h, w) depth grids touch (with repeats):
        :meth:`view_blocks`' points for each grid, w2c (G, 4, 4) and its strided intrinsics ks (G, 3, 3)."""
        torch = self.torch
        dev = self.device
        f32 = np.float32
        with torch.no_grad():
            g, h, w = grid.shape
            rot = torch.as_tensor(w2c[:, :3, :3].astype(np.float32), device=dev)
            trans = torch.as_tensor(w2c[:, :3, 3].astype(np.float32), device=dev)
            fx, fy = (torch.as_tensor(ks[:, i, i].astype(np.float32), device=dev) for i in (0, 1))
            cx, cy = (torch.as_tensor(ks[:, i, 2].astype(np.float32), device=dev) for i in (0, 1))
            focal = torch.as_tensor(np.minimum(ks[:, 0, 0], ks[:, 1, 1]), device=dev)

            def to_world(u, v, d, m):  # float32, as view_blocks
                x = (u - cx[m]) / fx[m] * d
                y = (v - cy[m]) / fy[m] * d
                return torch.bmm((torch.stack([x, y, d], dim=1) - trans[m])[:, None, :], rot[m]).squeeze(1)

            m, rows, cols = torch.nonzero(grid > 0, as_tuple=True)
            points = [to_world(cols.float() + f32(offset), rows.float() + f32(offset), grid[m, rows, cols], m)]
            members = [m]
            d00, d01, d10, d11 = grid[:, :-1, :-1], grid[:, :-1, 1:], grid[:, 1:, :-1], grid[:, 1:, 1:]
            lo = torch.minimum(torch.minimum(d00, d01), torch.minimum(d10, d11))
            hi = torch.maximum(torch.maximum(d00, d01), torch.maximum(d10, d11))
            ok = (lo > 0) & (hi <= lo * 1.1)
            lateral = hi.double() / focal[:, None, None]
            step = torch.sqrt(lateral**2 + ((hi - lo) ** 2).double())
            factor = torch.clamp(torch.ceil(step / (BLOCK * tsdf.voxel_size / 2)), 1, MAX_SUBPIXEL).long()
            factor[~ok] = 1
            for n in range(2, MAX_SUBPIXEL + 1):
                mm, r, c = torch.nonzero(factor == n, as_tuple=True)
                if r.shape[0] == 0:
                    continue
                t = torch.as_tensor((np.arange(1, n) / n).astype(np.float32), device=dev)
                a, b = torch.meshgrid(t, t, indexing="ij")
                a, b = a.reshape(-1), b.reshape(-1)
                da = d00[mm, r, c][:, None] * (1 - a) * (1 - b) + d01[mm, r, c][:, None] * (1 - a) * b \
                    + d10[mm, r, c][:, None] * a * (1 - b) + d11[mm, r, c][:, None] * a * b
                u = (c.double()[:, None] + b.double() + offset).reshape(-1).float()
                v = (r.double()[:, None] + a.double() + offset).reshape(-1).float()
                mm = mm.repeat_interleave(a.shape[0])
                points.append(to_world(u, v, da.reshape(-1), mm))
                members.append(mm)
            points = torch.cat(points)
            members = torch.cat(members)
            centers = torch.as_tensor((-np.einsum("gji,gj->gi", w2c[:, :3, :3], w2c[:, :3, 3])).astype(np.float32),
                                      device=dev)
            ray = points - centers[members]
            ray *= f32(tsdf.truncation) / torch.sqrt(ray[:, 0] * ray[:, 0] + ray[:, 1] * ray[:, 1]
                                                     + ray[:, 2] * ray[:, 2])[:, None]
            points = torch.cat([points, points + ray, points - ray])
            members = torch.cat([members, members, members])
            origin = torch.as_tensor(tsdf.origin, dtype=torch.float64, device=dev)
            vox = torch.floor((points.double() - origin) / tsdf.voxel_size).long()
            dims = torch.as_tensor([int(x) for x in tsdf.voxel_dims], device=dev)
            inside = ((vox >= 0) & (vox < dims)).all(dim=1)
            bl = torch.div(vox[inside], BLOCK, rounding_mode="floor")
            bd = [int(x) for x in tsdf.block_dims]
            return members[inside], (bl[:, 0] * bd[1] + bl[:, 1]) * bd[2] + bl[:, 2]

    def view_blocks(self, tsdf: SparseTSDF, depth: np.ndarray, depth_t: Any, w2c: np.ndarray, k: np.ndarray,
                    offset: float) -> np.ndarray:
        """torch twin of :func:`.surface.view_blocks`: the sorted unique (B,) int64 flat indices of the TSDF blocks
        one depth map touches, the same arithmetic (float32 points, float64 voxel addressing) on ``self.device``
        (:meth:`views_blocks` of one view).

        Args:
            tsdf: the TSDF whose blocks are wanted (only its geometry is read).
            depth: (H, W) float32 depth map, metres (0 = no data), on the host (for the stride choice).
            depth_t: the same map as a tensor on ``self.device``.
            w2c: (4, 4) world-to-camera; k: (3, 3) intrinsics, pixels; offset: pixel-centre offset.
        """
        return self.views_blocks(tsdf, depth[None], depth_t[None], w2c[None], k[None], offset)[1]

    def gather_view_pairs(self, depth: np.ndarray, w2c: np.ndarray, intrinsics: np.ndarray, offset: float,
                          **kwargs: Any) -> ViewPairs:
        """:func:`.depth_factor.gather_view_pairs` with its view pairs measured on ``self.device`` (the hook
        :func:`.surface.fuse_and_mesh` calls); on a CPU device the numpy loop, which is faster there."""
        device = None if self.device.type == "cpu" else str(self.device)
        return gather_view_pairs(depth, w2c, intrinsics, offset, device=device, **kwargs)

    def _sample_depth(self, depth, u, v, view):
        """torch twin of :func:`.surface.sample_depth` on (B, H, W) ``depth``, each point in its ``view``."""
        torch = self.torch
        h, w = depth.shape[-2:]
        u0 = torch.clamp(torch.floor(u).long(), 0, w - 2)
        v0 = torch.clamp(torch.floor(v).long(), 0, h - 2)
        a = torch.clamp(u - u0, 0.0, 1.0)
        b = torch.clamp(v - v0, 0.0, 1.0)
        d00, d01 = depth[view, v0, u0], depth[view, v0, u0 + 1]
        d10, d11 = depth[view, v0 + 1, u0], depth[view, v0 + 1, u0 + 1]
        lo = torch.minimum(torch.minimum(d00, d01), torch.minimum(d10, d11))
        hi = torch.maximum(torch.maximum(d00, d01), torch.maximum(d10, d11))
        smooth = (lo > 0) & (hi <= lo * np.float32(INTERP_MAX_RATIO))
        inv = (1 - b) * ((1 - a) / d00 + a / d01) + b * ((1 - a) / d10 + a / d11)
        interp = 1.0 / inv
        near = depth[view, torch.clamp(torch.round(v).long(), 0, h - 1), torch.clamp(torch.round(u).long(), 0, w - 1)]
        return torch.where(smooth, interp, near)

    def extract_mesh(self, tsdf: SparseTSDF, min_weight: float = 0.0) -> TriangleMesh:
        """Marching cubes of a finished TSDF: on a CUDA device :func:`.marching_torch.extract_mesh_torch` over the
        device copy :meth:`finish` left (scikit-image's runs on one CPU thread, holding the GIL); on a CPU device
        :meth:`SparseTSDF.extract_mesh`, which is faster there."""
        sampler = getattr(tsdf, "_sampler", None)
        if self.device.type == "cpu" or not isinstance(sampler, TorchTSDFSampler):
            return tsdf.extract_mesh(min_weight)
        from .marching_torch import extract_mesh_torch

        return extract_mesh_torch(tsdf, sampler.values, sampler.weights, min_weight)

    def finish(self, tsdf: SparseTSDF) -> None:
        """Copy the fused values back into ``tsdf`` (numpy); the device copy stays attached as ``tsdf``'s sampler
        (:class:`TorchTSDFSampler`: the view alignment samples each consensus TSDF millions of times) until the
        TSDF changes or is dropped."""
        state = self._state.pop(id(tsdf), None)
        if state is None:
            return
        n = tsdf.n_blocks * BLOCK**3
        tsdf.tsdf[:n] = state["tsdf"][:n].cpu().numpy()
        tsdf.weight[:n] = state["weight"][:n].cpu().numpy()
        tsdf.attach_sampler(TorchTSDFSampler(tsdf, state["tsdf"][:n], state["weight"][:n], self.device))


def voxel_storage_index(voxels: Any, slot_of_block: Any, block_dims: list[int], voxel_dims: Any) -> tuple[Any, Any]:
    """Where voxels of a :class:`SparseTSDF` live in its slot-ordered storage, on a torch device.

    Args:
        voxels: (..., 3) int64 tensor of voxel coordinates.
        slot_of_block: (prod(block_dims),) int64 tensor, each block's slot (-1: not allocated).
        block_dims: blocks per axis; voxel_dims: (3,) int64 tensor, voxels per axis.

    Returns:
        ((...,) int64 storage index, 0 where absent; (...,) bool present: inside the grid, in an allocated block).
    """
    torch = _torch()
    inside = ((voxels >= 0) & (voxels < voxel_dims)).all(dim=-1)
    block = torch.div(voxels, BLOCK, rounding_mode="floor")
    flat = (block[..., 0] * block_dims[1] + block[..., 1]) * block_dims[2] + block[..., 2]
    slot = torch.where(inside, slot_of_block[torch.where(inside, flat, 0)], -1)
    present = slot >= 0
    local = voxels - block * BLOCK
    index = (local[..., 0] * BLOCK + local[..., 1]) * BLOCK + local[..., 2]
    return torch.where(present, slot * BLOCK**3 + index, 0), present


class TorchTSDFSampler:
    """Trilinear sampling of a frozen :class:`SparseTSDF` on a torch device: the twin of :meth:`SparseTSDF.sample`
    (same arithmetic, float32 weights), called with and returning numpy arrays."""

    def __init__(self, tsdf: SparseTSDF, values: Any, weights: Any, device: Any):
        torch = self.torch = _torch()
        self.device = device
        self.origin = torch.as_tensor(tsdf.origin, dtype=torch.float64, device=device)
        self.voxel_size = tsdf.voxel_size
        self.truncation = np.float32(tsdf.truncation)
        self.voxel_dims = [int(d) for d in tsdf.voxel_dims]
        self.block_dims = [int(d) for d in tsdf.block_dims]
        self.block_slot = torch.as_tensor(tsdf.block_slot, device=device).long()
        self.values = values
        self.weights = weights
        self._offsets = torch.as_tensor([((k >> 2) & 1, (k >> 1) & 1, k & 1) for k in range(8)], device=device)
        self._voxel_dims = torch.as_tensor(self.voxel_dims, device=device)

    def __call__(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # All 8 corners in one (N, 8) pass: the alignment calls this ~1400 times on a few thousand points each, so
        # kernel launches, not arithmetic, set the cost.
        torch = self.torch
        with torch.no_grad():
            p = torch.as_tensor(np.asarray(points), device=self.device).double()
            g = (p - self.origin) / self.voxel_size - 0.5
            base = torch.floor(g)
            frac = (g - base).float()  # (N, 3)
            c = base.long()[:, None, :] + self._offsets[None]  # (N, 8, 3)
            idx, ok = voxel_storage_index(c, self.block_slot, self.block_dims, self._voxel_dims)
            obs = torch.where(ok, self.weights[idx], 0.0)
            w_c = torch.where(self._offsets[None].bool(), frac[:, None, :], 1.0 - frac[:, None, :]).prod(dim=2)
            valid = (obs > 0).all(dim=1)
            value = (w_c * torch.where(ok, self.values[idx], 0.0)).sum(dim=1)
            weight = (w_c * obs).sum(dim=1)
            value = torch.where(valid, value, torch.full_like(value, float("nan")))
            return (value * self.truncation).cpu().numpy(), weight.cpu().numpy()


def render_depths_gsplat(scene: GaussianScene, cameras: CameraPath, cfg: SurfaceConfig,
                         device: str = "cuda") -> DepthViews:
    """Render (F, H, W) expected depth with gsplat (``render_mode="RGB+ED"``), alpha < ALPHA_MIN -> 0.

    Raises:
        MissingDependencyError: gsplat or torch missing (extra ``gpu``).
        ConversionError: no CUDA device (gsplat has no CPU rasterizer).
    """
    torch = _torch()
    try:
        from gsplat import rasterization
    except ImportError:
        raise MissingDependencyError("gsplat", "gpu", "GPU depth rendering") from None
    if not str(device).startswith("cuda") or not torch.cuda.is_available():
        raise ConversionError(scene.source_path, "gsplat depth rendering needs a CUDA device; use the CPU surface "
                                                 "path (lyra_isaac.geometry.surface) on this machine")
    dev = torch.device(device)
    means = torch.as_tensor(scene.means, device=dev)
    quats = torch.as_tensor(scene.quats, device=dev)
    quats = quats / quats.norm(dim=1, keepdim=True)
    scales = torch.as_tensor(scene.scales(), device=dev)
    opacities = torch.as_tensor(scene.opacities(), device=dev)
    colors = torch.as_tensor(scene.colors(), device=dev)
    n_views = len(cameras)
    depth = np.zeros((n_views, cameras.height, cameras.width), dtype=np.float32)
    for start in range(0, n_views, RENDER_BATCH):
        stop = min(start + RENDER_BATCH, n_views)
        viewmats = torch.as_tensor(cameras.w2c[start:stop].astype(np.float32), device=dev)
        ks = torch.as_tensor(cameras.intrinsics[start:stop].astype(np.float32), device=dev)
        with torch.no_grad():
            renders, alphas, _ = rasterization(means, quats, scales, opacities, colors, viewmats, ks,
                                               cameras.width, cameras.height, render_mode="RGB+ED",
                                               near_plane=0.01, far_plane=cfg.max_depth)
        ed = renders[..., 3]
        valid = (alphas[..., 0] >= ALPHA_MIN) & (ed > 0) & (ed < cfg.max_depth)
        depth[start:stop] = torch.where(valid, ed, torch.zeros_like(ed)).cpu().numpy()
    return DepthViews(depth=depth, w2c=cameras.w2c.astype(np.float64),
                      intrinsics=cameras.intrinsics.astype(np.float64), pixel_offset=0.5, source="render")


def extract_surface(scene_world: GaussianScene, cameras_world: CameraPath | None, cfg: SurfaceConfig | None = None,
                    progress: Progress = NO_PROGRESS, *, device: str | None = None) -> SurfaceResult:
    """GPU surface extraction; same contract as :func:`lyra_isaac.geometry.surface.extract_surface`.

    Args:
        scene_world, cameras_world, cfg, progress: as for the CPU path.
        device: torch device for fusion and rendering (default: "cuda" when available, else "cpu"; rendering
            needs CUDA, fusion runs anywhere).

    Raises:
        MissingDependencyError: torch (or, for rendering, gsplat) is not installed (pip extra ``gpu``).
        InputError, ConversionError: as for the CPU path.
    """
    cfg = cfg or SurfaceConfig()
    torch = _torch()
    device = device or default_device()
    where = scene_world.source_path
    if len(scene_world) == 0:
        raise InputError(where, "scene has no Gaussians left to extract a surface from")
    t0 = time.perf_counter()
    stats: dict[str, Any] = {"backend": f"torch:{device}"}
    timings: dict[str, float] = {}
    progress.update("surface: depth maps", 0.0)
    gsplat = functools.partial(render_depths_gsplat, device=device) if cfg.gpu_depth_renderer == "gsplat" else None
    views = make_depth_views(scene_world, cameras_world, cfg, stats, render_depths=gsplat)
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    timings["depth_maps"] = time.perf_counter() - t0
    mesh, fuse_stats, fuse_timings = fuse_and_mesh(views, cfg, progress, where=where,
                                                   backend=TorchFusion(device))
    stats.update(fuse_stats)
    timings.update(fuse_timings)
    stats["seconds"] = {k: round(v, 3) for k, v in timings.items()}
    stats["seconds_total"] = round(time.perf_counter() - t0, 3)
    logger.info("surface (%s): %d triangles in %.1f s (%s depth, %d views)", device, mesh.n_triangles,
                stats["seconds_total"], views.source, len(views))
    progress.update("surface: done", 1.0)
    return SurfaceResult(mesh=mesh, stats=stats)
