"""MuJoCo scene writer: height-field layout, concave ground (not a hull), holes, overhang parts, drop tests."""

from __future__ import annotations

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco")

from lyra_isaac.config import from_dict  # noqa: E402
from lyra_isaac.errors import ConfigError, InputError  # noqa: E402
from lyra_isaac.mjcf.scene import MjcfConfig, ground_tiles, prepare_ground, write_mjcf_scene  # noqa: E402
from lyra_isaac.world import HeightMap, TriangleMesh  # noqa: E402
from tests.worlds import make_valley_world, surface_height  # noqa: E402

RADIUS = 0.1


def drop_spheres(scene_xml, points_xy, start_z=None, seconds=2.0, radius=RADIUS):
    """Drop one free sphere per (x, y) onto the scene; return their resting positions (N, 3)."""
    spec = mujoco.MjSpec.from_file(str(scene_xml))
    spec.option.timestep = 0.002
    for i, (x, y) in enumerate(points_xy):
        z0 = start_z if start_z is not None else float(surface_height(x, y)) + 0.5
        body = spec.worldbody.add_body(name=f"probe{i}", pos=[x, y, z0])
        body.add_freejoint()
        # spheres do not collide with each other (conaffinity 0), only with the ground (contype 1 / conaffinity 1)
        body.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[radius, 0, 0], mass=1.0, contype=1, conaffinity=0,
                      condim=6, friction=[1.0, 0.05, 0.1])  # rolling friction: probes stay put on slopes
    model = spec.compile()
    data = mujoco.MjData(model)
    mujoco.mj_step(model, data, nstep=int(seconds / model.opt.timestep))
    return np.array([data.body(f"probe{i}").xpos.copy() for i in range(len(points_xy))])


@pytest.fixture(scope="module")
def valley_scene(tmp_path_factory):
    world = make_valley_world(with_splats=False)
    out = tmp_path_factory.mktemp("valley_mjcf")
    files = write_mjcf_scene(world, out)
    return world, out, files


def test_files_and_model(valley_scene):
    world, out, files = valley_scene
    assert files["mjcf"] == "scene.xml" and (out / "scene.xml").is_file()
    model = mujoco.MjModel.from_xml_path(str(out / "scene.xml"))
    # the valley floor (|x| < 1) is the plane; slopes, box and step are height-field tiles
    plane = model.geom("ground")
    assert model.geom_type[plane.id] == mujoco.mjtGeom.mjGEOM_PLANE and model.geom_pos[plane.id][2] == 0.0
    tile_x = model.geom_pos[model.geom_type == mujoco.mjtGeom.mjGEOM_HFIELD, 0]
    assert np.all(np.abs(tile_x) > 0.5)  # no tile over the flat strip
    # coarser sampling where the ground is a plain slope, full resolution at the box and step edges
    cfg = MjcfConfig()
    _, tiles = ground_tiles(*prepare_ground(world.heightmap, cfg), cfg)
    assert model.nhfield == len(tiles) <= 12
    assert {t.factor for t in tiles} == {1, 4}
    for i, (x, y, z, _) in enumerate(world.spawn_points):
        site = model.site(f"spawn_{i:03d}")
        np.testing.assert_allclose(model.site_pos[site.id], [x, y, z], atol=1e-3)
    # no mesh geom for the valley: everything is in the ground (no overhangs)
    assert int((model.geom_type == mujoco.mjtGeom.mjGEOM_MESH).sum()) == 0


def test_pit_below_floor_moves_plane_down(tmp_path):
    world = make_valley_world(with_splats=False)
    world.heightmap.heights[70:80, 70:80] = -0.3  # a 0.5 m pit in the valley floor
    # the collision mesh still has floor over the pit, which would (rightly) become an overhang part: skip those
    write_mjcf_scene(world, tmp_path, MjcfConfig(overhang_margin=10.0))
    model = mujoco.MjModel.from_xml_path(str(tmp_path / "scene.xml"))
    assert model.geom_pos[model.geom("ground").id][2] == pytest.approx(-0.3, abs=1e-3)
    rest = drop_spheres(tmp_path / "scene.xml", [(-0.25, -0.25), (0.5, 0.5)], start_z=0.5, seconds=1.0)
    # cells 70..79 span x, y = -0.475..-0.025 (cell centre x = -4 + 0.05 * (j + 0.5))
    assert rest[0, 2] == pytest.approx(-0.3 + RADIUS, abs=0.02)
    assert rest[1, 2] == pytest.approx(RADIUS, abs=0.02)


def test_concave_valley_is_not_a_hull(valley_scene):
    _, out, _ = valley_scene
    rest = drop_spheres(out / "scene.xml", [(0.0, 0.0), (0.0, 1.5), (0.3, -1.0)])
    # a convex hull would put a lid over the valley floor at z ~ 0.75
    np.testing.assert_allclose(rest[:, 2], RADIUS, atol=0.02)


def test_spheres_rest_on_true_surface(valley_scene):
    world, out, _ = valley_scene
    probes = [(x, y) for x, y, _, _ in world.spawn_points]
    probes += [(-2.0, 0.5), (3.0, -1.0), (-3.5, 3.0), (2.5, 2.5), (-2.5, -2.5), (1.8, -3.0)]
    rest = drop_spheres(out / "scene.xml", probes, seconds=1.0)
    expected = np.array([surface_height(x, y) for x, y in probes]) + RADIUS
    # on slopes a sphere touches uphill of its centre: rest height = z + r / cos(slope)
    slope_extra = RADIUS * (1 / np.cos(np.arctan(0.25)) - 1)
    err = rest[:, 2] - expected
    assert np.all(err > -0.02) and np.all(err < 0.02 + slope_extra), err
    # spheres on the box top (2.5, 2.5) prove the row/column order (y rows, x columns)
    assert rest[probes.index((2.5, 2.5)), 2] > 0.9


def test_holes_filled_and_noise_smoothed():
    rng = np.random.default_rng(0)
    heights = np.zeros((40, 40), dtype=np.float32) + rng.normal(0, 0.002, (40, 40)).astype(np.float32)
    heights[10:14, 10:14] = np.nan
    heights[30:, :] += 0.3  # a 0.3 m step must survive smoothing
    hm = HeightMap((0.0, 0.0), 0.05, heights, np.ones_like(heights, bool))
    filled, cell, origin = prepare_ground(hm, MjcfConfig())
    assert np.isfinite(filled).all() and cell == 0.05 and origin == (0.0, 0.0)
    assert np.std(filled[:25]) < 0.6 * np.std(np.nan_to_num(heights[:25]))
    assert filled[35, 20] - filled[20, 20] == pytest.approx(0.3, abs=0.01)


def test_max_cells_resamples():
    heights = np.zeros((100, 60), dtype=np.float32)
    hm = HeightMap((1.0, 2.0), 0.05, heights, np.ones_like(heights, bool))
    filled, cell, _ = prepare_ground(hm, MjcfConfig(max_cells=50))
    assert filled.shape == (50, 30) and cell == pytest.approx(0.1)


def test_all_nan_heightmap_is_clear_error(tmp_path):
    world = make_valley_world(with_splats=False)
    world.heightmap.heights[:] = np.nan
    with pytest.raises(InputError, match="no valid cell"):
        write_mjcf_scene(world, tmp_path)


def test_overhang_becomes_convex_parts(tmp_path):
    """A table top above the floor (not in the height map) becomes a convex part spheres can land on."""
    import trimesh

    world = make_valley_world(with_splats=False)
    table = trimesh.creation.box(extents=(0.8, 0.8, 0.05))
    table.apply_translation((0.0, 1.0, 0.8))
    merged = trimesh.util.concatenate([trimesh.Trimesh(world.collision.vertices, world.collision.faces), table])
    world.collision = TriangleMesh(merged.vertices, merged.faces)
    write_mjcf_scene(world, tmp_path)
    model = mujoco.MjModel.from_xml_path(str(tmp_path / "scene.xml"))
    assert int((model.geom_type == mujoco.mjtGeom.mjGEOM_MESH).sum()) >= 1
    rest = drop_spheres(tmp_path / "scene.xml", [(0.0, 1.0), (0.0, -1.0)], start_z=1.5, seconds=1.5)
    assert rest[0, 2] == pytest.approx(0.825 + RADIUS, abs=0.02)  # on the table
    assert rest[1, 2] == pytest.approx(RADIUS, abs=0.02)  # floor beside it


def test_height_field_samples_match_surface(valley_scene):
    """Read every tile back from the compiled model: sample (r, c) of a tile at (cx - rx + c dx, cy - ry + r dy)
    must hold the true surface height there (within the 1 cm resampling tolerance), and the plane covers the rest."""
    world, out, _ = valley_scene
    model = mujoco.MjModel.from_xml_path(str(out / "scene.xml"))
    tiles = np.nonzero(model.geom_type == mujoco.mjtGeom.mjGEOM_HFIELD)[0]
    covered = np.zeros(world.heightmap.heights.shape, bool)
    hm = world.heightmap
    for g in tiles:
        h = model.geom_dataid[g]
        nrow, ncol = model.hfield_nrow[h], model.hfield_ncol[h]
        rx, ry, elev, _ = model.hfield_size[h]
        cx, cy, z0 = model.geom_pos[g]
        data = model.hfield_data[model.hfield_adr[h]:model.hfield_adr[h] + nrow * ncol].reshape(nrow, ncol)
        xs = cx - rx + np.arange(ncol) * (2 * rx / (ncol - 1))
        ys = cy - ry + np.arange(nrow) * (2 * ry / (nrow - 1))
        gx, gy = np.meshgrid(xs, ys)
        z = z0 + data * elev
        truth = hm.height_at(np.stack([gx.ravel(), gy.ravel()], 1)).reshape(z.shape)  # the cell centres sampled
        np.testing.assert_allclose(z, truth, atol=0.011)
        rows, cols = hm.cell_of(np.stack([gx.ravel(), gy.ravel()], 1))
        covered[rows.reshape(z.shape).min():rows.max() + 1, cols.min():cols.max() + 1] = True
    # cells left to the plane (z = 0) are flat floor
    assert np.abs(hm.heights[~covered]).max() <= 0.01


def test_noisy_floor_stays_a_plane():
    """Converted floors are noisy by millimetres to centimetres: they must stay one plane (cheap contacts), with
    height fields only where a real feature is; a narrow 1-cell wall must survive however thin."""
    rng = np.random.default_rng(0)
    heights = (0.004 * rng.standard_normal((160, 160))).astype(np.float32)
    heights[rng.integers(0, 160, 30), rng.integers(0, 160, 30)] = 0.035  # isolated spikes: noise
    heights[100:120, 100:120] += 0.3  # a platform
    heights[20:60, 40] = 1.0  # a one-cell-thin wall
    hm = HeightMap((-4.0, -4.0), 0.05, heights, np.ones_like(heights, bool))
    cfg = MjcfConfig()
    plane_z, tiles = ground_tiles(*prepare_ground(hm, cfg), cfg)
    assert abs(plane_z) <= 0.01
    covered = sum(t.heights.size * t.factor**2 for t in tiles)
    assert covered < 0.2 * heights.size
    # both features are inside tiles
    for x, y in [(-4 + 0.05 * 110, -4 + 0.05 * 110), (-4 + 0.05 * 40, -4 + 0.05 * 40)]:
        assert any(abs(x - t.cx) <= t.rx and abs(y - t.cy) <= t.ry for t in tiles), (x, y)


def test_open_ceiling_sheet_becomes_tiles_spheres_land_on(tmp_path):
    """An open (single-sided, reconstructed) sheet overhead becomes thickened convex tiles, not one hull or a
    slow CoACD run; a sphere dropped from above rests on it, one dropped below it stays on the floor."""
    import trimesh

    world = make_valley_world(with_splats=False)
    grid = np.stack(np.meshgrid(np.linspace(-1.0, 1.0, 21), np.linspace(0.5, 1.5, 11)), -1).reshape(-1, 2)
    z = 1.2 + 0.15 * np.sin(2.0 * grid[:, 0])  # a gently curved sheet: one hull would fill the dip
    rows, cols = 11, 21
    idx = np.arange(rows * cols).reshape(rows, cols)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    sheet = trimesh.Trimesh(np.c_[grid, z], np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)]))
    merged = trimesh.util.concatenate([trimesh.Trimesh(world.collision.vertices, world.collision.faces), sheet])
    world.collision = TriangleMesh(merged.vertices, merged.faces)
    files = write_mjcf_scene(world, tmp_path)
    parts = [k for k in files if k.startswith("mjcf_part_")]
    assert len(parts) >= 4  # 2 x 1 m cut into 0.5 m tiles
    rest = drop_spheres(tmp_path / "scene.xml", [(0.05, 1.0)], start_z=2.5, seconds=1.5)
    expected = 1.2 + 0.15 * np.sin(0.1)
    assert rest[0, 2] == pytest.approx(expected + RADIUS, abs=0.04)
    with pytest.raises(ConfigError, match="overhang_method"):
        write_mjcf_scene(world, tmp_path / "bad", MjcfConfig(overhang_method="voxels"))
    with pytest.raises(ConfigError, match="overhang_method"):  # a TOML typo fails at load, before any work
        from_dict(MjcfConfig, {"overhang_method": "voxels"})
