"""Write a world as an Isaac Sim-ready USD stage (DESIGN.md section 2).

Layout of a world directory written by :func:`write_usd_stage`::

    world.usda            root layer: defaultPrim /World, upAxis Z, metersPerUnit 1, kilogramsPerUnit 1; small and
                          readable (physics, materials, bindings, spawn points, lights, customLayerData)
    geometry.usdc         sublayer of world.usda: the mesh arrays of /World/ground and /World/Visual (binary crate)
    splats.usdc           /Splats, a UsdVol.ParticleField3DGaussianSplat, payloaded as /World/Splats
    layers/*.usda         copies of the shipped usd_templates/ (physics scene, materials, lights, spawn wrapper)

Prim tree (``/World`` is an Xform of kind ``assembly``)::

    /World/PhysicsScene        PhysicsScene (reference: layers/physics_scene.usda), gravity (0, 0, -1) * 9.81
    /World/Looks               Scope (reference: layers/materials.usda)
        GroundPhysics          Material + PhysicsMaterialAPI: static/dynamic friction, restitution (from UsdConfig)
        VertexColor            Material: UsdPreviewSurface showing the displayColor primvar
    /World/ground              Mesh: the ONE static collision surface; CollisionAPI, MeshCollisionAPI
                               approximation "none", GroundPhysics bound with purpose "physics";
                               purpose "guide" when anything else renders (splats or visual mesh)
    /World/Visual              Mesh: vertex-coloured render mesh (primvars:displayColor, vertex interpolation);
                               purpose "proxy" when splats are present
    /World/Splats              ParticleField3DGaussianSplat (payload: splats.usdc)
    /World/SpawnPoints/spawn_NNN  Xform (reference: layers/robot_spawn.usda): translate (x, y, z) + rotateZ (yaw, deg)
    /World/Lights              Xform (reference: layers/lighting.usda): Dome + Sun (DistantLight)

The templates are *copied* into the world directory and referenced by relative paths (``./layers/...``) so a world
directory is self-contained: it can be moved, zipped or uploaded to a Nucleus server and still open, and it does not
change when a later lyra_isaac ships different templates.

Every file is written under a temporary name in ``directory`` and renamed into place; on failure the files this
call created are removed, so the directory never holds a half-written layer.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import InputError, OutputError
from ..resources import usd_templates_dir
from ..world import SPLATS_USD, WORLD_USD, TriangleMesh, World
from .splats import SPLATS_ROOT_PRIM, write_splats_layer

logger = logging.getLogger(__name__)

WORLD_PRIM = "/World"
PHYSICS_SCENE_PRIM = "/World/PhysicsScene"
LOOKS_PRIM = "/World/Looks"
PHYSICS_MATERIAL_PRIM = "/World/Looks/GroundPhysics"
VISUAL_MATERIAL_PRIM = "/World/Looks/VertexColor"
GROUND_PRIM = "/World/ground"
VISUAL_PRIM = "/World/Visual"
SPLATS_PRIM = "/World/Splats"
SPAWN_ROOT_PRIM = "/World/SpawnPoints"
SPAWN_PRIM_FORMAT = "/World/SpawnPoints/spawn_{:03d}"
LIGHTS_PRIM = "/World/Lights"

GEOMETRY_USD = "geometry.usdc"
"""Sublayer of world.usda holding the mesh arrays (points, faces, normals, colours) in binary crate form."""
LAYERS_DIR = "layers"
"""Sub-directory of a world that holds the copied template layers."""
TEMPLATE_LAYERS = {
    PHYSICS_SCENE_PRIM: "physics_scene.usda",
    LOOKS_PRIM: "materials.usda",
    LIGHTS_PRIM: "lighting.usda",
}
SPAWN_TEMPLATE = "robot_spawn.usda"
TEMPLATE_FILES = (*TEMPLATE_LAYERS.values(), SPAWN_TEMPLATE)

CUSTOM_DATA_KEY = "lyra_isaac"
"""Key of the dictionary in the root layer's customLayerData that repeats world.json's key facts."""


@dataclass
class UsdConfig:
    """Settings of the USD writer (``[usd]`` table of a conversion config).

    Attributes:
        static_friction: ground static friction coefficient (PhysX / Newton), dimensionless.
        dynamic_friction: ground dynamic friction coefficient, dimensionless.
        restitution: ground restitution in [0, 1].
        gravity: gravity magnitude, m/s^2 (direction is always -Z).
        write_splats: write /World/Splats (splats.usdc) when the world carries splats.
        write_visual: write /World/Visual when the world carries a visual mesh.
        splat_display_color: also write primvars:displayColor on the splats (12 bytes per splat).
        splats_arc: how /World/Splats brings in splats.usdc: ``payload`` (can be unloaded; default) or ``reference``.
        dome_intensity: dome light intensity (nits).
        sun_intensity: distant light intensity (nits).
    """

    static_friction: float = 0.8
    dynamic_friction: float = 0.6
    restitution: float = 0.0
    gravity: float = 9.81
    write_splats: bool = True
    write_visual: bool = True
    splat_display_color: bool = True
    splats_arc: Literal["payload", "reference"] = "payload"
    dome_intensity: float = 1000.0
    sun_intensity: float = 3000.0

    def __post_init__(self) -> None:
        for name in ("static_friction", "dynamic_friction", "gravity", "dome_intensity", "sun_intensity"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"usd.{name} must be a finite number >= 0, got {value}")
        if not 0.0 <= self.restitution <= 1.0:
            raise ValueError(f"usd.restitution must lie in [0, 1], got {self.restitution}")
        if self.splats_arc not in ("payload", "reference"):
            raise ValueError(f"usd.splats_arc must be 'payload' or 'reference', got {self.splats_arc!r}")


def vertex_normals(mesh: TriangleMesh) -> np.ndarray:
    """(V, 3) float32 unit area-weighted vertex normals of ``mesh`` (+Z where a vertex has no faces)."""
    v = mesh.vertices.astype(np.float64)
    f = mesh.faces
    face_n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # length = 2 * area
    corners = f.reshape(-1)
    weights = np.repeat(face_n, 3, axis=0)
    normals = np.stack([np.bincount(corners, weights=weights[:, k], minlength=len(v)) for k in range(3)], axis=1)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.where(length > 0, normals / np.maximum(length, 1e-30), np.array([0.0, 0.0, 1.0]))
    return normals.astype(np.float32)


def _author_mesh(stage, path: str, mesh: TriangleMesh, *, colors: np.ndarray | None, purpose: str | None):
    from pxr import Sdf, UsdGeom, Vt

    geom = UsdGeom.Mesh.Define(stage, path)
    geom.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(mesh.vertices))
    geom.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(mesh.n_triangles, 3, dtype=np.int32)))
    geom.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(mesh.faces.reshape(-1)))
    geom.CreateExtentAttr(Vt.Vec3fArray.FromNumpy(mesh.bounds().astype(np.float32)))
    geom.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    geom.CreateOrientationAttr(UsdGeom.Tokens.rightHanded)
    geom.CreateNormalsAttr(Vt.Vec3fArray.FromNumpy(vertex_normals(mesh)))
    geom.SetNormalsInterpolation(UsdGeom.Tokens.vertex)
    if purpose is not None:
        geom.CreatePurposeAttr(purpose)
    if colors is not None:
        primvar = UsdGeom.PrimvarsAPI(geom.GetPrim()).CreatePrimvar(
            "displayColor", Sdf.ValueTypeNames.Color3fArray, UsdGeom.Tokens.vertex)
        primvar.Set(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(colors, dtype=np.float32)))
    return geom


def _custom_layer_data(world: World) -> dict:
    from pxr import Vt

    m = world.manifest
    source = m.source or {}
    return {
        CUSTOM_DATA_KEY: {
            "format_version": int(m.format_version),
            "version": str(m.version),
            "source_path": str(source.get("path", "")),
            "source_sha256": str(source.get("sha256", "")),
            "source_format": str(source.get("format", "")),
            "source_gaussians": int(source.get("gaussians", 0) or 0),
            "scale_factor": float(m.scale_factor),
            "source_to_world": Vt.DoubleArray(np.asarray(m.source_to_world, dtype=np.float64).reshape(-1).tolist()),
            "up_axis": str(m.up_axis),
            "meters_per_unit": float(m.meters_per_unit),
            "floor_height": float(m.floor_height),
            "bounds": Vt.DoubleArray(np.asarray(m.bounds, dtype=np.float64).reshape(-1).tolist()),
            "walkable_area_m2": float(m.walkable_area_m2),
            "spawn_count": int(len(world.spawn_points)),
        }
    }


def _check_world(world: World) -> None:
    world.collision.validate("collision mesh")
    if world.visual is not None:
        world.visual.validate("visual mesh")
        if world.visual.colors is not None and len(world.visual.colors) != len(world.visual.vertices):
            raise InputError(None, f"visual mesh has {len(world.visual.colors)} colours for "
                                   f"{len(world.visual.vertices)} vertices")
    spawns = np.asarray(world.spawn_points, dtype=np.float64)
    if spawns.size and (spawns.ndim != 2 or spawns.shape[1] != 4):
        raise InputError(None, f"spawn points have shape {spawns.shape}, expected (S, 4) [x, y, z, yaw]")
    if spawns.size and not np.isfinite(spawns).all():
        raise InputError(None, "spawn points hold non-finite values")
    if world.splats is not None and len(world.splats) and not np.isfinite(world.splats.means).all():
        raise InputError(None, "splats hold non-finite positions (clean the scene first)")
    if world.splats is not None and world.splats.frame != "world":
        logger.warning("splats are in frame %r, written as they are; the stage expects the world frame "
                       "(GaussianScene.transformed(source_to_world, frame='world'))", world.splats.frame)


def write_usd_stage(world: World, directory: Path, cfg: UsdConfig | None = None) -> dict[str, str]:
    """Write ``world`` as ``world.usda`` (+ ``splats.usdc`` + ``layers/``) into ``directory``.

    Args:
        world: the converted world; meshes and points in metres, world frame (Z up, floor at z = 0).
        directory: an existing, writable directory (the caller makes the whole directory atomic).
        cfg: writer settings; default :class:`UsdConfig`.

    Returns:
        Files written, relative to ``directory``: ``{"usd": "world.usda", "splats_usd": "splats.usdc"}``
        (``splats_usd`` only when splats were written).

    Raises:
        InputError: the collision mesh has no faces or non-finite vertices, or other world data is invalid.
        OutputError: ``directory`` is missing or not writable, or USD cannot save a layer.
    """
    cfg = cfg or UsdConfig()
    directory = Path(directory)
    _check_world(world)
    if directory.exists() and not directory.is_dir():
        raise OutputError(directory, "output path is not a directory")
    if not directory.is_dir():
        raise OutputError(directory, "output directory does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(directory, "output directory is not writable")

    created: list[Path] = []
    temp_root = directory / f".world.tmp-{os.getpid()}.usda"
    try:
        layers = directory / LAYERS_DIR
        if not layers.exists():
            layers.mkdir()
            created.append(layers)
        templates = usd_templates_dir()
        for name in TEMPLATE_FILES:
            temp = layers / f".{name}.tmp-{os.getpid()}"
            shutil.copyfile(templates / name, temp)
            os.replace(temp, layers / name)
            created.append(layers / name)

        files = {"usd": WORLD_USD}
        has_splats = cfg.write_splats and world.splats is not None and len(world.splats) > 0
        if has_splats:
            write_splats_layer(world.splats, directory / SPLATS_USD, display_color=cfg.splat_display_color)
            created.append(directory / SPLATS_USD)
            files["splats_usd"] = SPLATS_USD

        has_visual = cfg.write_visual and world.visual is not None
        temp_geometry = directory / f".geometry.tmp-{os.getpid()}.usdc"
        try:
            _write_geometry_layer(world, temp_geometry, has_splats, has_visual)
            os.replace(temp_geometry, directory / GEOMETRY_USD)
        finally:
            temp_geometry.unlink(missing_ok=True)
        created.append(directory / GEOMETRY_USD)
        files["geometry_usd"] = GEOMETRY_USD

        _write_root_layer(world, temp_root, cfg, has_splats, has_visual)
        os.replace(temp_root, directory / WORLD_USD)
        created.append(directory / WORLD_USD)
    except BaseException as exc:
        temp_root.unlink(missing_ok=True)
        for path in reversed(created):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(directory, f"cannot write USD stage: {exc.strerror or exc}") from None
        if type(exc).__name__ == "ErrorException":  # pxr.Tf.ErrorException: USD refused to author or save
            raise OutputError(directory / WORLD_USD, f"cannot write USD stage: {exc}") from None
        raise
    logger.info("wrote USD stage %s (%d collision triangles, %d splats, %d spawn points)", directory / WORLD_USD,
                world.collision.n_triangles, len(world.splats) if has_splats else 0, len(world.spawn_points))
    return files


def _new_stage(path: Path):
    from pxr import Usd, UsdGeom, UsdPhysics

    stage = Usd.Stage.CreateNew(str(path))
    if stage is None:
        raise OutputError(path, "USD could not create the layer")
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    UsdPhysics.SetStageKilogramsPerUnit(stage, 1.0)
    return stage


def _write_geometry_layer(world: World, path: Path, has_splats: bool, has_visual: bool) -> None:
    """geometry.usdc: the mesh arrays of /World/ground and /World/Visual (binary crate; ASCII is slow for them)."""
    from pxr import UsdGeom

    stage = _new_stage(path)
    stage.SetDefaultPrim(UsdGeom.Xform.Define(stage, WORLD_PRIM).GetPrim())
    ground_purpose = UsdGeom.Tokens.guide if (has_splats or has_visual) else None
    _author_mesh(stage, GROUND_PRIM, world.collision, colors=None, purpose=ground_purpose)
    if has_visual:
        visual = world.visual
        colors = (visual.colors.astype(np.float32) / 255.0 if visual.colors is not None
                  else np.full((len(visual.vertices), 3), 0.6, dtype=np.float32))
        _author_mesh(stage, VISUAL_PRIM, visual, colors=colors, purpose=UsdGeom.Tokens.proxy if has_splats else None)
    if not stage.GetRootLayer().Save():
        raise OutputError(path, "USD failed to save the geometry layer")


def _write_root_layer(world: World, path: Path, cfg: UsdConfig, has_splats: bool, has_visual: bool) -> None:
    from pxr import Gf, Kind, Sdf, Usd, UsdGeom, UsdPhysics, UsdShade

    stage = _new_stage(path)
    layer = stage.GetRootLayer()
    layer.subLayerPaths.append(f"./{GEOMETRY_USD}")
    layer.documentation = "lyra_isaac world: Z up, metres, floor at z = 0 (see world.json)"
    layer.customLayerData = _custom_layer_data(world)

    root = UsdGeom.Xform.Define(stage, WORLD_PRIM)
    root.GetPrim().SetSpecifier(Sdf.SpecifierDef)  # the sublayer defines it too; say so in the root as well
    stage.SetDefaultPrim(root.GetPrim())
    Usd.ModelAPI(root.GetPrim()).SetKind(Kind.Tokens.assembly)

    def reference(prim_path: str, layer_name: str, type_name: str):
        prim = stage.DefinePrim(prim_path, type_name)
        prim.GetReferences().AddReference(f"./{LAYERS_DIR}/{layer_name}")
        return prim

    # physics scene (template), gravity overridden only when the config differs from the template's 9.81
    scene_prim = reference(PHYSICS_SCENE_PRIM, TEMPLATE_LAYERS[PHYSICS_SCENE_PRIM], "PhysicsScene")
    physics_scene = UsdPhysics.Scene(scene_prim)
    physics_scene.CreateGravityDirectionAttr(Gf.Vec3f(0.0, 0.0, -1.0))
    physics_scene.CreateGravityMagnitudeAttr(float(cfg.gravity))

    # materials (template) with friction from the config
    reference(LOOKS_PRIM, TEMPLATE_LAYERS[LOOKS_PRIM], "Scope")
    physics_material_prim = stage.GetPrimAtPath(PHYSICS_MATERIAL_PRIM)
    physics_material = UsdPhysics.MaterialAPI.Apply(physics_material_prim)
    physics_material.CreateStaticFrictionAttr(float(cfg.static_friction))
    physics_material.CreateDynamicFrictionAttr(float(cfg.dynamic_friction))
    physics_material.CreateRestitutionAttr(float(cfg.restitution))

    # /World/ground and /World/Visual: heavy arrays live in the geometry.usdc sublayer; physics and
    # material bindings are authored here, where a reader of world.usda sees them.
    ground = stage.OverridePrim(GROUND_PRIM)
    UsdPhysics.CollisionAPI.Apply(ground).CreateCollisionEnabledAttr(True)
    UsdPhysics.MeshCollisionAPI.Apply(ground).CreateApproximationAttr(UsdPhysics.Tokens.none)
    UsdShade.MaterialBindingAPI.Apply(ground).Bind(
        UsdShade.Material(physics_material_prim), UsdShade.Tokens.weakerThanDescendants, "physics")
    if has_visual:
        visual = stage.OverridePrim(VISUAL_PRIM)
        UsdShade.MaterialBindingAPI.Apply(visual).Bind(UsdShade.Material(stage.GetPrimAtPath(VISUAL_MATERIAL_PRIM)))

    if has_splats:
        splats = stage.DefinePrim(SPLATS_PRIM, "ParticleField3DGaussianSplat")
        asset = f"./{SPLATS_USD}"
        if cfg.splats_arc == "payload":
            splats.GetPayloads().AddPayload(asset, Sdf.Path(SPLATS_ROOT_PRIM))
        else:
            splats.GetReferences().AddReference(asset, Sdf.Path(SPLATS_ROOT_PRIM))

    UsdGeom.Scope.Define(stage, SPAWN_ROOT_PRIM)
    for index, (x, y, z, yaw) in enumerate(np.asarray(world.spawn_points, dtype=np.float64).reshape(-1, 4)):
        prim = reference(SPAWN_PRIM_FORMAT.format(index), SPAWN_TEMPLATE, "Xform")
        xform = UsdGeom.Xformable(prim)
        xform.ClearXformOpOrder()
        xform.AddTranslateOp(UsdGeom.XformOp.PrecisionDouble).Set(Gf.Vec3d(float(x), float(y), float(z)))
        xform.AddRotateZOp(UsdGeom.XformOp.PrecisionFloat).Set(float(np.degrees(yaw)))

    reference(LIGHTS_PRIM, TEMPLATE_LAYERS[LIGHTS_PRIM], "Xform")
    from pxr import UsdLux

    UsdLux.DomeLight(stage.GetPrimAtPath(f"{LIGHTS_PRIM}/Dome")).CreateIntensityAttr(float(cfg.dome_intensity))
    UsdLux.DistantLight(stage.GetPrimAtPath(f"{LIGHTS_PRIM}/Sun")).CreateIntensityAttr(float(cfg.sun_intensity))

    if not layer.Save():
        raise OutputError(path, "USD failed to save the root layer")
