"""Worlds written by the real USD writer, brought into a simulation stage the way the Isaac Sim backend does."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pxr")
from pxr import Usd, UsdGeom, UsdPhysics  # noqa: E402
from worlds import make_valley_world  # noqa: E402

from lyra_isaac.errors import InputError  # noqa: E402
from lyra_isaac.isaac.usd_world import reference_world_content, world_content_paths  # noqa: E402


@pytest.fixture(scope="module")
def world_usda(tmp_path_factory):
    from lyra_isaac.usd.stage import write_usd_stage

    directory = tmp_path_factory.mktemp("valley")
    write_usd_stage(make_valley_world(with_splats=False), directory)
    return directory / "world.usda"


def test_content_excludes_the_physics_scene(world_usda):
    paths = world_content_paths(world_usda)
    assert "/World/ground" in paths
    assert "/World/PhysicsScene" not in paths


def test_two_worlds_side_by_side_keep_geometry_and_collision(world_usda):
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    made_a = reference_world_content(stage, world_usda.resolve(), "/World/Worlds/world_000")
    made_b = reference_world_content(stage, world_usda.resolve(), "/World/Worlds/world_001", (20.0, 0.0, 0.0))
    assert "/World/Worlds/world_001/ground" in made_b and len(made_a) == len(made_b)
    scenes = [p for p in stage.Traverse() if p.IsA(UsdPhysics.Scene)]
    assert scenes == []  # the simulation stage adds its own single scene
    ground = stage.GetPrimAtPath("/World/Worlds/world_001/ground")
    assert ground.GetTypeName() == "Mesh" and ground.HasAPI(UsdPhysics.CollisionAPI)
    cache = UsdGeom.XformCache()
    points = np.asarray(UsdGeom.Mesh(ground).GetPointsAttr().Get())
    to_world = cache.GetLocalToWorldTransform(ground)
    world_points = np.array([to_world.Transform(tuple(map(float, p))) for p in points[:50]])
    np.testing.assert_allclose(world_points - points[:50], np.tile([20.0, 0.0, 0.0], (50, 1)), atol=1e-4)


def test_unreadable_world_usd(tmp_path):
    bad = tmp_path / "world.usda"
    bad.write_text("#usda 1.0\n(\n nonsense")
    with pytest.raises(InputError, match="cannot open"):
        world_content_paths(bad)
