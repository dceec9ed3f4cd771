"""Timing of the cleaning, frame/scale, walkable and preview stages on a Lyra-sized scene (11M Gaussians).

The scene: Gaussians sampled on the synthetic apartment's truth mesh (area-weighted), with Lyra-like faults
(per-"view" depth offsets making floors ~3 cm thick, 6 % sky at 50-200 m, 0.5 % floaters, 3 % faint Gaussians),
moved into a Lyra-like source frame (first-camera OpenCV axes, 8 deg tilt, scale 0.8 units per metre). Cameras
walk the apartment's route. Prints seconds per stage, peak memory, counts and the up-axis / scale errors.

    python benchmarks/stages.py            # 11M Gaussians
    python benchmarks/stages.py --small    # 1M Gaussians
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lyra_isaac.geometry.frame import estimate_frame, estimate_scale, source_to_world_matrix
from lyra_isaac.geometry.walkable import build_heightmap, heightmap_stats, sample_points
from lyra_isaac.preview import write_previews
from lyra_isaac.splats.cameras import CameraPath
from lyra_isaac.splats.clean import clean_scene
from lyra_isaac.splats.scene import GaussianScene
from lyra_isaac.synthetic import build_scene, camera_path
from lyra_isaac.synthetic.lyra_fixture import w2c_in_source
from lyra_isaac.world import TriangleMesh, World

OPENCV_FROM_ZUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
SCALE = 0.8  # scene units per metre
TILT_DEG = 8.0


def _rotation(axis, degrees):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.radians(degrees)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def make_scene(n: int, seed: int = 0):
    """(GaussianScene in source frame, CameraPath, truth source_to_world, truth mesh in world, eye height)."""
    rng = np.random.default_rng(seed)
    truth = build_scene("apartment", seed=seed)
    v, f = truth.vertices.astype(np.float64), truth.faces
    tri = v[f]
    tri = tri[tri[:, :, 2].mean(axis=1) > -0.01]  # no slab undersides: cameras never see below the floor
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    n_sky, n_float, n_faint = int(0.06 * n), int(0.005 * n), int(0.03 * n)
    n_surf = n - n_sky - n_float - n_faint
    face = np.searchsorted(np.cumsum(area) / area.sum(), rng.random(n_surf + n_faint))
    r1, r2 = rng.random((2, len(face))).astype(np.float32)
    s1 = np.sqrt(r1)
    p = ((1 - s1)[:, None] * tri[face, 0] + (s1 * (1 - r2))[:, None] * tri[face, 1]
         + (s1 * r2)[:, None] * tri[face, 2]).astype(np.float32)
    del face, r1, r2, s1
    # per-"view" depth offsets: 128 blocks of points shifted along z by N(0, 3 cm), plus 1 cm noise
    p[:, 2] += np.repeat(rng.normal(0, 0.03, 128), -(-len(p) // 128))[: len(p)].astype(np.float32)
    p += rng.normal(0, 0.01, p.shape).astype(np.float32)
    lo, hi = truth.bounds()
    sky_dir = rng.normal(size=(n_sky, 3))
    sky_dir[:, 2] = np.abs(sky_dir[:, 2]) + 0.1
    sky = (sky_dir / np.linalg.norm(sky_dir, axis=1, keepdims=True) * rng.uniform(50, 200, (n_sky, 1))).astype(
        np.float32)
    floaters = rng.uniform(lo, hi, (n_float, 3)).astype(np.float32)
    world = np.concatenate([p, sky, floaters])
    del p, sky, floaters

    c2w, intrinsics, floor_z = camera_path(truth, 128, 392, 224, seed=seed)
    rot = _rotation((1.0, 0.4, 0.0), TILT_DEG) @ OPENCV_FROM_ZUP.T
    m = np.eye(4)
    m[:3, :3] = rot / SCALE
    m[:3, 3] = (0.4, -0.3, 0.2)
    src = ((world - m[:3, 3]).astype(np.float32) @ rot.astype(np.float32)) * np.float32(SCALE)
    del world
    opacity = rng.normal(4.5, 1.0, n).astype(np.float32)
    opacity[n_surf:n_surf + n_faint] = -5.0
    scene = GaussianScene(
        means=src,
        quats=np.tile(np.array([1, 0, 0, 0], np.float32), (n, 1)),
        log_scales=np.log(rng.uniform(0.003, 0.02, (n, 3)).astype(np.float32) * SCALE),
        opacity_logits=opacity,
        sh_dc=np.zeros((n, 3), np.float32),
        source_format="lyra2",
        source_path=Path("benchmark://apartment"),
    )
    cameras = CameraPath(w2c=w2c_in_source(c2w, m, SCALE), intrinsics=intrinsics, width=392, height=224)
    eye = float(np.median(c2w[:, 2, 3] - floor_z))
    mesh = TriangleMesh(truth.vertices, truth.faces, (truth.colors * 255).astype(np.uint8))
    return scene, cameras, m, mesh, eye


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="1M Gaussians instead of 11M")
    parser.add_argument("-n", type=int, help="number of Gaussians (overrides --small)")
    args = parser.parse_args(argv)
    n = args.n or (1_000_000 if args.small else 11_000_000)

    t = time.perf_counter()
    scene, cameras, truth_m, mesh, eye = make_scene(n)
    print(f"scene: {len(scene):,} Gaussians, {len(cameras)} cameras, built in {time.perf_counter() - t:.1f} s "
          f"(peak {peak_gib():.2f} GiB)")
    times = {}

    t = time.perf_counter()
    cleaned = clean_scene(scene, cameras)
    times["clean"] = time.perf_counter() - t
    print(f"clean:      {times['clean']:6.2f} s  geometry {cleaned.stats['geometry_kept']:,}, render "
          f"{cleaned.stats['render_kept']:,}; dropped {cleaned.stats['dropped']}  (peak {peak_gib():.2f} GiB)")

    t = time.perf_counter()
    frame = estimate_frame(cleaned.geometry.means, cameras)
    scale = estimate_scale(frame, cameras, camera_height=eye)
    matrix = source_to_world_matrix(frame, scale)
    times["frame+scale"] = time.perf_counter() - t
    true_up = truth_m[2, :3] / np.linalg.norm(truth_m[2, :3])
    up_err = np.degrees(np.arccos(np.clip(true_up @ frame.up_source, -1, 1)))
    scale_err = scale.factor * SCALE - 1.0
    # a truth floor point (world origin) mapped through the estimate: its height is the floor offset error
    origin_src = np.linalg.inv(truth_m) @ np.array([0.0, 0.0, 0.0, 1.0])
    floor_err = float((matrix @ origin_src)[2])
    print(f"frame:      {times['frame+scale']:6.2f} s  method {frame.method}, up error {up_err:.3f} deg, scale error "
          f"{100 * scale_err:+.2f} % (eye height given), floor offset error {100 * floor_err:+.1f} cm")

    t = time.perf_counter()
    heightmap = build_heightmap(mesh)
    times["heightmap"] = time.perf_counter() - t
    t = time.perf_counter()
    spawn, goals = sample_points(heightmap, None, np.random.default_rng(0))
    times["spawns"] = time.perf_counter() - t
    hs = heightmap_stats(heightmap)
    print(f"heightmap:  {times['heightmap']:6.2f} s  grid {hs['grid']} at {hs['cell_size']} m, walkable "
          f"{hs['walkable_area_m2']:.1f} m2 ({mesh.n_triangles:,} triangles)")
    print(f"spawns:     {times['spawns']:6.2f} s  {len(spawn)} spawns, {len(goals)} goals")

    world = World(collision=mesh, visual=None, heightmap=heightmap, spawn_points=spawn, goal_points=goals,
                  manifest=None)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        files = write_previews(world, Path(tmp))
        times["previews"] = time.perf_counter() - t
    print(f"previews:   {times['previews']:6.2f} s  {len(files)} PNGs (first open3d import included)")
    total = sum(times.values())
    print(f"total:      {total:6.2f} s for {len(scene):,} Gaussians; "
          f"{1e6 * times['clean'] / len(scene):.3f} us/Gaussian cleaning; peak memory {peak_gib():.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
