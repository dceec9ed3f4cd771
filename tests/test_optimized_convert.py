"""Optimized 3DGS (INRIA-trained) scenes through convert: truth fixtures of lyra_isaac.synthetic.optimized_fixture.

Quality bar (README "Conversion fidelity"): F@5cm >= 0.95, Chamfer <= 2 cm, floor error <= 2 cm with no holes,
up error <= 0.5 deg. The REACHED bounds below are what the pipeline measured on these fixtures (24 views of
160 x 90, seed 0, cameras.json, eye height given; benchmarks/fidelity.py --small --kind optimized --oracle-scale)
with a small margin. Since cleaning keeps the large flat discs that cover a textureless floor (clean.py
``flat_support``) they meet the bar (no floor holes, F@5cm 0.986-0.994, Chamfer 0.3-0.8 cm) except the up error
of the terrain (0.6 deg); before, floor holes were 5-6 % indoors.
"""

from __future__ import annotations

import numpy as np
import pytest

from lyra_isaac.convert import convert
from lyra_isaac.geometry.frame import estimate_frame
from lyra_isaac.geometry.point_render import render_point_depths, render_splat_depths, synthesize_cameras
from lyra_isaac.geometry.surface import SurfaceConfig
from lyra_isaac.splats.cameras import CameraPath, find_cameras, load_cameras
from lyra_isaac.splats.clean import CleanConfig, clean_scene
from lyra_isaac.splats.ply import load_scene, read_ply
from lyra_isaac.splats.scene import GaussianScene
from lyra_isaac.synthetic import evaluate_world, make_optimized_fixture

SIZE = dict(n_views=24, width=160, height=90)

# measured (seed 0): F@5cm, Chamfer m, floor error m, holes, up deg, |scale| %
REACHED = {
    "apartment": dict(fscore_5cm=0.993, chamfer_m=0.004, floor=0.005, holes=0.01, up=0.02, scale=0.6),
    "corridor": dict(fscore_5cm=0.994, chamfer_m=0.004, floor=0.004, holes=0.0, up=0.09, scale=0.0),
    "courtyard": dict(fscore_5cm=0.986, chamfer_m=0.008, floor=0.004, holes=0.0, up=0.02, scale=0.1),
    "terrain": dict(fscore_5cm=0.994, chamfer_m=0.003, floor=0.002, holes=0.0, up=0.60, scale=0.2),
}


def check(report, reached: dict) -> None:
    assert report.fscore_5cm >= reached["fscore_5cm"] - 0.02, report
    assert report.chamfer_m <= reached["chamfer_m"] + 0.005, report
    assert report.floor_error_mean_m <= reached["floor"] + 0.005, report
    assert report.floor_hole_fraction <= reached["holes"] + 0.01, report
    assert report.up_error_deg <= reached["up"] + 0.3, report
    assert abs(report.scale_error_pct) <= reached["scale"] + 1.0, report
    assert report.drop_fell_fraction == 0.0, report


@pytest.mark.parametrize("scene", [
    "apartment", "corridor",
    pytest.param("courtyard", marks=pytest.mark.slow), pytest.param("terrain", marks=pytest.mark.slow)])
def test_optimized_scene_with_cameras_json(tmp_path, scene):
    fx = make_optimized_fixture(scene, tmp_path / "model", seed=0, cameras="both", **SIZE)
    # the INRIA layout: the PLY in point_cloud/iteration_N, cameras.json at the model root, found on its own
    assert find_cameras(fx.ply_path) == fx.directory / "cameras.json"
    world = convert(fx.ply_path, tmp_path / "world", camera_height=fx.eye_height_m)
    assert world.manifest.source["cameras"].endswith("cameras.json")
    check(evaluate_world(world.path, fx), REACHED[scene])


@pytest.mark.parametrize("seed", [0, 1])
def test_optimized_room_without_cameras_finds_the_floor(tmp_path, seed):
    """No camera file, a random COLMAP-like frame: the walls hold more Gaussians than the floor (density follows
    the training cameras), yet the floor is found (by area) and up is within 0.5 deg (was 90 deg by count)."""
    fx = make_optimized_fixture("apartment", tmp_path / "model", seed=seed, cameras="none", **SIZE)
    cleaned = clean_scene(load_scene(fx.ply_path), None, CleanConfig())
    frame = estimate_frame(cleaned.geometry.means, None)
    true_up = fx.source_to_world[2, :3] / np.linalg.norm(fx.source_to_world[2, :3])
    assert np.degrees(np.arccos(np.clip(frame.up_source @ true_up, -1.0, 1.0))) < 0.5, frame.stats


def test_optimized_corridor_without_cameras_has_no_floor_holes(tmp_path):
    """No camera file: views are synthesized in free space. Floaters 0.1-0.3 m from the corridor's grid positions had
    rejected 4 of its 6 (the nearest Gaussian was the test), and the floor before the step went unseen: 9.5 % of the
    floor probes without surface (17-21 % on seeds 1 and 2), F@5cm 0.955. Now: no holes, F@5cm 0.994."""
    fx = make_optimized_fixture("corridor", tmp_path / "model", seed=0, cameras="none", **SIZE)
    world = convert(fx.ply_path, tmp_path / "world", scale=1.0 / fx.scale)
    assert world.manifest.stats["surface"]["views"] >= 30, world.manifest.stats["surface"]
    report = evaluate_world(world.path, fx)
    assert report.floor_hole_fraction <= 0.01 and report.fscore_5cm >= 0.97 and report.chamfer_m <= 0.01, report


def test_synthesized_views_ignore_floaters_and_keep_off_walls():
    """A 2 m wide, 12 m long corridor of surface points with one floater per 0.5 m^3 of its air: every 2 m of it
    gets a view position (the floaters do not block one), and none is within the clearance of a wall."""
    rng = np.random.default_rng(0)
    n = 60_000
    x = rng.uniform(0, 12, n)
    side = rng.integers(0, 4, n)  # floor, ceiling, two walls
    y = np.where(side == 2, 0.0, np.where(side == 3, 2.0, rng.uniform(0, 2, n)))
    z = np.where(side == 0, 0.0, np.where(side == 1, 2.6, rng.uniform(0, 2.6, n)))
    surface = np.column_stack([x, y, z])
    floaters = rng.uniform([0.3, 0.3, 0.3], [11.7, 1.7, 2.3], (int(12 * 1.4 * 2.0 / 0.5), 3))
    cfg = SurfaceConfig()
    cameras = synthesize_cameras(np.concatenate([surface, floaters]).astype(np.float32), cfg)
    eyes = np.unique(np.round(np.linalg.inv(cameras.w2c)[:, :3, 3], 6), axis=0)
    assert len(cameras.w2c) == len(eyes) * cfg.synth_yaws
    assert len(eyes) == 6 and np.all(np.diff(np.sort(eyes[:, 0])) < 2.6), eyes  # 12 m / 2 m, no gap
    walls = np.minimum(eyes[:, 1], 2.0 - eyes[:, 1])
    assert np.all(walls > cfg.synth_clearance) and np.allclose(eyes[:, 2], cfg.synth_height, atol=0.05), eyes


def test_colmap_like_frame_has_minus_y_up(tmp_path):
    """The fixture's COLMAP-like frames put up along source -Y, as the first camera's (OpenCV, +Y down) axes do."""
    from lyra_isaac.synthetic.optimized_fixture import OptimizedConfig, random_similarity

    cfg = OptimizedConfig(colmap_up_probability=1.0)
    for seed in range(5):
        m, _ = random_similarity(np.random.default_rng(seed), cfg)
        up = m[2, :3] / np.linalg.norm(m[2, :3])
        assert up @ np.array([0.0, -1.0, 0.0]) > np.cos(np.radians(3.01))


def test_fixture_traits(tmp_path):
    fx = make_optimized_fixture("courtyard", tmp_path / "model", seed=1, cameras="none", n_views=8, width=96,
                                height=54)
    assert not (fx.directory / "cameras.json").exists() and fx.cameras_path is None
    scene = read_ply(fx.ply_path)
    assert scene.source_format == "inria" and scene.sh_degree == 3 and len(scene) == fx.n_gaussians
    assert 0.3 <= fx.scale <= 5.0
    kind = np.load(fx.truth_path)["kind"]
    assert {0, 1, 2} <= set(np.unique(kind).tolist())  # surface, floaters, sky
    m = fx.source_to_world
    world = scene.means.astype(np.float64) @ m[:3, :3].T + m[:3, 3]
    surface = kind == 0
    distance = fx.raycaster().distance(world[surface][:5000])
    assert np.median(distance) < 0.005 and np.percentile(distance, 95) < 0.03
    # flat: the smallest sigma is a small fraction of the largest, and its axis is the truth normal
    sigma = np.sort(scene.scales()[surface], axis=1)
    assert np.median(sigma[:, 0] / sigma[:, 2]) < 0.1
    # rows are not in view order: neighbours in the file are far apart
    gaps = np.linalg.norm(np.diff(world[:2000], axis=0), axis=1)
    assert np.median(gaps) > 0.5
    cams_json = make_optimized_fixture("courtyard", tmp_path / "model2", seed=1, cameras="both", n_views=8,
                                       width=96, height=54)
    a = load_cameras(cams_json.directory / "cameras.json")
    b = load_cameras(cams_json.directory / "cameras.npz")
    np.testing.assert_allclose(a.w2c, b.w2c, atol=1e-4 * max(1.0, np.abs(b.w2c).max()))
    np.testing.assert_allclose(a.intrinsics, b.intrinsics, rtol=1e-5)


def _flat_floor(means: np.ndarray, sigma_m: float, thickness_m: float) -> GaussianScene:
    """Opaque flat Gaussians (discs of ``sigma_m``, ``thickness_m`` thin) on the z = 0 floor at (N, 3) ``means``."""
    n = len(means)
    return GaussianScene(means=means, quats=np.tile([1.0, 0, 0, 0], (n, 1)).astype(np.float32),
                         log_scales=np.log(np.tile([sigma_m, sigma_m, thickness_m], (n, 1))).astype(np.float32),
                         opacity_logits=np.full(n, 4.0, np.float32), sh_dc=np.zeros((n, 3), np.float32))


def _grazing_camera() -> tuple[CameraPath, np.ndarray]:
    """One 160 x 90 camera 1.5 m above the floor, pitched 30 deg down, and its (90, 160, 3) world ray directions per
    metre of optical depth."""
    pitch = np.radians(-30)
    forward = np.array([np.cos(pitch), 0, np.sin(pitch)])
    right = np.array([0, -1.0, 0])
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, np.cross(forward, right), forward, [0, 0, 1.5]
    k = np.array([[100, 0, 80], [0, 100, 45], [0, 0, 1.0]])
    cams = CameraPath(w2c=np.linalg.inv(c2w)[None], intrinsics=k[None], width=160, height=90)
    u, v = np.meshgrid(np.arange(160) + 0.5, np.arange(90) + 0.5)
    rays = np.stack([(u - 80) / 100, (v - 45) / 100, np.ones_like(u)], -1) @ c2w[:3, :3].T
    return cams, rays


def test_splat_renderer_gives_a_grazing_floor_its_plane_depth():
    """Flat Gaussians on a floor seen at a grazing angle: each pixel gets the depth where its ray crosses the
    floor, to float precision, not the depth of a nearby centre."""
    g = np.arange(-5, 5, 0.02)
    xx, yy = np.meshgrid(g + 5, g)
    means = np.column_stack([xx.ravel(), yy.ravel(), np.zeros(xx.size)]).astype(np.float32)
    scene = _flat_floor(means, 0.02, 0.001)
    cams, rays = _grazing_camera()
    depth = render_splat_depths(scene, cams, SurfaceConfig()).depth[0]
    down = rays[..., 2] < 0
    truth = np.where(down, -1.5 / np.where(down, rays[..., 2], -1), 0)
    seen = down & (truth < 4.0)  # within the floor patch
    assert (depth[seen] > 0).mean() > 0.99
    assert np.abs(depth[seen] - truth[seen]).max() < 1e-3
    assert (depth[~down] == 0).all()


def test_centre_renderer_fills_gaps_between_sparse_flat_gaussians():
    """Flat Gaussians (optimized 3DGS) sparser than the pixels: the centres renderer leaves gaps between them and
    fills those the floor encloses, with the floor's own depth (within 1 %), not the nearest centre's."""
    rng = np.random.default_rng(0)
    n = 60_000
    means = np.c_[rng.uniform(0, 6, n), rng.uniform(-4, 4, n), np.zeros(n)].astype(np.float32)
    scene = _flat_floor(means, 0.05, 0.002)
    cams, rays = _grazing_camera()
    down = rays[..., 2] < -0.3  # the near floor, well inside the points
    truth = np.where(down, -1.5 / np.where(down, rays[..., 2], -1), 0)
    raw = render_point_depths(scene, cams, SurfaceConfig(fill_gaps=0)).depth[0]
    filled = render_point_depths(scene, cams, SurfaceConfig()).depth[0]
    assert (raw[down] == 0).mean() > 0.2  # the sparse centres leave gaps
    assert (filled[down] == 0).mean() < 0.5 * (raw[down] == 0).mean()
    new = down & (raw == 0) & (filled > 0)
    assert new.sum() > 100
    assert np.median(np.abs(filled[new] / truth[new] - 1)) < 0.01
