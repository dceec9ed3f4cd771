"""Fidelity metrics against known perturbations of the truth."""

from __future__ import annotations

import numpy as np
import pytest

from lyra_isaac.errors import InputError
from lyra_isaac.synthetic import make_fixture
from lyra_isaac.synthetic.metrics import MetricsConfig, check_spawns, evaluate, visible_truth_points
from lyra_isaac.world import TriangleMesh

CFG = MetricsConfig(pred_samples=40_000, truth_samples=40_000)


def _rot_z(deg):
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


def _rot_x(deg):
    a = np.radians(deg)
    return np.array([[1.0, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def _similarity(rotation=None, scale=1.0, translation=(0, 0, 0)):
    m = np.eye(4)
    m[:3, :3] = scale * (np.eye(3) if rotation is None else rotation)
    m[:3, 3] = translation
    return m


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return make_fixture("apartment", tmp_path_factory.mktemp("fx") / "apt", n_views=10, width=96, height=64, seed=4)


@pytest.fixture(scope="module")
def truth_points(fixture):
    return visible_truth_points(fixture, CFG)


def _predict(fixture, world_from_truth, mesh_offset=(0.0, 0.0, 0.0)):
    """A prediction whose world is ``world_from_truth`` (4x4) applied to the truth world, with the mesh moved
    by ``mesh_offset`` (metres, predicted world) on top: returns (mesh, predicted source_to_world)."""
    v = fixture.mesh.vertices.astype(np.float64) @ world_from_truth[:3, :3].T + world_from_truth[:3, 3]
    mesh = TriangleMesh(v + np.asarray(mesh_offset), fixture.mesh.faces)
    return mesh, world_from_truth @ fixture.source_to_world


def test_truth_scores_perfectly_under_any_yaw_and_origin(fixture, truth_points):
    # the converter chose its own yaw (37 deg) and origin: still a perfect prediction
    mesh, m = _predict(fixture, _similarity(_rot_z(37.0), translation=(4.0, -2.0, 0.0)))
    r = evaluate(mesh, m, fixture, cfg=CFG, truth_points=truth_points, spawn_points=None)
    assert r.chamfer_m < 1e-3 and r.accuracy_m < 1e-3
    assert r.fscore_2cm > 0.999 and r.fscore_5cm > 0.999
    assert r.floor_error_mean_m < 1e-4 and r.floor_hole_fraction == 0.0
    assert r.up_error_deg < 1e-3 and abs(r.scale_error_pct) < 1e-6 and abs(r.floor_offset_m) < 1e-6
    assert r.n_truth_samples > 10_000 and r.n_probes >= 100
    d = r.as_dict()
    assert set(d) >= {"chamfer_m", "fscore_5cm", "up_error_deg", "scale_error_pct", "floor_hole_fraction"}


def test_shift_3cm_gives_3cm_floor_error(fixture, truth_points):
    mesh, m = _predict(fixture, _similarity(_rot_z(-20.0)), mesh_offset=(0.0, 0.0, 0.03))
    r = evaluate(mesh, m, fixture, cfg=CFG, truth_points=truth_points)
    assert r.floor_error_mean_m == pytest.approx(0.03, abs=1e-4)
    assert r.floor_bias_m == pytest.approx(0.03, abs=1e-4)
    # floors and ceilings (half the visible surface or more) are 3 cm off; walls are not
    assert r.precision_2cm < 0.7 and r.fscore_5cm > 0.999
    assert 0.005 < r.chamfer_m < 0.03
    assert r.up_error_deg < 1e-3 and abs(r.scale_error_pct) < 1e-6


def test_frame_only_perturbation_scale_10pct(fixture, truth_points):
    # a converter that scaled everything by 1.1: its surfaces agree with the source, its scale is 10 % off
    mesh, m = _predict(fixture, _similarity(scale=1.1))
    r = evaluate(mesh, m, fixture, cfg=CFG, truth_points=truth_points)
    assert r.scale_error_pct == pytest.approx(10.0, abs=1e-6)
    assert r.fscore_2cm > 0.999 and r.up_error_deg < 1e-3


def test_frame_only_perturbation_tilt_2deg(fixture, truth_points):
    mesh, m = _predict(fixture, _similarity(_rot_x(2.0) @ _rot_z(10.0)))
    r = evaluate(mesh, m, fixture, cfg=CFG, truth_points=truth_points)
    assert r.up_error_deg == pytest.approx(2.0, abs=1e-6)
    assert abs(r.scale_error_pct) < 1e-6 and r.fscore_2cm > 0.999


def test_floor_offset_measures_where_the_predicted_floor_sits(fixture, truth_points):
    mesh, m = _predict(fixture, _similarity(translation=(0.0, 0.0, -0.12)))  # predicted floor 12 cm below z = 0
    r = evaluate(mesh, m, fixture, cfg=CFG, truth_points=truth_points)
    assert r.floor_offset_m == pytest.approx(0.12, abs=1e-6)
    assert r.floor_error_mean_m < 1e-4


def test_noise_and_holes(fixture, truth_points):
    rng = np.random.default_rng(0)
    # subdivide-free noise: move every vertex by a random 1 cm-sigma offset along z
    mesh, m = _predict(fixture, np.eye(4))
    noisy = TriangleMesh(mesh.vertices + rng.normal(0, 0.01, mesh.vertices.shape) * [0, 0, 1], mesh.faces)
    r = evaluate(noisy, m, fixture, cfg=CFG, truth_points=truth_points)
    assert 0.002 < r.floor_error_mean_m < 0.02
    # remove the living-room floor slab (top and bottom faces): probes there become holes
    v = mesh.vertices
    tri = v[mesh.faces]
    floor_face = (tri[:, :, 2].max(axis=1) < 1e-6) & (tri[:, :, 2].min(axis=1) > -0.21) \
        & (tri[:, :, 0].max(axis=1) <= 6.0 + 1e-6)
    holed = TriangleMesh(v, mesh.faces[~floor_face])
    r2 = evaluate(holed, m, fixture, cfg=CFG, truth_points=truth_points)
    expected = np.mean((np.abs(fixture.probes[:, 2]) < 1e-6) & (fixture.probes[:, 0] < 6.0))
    assert r2.floor_hole_fraction == pytest.approx(expected, abs=0.02) and expected > 0.2
    assert r2.recall_5cm < r.recall_5cm


def test_spawn_check(fixture):
    rc = fixture.raycaster()
    p = fixture.probes
    ok = check_spawns(p, rc, CFG)
    assert ok.mean() > 0.6  # probes near walls and furniture lack the robot's radius
    assert not check_spawns(p + [0, 0, 0.5], rc, CFG).any()  # floating
    inside_wall = np.array([[0.0, 3.0, 0.0], [6.0, 5.0, 0.0]])  # outer and interior walls
    assert not check_spawns(inside_wall, rc, CFG).any()
    on_table = np.array([[5.0, 6.7, 1.9]])  # on the shelf top: no head room under the 3.2 m ceiling
    assert not check_spawns(on_table, rc, CFG).any()
    # through evaluate: spawns given in a yawed, shifted predicted world
    world_from_truth = _similarity(_rot_z(90.0), translation=(1.0, 2.0, 0.0))
    mesh, m = _predict(fixture, world_from_truth)
    good = p[ok][:5] @ world_from_truth[:3, :3].T + world_from_truth[:3, 3]
    spawns = np.column_stack([np.vstack([good, good[:1] + [0, 0, 1.0]]), np.zeros(6)])
    r = evaluate(mesh, m, fixture, cfg=CFG, spawn_points=spawns, truth_points=p)
    assert r.n_spawn == 6 and r.spawn_valid_fraction == pytest.approx(5 / 6)


def test_bad_predictions_are_rejected(fixture):
    mesh, m = _predict(fixture, np.eye(4))
    with pytest.raises(InputError, match="zero faces"):
        evaluate(TriangleMesh(np.zeros((0, 3)), np.zeros((0, 3))), m, fixture, cfg=CFG)
    flipped = m.copy()
    flipped[:3, 0] *= -1
    with pytest.raises(InputError, match="similarity"):
        evaluate(mesh, flipped, fixture, cfg=CFG)


def _plane_scene(tmp_path, top_z, half_x=50.0, center_x=0.0):
    xml = f"""<mujoco><option timestep="0.004"/><worldbody>
      <geom name="floor" type="box" size="{half_x} 50 0.1" pos="{center_x} 0 {top_z - 0.1}"/>
    </worldbody></mujoco>"""
    path = tmp_path / "scene.xml"
    path.write_text(xml)
    return path


def test_drop_test_measures_floor_offset_and_holes(fixture, tmp_path):
    import dataclasses

    from lyra_isaac.synthetic.metrics import drop_test

    main = dataclasses.replace(fixture, probes=fixture.probes[np.abs(fixture.probes[:, 2]) < 1e-6])
    world_from_truth = _similarity(_rot_z(30.0), translation=(2.0, 1.0, 0.0))
    m_pred = world_from_truth @ fixture.source_to_world
    r = drop_test(_plane_scene(tmp_path, 0.03), m_pred, main)
    assert r["n_drops"] >= 20
    assert r["drop_fell_fraction"] == 0.0 and r["drop_rolled_fraction"] == 0.0
    assert r["drop_error_mean_m"] == pytest.approx(0.03, abs=0.003)
    # a world 10 % too large with its floor right: radius and heights scale back, no error
    r = drop_test(_plane_scene(tmp_path, 0.0), _similarity(scale=1.1) @ fixture.source_to_world, main)
    assert r["drop_error_mean_m"] < 0.003 and r["drop_fell_fraction"] == 0.0
    # floor only where x < 3 m (identity world): spheres beyond fall through
    r = drop_test(_plane_scene(tmp_path, 0.0, half_x=26.5, center_x=-23.5), fixture.source_to_world, main)
    sel = main.probes[_separated_idx(main.probes)]
    expected = np.mean(sel[:, 0] > 3.0 + 0.08)
    assert r["drop_fell_fraction"] == pytest.approx(expected, abs=0.05) and expected > 0.2


def _separated_idx(points):
    from lyra_isaac.synthetic.metrics import DROP_MAX_SPHERES, DROP_RADIUS_M, _separated

    return _separated(points, 3 * DROP_RADIUS_M, DROP_MAX_SPHERES)


def test_evaluate_world_reads_a_world_directory(fixture, truth_points, tmp_path):
    """A hand-made world directory (world.json, collision.ply, scene.xml) in a yawed, shifted frame."""
    from lyra_isaac.synthetic import evaluate_world
    from lyra_isaac.world import WorldManifest, write_manifest, write_mesh_ply

    world_from_truth = _similarity(_rot_z(-45.0), translation=(-1.0, 3.0, 0.0))
    mesh, m = _predict(fixture, world_from_truth)
    on_floor = fixture.probes[check_spawns(fixture.probes, fixture.raycaster(), CFG)]
    probe = on_floor[np.abs(on_floor[:, 2]) < 1e-6][0]
    spawn = np.append(probe @ world_from_truth[:3, :3].T + world_from_truth[:3, 3], 0.0)
    directory = tmp_path / "world"
    directory.mkdir()
    write_mesh_ply(mesh, directory / "collision.ply")
    (directory / "scene.xml").write_text(
        '<mujoco><worldbody><geom type="plane" size="0 0 1"/></worldbody></mujoco>')
    manifest = WorldManifest(source={"path": str(fixture.ply_path)}, source_to_world=m.tolist(), scale_factor=1.0,
                             bounds=mesh.bounds().tolist(), walkable_area_m2=1.0, spawn_points=[spawn.tolist()],
                             files={"collision": "collision.ply", "mjcf": "scene.xml"}, stats={}, config={},
                             version="test")
    write_manifest(manifest, directory)
    r = evaluate_world(directory, fixture.directory, cfg=CFG, truth_points=truth_points)
    assert r.fscore_2cm > 0.999 and r.up_error_deg < 1e-3
    assert r.n_spawn == 1 and r.spawn_valid_fraction == 1.0
    # the MuJoCo scene is a plane at z = 0: main-floor drops rest on it, stair drops sink to it (error = their
    # height), landing drops (1.05 m, more than the 0.5 m hole distance) fall "through" the missing landing
    z = fixture.probes[_separated_idx(fixture.probes), 2]
    fell = z > CFG.hole_distance_m
    assert r.drop_fell_fraction == pytest.approx(fell.mean())
    assert r.drop_error_mean_m == pytest.approx(np.mean(z[~fell]), abs=0.005)


def test_drop_spheres_hold_on_gentle_slopes_and_roll_on_steep_ones(fixture, tmp_path):
    """Spheres stay put on a 10 degree truth-consistent incline (hills are not errors) and roll on 30 degrees."""
    import dataclasses

    from lyra_isaac.synthetic.metrics import drop_test

    main = dataclasses.replace(fixture, probes=fixture.probes[np.abs(fixture.probes[:, 2]) < 1e-6][:20])
    y = main.probes[:, 1]
    for deg, rolled in ((10.0, 0.0), (30.0, 1.0)):
        # an incline rising along +y, placed just below the lowest drop point (identity world frame)
        t = np.tan(np.radians(deg))
        z0 = -0.02 - t * (y - y.min()).max()
        xml = f"""<mujoco><option timestep="0.002"/><worldbody>
          <geom type="plane" size="0 0 1" pos="0 {y.min():.4f} {z0:.4f}" euler="{deg} 0 0"/>
          </worldbody></mujoco>"""
        path = tmp_path / f"incline_{deg:.0f}.xml"
        path.write_text(xml)
        r = drop_test(path, fixture.source_to_world, main, hole_distance_m=10.0)
        assert r["drop_rolled_fraction"] == rolled, (deg, r)


@pytest.mark.parametrize("winding", ["up", "down"])
def test_spawn_check_ignores_the_floor_faces_winding(winding):
    """A level floor is walkable whichever way its faces are wound (the terrain truth has both)."""
    from lyra_isaac.synthetic.render import Raycaster
    from tests.planes import grid_mesh

    x, y = np.eye(3)[:2]
    verts, faces = grid_mesh((-3, -3, 0), x, y, 6, 6, step=0.5)
    if winding == "down":
        faces = faces[:, ::-1]
    rc = Raycaster(verts, faces)
    assert check_spawns(np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 0.02]]), rc, CFG).all()
    assert not check_spawns(np.array([[2.9, 0.0, 0.0]]), rc, CFG).any()  # its radius hangs over the edge
