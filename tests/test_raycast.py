"""The numpy ray-cast backend against open3d's BVH on meshes with overhangs, slopes, walls and shared edges."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from lyra_isaac.geometry.raycast import first_visible, pinhole_rays, resolve_backend, vertical_layers


def _room_mesh(seed: int = 0) -> trimesh.Trimesh:
    """A floor with a table, a ceiling slab, a tilted ramp and a bumpy terrain patch: many layers and edges."""
    rng = np.random.default_rng(seed)
    parts = [
        trimesh.creation.box(extents=(6.0, 5.0, 0.1), transform=trimesh.transformations.translation_matrix(
            (0.0, 0.0, -0.05))),
        trimesh.creation.box(extents=(1.2, 0.8, 0.05), transform=trimesh.transformations.translation_matrix(
            (1.0, 0.5, 0.75))),
        trimesh.creation.box(extents=(6.0, 5.0, 0.1), transform=trimesh.transformations.translation_matrix(
            (0.0, 0.0, 2.55))),
        trimesh.creation.box(extents=(0.1, 5.0, 2.5), transform=trimesh.transformations.translation_matrix(
            (-2.0, 0.0, 1.25))),
    ]
    ramp = trimesh.creation.box(extents=(2.0, 1.0, 0.05))
    ramp.apply_transform(trimesh.transformations.rotation_matrix(np.radians(15), (0, 1, 0)))
    ramp.apply_translation((-0.5, -1.5, 0.3))
    parts.append(ramp)
    grid = np.stack(np.meshgrid(np.linspace(1.5, 2.9, 15), np.linspace(-2.4, -1.0, 15)), axis=-1).reshape(-1, 2)
    terrain = trimesh.Trimesh(np.c_[grid, 0.2 + 0.05 * rng.standard_normal(len(grid))], _grid_faces(15, 15))
    parts.append(terrain)
    return trimesh.util.concatenate(parts)


def _grid_faces(rows: int, cols: int) -> np.ndarray:
    idx = np.arange(rows * cols).reshape(rows, cols)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    return np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])


def test_backend_resolution():
    assert resolve_backend("numpy") == "numpy"
    assert resolve_backend("auto") in ("open3d", "numpy")
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("embree")


@pytest.mark.parametrize("cell", [0.05, 0.037])
def test_vertical_layers_match_open3d(cell):
    pytest.importorskip("open3d")
    mesh = _room_mesh()
    xs = np.arange(-3.2123, 3.2, cell)  # offset: no ray runs exactly along the mesh's outer edges
    ys = np.arange(-2.7071, 2.7, cell)
    z_o3d, n_o3d = vertical_layers(mesh.vertices, mesh.faces, xs, ys, 4.0, 6, backend="open3d")
    z_np, n_np = vertical_layers(mesh.vertices, mesh.faces, xs, ys, 4.0, 6, backend="numpy")
    assert z_np.shape[1] == z_o3d.shape[1] == len(xs) * len(ys)
    layers = max(len(z_o3d), len(z_np))
    pad = lambda a: np.concatenate([a, np.full((layers - len(a),) + a.shape[1:], np.nan, a.dtype)])  # noqa: E731
    z_o3d, z_np, n_o3d, n_np = pad(z_o3d), pad(z_np), pad(n_o3d), pad(n_np)
    same_count = (np.isfinite(z_o3d).sum(0) == np.isfinite(z_np).sum(0))
    # Rays exactly through a shared vertex or edge may count a hit differently; that is a handful of rays.
    assert same_count.mean() > 0.995, same_count.mean()
    both = np.isfinite(z_o3d) & np.isfinite(z_np) & same_count[None]
    assert both.sum() > 0.9 * np.isfinite(z_o3d).sum()
    np.testing.assert_allclose(z_np[both], z_o3d[both], atol=1e-4)
    # A ray through the edge two faces share may report either face's normal; elsewhere they must be identical.
    same_normal = np.abs(n_np[both] - n_o3d[both]).max(axis=1) < 1e-4
    assert same_normal.mean() > 0.995, same_normal.mean()
    assert (np.isfinite(z_np).sum(0) >= 3).any()  # floor, table, ceiling: overhangs are seen


def test_vertical_layers_numpy_exact_on_known_planes():
    """Without open3d: every ray over the slab sees its top and bottom faces at their true heights."""
    slab = trimesh.creation.box(extents=(2.0, 2.0, 0.2))
    xs = ys = np.arange(-0.95, 1.0, 0.1)
    z, normals = vertical_layers(slab.vertices, slab.faces, xs, ys, 1.0, 4, backend="numpy")
    assert z.shape == (2, len(xs) * len(ys))
    np.testing.assert_allclose(z[0], 0.1, atol=1e-6)
    np.testing.assert_allclose(z[1], -0.1, atol=1e-6)
    np.testing.assert_allclose(normals[0, :, 2], 1.0, atol=1e-6)
    np.testing.assert_allclose(normals[1, :, 2], -1.0, atol=1e-6)
    outside, _ = vertical_layers(slab.vertices, slab.faces, np.array([5.0, 5.1]), np.array([5.0]), 1.0, 4,
                                 backend="numpy")
    assert np.isnan(outside).all()


def _pinhole(eye, target, width=160, height=120, fov_deg=60.0):
    dirs, project = pinhole_rays(eye, target, width, height, fov_deg)
    return dirs, project, width, height


@pytest.mark.parametrize("eye, target, cut", [
    ((7.0, -6.0, 6.0), (0.0, 0.0, 0.5), None),      # overview from outside, ceiling back faces looked through
    ((7.0, 6.0, 6.0), (0.0, 0.0, 0.5), 1.5),        # overview with a cut-away above 1.5 m
    ((0.0, -1.0, 1.5), (2.0, 1.0, 1.0), None),      # inside the room: faces straddle the camera plane
])
def test_first_visible_matches_open3d(eye, target, cut):
    pytest.importorskip("open3d")
    mesh = _room_mesh()
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    dirs, project, width, height = _pinhole(eye, target)
    hidden = None if cut is None else (lambda p: p[:, 2] > cut)
    t_o, prim_o, uv_o, n_o = first_visible(mesh.vertices, mesh.faces, eye, dirs, width, height, hidden=hidden,
                                           max_skips=8, backend="open3d")
    t_n, prim_n, uv_n, n_n = first_visible(mesh.vertices, mesh.faces, eye, dirs, width, height, project=project,
                                           hidden=hidden, backend="numpy")
    found = np.isfinite(t_o)
    assert found.mean() > 0.1
    assert (np.isfinite(t_n) == found).mean() > 0.995
    both = found & np.isfinite(t_n)
    close = np.abs(t_n[both] - t_o[both]) < 1e-3
    assert close.mean() > 0.995, close.mean()
    same_prim = prim_n[both] == prim_o[both]
    # Different primitive only where two faces meet at the hit (same t): their uvs differ, their points do not.
    assert same_prim.mean() > 0.98
    np.testing.assert_allclose(uv_n[both][same_prim & close], uv_o[both][same_prim & close], atol=1e-3)
    np.testing.assert_allclose(n_n[both][same_prim], n_o[both][same_prim], atol=1e-4)


def test_preview_renders_without_open3d(monkeypatch, tmp_path):
    """The perspective previews fall back to the numpy backend when open3d cannot be imported."""
    import builtins

    from lyra_isaac import preview
    from lyra_isaac.world import TriangleMesh

    real_import = builtins.__import__

    def no_open3d(name, *args, **kwargs):
        if name == "open3d" or name.startswith("open3d."):
            raise ImportError("open3d hidden by the test")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_open3d)
    mesh = _room_mesh()
    tri = TriangleMesh(vertices=mesh.vertices.astype(np.float32), faces=mesh.faces.astype(np.int32))
    views = preview.render_perspectives(tri, np.array([[0.0, 0.0, 0.0, 0.3]]))
    assert [name for name, _ in views] == ["overview_sw", "overview_ne", "spawn_0"]
    for _, image in views:
        assert image.dtype == np.uint8 and image.ndim == 3
        assert image.std() > 5  # the mesh is drawn, not just the background


@pytest.mark.parametrize("scene_name", ["apartment", "courtyard"])
def test_synthetic_render_numpy_matches_open3d(scene_name, monkeypatch):
    """Truth-scene renders (the fixtures' depth maps) are the same with open3d and with the numpy backend."""
    pytest.importorskip("open3d")
    from lyra_isaac.geometry import raycast
    from lyra_isaac.synthetic.render import Raycaster, intrinsics_for
    from lyra_isaac.synthetic.scenes import build_scene

    scene = build_scene(scene_name)
    with_o3d = Raycaster(scene.vertices, scene.faces, scene.colors)
    monkeypatch.setattr(raycast, "resolve_backend", lambda backend="auto": "numpy")
    import lyra_isaac.synthetic.render as render_module
    monkeypatch.setattr(render_module, "resolve_backend", lambda backend="auto": "numpy")
    without = Raycaster(scene.vertices, scene.faces, scene.colors)
    assert without._scene is None
    lo, hi = scene.vertices.min(0), scene.vertices.max(0)
    eye = np.array([0.5 * (lo[0] + hi[0]) + 0.3, 0.5 * (lo[1] + hi[1]) - 0.2, 1.5])
    # OpenCV camera looking along +x, tilted down 10 deg
    pitch = np.radians(10)
    forward = np.array([np.cos(pitch), 0.0, -np.sin(pitch)])
    right = np.array([0.0, -1.0, 0.0])
    down = np.cross(forward, right)
    c2w = np.eye(4)
    c2w[:3, :3] = np.stack([right, down, forward], axis=1)
    c2w[:3, 3] = eye
    k = intrinsics_for(96, 64, 70.0)
    a = with_o3d.render(c2w, k, 96, 64)
    b = without.render(c2w, k, 96, 64)
    both = np.isfinite(a.depth) & np.isfinite(b.depth)
    assert (np.isfinite(a.depth) == np.isfinite(b.depth)).mean() > 0.995
    assert both.mean() > 0.3
    assert (np.abs(a.depth[both] - b.depth[both]) < 1e-3).mean() > 0.995
    assert (np.abs(a.color - b.color).max(axis=-1) < 0.02).mean() > 0.98
    xy = np.c_[np.linspace(lo[0] + 0.3, hi[0] - 0.3, 50), np.full(50, 0.5 * (lo[1] + hi[1]))]
    za, _ = with_o3d.heights_below(xy, 3.0, max_drop=10.0)
    zb, _ = without.heights_below(xy, 3.0, max_drop=10.0)
    np.testing.assert_allclose(za, zb, atol=1e-4, equal_nan=True)


def test_auto_backend_remembers_that_open3d_is_not_installed(monkeypatch):
    """A failed import of open3d searches sys.path again on every call: resolve_backend remembers a true absence
    (no spec), but not an import that is only blocked (open3d installed: it is tried again)."""
    import builtins
    import importlib.util

    from lyra_isaac.geometry import raycast

    monkeypatch.setattr(raycast, "_open3d_not_installed", False)  # restored after the test
    real_import, real_find_spec = builtins.__import__, importlib.util.find_spec
    attempts = []

    def no_open3d(name, *args, **kwargs):
        if name == "open3d":
            attempts.append(name)
            raise ImportError("open3d hidden by the test")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_open3d)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "open3d"
                        else real_find_spec(name, *a))  # installed, but its import fails
    assert [resolve_backend("auto") for _ in range(2)] == ["numpy", "numpy"] and len(attempts) == 2
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "open3d"
                        else real_find_spec(name, *a))  # not installed
    assert [resolve_backend("auto") for _ in range(3)] == ["numpy"] * 3 and len(attempts) == 3
    assert resolve_backend("open3d") == "open3d"  # an explicit choice is not overridden
