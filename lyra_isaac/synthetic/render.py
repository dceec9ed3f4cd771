"""Ray casting of truth meshes: z-depth and colour images, floor heights, clearance and distance queries.

Built on open3d's embree ``RaycastingScene`` (about 5 M rays/s on one CPU core here), imported lazily; where open3d
is not installed (GPU machines it cannot travel to), :mod:`lyra_isaac.geometry.raycast`'s numpy backend renders
the (small) truth meshes instead and ``Raycaster.distance`` (metrics) uses the exact numpy/scipy
:func:`lyra_isaac.geometry.distance.point_mesh_distance`, so nothing here needs open3d.

Pixel convention: pixel ``(row v, column u)`` is sampled through its centre, image coordinates
``(u + 0.5, v + 0.5)``; intrinsics ``K`` are in pixels with ``cx = width / 2`` for a centred principal point.
Depth is **z-depth** along the camera's optical axis (OpenCV +Z), metres; ``inf`` where the ray hits nothing (sky).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import MissingDependencyError
from ..geometry.distance import point_mesh_distance
from ..geometry.raycast import NEAR_PLANE, cast_rays, first_visible, open3d_scene, resolve_backend

logger = logging.getLogger(__name__)

SKY_ZENITH_RGB = (0.36, 0.56, 0.90)
SKY_HORIZON_RGB = (0.80, 0.87, 0.95)
LIGHT_DIRECTION = (0.35, 0.25, 0.90)
"""Direction towards the light used for the simple Lambert shading of renders (world frame, normalized on use)."""
TEXTURE_TILE_M = 0.5
"""Period of the procedural tile pattern painted on every surface, metres."""


def _open3d():
    try:
        import open3d as o3d
    except ImportError as exc:  # includes missing system libraries such as libusb
        raise MissingDependencyError("open3d", "all", f"ray casting synthetic scenes ({exc})") from None
    return o3d


@dataclass
class Render:
    """One rendered view.

    Attributes:
        depth: (H, W) float32 z-depth, metres; inf where nothing was hit.
        color: (H, W, 3) float32 RGB in [0, 1] (sky colour where nothing was hit).
        normal: (H, W, 3) float32 unit surface normals, world frame (zero for sky).
        ray_length: (H, W) float32 distance along the ray, metres (inf for sky).
    """

    depth: np.ndarray
    color: np.ndarray
    normal: np.ndarray
    ray_length: np.ndarray


def pixel_rays(intrinsics: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, 3) float64 camera-frame ray directions with unit z (so ray parameter = z-depth), OpenCV axes."""
    k = np.asarray(intrinsics, dtype=np.float64)
    u = (np.arange(width) + 0.5 - k[0, 2]) / k[0, 0]
    v = (np.arange(height) + 0.5 - k[1, 2]) / k[1, 1]
    uu, vv = np.meshgrid(u, v)
    return np.stack([uu, vv, np.ones_like(uu)], axis=-1)


def intrinsics_for(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """(3, 3) pinhole intrinsics with square pixels, centred principal point and horizontal FOV ``hfov_deg``."""
    focal = 0.5 * width / np.tan(np.radians(hfov_deg) / 2)
    return np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])


class Raycaster:
    """Ray queries against one triangle mesh (world frame, metres).

    Args:
        vertices: (V, 3) vertices, metres.
        faces: (F, 3) vertex indices.
        colors: (V, 3) RGB in [0, 1] per vertex, or None (grey).
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray | None = None):
        self.vertices = np.ascontiguousarray(vertices, dtype=np.float32)
        self.faces = np.ascontiguousarray(faces, dtype=np.uint32)
        if len(self.faces) == 0:
            raise ValueError("Raycaster needs a mesh with at least one triangle")
        self.colors = None if colors is None else np.asarray(colors, dtype=np.float32)
        self._o3d = self._scene = None
        if resolve_backend("auto") == "open3d":
            o3d = _open3d()
            self._o3d = o3d
            self._scene = open3d_scene(self.vertices, self.faces)

    def cast(self, origins: np.ndarray, directions: np.ndarray) -> dict[str, np.ndarray]:
        """Cast (N, 3) rays; returns ``t_hit`` (N,) (inf on miss, in units of the direction's length),
        ``prim`` (N,) int64 face index (-1 on miss), ``normal`` (N, 3) and ``uv`` (N, 2) barycentrics."""
        directions = np.asarray(directions).reshape(-1, 3)
        rays = np.empty((len(directions), 6), dtype=np.float32)
        rays[:, :3] = np.asarray(origins).reshape(-1, 3)
        rays[:, 3:] = directions
        return self._cast_rays(rays)

    def _cast_rays(self, rays: np.ndarray) -> dict[str, np.ndarray]:
        if self._scene is None:
            return cast_rays(self.vertices, self.faces, rays[:, :3], rays[:, 3:], backend="numpy")
        out = self._scene.cast_rays(self._o3d.core.Tensor(rays))
        prim = out["primitive_ids"].numpy().astype(np.int64)
        prim[prim == np.iinfo(np.uint32).max] = -1
        return {"t_hit": out["t_hit"].numpy(), "prim": prim, "normal": out["primitive_normals"].numpy(),
                "uv": out["primitive_uvs"].numpy()}

    def distance(self, points: np.ndarray) -> np.ndarray:
        """(N,) float32 unsigned distance from (N, 3) points to the mesh, metres.

        open3d's BVH when open3d is installed; otherwise the exact numpy/scipy
        :func:`~lyra_isaac.geometry.distance.point_mesh_distance` (seconds for 200k points on a CPU core or two).
        """
        if self._scene is None:
            points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
            return point_mesh_distance(self.vertices, self.faces, points).astype(np.float32)
        query = self._o3d.core.Tensor(np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 3))
        return self._scene.compute_distance(query).numpy()

    def surface_color(self, prim: np.ndarray, uv: np.ndarray, points: np.ndarray, normals: np.ndarray,
                      ) -> np.ndarray:
        """(N, 3) float32 shaded colour of hit points: vertex colour x procedural tiles x Lambert light."""
        n = len(prim)
        if self.colors is None:
            base = np.full((n, 3), 0.6, dtype=np.float32)
        else:
            tri = self.faces[prim]
            w1, w2 = uv[:, 0:1], uv[:, 1:2]
            base = (1 - w1 - w2) * self.colors[tri[:, 0]] + w1 * self.colors[tri[:, 1]] + w2 * self.colors[tri[:, 2]]
        points = points.astype(np.float32, copy=False)
        frac = (points * np.float32(1.0 / TEXTURE_TILE_M)) % np.float32(1.0)
        near_line = np.minimum(frac, 1.0 - frac) < 0.04
        # grout lines on the axes tangent to the surface (normal component small), plus a smooth mottle
        line = (near_line & (np.abs(normals) < 0.5)).any(axis=1)
        x, y, z = points[:, 0], points[:, 1], points[:, 2]
        mottle = np.float32(0.08) * np.sin(7.3 * x + 3.1 * y) * np.sin(5.7 * y - 4.3 * z)
        light = (np.asarray(LIGHT_DIRECTION) / np.linalg.norm(LIGHT_DIRECTION)).astype(np.float32)
        lambert = 0.7 + 0.3 * np.abs(normals @ light)
        shade = lambert * (1.0 + mottle) * np.where(line, np.float32(0.7), np.float32(1.0))
        return np.clip(base * shade[:, None], 0.0, 1.0).astype(np.float32)

    def render(self, c2w: np.ndarray, intrinsics: np.ndarray, width: int, height: int) -> Render:
        """Render z-depth, colour and normals of one pinhole view.

        Args:
            c2w: (4, 4) camera-to-world transform, OpenCV camera axes (+X right, +Y down, +Z forward), metres.
            intrinsics: (3, 3) pixels.
            width, height: image size, pixels.
        """
        c2w = np.asarray(c2w, dtype=np.float64)
        dirs_cam = pixel_rays(intrinsics, width, height).reshape(-1, 3).astype(np.float32)
        rays = np.empty((len(dirs_cam), 6), dtype=np.float32)
        rays[:, :3] = c2w[:3, 3]
        dirs = rays[:, 3:]
        np.matmul(dirs_cam, c2w[:3, :3].T.astype(np.float32), out=dirs)
        if self._scene is None:  # numpy backend: rasterize the (small) truth mesh into the view
            hit = self._render_numpy(c2w, intrinsics, width, height, rays[:, :3][0], dirs)
        else:
            hit = self._cast_rays(rays)
        t = hit["t_hit"]
        ok = np.isfinite(t)
        color = np.empty((len(t), 3), dtype=np.float32)
        normal = np.zeros((len(t), 3), dtype=np.float32)
        if ok.all():  # closed scenes: no masking copies
            normal = hit["normal"].astype(np.float32, copy=False)
            color = self.surface_color(hit["prim"], hit["uv"], rays[:, :3] + dirs * t[:, None], normal)
        else:
            if ok.any():
                points = rays[ok, :3] + dirs[ok] * t[ok, None]
                normal[ok] = hit["normal"][ok]
                color[ok] = self.surface_color(hit["prim"][ok], hit["uv"][ok], points, normal[ok])
            color[~ok] = sky_color(dirs[~ok])
        ray_length = t * np.sqrt(np.einsum("ij,ij->i", dirs_cam, dirs_cam))
        return Render(depth=t.reshape(height, width), color=color.reshape(height, width, 3),
                      normal=normal.reshape(height, width, 3), ray_length=ray_length.reshape(height, width))

    def _render_numpy(self, c2w: np.ndarray, intrinsics: np.ndarray, width: int, height: int, eye: np.ndarray,
                      dirs: np.ndarray) -> dict[str, np.ndarray]:
        k = np.asarray(intrinsics, dtype=np.float64)
        w2c_rot = c2w[:3, :3].T

        def project(points: np.ndarray) -> np.ndarray:
            cam = (points - c2w[:3, 3][None]) @ w2c_rot.T
            z = np.where(cam[:, 2] > NEAR_PLANE, cam[:, 2], np.nan)
            return np.stack([k[0, 0] * cam[:, 0] / z + k[0, 2] - 0.5, k[1, 1] * cam[:, 1] / z + k[1, 2] - 0.5,
                             cam[:, 2]], axis=1)

        t, prim, uv, normal = first_visible(self.vertices, self.faces, eye, dirs, width, height, project=project,
                                            cull_back_faces=False, backend="numpy")
        return {"t_hit": t.astype(np.float32), "prim": prim, "normal": normal.astype(np.float32),
                "uv": uv.astype(np.float32)}

    def heights_below(self, xy: np.ndarray, z_from: np.ndarray | float, max_drop: float = 100.0,
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Height of the first surface below (N, 2) points cast down from ``z_from``.

        Returns:
            (N,) float64 surface z (NaN where nothing is hit within ``max_drop``) and (N, 3) hit normals.
        """
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        z0 = np.broadcast_to(np.asarray(z_from, dtype=np.float64), (len(xy),))
        origins = np.column_stack([xy, z0])
        dirs = np.tile([0.0, 0.0, -1.0], (len(xy), 1))
        hit = self.cast(origins, dirs)
        t = hit["t_hit"].astype(np.float64)
        z = np.where(t <= max_drop, z0 - t, np.nan)
        return z, hit["normal"]

    def free_distance(self, points: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """(N,) distance from each of (N, 3) points along unit (N, 3) directions to the first hit (inf: none)."""
        return self.cast(points, directions)["t_hit"].astype(np.float64)


def sky_color(directions: np.ndarray) -> np.ndarray:
    """(N, 3) float32 sky colour for (N, 3) world-frame ray directions (Z up): horizon haze to blue zenith."""
    d = np.asarray(directions, dtype=np.float64)
    elevation = np.clip(d[:, 2] / np.maximum(np.linalg.norm(d, axis=1), 1e-12), 0.0, 1.0)
    w = np.sqrt(elevation)[:, None]
    return ((1 - w) * np.asarray(SKY_HORIZON_RGB) + w * np.asarray(SKY_ZENITH_RGB)).astype(np.float32)


def raycaster_for(scene) -> Raycaster:
    """A :class:`Raycaster` for a :class:`~lyra_isaac.synthetic.scenes.SyntheticScene` (or any object with
    ``vertices``, ``faces`` and ``colors``)."""
    return Raycaster(scene.vertices, scene.faces, getattr(scene, "colors", None))
