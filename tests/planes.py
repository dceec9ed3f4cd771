"""Planar grid meshes for tests of the mesh-level world corrections (re-levelling, camera height)."""

from __future__ import annotations

import numpy as np


def grid_mesh(origin, u_axis, v_axis, size_u: float, size_v: float,
              step: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """((V, 3) float64 vertices, (F, 3) int64 faces) of a planar grid from ``origin`` spanning ``size_u`` x
    ``size_v`` metres along two axes; faces wind counter-clockwise seen from ``u_axis x v_axis``."""
    nu, nv = int(round(size_u / step)) + 1, int(round(size_v / step)) + 1
    a, b = np.meshgrid(np.linspace(0, size_u, nu), np.linspace(0, size_v, nv), indexing="ij")
    verts = np.asarray(origin) + a.reshape(-1, 1) * np.asarray(u_axis) + b.reshape(-1, 1) * np.asarray(v_axis)
    idx = np.arange(nu * nv).reshape(nu, nv)
    q = np.stack([idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]], -1).reshape(-1, 4)
    faces = np.concatenate([q[:, [0, 1, 2]], q[:, [0, 2, 3]]])
    return verts.astype(np.float64), faces.astype(np.int64)


def merge_meshes(*parts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One (vertices, faces) mesh of several, faces re-indexed."""
    verts, faces, at = [], [], 0
    for v, f in parts:
        verts.append(v)
        faces.append(f + at)
        at += len(v)
    return np.concatenate(verts), np.concatenate(faces)
