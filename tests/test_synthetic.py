"""Synthetic truth fixtures: scenes, camera paths, rendering, and the Lyra-exact PLY + cameras.npz."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from lyra_isaac.errors import InputError, OutputError
from lyra_isaac.splats.scene import SH_C0
from lyra_isaac.synthetic import SCENES, CameraConfig, FaultConfig, build_scene, camera_path, load_fixture, make_fixture
from lyra_isaac.synthetic.lyra_fixture import depth_discontinuities
from lyra_isaac.synthetic.render import Raycaster, intrinsics_for, raycaster_for

LYRA2_HEADER_PROPS = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
                      "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
W, H, VIEWS = 96, 64, 8


def _read_lyra_rows(path):
    """Independent minimal reader: header lines and the (N, 17) float32 body."""
    raw = path.read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    header = raw[:end].decode("ascii").splitlines()
    body = np.frombuffer(raw[end:], dtype="<f4")
    return header, body


@pytest.fixture(scope="module")
def apartment(tmp_path_factory):
    return make_fixture("apartment", tmp_path_factory.mktemp("fx") / "apartment", n_views=VIEWS, width=W, height=H,
                        seed=3)


@pytest.mark.parametrize("name", sorted(SCENES))
def test_scene_floor_at_zero_and_route_in_free_space(name):
    scene = build_scene(name, seed=1)
    rc = raycaster_for(scene)
    route = scene.route
    # the floor under the route start is at z = 0 (the main floor)
    z, normal = rc.heights_below(route[:1], 1.0)
    assert abs(z[0]) < 1e-6 and normal[0, 2] > 0.99
    # cameras along the route keep away from every surface, and consecutive cameras see each other
    c2w, _, floor = camera_path(scene, 40, 64, 48, raycaster=rc)
    centers = c2w[:, :3, 3]
    assert rc.distance(centers).min() > 0.3
    step = np.diff(centers, axis=0)
    length = np.linalg.norm(step, axis=1)
    free = rc.free_distance(centers[:-1], step / length[:, None])
    assert np.all(free > length)
    np.testing.assert_allclose(centers[:, 2] - floor, 1.5, atol=0.031)


def test_scene_unknown_name_and_bad_size():
    with pytest.raises(ValueError, match="unknown synthetic scene 'castle'.*apartment"):
        build_scene("castle")
    with pytest.raises(ValueError, match="size"):
        build_scene("apartment", size=0.2)


def test_apartment_path_climbs_the_stairs():
    scene = build_scene("apartment")
    _, _, floor = camera_path(scene, 64, 32, 24)
    assert floor[0] == pytest.approx(0.0, abs=1e-6)
    assert floor[-1] == pytest.approx(scene.params["landing_z"], abs=1e-6)
    assert np.all(np.diff(floor) >= -1e-6)  # walks up, never down


def test_render_depth_is_z_depth_of_a_known_plane():
    # a 20 m x 20 m floor at z = 0; camera at 1.5 m looking down 30 degrees
    v = np.array([[-10, -10, 0], [10, -10, 0], [10, 10, 0], [-10, 10, 0]], dtype=float)
    rc = Raycaster(v, np.array([[0, 1, 2], [0, 2, 3]]))
    from lyra_isaac.synthetic.path import look_rotation

    c2w = np.eye(4)
    c2w[:3, :3] = look_rotation(0.0, np.radians(-30), 0.0)[0]
    c2w[:3, 3] = [0, 0, 1.5]
    k = intrinsics_for(64, 48, 70.0)
    r = rc.render(c2w, k, 64, 48)
    # back-project with z-depth and check the points lie on z = 0
    from lyra_isaac.synthetic.render import pixel_rays

    ok = np.isfinite(r.depth)
    assert 0.6 < ok.mean() < 0.95  # upper rows see sky above the horizon
    cam = pixel_rays(k, 64, 48)[ok] * r.depth[ok][:, None]
    world = cam @ c2w[:3, :3].T + c2w[:3, 3]
    np.testing.assert_allclose(world[:, 2], 0.0, atol=1e-4)
    # centre pixel ray at -30 degrees hits the floor at distance 3 m: z-depth 3 m
    assert r.depth[24, 32] == pytest.approx(3.0, rel=0.02)
    assert np.isinf(r.depth[0]).all()  # sky row


def test_depth_discontinuities_ignore_planes_find_steps():
    rows = np.arange(50, dtype=float)[:, None] * np.ones((1, 40))
    plane = 1.0 / (0.01 + 0.002 * rows)  # a grazing floor: inverse depth affine in v
    assert not depth_discontinuities(plane, 0.08).any()
    step = plane.copy()
    step[:, 20:] *= 0.5  # an occluding object in the right half
    edges = depth_discontinuities(step, 0.08)
    assert edges[:, 19:21].all() and edges.sum() == edges[:, 19:21].sum()


def test_fixture_files_are_lyra_exact(apartment):
    header, body = _read_lyra_rows(apartment.ply_path)
    assert header[:3] == ["ply", "format binary_little_endian 1.0", f"element vertex {VIEWS * W * H}"]
    assert header[3:-1] == [f"property float {p}" for p in LYRA2_HEADER_PROPS]
    assert header[-1] == "end_header"
    assert body.size * 4 == apartment.n_gaussians * 68
    rows = body.reshape(-1, 17)
    assert np.all(rows[:, 3:6] == 0)  # zero normals
    q = rows[:, 13:17]
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    assert np.isposinf(rows[:, 9]).sum() > 0  # some saturated opacities, as Lyra writes
    assert np.isfinite(rows[:, [0, 1, 2, 10, 11, 12]]).all()
    colors = 0.5 + SH_C0 * rows[:, 6:9]
    assert colors.min() >= -1e-6 and colors.max() <= 1 + 1e-6


def test_ply_frame_is_first_camera_and_points_map_to_truth(apartment):
    _, body = _read_lyra_rows(apartment.ply_path)
    rows = body.reshape(-1, 17).astype(np.float64)
    m = apartment.source_to_world
    with np.load(apartment.cameras_path) as cams:
        w2c = cams["w2c_render"].astype(np.float64)
        assert cams["intrinsics_render"].shape == (VIEWS, 3, 3)
        assert int(cams["image_width"]) == W and int(cams["image_height"]) == H
    np.testing.assert_allclose(w2c[0], np.eye(4), atol=1e-6)
    # the saved frame is not gravity aligned: truth up seen from the PLY frame is tilted by the first camera
    up_src = np.linalg.inv(m[:3, :3]) @ [0, 0, 1]
    tilt = np.degrees(np.arccos(-up_src[1] / np.linalg.norm(up_src)))
    assert 3.0 < tilt <= 10.0
    # scale: |linear part| = 1 / scale
    assert np.cbrt(np.linalg.det(m[:3, :3])) == pytest.approx(1 / apartment.scale)
    assert 0.7 <= apartment.scale <= 1.4
    # first view's pixel (row 0, col 0) is row 0 of the file; its centre projects back to that pixel
    k = apartment.intrinsics
    first = rows[:W * H, :3]
    uv = first @ k.T
    uv = uv[:, :2] / uv[:, 2:3]
    v_idx, u_idx = np.divmod(np.arange(W * H), W)
    np.testing.assert_allclose(uv[:, 0], u_idx + 0.5, atol=1e-2)
    np.testing.assert_allclose(uv[:, 1], v_idx + 0.5, atol=1e-2)
    # most Gaussians land near the true surface once mapped through the true source_to_world
    world = rows[:, :3] @ m[:3, :3].T + m[:3, 3]
    dist = apartment.raycaster().distance(world)
    assert np.median(dist) < 0.05
    # camera centres from w2c_render map to the truth cameras
    centers_src = np.linalg.inv(w2c)[:, :3, 3]
    np.testing.assert_allclose(centers_src @ m[:3, :3].T + m[:3, 3], apartment.c2w_world[:, :3, 3], atol=1e-4)


def test_no_fault_fixture_is_exact(tmp_path):
    fx = make_fixture("corridor", tmp_path / "c", n_views=4, width=W, height=H, seed=0,
                      faults=FaultConfig.none(scale=1.25))
    _, body = _read_lyra_rows(fx.ply_path)
    rows = body.reshape(-1, 17).astype(np.float64)
    world = rows[:, :3] @ fx.source_to_world[:3, :3].T + fx.source_to_world[:3, 3]
    assert fx.stats["sky"] == 0 and fx.stats["flying"] == 0 and fx.stats["floaters"] == 0
    assert fx.raycaster().distance(world).max() < 2e-4
    assert fx.scale == 1.25


def test_fixture_is_deterministic_and_seed_matters(tmp_path):
    kwargs = dict(n_views=3, width=48, height=32)
    a = make_fixture("courtyard", tmp_path / "a", seed=5, **kwargs)
    b = make_fixture("courtyard", tmp_path / "b", seed=5, **kwargs)
    c = make_fixture("courtyard", tmp_path / "c", seed=6, **kwargs)

    def digest(p):
        return hashlib.sha256(p.read_bytes()).hexdigest()

    assert digest(a.ply_path) == digest(b.ply_path)
    assert digest(a.ply_path) != digest(c.ply_path)
    np.testing.assert_array_equal(a.probes, b.probes)
    assert a.scale == b.scale != c.scale


def test_faults_are_present_and_bounded(apartment):
    assert np.all(np.abs(apartment.view_scale - 1) < 0.1) and apartment.view_scale.std() > 0.005
    assert apartment.stats["flying"] > 0 and apartment.stats["floaters"] > 0
    assert apartment.stats["sky"] == 0  # indoor: a ceiling everywhere
    # the warp stays within its amplitude over the image
    from lyra_isaac.synthetic.lyra_fixture import _warp_field

    for coeffs in apartment.warp:
        assert np.abs(_warp_field(coeffs, W, H)).max() <= apartment.faults.warp_amplitude + 1e-9


def test_outdoor_fixture_has_far_sky(tmp_path):
    fx = make_fixture("terrain", tmp_path / "t", n_views=4, width=W, height=H, seed=2,
                      camera=CameraConfig(pitch_mean_deg=0.0, pitch_sweep_deg=0.0))
    _, body = _read_lyra_rows(fx.ply_path)
    rows = body.reshape(-1, 17).astype(np.float64)
    world = rows[:, :3] @ fx.source_to_world[:3, :3].T + fx.source_to_world[:3, 3]
    dist = np.linalg.norm(world - fx.c2w_world[0, :3, 3], axis=1)
    assert fx.stats["sky"] > 0.2 * fx.n_gaussians
    assert (dist > 40).sum() >= fx.stats["sky"]


def test_probes_are_on_walkable_floor(apartment):
    p = apartment.probes
    assert len(p) >= 100
    rc = apartment.raycaster()
    z, normal = rc.heights_below(p[:, :2], p[:, 2] + 0.05)
    np.testing.assert_allclose(z, p[:, 2], atol=1e-4)
    assert np.all(normal[:, 2] > 0.97)
    # main floor and some on the stairs or landing
    assert np.any(np.abs(p[:, 2]) < 1e-6)
    # clear of walls and risers: nothing within ~a foot's half-width around them, at two heights (the truth floor
    # runs on under the walls, so the support points alone let probes lie at a wall's foot)
    for angle in np.arange(16) * (np.pi / 8):
        direction = np.tile([np.cos(angle), np.sin(angle), 0.0], (len(p), 1))
        for height in (0.03, 0.1):
            assert (rc.free_distance(p + [0.0, 0.0, height], direction) > 0.13).all(), (angle, height)


def test_load_fixture_round_trip_and_errors(apartment, tmp_path):
    again = load_fixture(apartment.directory)
    np.testing.assert_array_equal(again.source_to_world, apartment.source_to_world)
    assert again.faults == apartment.faults and again.camera == apartment.camera
    with pytest.raises(InputError, match="truth.npz is missing"):
        load_fixture(tmp_path)
    with pytest.raises(OutputError, match="exists"):
        make_fixture("corridor", apartment.directory, n_views=2, width=W, height=H)


def test_cameras_load_with_project_reader(apartment):
    from lyra_isaac.splats.cameras import load_cameras

    cams = load_cameras(apartment.cameras_path)
    assert len(cams) == VIEWS and (cams.width, cams.height) == (W, H)
    np.testing.assert_allclose(cams.w2c, apartment.w2c_source(), atol=1e-5)


def test_ply_loads_with_project_reader(apartment):
    from lyra_isaac.splats.ply import read_ply

    scene = read_ply(apartment.ply_path)
    assert scene.source_format == "lyra2" and len(scene) == apartment.n_gaussians


@pytest.mark.slow
def test_lyra_size_fixture_streams(tmp_path):
    """128 views of 392 x 224: ~11.2M Gaussians, ~764 MB, written view by view (memory stays per-view)."""
    import resource

    fx = make_fixture("apartment", tmp_path / "lyra", n_views=128, width=392, height=224, seed=0)
    assert fx.n_gaussians == 128 * 392 * 224
    size = fx.ply_path.stat().st_size
    with fx.ply_path.open("rb") as handle:
        head = handle.read(4096)
    header_len = head.index(b"end_header\n") + len(b"end_header\n")
    assert size == header_len + fx.n_gaussians * 68
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert peak_mb < 4000  # the 764 MB file is never held in memory at once (with pytest's own footprint)


@pytest.mark.parametrize("fmt, row_bytes", [("lyra1", 56), ("lyra2", 68)])
def test_other_ply_layouts(tmp_path, fmt, row_bytes):
    from lyra_isaac.splats.ply import read_ply

    fx = make_fixture("corridor", tmp_path / fmt, n_views=2, width=32, height=24, seed=0, ply_format=fmt)
    header, body = _read_lyra_rows(fx.ply_path)
    assert body.size * 4 == fx.n_gaussians * row_bytes
    assert load_fixture(fx.directory).ply_format == fmt
    assert read_ply(fx.ply_path).source_format == fmt


def test_bad_arguments_raise_config_errors(tmp_path):
    from lyra_isaac.errors import ConfigError

    with pytest.raises(ConfigError, match="ply_format"):
        make_fixture("corridor", tmp_path / "a", ply_format="obj")
    with pytest.raises(ConfigError, match="n_views"):
        make_fixture("corridor", tmp_path / "b", n_views=0)
    with pytest.raises(ConfigError, match="unknown synthetic scene"):
        make_fixture("castle", tmp_path / "c")
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_scene_exports_and_truth_mesh_file(apartment):
    from lyra_isaac.world import read_mesh_ply

    scene = build_scene("corridor")
    tm = scene.to_trimesh()
    assert len(tm.faces) == scene.n_triangles and tm.visual.kind == "vertex"
    # floor 14.15 x 2.15 m, ceiling the same, plus walls and crates: the area is at least twice the footprint
    assert tm.area > 2 * scene.params["length"] * scene.params["width"]
    on_disk = read_mesh_ply(apartment.truth_mesh_path)
    np.testing.assert_allclose(on_disk.vertices, apartment.mesh.vertices, atol=1e-6)
    np.testing.assert_array_equal(on_disk.faces, apartment.mesh.faces)
    np.testing.assert_array_equal(on_disk.colors, apartment.mesh.colors)


def test_module_command(tmp_path, capsys):
    import json

    from lyra_isaac.synthetic.__main__ import main

    assert main(["corridor", str(tmp_path / "c"), "--views", "2", "--width", "32", "--height", "24",
                 "--no-faults", "--scale", "1.5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["gaussians"] == 2 * 32 * 24 and out["scale"] == 1.5 and out["flying"] == 0
    assert main(["corridor", str(tmp_path / "c"), "--views", "2"]) == 1  # exists, no --overwrite
    assert "exists" in capsys.readouterr().err
