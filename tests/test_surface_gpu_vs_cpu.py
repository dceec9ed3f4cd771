"""The CUDA surface path against the CPU path on a Lyra-format truth fixture (runs only where CUDA, torch and gsplat
are present: the device machine; CI has no GPU).

Fixtures come from ``lyra_isaac.synthetic`` (open3d ray-casts the truth, or the numpy rasterizer where open3d is
not installed, as on the H100 box), or from folders written elsewhere: ``$LYRA_ISAAC_GPU_FIXTURES/{harsh,exact}``.

Measured on an H100: gsplat's expected depth of a Lyra-harsh scene (every view's Gaussians, each view with its own
depth scale error) sits 3 % nearer than the view's own pixels, up to 40 % in views with floaters in front: alpha
compositing lets the nearest view's surface win, the bias DESIGN.md measured for nearest-depth z-buffers. So the
rendered-depth path is for multi-view-consistent scenes (optimized 3DGS), and it is tested on a fault-free fixture;
pixel-aligned Lyra scenes take the pixel path on either device.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gsplat")
pytestmark = pytest.mark.gpu
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

from scipy.spatial import cKDTree  # noqa: E402

from lyra_isaac.geometry import surface, surface_gpu  # noqa: E402
from lyra_isaac.splats.cameras import load_cameras  # noqa: E402
from lyra_isaac.splats.ply import load_scene  # noqa: E402


def _fixture_scene(kind: str, tmp_path_factory):
    root = os.environ.get("LYRA_ISAAC_GPU_FIXTURES")
    if root:
        folder = Path(root) / kind
    else:
        from lyra_isaac.synthetic import FaultConfig, make_fixture

        faults = None if kind == "harsh" else FaultConfig.none(scale=1.2)
        folder = make_fixture("apartment", tmp_path_factory.mktemp(kind) / "scene", n_views=32, width=160,
                              height=90, seed=0, faults=faults).directory
    matrix = np.load(folder / "truth.npz")["source_to_world"]
    scene = load_scene(folder / "reconstructed_scene.ply").transformed(matrix, frame="world")
    cameras = load_cameras(folder / "cameras.npz").transformed(matrix)
    return scene, cameras


@pytest.fixture(scope="module")
def harsh_scene(tmp_path_factory):
    return _fixture_scene("harsh", tmp_path_factory)


@pytest.fixture(scope="module")
def exact_scene(tmp_path_factory):
    return _fixture_scene("exact", tmp_path_factory)


def _sample(mesh, n: int = 100_000, seed: int = 0) -> np.ndarray:
    v, f = mesh.vertices.astype(np.float64), mesh.faces
    tri = v[f]
    areas = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(f), size=n, p=areas / areas.sum())
    r = rng.random((n, 2))
    r[r.sum(axis=1) > 1] = 1 - r[r.sum(axis=1) > 1]
    t = tri[pick]
    return t[:, 0] + r[:, :1] * (t[:, 1] - t[:, 0]) + r[:, 1:] * (t[:, 2] - t[:, 0])


def _agreement(a, b, threshold: float = 0.05) -> float:
    pa, pb = _sample(a), _sample(b)
    da, db = cKDTree(pb).query(pa)[0], cKDTree(pa).query(pb)[0]
    return 0.5 * (float(np.mean(da < threshold)) + float(np.mean(db < threshold)))


def test_cuda_pixel_path_matches_cpu(harsh_scene):
    scene, cameras = harsh_scene
    cpu = surface.extract_surface(scene, cameras, surface.SurfaceConfig())
    gpu = surface_gpu.extract_surface(scene, cameras, surface.SurfaceConfig(), device="cuda")
    assert gpu.stats["depth_source"] == "pixels" and gpu.stats["backend"] == "torch:cuda"
    assert _agreement(cpu.mesh, gpu.mesh) > 0.97


def test_cuda_render_path_matches_cpu_on_a_consistent_scene(exact_scene):
    """Scenes that are not pixel-aligned: the default CUDA path renders depth like the CPU path, fuses in torch."""
    scene, cameras = exact_scene
    cfg = surface.SurfaceConfig(depth_source="render")
    cpu = surface.extract_surface(scene, cameras, cfg)
    gpu = surface_gpu.extract_surface(scene, cameras, cfg, device="cuda")
    assert gpu.stats["depth_source"] == "render"
    assert _agreement(cpu.mesh, gpu.mesh) > 0.97


@pytest.mark.xfail(strict=True, reason="gsplat expected depth agreed with the CPU path on 45 % of the surface "
                                        "(H100, exact fixture): the open problem behind gpu_depth_renderer='points'")
def test_cuda_gsplat_rendered_depth_matches_cpu_on_a_consistent_scene(exact_scene):
    scene, cameras = exact_scene
    cpu = surface.extract_surface(scene, cameras, surface.SurfaceConfig())
    cfg = surface.SurfaceConfig(depth_source="render", gpu_depth_renderer="gsplat")
    rendered = surface_gpu.extract_surface(scene, cameras, cfg, device="cuda")
    assert rendered.stats["depth_source"] == "render"
    assert _agreement(cpu.mesh, rendered.mesh) > 0.9
