"""End to end: a Lyra 2.0-format truth fixture -> convert() -> a world directory, measured against the truth.

The fixtures keep Lyra's faults at full strength (tilted first camera, global scale error, per-view depth scale and
warp of a few percent, 1 % depth noise, flying pixels, sky, floaters). The quality bar of the conversion issue is
F@5cm >= 0.95, Chamfer <= 2 cm, floor error <= 2 cm with no holes, up error <= 0.5 deg, scale error <= 2 % with the
eye height given; where the pipeline does not reach it yet, the thresholds below assert what it reaches (measured,
with a margin for the fixture's randomness), and the README states the gap.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from lyra_isaac.cli import main
from lyra_isaac.convert import convert
from lyra_isaac.geometry.camera_height import camera_heights
from lyra_isaac.splats.cameras import load_cameras
from lyra_isaac.synthetic import evaluate_world, make_fixture
from lyra_isaac.world import load_world

CI_VIEWS = {"n_views": 24, "width": 128, "height": 72}
"""Small fixtures (~220k Gaussians): each converts in well under a minute on 2 cores."""

# What the pipeline reaches on the CI-size fixtures (seed 0, eye height given), asserted with a small margin.
# Measured (F@5cm, Chamfer, floor median, holes, up error, scale error; spawn points all valid):
#   apartment 0.991, 1.2 cm, 0.4 cm, 0 %, 0.08 deg, -0.1 %      corridor 0.993, 0.5 cm, 0.4 cm, 0 %, 0.07 deg, +0.1 %
#   courtyard 0.940, 1.8 cm, 0.6 cm, 0 %, 0.02 deg, +0.4 %      terrain  0.977, 1.9 cm, 1.8 cm, 0.5 %, 0.22 deg, -1.3 %
# This release: the world is re-scaled to the given eye height above the fused surface (scale errors were -0.8,
# -0.4, +0.6 and -0.5 %); the open borders of ledges (a top whose drop the views saw) are no longer extended
# (courtyard 0.937 -> 0.940); spawn points keep level ground for 0.4 m around them (the corridor's step comes out as
# a 40 cm ramp, and one spawn 0.24 m from its true edge had passed at 0.3 m); the truth probes keep 0.15 m from walls
# and lie within the pixel centres of a view that sees them. The terrain's 1 of 200 floor probes without surface is
# seen by one view only, 5.3 m away at 70 deg incidence: the fused ground ends 9 cm short of it, curled up at its edge.
# Gaps to the bar (README, "Conversion fidelity"): the open courtyard's F@5cm (what alignment and the joint warp
# refinement leave of each view's scale, on surfaces that few views see), the terrain's Chamfer and that probe.
REACHED = {
    "apartment": {"fscore_5cm": 0.975, "chamfer_m": 0.016, "floor_error_median_m": 0.008, "floor_hole_fraction": 0.005,
                  "up_error_deg": 0.2, "scale_error_pct": 0.5, "spawn_valid_fraction": 1.0},
    "corridor": {"fscore_5cm": 0.985, "chamfer_m": 0.008, "floor_error_median_m": 0.008, "floor_hole_fraction": 0.005,
                 "up_error_deg": 0.2, "scale_error_pct": 0.5, "spawn_valid_fraction": 1.0},
    "courtyard": {"fscore_5cm": 0.93, "chamfer_m": 0.02, "floor_error_median_m": 0.01, "floor_hole_fraction": 0.005,
                  "up_error_deg": 0.15, "scale_error_pct": 1.0, "spawn_valid_fraction": 1.0},
    "terrain": {"fscore_5cm": 0.965, "chamfer_m": 0.022, "floor_error_median_m": 0.022, "floor_hole_fraction": 0.01,
                "up_error_deg": 0.35, "scale_error_pct": 1.6, "spawn_valid_fraction": 1.0},
}


@pytest.fixture(scope="module")
def apartment(tmp_path_factory):
    root = tmp_path_factory.mktemp("apartment")
    fixture = make_fixture("apartment", root / "scene", seed=0, **CI_VIEWS)
    world = convert(fixture.ply_path, root / "world", camera_height=fixture.eye_height_m)
    return fixture, world


def test_world_directory_contract(apartment):
    fixture, world = apartment
    m = world.manifest
    for key in ("usd", "splats_usd", "mjcf", "collision", "visual", "heightmap", "previews"):
        assert key in m.files, key
    for key in ("usd", "splats_usd", "mjcf", "collision", "visual", "heightmap"):
        assert world.file(key).is_file(), key
    assert m.files["previews"] and all((world.path / p).is_file() for p in m.files["previews"])
    assert (m.up_axis, m.meters_per_unit, m.floor_height, m.format_version) == ("Z", 1.0, 0.0, 1)
    assert m.source["format"] == "lyra2" and m.source["gaussians"] == fixture.n_gaussians
    assert m.source["sha256"] == hashlib.sha256(fixture.ply_path.read_bytes()).hexdigest()  # hashed while loading
    # source_to_world is a similarity whose scale is the recorded factor
    matrix = np.asarray(m.source_to_world)
    linear = matrix[:3, :3]
    assert np.allclose(linear @ linear.T, m.scale_factor**2 * np.eye(3), atol=1e-6)
    assert np.allclose(matrix[3], [0, 0, 0, 1])
    # every filter's count, every stage's time, peak memory and the full config are recorded
    assert set(m.stats["clean"]["dropped"]) >= {"non_finite", "opacity", "oversize", "sky", "outliers"}
    assert m.stats["clean"]["input"] == fixture.n_gaussians
    assert m.stats["read"]["rows_in_file"] == fixture.n_gaussians
    for stage in ("load", "clean", "frame", "surface", "mesh", "walkable", "write", "total"):
        assert stage in m.stats["timings_s"], stage
    assert m.stats["peak_rss_mb"] > 0
    # the depth factor all views shared was measured, and what was removed is recorded where the scale is
    shared = m.stats["surface"]["depth_factor"]
    assert shared["pairs"] > 0 and 0.9 < shared["factor"] < 1.1 and shared["std_error"] < 0.01
    assert m.stats["scale"]["depth_factor_removed"] == (shared["factor"] if shared["applied"] else 1.0)
    # removing it re-scaled the world so the given eye height still holds
    assert m.stats["scale"]["method"] == "camera_height"
    assert m.stats["scale"]["eye_height_m"] == pytest.approx(fixture.eye_height_m, rel=1e-9)
    # and the world was re-scaled once more, so that the cameras stand at that height above the fused surface: the
    # written collision mesh says so too
    rescale = m.stats["scale"]["surface_camera_height"]
    assert rescale["applied"] and rescale["cameras_measured"] >= rescale["cameras"] / 3
    assert 0.95 < rescale["factor"] < 1.05 and rescale["factor"] != 1.0
    mesh = world.collision_mesh()
    centers = load_cameras(fixture.cameras_path).centers() @ linear.T + matrix[:3, 3]
    heights = camera_heights(mesh.vertices, mesh.faces, centers, radius=0.3, min_drop=0.75)
    assert np.nanmedian(heights) == pytest.approx(fixture.eye_height_m, abs=0.01)
    # the fused surface re-levelled the world: source_to_world's up is the frame stage's, turned by what it found
    level = m.stats["frame"]["surface_level"]
    assert level["applied"] and 0 < level["change_deg"] < 3 and level["horizontal_area_m2"] > 10
    up_world_in_source = linear[2] / np.linalg.norm(linear[2])
    frame_up = np.asarray(m.stats["frame"]["up_source"])
    turned = np.degrees(np.arccos(np.clip(up_world_in_source @ frame_up, -1, 1)))
    assert turned == pytest.approx(level["change_deg"], abs=1e-3)
    assert set(m.config) >= {"clean", "frame", "scale", "surface", "mesh", "walkable", "usd", "mjcf"}
    json.loads((world.path / "world.json").read_text())  # strict JSON (no NaN)
    # nothing but the world itself is left beside it
    assert sorted(p.name for p in world.path.parent.iterdir()) == ["scene", "world"]


def test_spawn_points_stand_on_walkable_floor(apartment):
    _, world = apartment
    heightmap = world.heightmap()
    spawns = world.spawn_points
    assert len(spawns) >= 1
    assert heightmap.is_walkable(spawns[:, :2]).all()
    np.testing.assert_allclose(spawns[:, 2], heightmap.height_at(spawns[:, :2]), atol=0.05)


def test_collision_floor_faces_up(apartment):
    """Floors wind counter-clockwise seen from above: ray casts and physics engines see their top side."""
    _, world = apartment
    mesh = world.collision_mesh()
    v, f = mesh.vertices.astype(np.float64), mesh.faces
    normals = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    areas = np.linalg.norm(normals, axis=1)
    near_floor = np.abs(v[f].mean(axis=1)[:, 2]) < 0.05
    horizontal = np.abs(normals[:, 2]) > 0.9 * areas
    up = (normals[:, 2] > 0) & near_floor & horizontal
    down = (normals[:, 2] < 0) & near_floor & horizontal
    assert areas[up].sum() > 10 * areas[down].sum()


def _check_fidelity(fixture, world, bounds: dict[str, float]) -> None:
    report = evaluate_world(world.path, fixture).as_dict()
    assert report["fscore_5cm"] >= bounds["fscore_5cm"], report
    assert report["chamfer_m"] <= bounds["chamfer_m"], report
    assert report["floor_error_median_m"] <= bounds["floor_error_median_m"], report
    assert report["floor_hole_fraction"] <= bounds["floor_hole_fraction"], report
    assert report["up_error_deg"] <= bounds["up_error_deg"], report
    assert abs(report["scale_error_pct"]) <= bounds["scale_error_pct"], report
    assert report["spawn_valid_fraction"] >= bounds["spawn_valid_fraction"], report
    assert report["drop_fell_fraction"] == 0.0, report


def test_fidelity_against_truth_apartment(apartment):
    fixture, world = apartment
    _check_fidelity(fixture, world, REACHED["apartment"])


@pytest.mark.parametrize("scene", ["corridor", "courtyard", "terrain"])
def test_fidelity_against_truth(scene, tmp_path):
    fixture = make_fixture(scene, tmp_path / "scene", seed=0, **CI_VIEWS)
    world = convert(fixture.ply_path, tmp_path / "world", camera_height=fixture.eye_height_m)
    _check_fidelity(fixture, world, REACHED[scene])


def test_cli_convert_writes_the_same_world(apartment, tmp_path, capsys):
    fixture, world = apartment
    out = tmp_path / "cli_world"
    code = main(["convert", str(fixture.directory), "-o", str(out), "--camera-height", str(fixture.eye_height_m),
                 "--json", "--no-progress"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["spawn points"] == len(world.manifest.spawn_points)
    again = load_world(out)
    np.testing.assert_allclose(again.manifest.source_to_world, world.manifest.source_to_world, atol=1e-9)
    assert again.manifest.source["sha256"] == world.manifest.source["sha256"]
    # a second run refuses to overwrite, exit 1, world untouched
    assert main(["convert", str(fixture.ply_path), "-o", str(out), "--no-progress"]) == 1
    assert load_world(out).manifest.source["sha256"] == world.manifest.source["sha256"]


def test_converted_world_passes_every_consumer(apartment):
    """pxr contract, omni_asset_validate, Newton's USD importer and MuJoCo drop tests on a converted truth fixture."""
    from lyra_isaac.usd.validate import validate_world

    report = validate_world(apartment[1].path)
    assert report.ok, "\n".join(report.summary_lines())
    for check in ("usd", "asset_validator", "newton", "mujoco"):
        assert report.check(check).status == "pass", (check, report.check(check))


ROBOTS = ["humanoid", "g1", "h1"]


@pytest.mark.parametrize("robot", ROBOTS)
def test_robots_stand_at_every_spawn_of_the_converted_world(apartment, robot):
    """1 s under the nominal-pose action at every spawn point: nothing sinks into the floor, PD robots stay up."""
    import gymnasium as gym

    from lyra_isaac.envs.robots import robot_available

    if not robot_available(robot):
        pytest.skip(f"robot {robot} needs the robots extra")
    world = apartment[1]
    floor = world.heightmap()
    env = gym.make("LyraWorld-v0", world=str(world.path), robot=robot).unwrapped
    backend = env.backend
    robot_geoms = np.isin(backend.model.geom_bodyid, backend._robot_bodies)
    try:
        for spawn in world.spawn_points:
            env.reset(seed=0, options={"spawn": spawn})
            deepest = 0.0
            for _ in range(int(round(1.0 / env.dt))):
                _, _, terminated, _, info = env.step(np.zeros(env.n_joints))
                assert not info["physics_error"], (robot, spawn)
                contacts = backend.data.contact[: backend.data.ncon]
                if len(contacts.dist):
                    deepest = min(deepest, float(contacts.dist.min()))
                if robot != "humanoid":  # the torque humanoid collapses without a policy; PD robots must stand
                    assert not terminated, (robot, spawn, info["termination_reason"])
            xyz = backend.data.geom_xpos[robot_geoms]
            # the lowest ground within one cell of each geom centre: a foot may rest across the edge of a small bump
            # (the fused floor keeps some of a few cm), its centre then lies below the bump's top but not in the floor
            step = floor.cell_size
            around = [floor.height_at(xyz[:, :2] + offset)
                      for offset in ([0, 0], [step, 0], [-step, 0], [0, step], [0, -step])]
            ground = np.nanmin(np.stack(around), axis=0)
            assert np.all(xyz[:, 2] > np.nan_to_num(ground, nan=-np.inf) - 0.03), (robot, spawn)
            assert deepest > -0.03, (robot, spawn, deepest)  # no contact 3 cm into the ground
            if robot == "humanoid":  # fell onto the floor under it, not onto a hull lid or through the world
                assert xyz[:, 2].min() < float(spawn[2]) + 0.3, (robot, spawn)
    finally:
        env.close()
