"""Surface extraction benchmark: fidelity of the CPU methods on truth fixtures, and speed at Lyra size.

    python benchmarks/surface.py --small            # method comparison on a 32-view synthetic fixture
    python benchmarks/surface.py                    # + timing at Lyra size (128 views x 392 x 224 = 11.2M)
    python benchmarks/surface.py --timing-only --gpu  # Lyra-size timing of the CPU and GPU (torch/gsplat) paths

Fidelity uses lyra_isaac.synthetic (Lyra-exact PLY written to disk, cleaned, moved to the world with the TRUE
source_to_world) and lyra_isaac.synthetic.metrics. Lyra-size timing uses an analytic room (ray-box depth, no
open3d) turned into pixel-aligned Gaussians in memory, with 3 % per-view scale errors and 1 % noise, so it also
runs where open3d is not installed. Prints seconds per step and peak RSS.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lyra_isaac.geometry.surface import SurfaceConfig, extract_surface  # noqa: E402
from lyra_isaac.splats.cameras import CameraPath  # noqa: E402
from lyra_isaac.splats.scene import GaussianScene  # noqa: E402

ROOM = ((-4.0, -3.0, 0.0), (4.0, 3.0, 3.0))
OBSTACLES = [((-3.0, -2.5, 0.0), (-2.0, -1.0, 0.8)), ((1.0, 1.5, 0.0), (2.5, 2.5, 1.0)),
             ((2.5, -2.5, 0.0), (3.5, -1.8, 1.8)), ((-1.0, 0.5, 0.0), (0.0, 1.2, 0.45)),
             ((-3.8, 1.0, 0.0), (-3.0, 2.8, 2.0))]


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _slabs(origin: np.ndarray, dirs: np.ndarray, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / dirs
        t1 = (np.asarray(lo) - origin) * inv
        t2 = (np.asarray(hi) - origin) * inv
    return np.nanmax(np.minimum(t1, t2), axis=1), np.nanmin(np.maximum(t1, t2), axis=1)


def analytic_room(n_views: int = 128, width: int = 392, height: int = 224, scale_sigma: float = 0.03,
                  noise: float = 0.01, seed: int = 0) -> tuple[GaussianScene, CameraPath]:
    """Pixel-aligned Gaussians (world frame, metres, Z up) of a furnished box room seen along a loop."""
    rng = np.random.default_rng(seed)
    focal = width / 2 / np.tan(np.radians(35))
    k = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    rays_cam = np.stack([(u - k[0, 2]) / focal, (v - k[1, 2]) / focal, np.ones_like(u)], -1).reshape(-1, 3)
    means = np.empty((n_views * width * height, 3), dtype=np.float32)
    w2cs = []
    for i in range(n_views):
        a = 2 * np.pi * i / n_views
        eye = np.array([1.8 * np.cos(a), 1.2 * np.sin(a), 1.5])
        yaw = a + np.pi / 2 + 0.6 * np.sin(3 * a)
        pitch = np.radians(-15)
        fwd = np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.sin(pitch)])
        right = np.cross(fwd, [0, 0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(fwd, right)
        rot = np.stack([right, down, fwd], axis=1)  # c2w rotation
        dirs = rays_cam @ rot.T
        _, t_room = _slabs(eye, dirs, *ROOM)
        t = t_room
        for lo, hi in OBSTACLES:
            t_in, t_out = _slabs(eye, dirs, lo, hi)
            hit = (t_in <= t_out) & (t_in > 0)
            t = np.where(hit & (t_in < t), t_in, t)
        t = t * (1 + scale_sigma * rng.standard_normal()) * (1 + noise * rng.standard_normal(t.shape))
        means[i * width * height:(i + 1) * width * height] = eye + dirs * t[:, None]
        c2w = np.eye(4)
        c2w[:3, :3], c2w[:3, 3] = rot, eye
        w2cs.append(np.linalg.inv(c2w))
    n = len(means)
    scene = GaussianScene(means=means, quats=np.tile(np.float32([1, 0, 0, 0]), (n, 1)),
                          log_scales=np.full((n, 3), -5, np.float32), opacity_logits=np.full(n, 5, np.float32),
                          sh_dc=np.zeros((n, 3), np.float32), frame="world",
                          extra={"rows_in_file": n})
    return scene, CameraPath(w2c=np.stack(w2cs), intrinsics=k[None], width=width, height=height)


def fidelity_comparison(n_views: int, width: int, height: int, scene_name: str = "apartment") -> None:
    from lyra_isaac.geometry.mesh import MeshConfig, finish_mesh
    from lyra_isaac.splats.cameras import load_cameras
    from lyra_isaac.splats.clean import clean_scene
    from lyra_isaac.splats.ply import load_scene
    from lyra_isaac.synthetic import make_fixture
    from lyra_isaac.synthetic.metrics import evaluate, visible_truth_points

    with tempfile.TemporaryDirectory() as tmp:
        fx = make_fixture(scene_name, Path(tmp) / "fx", n_views=n_views, width=width, height=height, seed=0)
        cams = load_cameras(fx.cameras_path)
        geometry = clean_scene(load_scene(fx.ply_path), cams).geometry
        scene = geometry.transformed(fx.source_to_world, frame="world")
        cams = cams.transformed(fx.source_to_world)
        truth = visible_truth_points(fx)
        print(f"\n== fidelity: {scene_name}, {n_views} views of {width}x{height}, Lyra-harsh faults "
              f"({len(scene)} Gaussians after cleaning) ==")
        print(f"{'method':34s} {'F@2cm':>6s} {'F@5cm':>6s} {'P@5cm':>6s} {'R@5cm':>6s} {'chamfer':>8s} "
              f"{'floor med':>9s} {'holes':>6s} {'seconds':>8s}")
        methods = {
            "plain TSDF (no alignment)": SurfaceConfig(align_views=False),
            "aligned: scale (default)": SurfaceConfig(),
            "aligned: scale + offset": SurfaceConfig(align_model="scale_offset"),
            "aligned: quadratic warp": SurfaceConfig(align_model="warp"),
            "aligned: scale, 3 rounds": SurfaceConfig(align_iterations=3),
            "rendered depth (not pixel-aligned)": SurfaceConfig(depth_source="render"),
            "no cameras (synthesized views)": None,
        }
        for name, cfg in methods.items():
            t = time.perf_counter()
            result = extract_surface(scene, None if cfg is None else cams, cfg or SurfaceConfig())
            seconds = time.perf_counter() - t
            r = evaluate(result.mesh, fx.source_to_world, fx, truth_points=truth)
            print(f"{name:34s} {r.fscore_2cm:6.3f} {r.fscore_5cm:6.3f} {r.precision_5cm:6.3f} {r.recall_5cm:6.3f} "
                  f"{r.chamfer_m:8.4f} {r.floor_error_median_m:9.4f} {r.floor_hole_fraction:6.3f} {seconds:8.1f}")
            if name.startswith("aligned: scale (default)"):
                finished, stats = finish_mesh(result.mesh, MeshConfig())
                r2 = evaluate(finished, fx.source_to_world, fx, truth_points=truth)
                print(f"{'  + finish_mesh (1 cm decimation)':34s} {r2.fscore_2cm:6.3f} {r2.fscore_5cm:6.3f} "
                      f"{r2.precision_5cm:6.3f} {r2.recall_5cm:6.3f} {r2.chamfer_m:8.4f} "
                      f"{r2.floor_error_median_m:9.4f} {r2.floor_hole_fraction:6.3f} {stats['seconds']:8.1f}"
                      f"   ({stats['input_triangles']} -> {stats['output_triangles']} triangles)")


def timing(n_views: int, width: int, height: int, gpu: bool, render: bool = True) -> None:
    from lyra_isaac.geometry.mesh import MeshConfig, finish_mesh

    t = time.perf_counter()
    scene, cams = analytic_room(n_views, width, height)
    print(f"\n== timing: analytic room, {n_views} views of {width}x{height} = {len(scene) / 1e6:.1f}M pixel-aligned "
          f"Gaussians (built in {time.perf_counter() - t:.1f} s, peak RSS {peak_rss_gb():.2f} GB) ==")
    gpu_total = None
    if gpu:
        gpu_total = _gpu_timing(scene, cams, render)
    t = time.perf_counter()
    result = extract_surface(scene, cams, SurfaceConfig())
    total = time.perf_counter() - t
    steps = ", ".join(f"{k} {v:.1f}" for k, v in result.stats["seconds"].items())
    ratio = f"; CPU/GPU {total / gpu_total:.1f}x" if gpu_total else ""
    print(f"CPU extract_surface: {total:.1f} s ({steps}); {result.mesh.n_triangles} triangles; "
          f"peak RSS {peak_rss_gb():.2f} GB{ratio}")
    t = time.perf_counter()
    finished, stats = finish_mesh(result.mesh, MeshConfig())
    print(f"CPU finish_mesh: {time.perf_counter() - t:.1f} s; {stats['input_triangles']} -> "
          f"{stats['output_triangles']} triangles (p95 error {stats.get('decimation_error_m')} m); "
          f"peak RSS {peak_rss_gb():.2f} GB")


def _gpu_timing(scene: GaussianScene, cams: CameraPath, render: bool) -> float:
    import torch

    from lyra_isaac.geometry import surface_gpu

    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    gpu_total = float("nan")
    for label in ("warm-up", "timed"):
        torch.cuda.synchronize()
        t = time.perf_counter()
        res = surface_gpu.extract_surface(scene, cams, SurfaceConfig(), device="cuda")
        torch.cuda.synchronize()
        gpu_total = time.perf_counter() - t
        steps = ", ".join(f"{k} {v:.1f}" for k, v in res.stats["seconds"].items())
        print(f"GPU extract_surface, pixel depth ({label}): {gpu_total:.1f} s ({steps}); "
              f"{res.mesh.n_triangles} triangles; GPU peak memory {torch.cuda.max_memory_allocated() / 1e9:.2f} GB")
    try:
        for label in ("with gsplat JIT", "timed") if render else ():
            t = time.perf_counter()
            res = surface_gpu.extract_surface(scene, cams, SurfaceConfig(depth_source="render"), device="cuda")
            torch.cuda.synchronize()
            steps = ", ".join(f"{k} {v:.1f}" for k, v in res.stats["seconds"].items())
            print(f"GPU extract_surface, gsplat-rendered depth of all {len(scene) / 1e6:.1f}M Gaussians ({label}): "
                  f"{time.perf_counter() - t:.1f} s ({steps}); {res.mesh.n_triangles} triangles")
    except Exception as exc:  # report and go on: the pixel path above is the main figure
        print(f"GPU gsplat render path failed: {type(exc).__name__}: {exc}")
    return gpu_total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="fidelity comparison only, on a small fixture")
    parser.add_argument("--timing-only", action="store_true", help="skip the fidelity comparison")
    parser.add_argument("--gpu", action="store_true", help="also time the GPU path (needs CUDA, torch, gsplat)")
    parser.add_argument("--no-render", action="store_true", help="skip the gsplat-rendered GPU path")
    parser.add_argument("--views", type=int, default=128)
    parser.add_argument("--width", type=int, default=392)
    parser.add_argument("--height", type=int, default=224)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not args.timing_only:
        fidelity_comparison(32, 160, 90)
    if not args.small:
        timing(args.views, args.width, args.height, args.gpu, render=not args.no_render)


if __name__ == "__main__":
    main()
