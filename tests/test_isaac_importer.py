"""The UI-free half of the Isaac Sim extension (lyra_isaac.isaac.importer, .robots): runs without Kit."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest
from worlds import make_splats, make_valley_world

from lyra_isaac.errors import ConfigError, InputError
from lyra_isaac.isaac import importer
from lyra_isaac.isaac.importer import (
    ROBOTS_ROOT_PRIM,
    WORLDS_ROOT_PRIM,
    ConversionOptions,
    SourceKind,
    SpawnCycler,
    batch_inputs,
    classify_source,
    import_world,
    output_root,
    picked_path,
    picker_shows,
    plan_world_reference,
    resolve_output_dir,
    stage_correction,
    unique_child_path,
    usd_identifier,
    world_name,
    yaw_to_quat_wxyz,
)
from lyra_isaac.isaac.robots import ROBOTS, robot_spec
from lyra_isaac.progress import Progress
from lyra_isaac.splats.ply import write_ply
from lyra_isaac.world import WORLD_USD, load_world, write_manifest


@pytest.fixture(scope="module")
def splat_scene():
    return make_splats(n=64)


def _lyra_folder(root, scene, name="scene_042", cameras=True):
    folder = root / name
    folder.mkdir(parents=True)
    write_ply(folder / "reconstructed_scene.ply", scene, format="lyra2")
    if cameras:
        np.savez(folder / "cameras.npz", w2c_render=np.tile(np.eye(4), (2, 1, 1)))
    return folder


def _world_dir(root, name="valley", usd=True):
    world = make_valley_world(with_splats=False)
    directory = root / name
    directory.mkdir(parents=True)
    world.manifest.files = {"usd": WORLD_USD}
    write_manifest(world.manifest, directory)
    if usd:
        (directory / WORLD_USD).write_text("#usda 1.0\n")
    return directory


# ------------------------------------------------------------------------------------------------ classification
def test_classify_lyra_folder_finds_ply_and_cameras(tmp_path, splat_scene):
    folder = _lyra_folder(tmp_path, splat_scene)
    picked = classify_source(folder)
    assert picked.kind is SourceKind.LYRA_FOLDER
    assert picked.ply == folder / "reconstructed_scene.ply"
    assert picked.cameras == folder / "cameras.npz"
    assert world_name(picked) == "scene_042"


def test_classify_ply_file_and_its_name(tmp_path, splat_scene):
    folder = _lyra_folder(tmp_path, splat_scene, cameras=False)
    picked = classify_source(folder / "reconstructed_scene.ply")
    assert picked.kind is SourceKind.PLY and picked.cameras is None
    assert world_name(picked) == "scene_042"  # the generic Lyra file name is named after its folder
    loose = tmp_path / "My Kitchen (v2).ply"
    write_ply(loose, splat_scene, format="inria")
    assert world_name(classify_source(loose)) == "My_Kitchen_v2"


def test_classify_world_directory_and_world_json(tmp_path):
    directory = _world_dir(tmp_path)
    assert classify_source(directory).kind is SourceKind.WORLD
    assert classify_source(directory / "world.json").path == directory.resolve()


def test_classify_rejects_mesh_ply_with_clear_message(tmp_path):
    mesh = tmp_path / "mesh.ply"
    mesh.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
                     b"property float z\nend_header\n" + np.zeros(3, "<f4").tobytes())
    with pytest.raises(InputError, match="not a Gaussian-splat PLY"):
        classify_source(mesh)


@pytest.mark.parametrize("make", ["missing", "txt", "empty_dir", "two_plys"])
def test_classify_rejects_non_scenes(tmp_path, splat_scene, make):
    path = tmp_path / "x"
    if make == "txt":
        path = tmp_path / "notes.txt"
        path.write_text("hello")
    elif make == "empty_dir":
        path.mkdir()
    elif make == "two_plys":
        path.mkdir()
        write_ply(path / "a.ply", splat_scene)
        write_ply(path / "b.ply", splat_scene)
    with pytest.raises(InputError) as info:
        classify_source(path)
    assert str(path.name) in str(info.value)


# ------------------------------------------------------------------------------------------------------ outputs
def test_output_root_and_dir(tmp_path, splat_scene):
    assert output_root("", home=tmp_path) == tmp_path / "lyra_worlds"
    assert output_root("  ", home=tmp_path) == tmp_path / "lyra_worlds"
    assert output_root(str(tmp_path / "out")) == tmp_path / "out"
    picked = classify_source(_lyra_folder(tmp_path, splat_scene))
    assert resolve_output_dir(picked, tmp_path / "out") == tmp_path / "out" / "scene_042"
    with pytest.raises(InputError, match="already a converted world"):
        resolve_output_dir(classify_source(_world_dir(tmp_path)), tmp_path / "out")


def test_usd_identifiers_and_unique_paths():
    assert usd_identifier("scene-042.v2") == "scene_042_v2"
    assert usd_identifier("42_rooms") == "_42_rooms"
    assert usd_identifier("") == "_"
    taken = {f"{WORLDS_ROOT_PRIM}/a", f"{WORLDS_ROOT_PRIM}/a_1"}
    assert unique_child_path(WORLDS_ROOT_PRIM, "a", taken) == f"{WORLDS_ROOT_PRIM}/a_2"
    assert unique_child_path(WORLDS_ROOT_PRIM, "b", taken) == f"{WORLDS_ROOT_PRIM}/b"


def test_plan_world_reference(tmp_path):
    world = load_world(_world_dir(tmp_path))
    plan = plan_world_reference(world, {f"{WORLDS_ROOT_PRIM}/valley"})
    assert plan.prim_path == f"{WORLDS_ROOT_PRIM}/valley_1"
    assert plan.asset_path == (tmp_path / "valley" / WORLD_USD).resolve().as_posix()
    assert plan.as_payload
    with pytest.raises(InputError, match="no USD stage"):
        plan_world_reference(load_world(_world_dir(tmp_path, "bare", usd=False)))


def test_picker_helpers():
    assert picked_path("scene.ply", "/data/lyra/") == "/data/lyra/scene.ply"
    assert picked_path("", "/data/lyra/") == "/data/lyra"
    assert picked_path("scene.ply", "") == "scene.ply"
    assert picker_shows("/a/b/X.PLY", False) and picker_shows("/a/world.json", False)
    assert picker_shows("/a/folder", True)
    assert not picker_shows("/a/b/notes.txt", False)


def test_stage_correction():
    assert stage_correction("Z", 1.0) == (0.0, 1.0)
    rotate_x, scale = stage_correction("Y", 0.01)
    assert rotate_x == -90.0 and scale == pytest.approx(100.0)
    # Rx(-90 deg) maps the world's +Z (up) onto the stage's +Y (up).
    a = math.radians(rotate_x)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    np.testing.assert_allclose(rx @ [0, 0, 1], [0, 1, 0], atol=1e-12)
    with pytest.raises(InputError):
        stage_correction("X", 1.0)
    with pytest.raises(InputError):
        stage_correction("Z", 0.0)


# ---------------------------------------------------------------------------------------------- spawn and robots
def test_spawn_cycler_cycles_per_world(tmp_path):
    world_a = load_world(_world_dir(tmp_path, "a"))
    world_b = load_world(_world_dir(tmp_path, "b"))
    spawns = world_a.spawn_points
    cycler = SpawnCycler()
    indices = [cycler.next_spawn(world_a)[0] for _ in range(len(spawns) + 1)]
    assert indices == [*range(len(spawns)), 0]
    assert cycler.next_spawn(world_b)[0] == 0  # independent counter


def test_spawn_cycler_places_standing_robot(tmp_path):
    world = load_world(_world_dir(tmp_path))
    h1 = robot_spec("H1")
    cycler = SpawnCycler()
    cycler.next_spawn(world)
    placement = cycler.place(world, h1, taken={f"{ROBOTS_ROOT_PRIM}/H1"}, world_offset=(10.0, 0.0, 1.0))
    x, y, z, yaw = world.spawn_points[1]
    assert placement.spawn_index == 1
    assert placement.prim_path == f"{ROBOTS_ROOT_PRIM}/H1_1"
    np.testing.assert_allclose(placement.position, (x + 10.0, y, z + 1.0 + h1.stand_height))
    w, qx, qy, qz = placement.orientation
    assert (qx, qy) == (0.0, 0.0)
    assert math.isclose(2 * math.atan2(qz, w), yaw, abs_tol=1e-9)


def test_spawn_cycler_without_spawn_points(tmp_path):
    directory = _world_dir(tmp_path)
    world = load_world(directory)
    world.manifest.spawn_points = []
    with pytest.raises(InputError, match="no spawn points"):
        SpawnCycler().next_spawn(world)


def test_yaw_quaternion_is_unit():
    for yaw in np.linspace(-math.pi, math.pi, 7):
        assert math.isclose(np.linalg.norm(yaw_to_quat_wxyz(yaw)), 1.0)


def test_robot_specs():
    assert set(ROBOTS) == {"h1", "g1"}
    assert robot_spec("g1").usd_url("https://host/Assets/Isaac/6.2/") == (
        "https://host/Assets/Isaac/6.2/Isaac/Robots/Unitree/G1/g1.usd")
    with pytest.raises(ConfigError, match="choose from g1, h1"):
        robot_spec("atlas")
    with pytest.raises(ConfigError, match="assets root"):
        robot_spec("h1").usd_url("")


# --------------------------------------------------------------------------------------------------- options
def test_conversion_options_validation(tmp_path):
    ConversionOptions(preset="quality", scale=0.5, output_root=tmp_path).validate()
    for bad, field in [({"preset": "best"}, "preset"), ({"scale": -1.0}, "scale"),
                       ({"camera_height": float("nan")}, "camera_height"),
                       ({"scale": 1.0, "camera_height": 1.5}, "either")]:
        with pytest.raises(ConfigError, match=field):
            ConversionOptions(output_root=tmp_path, **bad).validate()
    assert ConversionOptions.parse_optional_float(" 1.6 ", "camera height") == 1.6
    assert ConversionOptions.parse_optional_float("", "scale") is None
    with pytest.raises(ConfigError, match="camera height must be a number"):
        ConversionOptions.parse_optional_float("tall", "camera height")


# ---------------------------------------------------------------------------------------------------- import
def _patch_convert(monkeypatch, fn):
    """Stand in for lyra_isaac.convert (the pipeline module may not import in every checkout) with ``convert=fn``."""
    module = types.ModuleType("lyra_isaac.convert")
    module.convert = fn
    monkeypatch.setitem(sys.modules, "lyra_isaac.convert", module)


def test_import_world_dir_skips_conversion(tmp_path, monkeypatch):
    _patch_convert(monkeypatch, lambda *a, **k: pytest.fail("must not convert a world"))
    world = import_world(_world_dir(tmp_path), ConversionOptions(output_root=tmp_path / "out"))
    assert world.path.name == "valley" and len(world.spawn_points) == 4


def test_import_splat_folder_calls_library_convert(tmp_path, monkeypatch, splat_scene):
    """The extension converts through the same lyra_isaac.convert.convert as the CLI, with the window's options."""
    folder = _lyra_folder(tmp_path, splat_scene)
    calls = []
    out_world = _world_dir(tmp_path, "converted")

    def fake_convert(source, out, **kwargs):
        calls.append((source, out, kwargs))
        return load_world(out_world)

    _patch_convert(monkeypatch, fake_convert)
    progress = Progress()
    options = ConversionOptions(preset="quality", camera_height=1.6, output_root=tmp_path / "out", overwrite=True)
    world = import_world(folder, options, progress)
    assert world.path == out_world
    (source, out, kwargs), = calls
    assert source == folder / "reconstructed_scene.ply" and out == tmp_path / "out" / "scene_042"
    assert kwargs == {"cameras": folder / "cameras.npz", "preset": "quality", "scale": None,
                      "camera_height": 1.6, "overwrite": True, "progress": progress}


def test_import_validates_options_before_converting(tmp_path, monkeypatch, splat_scene):
    _patch_convert(monkeypatch, lambda *a, **k: pytest.fail("must not convert"))
    with pytest.raises(ConfigError, match="preset"):
        import_world(_lyra_folder(tmp_path, splat_scene), ConversionOptions(preset="x", output_root=tmp_path))


def test_batch_inputs(tmp_path, splat_scene):
    _lyra_folder(tmp_path, splat_scene, "b_scene")
    _lyra_folder(tmp_path, splat_scene, "a_scene")
    write_ply(tmp_path / "loose.ply", splat_scene)
    _world_dir(tmp_path, "already_world")
    (tmp_path / "readme.txt").write_text("x")
    assert batch_inputs(tmp_path) == [str(tmp_path / "a_scene"), str(tmp_path / "b_scene"), str(tmp_path / "loose.ply")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no Lyra output folders"):
        batch_inputs(tmp_path / "empty")


def test_importer_module_imports_no_kit():
    import ast
    from pathlib import Path

    for module in (importer.__file__, Path(importer.__file__).with_name("robots.py")):
        tree = ast.parse(Path(module).read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
                  and n.level == 0}
        assert not names & {"omni", "carb", "isaacsim", "pxr"}, module
