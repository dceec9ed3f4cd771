"""USD writer: the DESIGN.md section 2 prim contract on the analytic valley world, splat round trips, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from pxr import Sdf, Usd, UsdGeom, UsdLux, UsdPhysics, UsdShade, UsdVol
from worlds import SPAWN_POINTS, make_splats, make_valley_world, surface_height

from lyra_isaac.errors import InputError, OutputError
from lyra_isaac.splats.scene import GaussianScene, quat_to_rotation_matrix
from lyra_isaac.usd import stage as stage_module
from lyra_isaac.usd.splats import read_splats, write_splats_layer
from lyra_isaac.usd.stage import (
    GROUND_PRIM,
    PHYSICS_SCENE_PRIM,
    SPAWN_ROOT_PRIM,
    VISUAL_PRIM,
    UsdConfig,
    write_usd_stage,
)
from lyra_isaac.world import TriangleMesh


@pytest.fixture(scope="module")
def valley():
    return make_valley_world()


@pytest.fixture(scope="module")
def written(valley, tmp_path_factory):
    directory = tmp_path_factory.mktemp("world")
    cfg = UsdConfig(static_friction=0.9, dynamic_friction=0.7, restitution=0.1)
    files = write_usd_stage(valley, directory, cfg)
    return directory, files, cfg


def _open(directory: Path) -> Usd.Stage:
    stage = Usd.Stage.Open(str(directory / "world.usda"))
    assert stage is not None
    return stage


def test_files_and_stage_metadata(written):
    directory, files, _ = written
    assert files == {"usd": "world.usda", "splats_usd": "splats.usdc", "geometry_usd": "geometry.usdc"}
    for name in files.values():
        assert (directory / name).is_file()
    assert not list(directory.glob(".*tmp*")), "temporary files left behind"
    stage = _open(directory)
    assert stage.GetDefaultPrim().GetPath() == Sdf.Path("/World")
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.z
    assert UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    assert UsdPhysics.GetStageKilogramsPerUnit(stage) == 1.0
    # the root layer stays small and readable: heavy arrays live in crate layers
    assert (directory / "world.usda").stat().st_size < 20_000


def test_physics_scene_and_ground(written, valley):
    directory, _, cfg = written
    stage = _open(directory)
    scene = UsdPhysics.Scene(stage.GetPrimAtPath(PHYSICS_SCENE_PRIM))
    assert scene and tuple(scene.GetGravityDirectionAttr().Get()) == (0, 0, -1)
    assert scene.GetGravityMagnitudeAttr().Get() == pytest.approx(9.81)

    ground = stage.GetPrimAtPath(GROUND_PRIM)
    assert ground.IsA(UsdGeom.Mesh)
    assert ground.HasAPI(UsdPhysics.CollisionAPI) and ground.HasAPI(UsdPhysics.MeshCollisionAPI)
    assert UsdPhysics.MeshCollisionAPI(ground).GetApproximationAttr().Get() == "none"
    mesh = UsdGeom.Mesh(ground)
    np.testing.assert_array_equal(np.asarray(mesh.GetPointsAttr().Get()), valley.collision.vertices)
    np.testing.assert_array_equal(np.asarray(mesh.GetFaceVertexIndicesAttr().Get()).reshape(-1, 3),
                                  valley.collision.faces)
    assert set(np.asarray(mesh.GetFaceVertexCountsAttr().Get())) == {3}
    np.testing.assert_allclose(np.asarray(mesh.GetExtentAttr().Get()), valley.collision.bounds(), atol=1e-6)
    assert mesh.GetSubdivisionSchemeAttr().Get() == "none"
    assert UsdGeom.Imageable(ground).ComputePurpose() == UsdGeom.Tokens.guide  # splats render, ground does not
    # normals point up on the floor
    normals = np.asarray(mesh.GetNormalsAttr().Get())
    floor = np.abs(valley.collision.vertices[:, 0]) < 0.9
    assert (normals[floor, 2] > 0.99).all()

    material, _ = UsdShade.MaterialBindingAPI(ground).ComputeBoundMaterial("physics")
    api = UsdPhysics.MaterialAPI(material.GetPrim())
    assert api.GetStaticFrictionAttr().Get() == pytest.approx(cfg.static_friction)
    assert api.GetDynamicFrictionAttr().Get() == pytest.approx(cfg.dynamic_friction)
    assert api.GetRestitutionAttr().Get() == pytest.approx(cfg.restitution)
    colliders = [p for p in stage.Traverse() if p.HasAPI(UsdPhysics.CollisionAPI)]
    assert [p.GetPath() for p in colliders] == [Sdf.Path(GROUND_PRIM)]


def test_visual_spawns_lights_and_custom_data(written, valley):
    directory, _, _ = written
    stage = _open(directory)
    visual = stage.GetPrimAtPath(VISUAL_PRIM)
    primvar = UsdGeom.PrimvarsAPI(visual).GetPrimvar("displayColor")
    assert primvar.GetInterpolation() == "vertex"
    np.testing.assert_allclose(np.asarray(primvar.Get()), valley.visual.colors / 255.0, atol=1e-6)
    assert UsdGeom.Imageable(visual).ComputePurpose() == UsdGeom.Tokens.proxy

    spawns = stage.GetPrimAtPath(SPAWN_ROOT_PRIM).GetChildren()
    assert [p.GetName() for p in spawns] == [f"spawn_{i:03d}" for i in range(len(SPAWN_POINTS))]
    for prim, (x, y, _z, yaw) in zip(spawns, valley.spawn_points, strict=True):
        matrix = np.asarray(UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(Usd.TimeCode.Default())).T
        np.testing.assert_allclose(matrix[:3, 3], (x, y, surface_height(x, y)), atol=1e-6)
        np.testing.assert_allclose(matrix[:3, 0], (np.cos(yaw), np.sin(yaw), 0.0), atol=1e-6)  # body x = heading

    lights = list(Usd.PrimRange(stage.GetPrimAtPath("/World/Lights")))
    assert any(p.IsA(UsdLux.DomeLight) for p in lights) and any(p.IsA(UsdLux.DistantLight) for p in lights)

    data = stage.GetRootLayer().customLayerData["lyra_isaac"]
    assert data["source_sha256"] == valley.manifest.source["sha256"]
    assert data["spawn_count"] == len(valley.spawn_points)
    assert data["walkable_area_m2"] == pytest.approx(valley.manifest.walkable_area_m2)
    np.testing.assert_allclose(np.asarray(data["source_to_world"]).reshape(4, 4), valley.manifest.source_to_world)


def test_world_directory_is_relocatable(written, tmp_path):
    directory, _, _ = written
    moved = tmp_path / "elsewhere" / "my_world"
    shutil.copytree(directory, moved)
    stage = _open(moved)
    layers = {Path(layer.realPath).parent.resolve() for layer in stage.GetUsedLayers() if layer.realPath}
    assert all(str(p).startswith(str(moved.resolve())) for p in layers), layers
    assert stage.GetPrimAtPath("/World/Looks/GroundPhysics").IsValid()
    assert len(read_splats(moved / "world.usda")) == 20000


def test_splats_round_trip_through_world_stage(written, valley):
    directory, _, _ = written
    stage = _open(directory)
    prim = stage.GetPrimAtPath("/World/Splats")
    assert prim.IsA(UsdVol.ParticleField3DGaussianSplat)
    assert prim.HasAuthoredPayloads()
    types = {name: str(prim.GetAttribute(name).GetTypeName()) for name in
             ("positions", "orientations", "scales", "opacities", "radiance:sphericalHarmonicsCoefficients")}
    assert types == {"positions": "point3f[]", "orientations": "quatf[]", "scales": "float3[]",
                     "opacities": "float[]", "radiance:sphericalHarmonicsCoefficients": "float3[]"}
    source = valley.splats
    opacities = np.asarray(prim.GetAttribute("opacities").Get())
    np.testing.assert_allclose(opacities, 1 / (1 + np.exp(-source.opacity_logits)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(prim.GetAttribute("scales").Get()), np.exp(source.log_scales), rtol=1e-6)
    back = read_splats(stage)
    _assert_same_gaussians(back, source)


def _assert_same_gaussians(got: GaussianScene, want: GaussianScene, atol: float = 1e-5) -> None:
    assert len(got) == len(want)
    np.testing.assert_allclose(got.means, want.means, atol=atol)
    q_want = want.quats / np.linalg.norm(want.quats, axis=1, keepdims=True)
    np.testing.assert_allclose(np.abs((got.quats * q_want).sum(axis=1)), 1.0, atol=1e-5)  # q and -q are one rotation
    np.testing.assert_allclose(got.log_scales, want.log_scales, atol=1e-5)
    np.testing.assert_allclose(got.opacity_logits, want.opacity_logits, atol=1e-3, rtol=1e-4)
    np.testing.assert_allclose(got.sh_dc, want.sh_dc, atol=1e-6)
    if want.sh_rest is None:
        assert got.sh_rest is None
    else:
        np.testing.assert_allclose(got.sh_rest, want.sh_rest, atol=1e-6)


def test_sh3_and_saturated_opacity_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    scene = make_splats(500, seed=3)
    scene.sh_rest = rng.normal(size=(500, 15, 3)).astype(np.float32)
    scene.opacity_logits[:2] = [np.inf, -np.inf]
    path = write_splats_layer(scene, tmp_path / "s.usdc")
    stage = Usd.Stage.Open(str(path))
    field = UsdVol.ParticleField3DGaussianSplat(stage.GetDefaultPrim())
    assert field.GetRadianceSphericalHarmonicsDegreeAttr().Get() == 3
    coeffs = np.asarray(field.GetRadianceSphericalHarmonicsCoefficientsAttr().Get()).reshape(500, 16, 3)
    np.testing.assert_array_equal(coeffs[:, 0], scene.sh_dc)
    np.testing.assert_array_equal(coeffs[:, 1:], scene.sh_rest)
    np.testing.assert_array_equal(np.asarray(field.GetOpacitiesAttr().Get())[:2], [1.0, 0.0])
    back = read_splats(path)
    assert back.opacity_logits[0] == np.inf and back.opacity_logits[1] == -np.inf
    scene.opacity_logits[:2] = back.opacity_logits[:2]
    _assert_same_gaussians(back, scene)


def test_read_splats_applies_the_prim_transform(tmp_path):
    """A splat layer referenced under a rotated, scaled, translated Xform reads back in world coordinates."""
    scene = make_splats(300, seed=5)
    write_splats_layer(scene, tmp_path / "s.usdc")
    stage = Usd.Stage.CreateNew(str(tmp_path / "root.usda"))
    parent = UsdGeom.Xform.Define(stage, "/Parent")
    parent.AddTranslateOp().Set((1.0, -2.0, 0.5))
    parent.AddRotateZOp().Set(30.0)
    parent.AddScaleOp().Set((2.0, 2.0, 2.0))
    prim = stage.DefinePrim("/Parent/Splats")
    prim.GetReferences().AddReference("./s.usdc")
    stage.GetRootLayer().Save()
    back = read_splats(tmp_path / "root.usda", "/Parent/Splats")
    angle = np.radians(30.0)
    matrix = np.eye(4)
    matrix[:3, :3] = 2.0 * np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                                     [0, 0, 1]])
    matrix[:3, 3] = (1.0, -2.0, 0.5)
    want = scene.transformed(matrix)
    _assert_same_gaussians(back, want, atol=1e-4)
    # rotation of the first splat composes as R_world = R_parent @ R_splat
    np.testing.assert_allclose(quat_to_rotation_matrix(back.quats[:1])[0],
                               matrix[:3, :3] / 2.0 @ quat_to_rotation_matrix(scene.quats[:1])[0], atol=1e-5)


def test_world_without_splats_or_visual(tmp_path):
    world = make_valley_world(with_splats=False)
    files = write_usd_stage(world, tmp_path)
    assert "splats_usd" not in files and not (tmp_path / "splats.usdc").exists()
    stage = _open(tmp_path)
    assert not stage.GetPrimAtPath("/World/Splats").IsValid()
    assert UsdGeom.Imageable(stage.GetPrimAtPath(VISUAL_PRIM)).ComputePurpose() == UsdGeom.Tokens.default_
    assert UsdGeom.Imageable(stage.GetPrimAtPath(GROUND_PRIM)).ComputePurpose() == UsdGeom.Tokens.guide

    other = tmp_path / "bare"
    other.mkdir()
    write_usd_stage(world, other, UsdConfig(write_visual=False))
    stage = _open(other)
    assert not stage.GetPrimAtPath(VISUAL_PRIM).IsValid()
    # nothing else renders, so the ground does
    assert UsdGeom.Imageable(stage.GetPrimAtPath(GROUND_PRIM)).ComputePurpose() == UsdGeom.Tokens.default_


@pytest.mark.parametrize("fault", ["nan", "no_faces"])
def test_bad_collision_mesh_writes_nothing(tmp_path, fault):
    world = make_valley_world(with_splats=False)
    vertices = world.collision.vertices.copy()
    faces = world.collision.faces
    if fault == "nan":
        vertices[5] = np.nan
    else:
        faces = np.zeros((0, 3), dtype=np.int32)
    world.collision = TriangleMesh(vertices, faces)
    with pytest.raises(InputError, match="non-finite" if fault == "nan" else "zero faces"):
        write_usd_stage(world, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output(tmp_path):
    world = make_valley_world(with_splats=False)
    with pytest.raises(OutputError, match="does not exist"):
        write_usd_stage(world, tmp_path / "missing")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(OutputError, match="not a directory"):
        write_usd_stage(world, a_file)


def test_failure_midway_leaves_no_layers(tmp_path, monkeypatch, valley):
    """The splats and geometry layers are written before the root layer fails: all of them must go."""

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(stage_module, "_write_root_layer", broken)
    with pytest.raises(OutputError, match="No space left"):
        write_usd_stage(valley, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_config_from_dict_and_rejects_bad_values():
    from lyra_isaac.config import from_dict
    from lyra_isaac.errors import ConfigError

    cfg = from_dict(UsdConfig, {"static_friction": 1.2, "splats_arc": "reference"})
    assert cfg.static_friction == 1.2 and cfg.splats_arc == "reference"
    with pytest.raises(ConfigError, match="restitution"):
        from_dict(UsdConfig, {"restitution": 2.0})
    with pytest.raises(ConfigError, match="splats_arc"):
        from_dict(UsdConfig, {"splats_arc": "sublayer"})


def test_reference_arc(tmp_path, valley):
    write_usd_stage(valley, tmp_path, UsdConfig(splats_arc="reference"))
    stage = _open(tmp_path)
    prim = stage.GetPrimAtPath("/World/Splats")
    assert prim.HasAuthoredReferences() and not prim.HasAuthoredPayloads()
    assert len(read_splats(stage)) == len(valley.splats)


def test_read_splats_loads_an_unloaded_payload(written):
    directory, _, _ = written
    stage = Usd.Stage.Open(str(directory / "world.usda"), Usd.Stage.LoadNone)
    assert not stage.GetPrimAtPath("/World/Splats").IsLoaded()
    assert len(read_splats(stage)) == 20000


def test_read_splats_bad_input(tmp_path, written):
    directory, _, _ = written
    with pytest.raises(InputError, match="not found"):
        read_splats(tmp_path / "nope.usda")
    with pytest.raises(InputError, match="not a ParticleField3DGaussianSplat"):
        read_splats(directory / "world.usda", "/World/ground")
    with pytest.raises(InputError, match="no splat prim"):
        read_splats(directory / "world.usda", "/World/Nothing")


def test_directory_without_write_permission(tmp_path, monkeypatch):
    """Root ignores permission bits, so the permission answer is faked; the writer must refuse before writing."""
    world = make_valley_world(with_splats=False)
    monkeypatch.setattr(stage_module.os, "access", lambda path, mode: False)
    with pytest.raises(OutputError, match="not writable"):
        write_usd_stage(world, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_robot_placed_under_a_spawn_point_follows_its_pose(written, valley, tmp_path):
    """The spawn wrapper's frame is the spawn pose: a robot referenced under it lands there, facing yaw."""
    directory, _, _ = written
    robot = Usd.Stage.CreateNew(str(tmp_path / "robot.usda"))
    body = UsdGeom.Xform.Define(robot, "/Robot")
    UsdGeom.Sphere.Define(robot, "/Robot/torso").CreateRadiusAttr(0.2)
    robot.SetDefaultPrim(body.GetPrim())
    robot.GetRootLayer().Save()
    stage = _open(directory)
    stage.SetEditTarget(stage.GetSessionLayer())  # leave the world files untouched
    placed = UsdGeom.Xform.Define(stage, "/World/SpawnPoints/spawn_001/Robot")
    placed.GetPrim().GetReferences().AddReference(str(tmp_path / "robot.usda"))
    placed.AddTranslateOp().Set((0.5, 0.0, 1.0))  # 0.5 m ahead of the spawn, 1 m up
    matrix = np.asarray(placed.ComputeLocalToWorldTransform(Usd.TimeCode.Default())).T
    x, y, z, yaw = valley.spawn_points[1]
    np.testing.assert_allclose(matrix[:3, 3], (x + 0.5 * np.cos(yaw), y + 0.5 * np.sin(yaw), z + 1.0), atol=1e-6)


def test_chunked_splat_conversions_match_the_plain_formulas(monkeypatch):
    """orientations_xyzw and splat_extent work in chunks: bit-identical to the one-shot numpy formulas, across
    chunk boundaries, with zero quaternions and non-finite scales."""
    from lyra_isaac.usd import splats as splats_module

    monkeypatch.setattr(splats_module, "CHUNK", 7)
    rng = np.random.default_rng(11)
    n = 50
    quats = rng.normal(size=(n, 4)).astype(np.float32)
    quats[[3, 20]] = 0.0
    norms = np.linalg.norm(quats, axis=1, keepdims=True)
    expected = np.concatenate([quats[:, 1:], quats[:, :1]], axis=1) / np.where(norms == 0, 1.0, norms)
    expected[[3, 20]] = (0.0, 0.0, 0.0, 1.0)
    np.testing.assert_array_equal(splats_module.orientations_xyzw(quats), expected.astype(np.float32))

    positions = rng.normal(scale=5.0, size=(n, 3)).astype(np.float32)
    scales = rng.uniform(0.01, 0.5, size=(n, 3)).astype(np.float32)
    scales[5, 1], scales[40, 2] = np.inf, np.nan
    pad = splats_module.EXTENT_SIGMAS * scales.max(axis=1, keepdims=True)
    pad[~np.isfinite(pad)] = 0.0
    expected = np.stack([(positions - pad).min(axis=0), (positions + pad).max(axis=0)])
    np.testing.assert_array_equal(splats_module.splat_extent(positions, scales), expected)
    assert splats_module.splat_extent(positions[:0], scales[:0]).shape == (2, 3)
