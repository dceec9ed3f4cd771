"""Kit tests (omni.kit.test.AsyncTestCase): the extension's menu/actions, world referencing and rollback on error.

A small world directory is written by hand with pxr (a ground mesh under /World) and world.json, so these tests do
not depend on the conversion pipeline; the robot test needs Isaac Sim's asset server and is skipped without it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import omni.kit.actions.core
import omni.kit.app
import omni.kit.test
import omni.usd
from pxr import Usd, UsdGeom, UsdPhysics

from ... import __version__
from ...errors import InputError
from ...world import WORLD_USD, WorldManifest, load_world, write_manifest
from .. import extension
from ..importer import ROBOTS_ROOT_PRIM, WORLDS_ROOT_PRIM

SPAWNS = [[0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 0.0, 1.5707963]]


def write_test_world(directory: Path) -> Path:
    """A 4 x 4 m flat world: world.usda (Z up, metres, /World/ground collision mesh) and world.json."""
    directory.mkdir(parents=True, exist_ok=True)
    stage = Usd.Stage.CreateNew(str(directory / WORLD_USD))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    world = UsdGeom.Xform.Define(stage, "/World")
    stage.SetDefaultPrim(world.GetPrim())
    UsdPhysics.Scene.Define(stage, "/World/PhysicsScene")
    ground = UsdGeom.Mesh.Define(stage, "/World/ground")
    ground.CreatePointsAttr([(-2, -2, 0), (2, -2, 0), (2, 2, 0), (-2, 2, 0)])
    ground.CreateFaceVertexCountsAttr([4])
    ground.CreateFaceVertexIndicesAttr([0, 1, 2, 3])
    UsdPhysics.CollisionAPI.Apply(ground.GetPrim())
    stage.GetRootLayer().Save()
    manifest = WorldManifest(
        source={"path": "test://flat", "sha256": "0" * 64, "format": "analytic", "gaussians": 0},
        source_to_world=np.eye(4).tolist(), scale_factor=1.0, bounds=[[-2, -2, 0], [2, 2, 0]],
        walkable_area_m2=16.0, spawn_points=SPAWNS, files={"usd": WORLD_USD}, stats={}, config={},
        version=__version__)
    write_manifest(manifest, directory)
    return directory


class TestLyraWorldsExtension(omni.kit.test.AsyncTestCase):
    async def setUp(self) -> None:
        await omni.usd.get_context().new_stage_async()
        await omni.kit.app.get_app().next_update_async()
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = Path(self._tmp.name)
        self.ext = extension.get_instance()
        self.assertIsNotNone(self.ext, "the lyra_isaac extension is not running")

    async def tearDown(self) -> None:
        self._tmp.cleanup()

    async def test_actions_registered(self) -> None:
        registry = omni.kit.actions.core.get_action_registry()
        for action_id in extension.ACTIONS:
            self.assertIsNotNone(registry.get_action(self.ext._ext_name, action_id), action_id)

    async def test_reference_world_adds_payload_under_lyra_worlds(self) -> None:
        world = load_world(write_test_world(self.tmp / "flat"))
        path = self.ext.reference_world(world)
        self.assertEqual(path, f"{WORLDS_ROOT_PRIM}/flat")
        stage = omni.usd.get_context().get_stage()
        prim = stage.GetPrimAtPath(path)
        self.assertTrue(prim.HasAuthoredPayloads())
        self.assertTrue(stage.GetPrimAtPath(f"{path}/ground").IsValid())
        self.assertEqual(prim.GetCustomDataByKey(extension.WORLD_DIR_KEY), str(world.path))
        # A second import of the same world gets its own prim.
        self.assertEqual(self.ext.reference_world(world), f"{WORLDS_ROOT_PRIM}/flat_1")

    async def test_world_scene_deactivated_when_stage_has_one(self) -> None:
        stage = omni.usd.get_context().get_stage()
        UsdPhysics.Scene.Define(stage, "/physicsScene")
        path = self.ext.reference_world(load_world(write_test_world(self.tmp / "flat")))
        self.assertFalse(stage.GetPrimAtPath(f"{path}/PhysicsScene").IsActive())
        self.assertTrue(stage.GetPrimAtPath(f"{path}/ground").IsActive())

    async def test_world_scene_kept_when_it_is_the_only_one(self) -> None:
        path = self.ext.reference_world(load_world(write_test_world(self.tmp / "flat")))
        stage = omni.usd.get_context().get_stage()
        self.assertTrue(stage.GetPrimAtPath(f"{path}/PhysicsScene").IsActive())

    async def test_failed_reference_leaves_stage_unchanged(self) -> None:
        world_dir = write_test_world(self.tmp / "broken")
        (world_dir / WORLD_USD).write_text("#usda 1.0\n(\n this is not usda")
        stage = omni.usd.get_context().get_stage()
        before = [str(p.GetPath()) for p in stage.Traverse()]
        with self.assertRaises(InputError):
            self.ext.reference_world(load_world(world_dir))
        self.assertEqual([str(p.GetPath()) for p in stage.Traverse()], before)

    async def test_import_path_of_world_dir(self) -> None:
        world_dir = write_test_world(self.tmp / "flat")
        task = self.ext.import_path(str(world_dir))
        self.assertIsNotNone(task)
        await task
        stage = omni.usd.get_context().get_stage()
        self.assertTrue(stage.GetPrimAtPath(f"{WORLDS_ROOT_PRIM}/flat").IsValid())

    async def test_import_of_non_scene_reports_and_changes_nothing(self) -> None:
        bogus = self.tmp / "notes.txt"
        bogus.write_text("not a scene")
        self.assertIsNone(self.ext.import_path(str(bogus)))
        self.assertIn("failed", self.ext._status_label.text)
        self.assertFalse(omni.usd.get_context().get_stage().GetPrimAtPath(WORLDS_ROOT_PRIM).IsValid())

    async def test_add_humanoid_at_spawn_points(self) -> None:
        from isaacsim.storage.native import get_assets_root_path_async

        if not await get_assets_root_path_async():
            self.skipTest("Isaac Sim assets root not reachable")
        self.ext.reference_world(load_world(write_test_world(self.tmp / "flat")))
        first = await self.ext._add_humanoid_async("h1")
        second = await self.ext._add_humanoid_async("h1")
        self.assertEqual((first, second), (f"{ROBOTS_ROOT_PRIM}/H1", f"{ROBOTS_ROOT_PRIM}/H1_1"))
        stage = omni.usd.get_context().get_stage()
        translate = UsdGeom.Xformable(stage.GetPrimAtPath(second)).ComputeLocalToWorldTransform(
            Usd.TimeCode.Default()).ExtractTranslation()
        self.assertAlmostEqual(translate[0], 1.0, places=4)
        self.assertAlmostEqual(translate[1], 2.0, places=4)
        self.assertAlmostEqual(translate[2], 1.05, places=4)
