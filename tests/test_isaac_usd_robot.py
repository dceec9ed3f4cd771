"""Robot prim preparation (Physics variant, PhysxArticulationAPI) on real USD stages built with usd-core."""

from __future__ import annotations

import pytest

pxr = pytest.importorskip("pxr")
from pxr import Usd, UsdGeom, UsdPhysics  # noqa: E402

from lyra_isaac.isaac.usd_robot import (  # noqa: E402
    ensure_physx_articulation_api,
    physics_variant,
    prepare_robot_prim,
    select_physics_variant,
)


def _robot_asset(tmp_path, variants=("physx", "mujoco"), default="mujoco"):
    """A robot asset like Isaac Sim 6's: /robot with a Physics variant set; each variant authors the pelvis
    articulation root (the physx one with a marker attribute)."""
    path = tmp_path / "robot.usda"
    stage = Usd.Stage.CreateNew(str(path))
    root = UsdGeom.Xform.Define(stage, "/robot").GetPrim()
    stage.SetDefaultPrim(root)
    variant_set = root.GetVariantSets().AddVariantSet("Physics")
    for name in variants:
        variant_set.AddVariant(name)
        variant_set.SetVariantSelection(name)
        with variant_set.GetVariantEditContext():
            pelvis = UsdGeom.Xform.Define(stage, "/robot/pelvis").GetPrim()
            UsdPhysics.ArticulationRootAPI.Apply(pelvis)
            pelvis.CreateAttribute(f"engine_{name}", pxr.Sdf.ValueTypeNames.Bool).Set(True)
    variant_set.SetVariantSelection(default)
    stage.GetRootLayer().Save()
    return path


def _referenced(asset):
    stage = Usd.Stage.CreateInMemory()
    prim = UsdGeom.Xform.Define(stage, "/World/Robots/H1").GetPrim()
    prim.GetReferences().AddReference(str(asset))
    return stage, prim


def test_physics_variant_names():
    assert physics_variant(["PhysX", "mujoco"], "physx") == "PhysX"
    assert physics_variant(["physx", "mujoco"], "newton") == "mujoco"
    assert physics_variant(["mujoco"], "physx") is None


def test_select_physx_variant_on_referenced_asset(tmp_path):
    stage, prim = _referenced(_robot_asset(tmp_path))
    assert stage.GetPrimAtPath("/World/Robots/H1/pelvis").HasAttribute("engine_mujoco")
    assert select_physics_variant(prim, "physx") == "physx"
    pelvis = stage.GetPrimAtPath("/World/Robots/H1/pelvis")
    assert pelvis.HasAttribute("engine_physx") and not pelvis.HasAttribute("engine_mujoco")


def test_assets_without_variant_or_engine(tmp_path, caplog):
    plain = tmp_path / "plain"
    plain.mkdir()
    stage = Usd.Stage.CreateInMemory()
    prim = UsdGeom.Xform.Define(stage, "/r").GetPrim()
    assert select_physics_variant(prim) is None
    _, only_mujoco = _referenced(_robot_asset(plain, variants=("mujoco",)))
    assert select_physics_variant(only_mujoco, "physx") is None
    assert "no Physics variant for engine 'physx'" in caplog.text


def test_physx_articulation_api_applied_once(tmp_path):
    stage, prim = _referenced(_robot_asset(tmp_path))
    assert prepare_robot_prim(prim) == "physx"
    pelvis = stage.GetPrimAtPath("/World/Robots/H1/pelvis")
    assert "PhysxArticulationAPI" in pelvis.GetPrimTypeInfo().GetAppliedAPISchemas()
    assert ensure_physx_articulation_api(prim) == []  # already there
