"""Validate a world directory with the tools that will consume it (``lyra-isaac validate``).

Checks, in order (each a :class:`CheckResult` of a :class:`ValidationReport`):

``files``        world.json parses and every file it lists is present.
``usd``          pxr reopens world.usda with every payload, all layers resolve, and the DESIGN.md section 2 prim
                 contract holds with the right types and units: stage metadata, /World/PhysicsScene gravity,
                 /World/ground (one collision Mesh, approximation "none", physics material bound), /World/Splats
                 (ParticleField3DGaussianSplat attribute types, lengths, value ranges), /World/Visual,
                 /World/SpawnPoints (one Xform per world.json spawn point, same pose) and customLayerData agreeing
                 with world.json.
``asset_validator``  NVIDIA's omni_asset_validate (package ``omniverse-asset-validator``) on world.usda: errors
                 fail the check; warnings are listed (see ACCEPTED_WARNINGS for the ones expected on a world).
``spawns``       every spawn point stands on the collision surface (``SPAWN_TOLERANCE``, vertical rays on
                 collision.ply) and, where world.json lists a height map, on a walkable cell.
``newton``       Newton (``ModelBuilder.add_usd``, CPU, in a subprocess) loads world.usda; spheres dropped over the
                 probe points come to rest on the collision surface (``REST_TOLERANCE``).
``mujoco``       MuJoCo compiles scene.xml with the same spheres added; they rest within ``REST_TOLERANCE`` of the
                 collision surface and within ``ENGINE_TOLERANCE`` of Newton's heights (compared as heights above
                 the collision surface under each engine's rest point, so a few cm of rolling does not matter).

Probe points are the spawn points plus a few walkable cells of the height map with gentle ground under the sphere
(slope < 10 deg, no step edge); rolling friction keeps spheres where they land. Wherever a sphere comes to rest, its
centre must be at the lowest non-penetrating height above the collision surface (vertical rays on collision.ply:
max of h(p) + sqrt(r^2 - |p - c|^2) over its disk).
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import InputError
from ..world import MJCF_SCENE, WorldDir, load_world
from .splats import WORLD_SPLATS_PRIM
from .stage import (
    CUSTOM_DATA_KEY,
    GROUND_PRIM,
    LIGHTS_PRIM,
    PHYSICS_SCENE_PRIM,
    SPAWN_ROOT_PRIM,
    VISUAL_PRIM,
    WORLD_PRIM,
)

logger = logging.getLogger(__name__)

CHECKS = ("files", "usd", "asset_validator", "spawns", "newton", "mujoco")
"""Check names, in the order they run; any of them can be skipped (``skip=``, ``--skip``)."""

Status = Literal["pass", "fail", "skip"]

PROBE_RADIUS = 0.1
"""Metres: radius of the dropped spheres."""
DROP_CLEARANCE = 0.3
"""Metres: spheres start this far above their expected rest height."""
SETTLE_SECONDS = 1.5
"""Simulated seconds per drop (a 0.3 m fall takes 0.25 s)."""
REST_TOLERANCE = 0.03
"""Metres: a sphere must rest this close (vertically and horizontally) to where the collision surface says."""
SPAWN_TOLERANCE = 0.05
"""Metres: a spawn point's z must lie this close to the collision surface under it."""
ENGINE_TOLERANCE = 0.02
"""Metres: MuJoCo and Newton rest heights must agree this closely."""
MAX_PROBE_SLOPE_DEG = 10.0
"""Probe points need a fitted ground slope below this under the sphere (rolling friction holds it there)."""
MAX_PROBE_RELIEF = 0.03
"""Metres: ground relief under a probe (beyond the fitted slope) must stay below this: no step edge under it."""
PROBE_MARGIN = 1.5
"""The probe footprint's radius in sphere radii (a margin for height-field interpolation between cells)."""
ROLLING_FRICTION = 0.03
"""Metres (torque per normal force) of rolling friction on the probe spheres in both engines: holds a 0.1 m sphere
on slopes up to ~17 deg, so engines compare heights at the same place."""
MAX_HOLE_FRACTION = 0.25
"""Rays under a probe may miss the collision surface (small holes of reconstructed meshes) up to this fraction."""
MAX_DRIFT = 0.1
"""Metres: a sphere that rolls further than this before resting is reported (as a warning); MuJoCo and Newton
spheres further apart than this are compared by their height above the surface instead of their heights."""
MAX_EXTRA_PROBES = 6
"""Flat height-map cells added to the spawn points as probes."""
MAX_PROBES = 16
NEWTON_TIMEOUT_S = 600.0
"""The first Newton run compiles Warp kernels (30-40 s on 2 cores); later runs use Warp's kernel cache."""
TOLERANCE = 1e-4
"""Absolute tolerance for comparing values written twice (world.json vs USD), metres or unitless."""

ACCEPTED_WARNINGS = {
    "IndexedPrimvarChecker": "displayColor of /World/Visual and /World/Splats repeats values; indexing per-vertex "
                             "colours would save little on real scans and some renderers ignore indexed primvars.",
    "ManifoldChecker": "surfaces reconstructed from splats are open and can hold non-manifold edges and vertices; "
                       "triangle-mesh colliders (approximation 'none') in PhysX and Newton do not need a manifold.",
}
"""omni_asset_validate warnings expected on a lyra_isaac world, by rule, with the reason they are accepted."""

EXTRA_VALIDATOR_RULES = ("GaussianSplatSchemaChecker", "PortableAssetPathChecker", "AnchoredAssetPathsChecker",
                         "AlmostExtremeExtentChecker", "PointsPrecisionChecker")
"""omni_asset_validate rules that are off by default but matter for a world: the splat schema rule (VG.035),
relocatable asset paths, and float precision of points far from the origin."""

HEAVY_MESH_RULES_MAX_TRIANGLES = 1_000_000
"""Above this many mesh triangles (ground + visual) the rules in HEAVY_MESH_RULES are left out."""
HEAVY_MESH_RULES = ("ManifoldChecker", "NormalsValidChecker", "ZeroAreaFaceChecker")
"""omni_asset_validate mesh rules that loop over faces in Python (measured on a 2 x 2M-triangle world on 2 shared
cores: 48 s, 86 s and 15 s); the ``usd`` check covers normals and zero-area faces with numpy."""
NORMAL_LENGTH_TOLERANCE = 1e-3
ZERO_AREA = 1e-12
"""m^2: triangles with less area are degenerate."""
GAUSSIAN_RULE_MAX_SPLATS = 3_000_000
"""Above this many splats GaussianSplatSchemaChecker is left out (it loops over splats in Python: ~6 s per
million); the ``usd`` check tests the same properties (ranges, unit quaternions, SH stride) with numpy."""

SPLAT_ATTRIBUTE_TYPES = {
    "positions": "point3f[]",
    "orientations": "quatf[]",
    "scales": "float3[]",
    "opacities": "float[]",
    "radiance:sphericalHarmonicsCoefficients": "float3[]",
    "radiance:sphericalHarmonicsDegree": "int",
}
MESH_ATTRIBUTE_TYPES = {
    "points": "point3f[]",
    "faceVertexCounts": "int[]",
    "faceVertexIndices": "int[]",
    "extent": "float3[]",
}


@dataclass
class CheckResult:
    """One check's outcome: ``status`` is pass / fail / skip; ``problems`` lists every fault found."""

    name: str
    status: Status
    summary: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class ValidationReport:
    """All checks of one world directory. ``ok`` is True when no check failed (skipped checks do not fail)."""

    directory: Path
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.status != "fail" for check in self.checks)

    def check(self, name: str) -> CheckResult:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes None)."""
        return _finite({"directory": str(self.directory), "ok": self.ok, "checks": [asdict(c) for c in self.checks]})

    def summary_lines(self) -> list[str]:
        """A plain-text table: one line per check, then its problems and warnings indented."""
        width = max((len(c.name) for c in self.checks), default=5)
        lines = [f"{'check'.ljust(width)}  status  time    summary"]
        for c in self.checks:
            lines.append(f"{c.name.ljust(width)}  {c.status.upper().ljust(6)}  {c.seconds:5.1f}s  {c.summary}")
            lines += [f"{' ' * width}    error: {p}" for p in c.problems]
            lines += [f"{' ' * width}    warning: {w}" for w in c.warnings]
        lines.append(f"world {self.directory}: {'OK' if self.ok else 'FAILED'}")
        return lines


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --------------------------------------------------------------------------------------------------------------
# entry point


def validate_world(directory: str | Path, *, skip: tuple[str, ...] | list[str] = (),
                   newton_timeout: float = NEWTON_TIMEOUT_S) -> ValidationReport:
    """Validate the world directory ``directory`` (see the module docstring for the checks).

    Args:
        directory: a world directory written by ``lyra-isaac convert``.
        skip: names from :data:`CHECKS` not to run (reported as ``skip``).
        newton_timeout: seconds the Newton subprocess may take.

    Returns:
        ValidationReport; ``report.ok`` is False when any check failed.

    Raises:
        InputError: ``directory`` is not a world directory, or its world.json is missing or corrupt.
    """
    unknown = sorted(set(skip) - set(CHECKS))
    if unknown:
        raise InputError(None, f"unknown check(s) to skip: {', '.join(unknown)} (checks: {', '.join(CHECKS)})")
    world = load_world(directory)
    report = ValidationReport(Path(directory))
    probes: _Probes | None = None

    def run(name: str, function, *args) -> CheckResult:
        if name in skip:
            result = CheckResult(name, "skip", "skipped on request")
        else:
            start = time.perf_counter()
            try:
                result = function(*args)
            except InputError as exc:
                result = CheckResult(name, "fail", "could not run", problems=[str(exc)])
            result.seconds = time.perf_counter() - start
        report.checks.append(result)
        logger.info("validate %s: %s (%s)", name, result.status, result.summary)
        return result

    run("files", _check_files, world)
    usd = run("usd", _check_usd, world)
    run("asset_validator", _check_asset_validator, world, usd.data.get("splats"),
        usd.data.get("ground_triangles", 0) + usd.data.get("visual_triangles", 0))
    run("spawns", _check_spawns, world)
    probe_error = ""
    if "newton" not in skip or "mujoco" not in skip:
        try:
            probes = _probe_points(world)
        except InputError as exc:
            probe_error = str(exc)

    def need_probes(name: str, check, *args) -> CheckResult:
        if probes is None:
            return CheckResult(name, "fail", "no probe points", [probe_error])
        return check(world, probes, *args)

    newton = run("newton", need_probes, "newton", _check_newton, newton_timeout)
    run("mujoco", need_probes, "mujoco", _check_mujoco, newton.data if newton.status == "pass" else None)
    _SURFACES.clear()
    return report


# --------------------------------------------------------------------------------------------------------------
# files


def _check_files(world: WorldDir) -> CheckResult:
    problems = []
    listed = 0
    for key, value in world.manifest.files.items():
        names = value if isinstance(value, list) else [value]
        for name in names:
            listed += 1
            if not isinstance(name, str) or not (world.path / name).exists():
                problems.append(f"world.json files.{key} = {name!r} is missing from the world directory")
    if "usd" not in world.manifest.files:
        problems.append("world.json lists no 'usd' file")
    status = "fail" if problems else "pass"
    return CheckResult("files", status, f"{listed} files listed, {listed - len(problems)} present", problems)


# --------------------------------------------------------------------------------------------------------------
# USD contract


def _check_usd(world: WorldDir) -> CheckResult:
    from pxr import Sdf, Usd, UsdGeom, UsdPhysics, UsdShade, UsdUtils, UsdVol

    problems: list[str] = []
    data: dict[str, Any] = {}
    if "usd" not in world.manifest.files:
        return CheckResult("usd", "fail", "no USD file", ["world.json lists no 'usd' file"])
    path = world.file("usd")
    if not path.is_file():
        return CheckResult("usd", "fail", "no USD file", [f"{path.name} is missing"])
    try:
        stage = Usd.Stage.Open(str(path), Usd.Stage.LoadAll)
    except Exception as exc:  # Tf.ErrorException
        return CheckResult("usd", "fail", "pxr cannot open the stage", [f"{path.name}: {exc}".strip()])
    if stage is None:
        return CheckResult("usd", "fail", "pxr cannot open the stage", [f"{path.name} did not open"])

    layers, assets, unresolved = UsdUtils.ComputeAllDependencies(Sdf.AssetPath(str(path)))
    for missing in unresolved:
        problems.append(f"unresolved layer or asset: {missing}")
    for error in stage.GetCompositionErrors() if hasattr(stage, "GetCompositionErrors") else []:
        problems.append(f"composition error: {error}")
    data["layers"] = sorted(Path(layer.realPath).name for layer in layers if layer.realPath)

    # stage metadata
    if stage.GetDefaultPrim().GetPath() != Sdf.Path(WORLD_PRIM):
        problems.append(f"defaultPrim is {stage.GetDefaultPrim().GetPath() or 'unset'}, expected {WORLD_PRIM}")
    if UsdGeom.GetStageUpAxis(stage) != UsdGeom.Tokens.z:
        problems.append(f"upAxis is {UsdGeom.GetStageUpAxis(stage)}, expected Z")
    root_layer = stage.GetRootLayer()
    for key, getter in (("metersPerUnit", UsdGeom.GetStageMetersPerUnit),
                        ("kilogramsPerUnit", UsdPhysics.GetStageKilogramsPerUnit)):
        if not root_layer.pseudoRoot.HasInfo(key):
            problems.append(f"{key} is not authored on the root layer")
        elif abs(getter(stage) - 1.0) > 1e-9:
            problems.append(f"{key} is {getter(stage)}, expected 1")

    # physics scene
    scene_prim = stage.GetPrimAtPath(PHYSICS_SCENE_PRIM)
    if not scene_prim.IsValid() or not scene_prim.IsA(UsdPhysics.Scene):
        problems.append(f"{PHYSICS_SCENE_PRIM} is missing or not a UsdPhysics.Scene")
    else:
        scene = UsdPhysics.Scene(scene_prim)
        direction = np.asarray(scene.GetGravityDirectionAttr().Get() or (0, 0, 0), dtype=np.float64)
        magnitude = scene.GetGravityMagnitudeAttr().Get()
        if not np.allclose(direction, (0, 0, -1), atol=1e-6):
            problems.append(f"{PHYSICS_SCENE_PRIM} gravity direction is {direction.tolist()}, expected (0, 0, -1)")
        if magnitude is None or not math.isfinite(magnitude) or abs(magnitude - 9.81) > 0.5:
            problems.append(f"{PHYSICS_SCENE_PRIM} gravity magnitude is {magnitude}, expected ~9.81 m/s^2")
        data["gravity"] = float(magnitude) if magnitude is not None else None

    # ground
    ground = stage.GetPrimAtPath(GROUND_PRIM)
    has_splats = stage.GetPrimAtPath(WORLD_SPLATS_PRIM).IsValid()
    has_visual = stage.GetPrimAtPath(VISUAL_PRIM).IsValid()
    if not ground.IsValid() or not ground.IsA(UsdGeom.Mesh):
        problems.append(f"{GROUND_PRIM} is missing or not a Mesh")
    else:
        problems += _check_mesh(ground, GROUND_PRIM)
        mesh = UsdGeom.Mesh(ground)
        data["ground_triangles"] = len(mesh.GetFaceVertexCountsAttr().Get() or [])
        if not ground.HasAPI(UsdPhysics.CollisionAPI):
            problems.append(f"{GROUND_PRIM} lacks UsdPhysics.CollisionAPI")
        elif UsdPhysics.CollisionAPI(ground).GetCollisionEnabledAttr().Get() is False:
            problems.append(f"{GROUND_PRIM} has collision disabled")
        if not ground.HasAPI(UsdPhysics.MeshCollisionAPI):
            problems.append(f"{GROUND_PRIM} lacks UsdPhysics.MeshCollisionAPI")
        elif UsdPhysics.MeshCollisionAPI(ground).GetApproximationAttr().Get() != UsdPhysics.Tokens.none:
            problems.append(f"{GROUND_PRIM} collision approximation is "
                            f"{UsdPhysics.MeshCollisionAPI(ground).GetApproximationAttr().Get()!r}, expected 'none'")
        material, _ = UsdShade.MaterialBindingAPI(ground).ComputeBoundMaterial("physics")
        if not material or not material.GetPrim().HasAPI(UsdPhysics.MaterialAPI):
            problems.append(f"{GROUND_PRIM} has no physics material (MaterialAPI bound with purpose 'physics')")
        else:
            api = UsdPhysics.MaterialAPI(material.GetPrim())
            values = {name: getattr(api, f"Get{name}Attr")().Get()
                      for name in ("StaticFriction", "DynamicFriction", "Restitution")}
            for name, value in values.items():
                if value is None or not math.isfinite(value) or value < 0:
                    problems.append(f"physics material {material.GetPath()} {name} is {value}")
            data["physics_material"] = {k: v for k, v in values.items()}
        to_world = np.asarray(mesh.ComputeLocalToWorldTransform(Usd.TimeCode.Default()))
        if not np.allclose(to_world, np.eye(4), atol=1e-9):
            problems.append(f"{GROUND_PRIM} is transformed (points must be in the world frame, like collision.ply)")
        if mesh.GetSubdivisionSchemeAttr().Get() != UsdGeom.Tokens.none:
            problems.append(f"{GROUND_PRIM} subdivisionScheme is {mesh.GetSubdivisionSchemeAttr().Get()!r}, "
                            "expected 'none'")
        purpose = UsdGeom.Imageable(ground).ComputePurpose()
        if has_splats and purpose != UsdGeom.Tokens.guide:
            problems.append(f"{GROUND_PRIM} purpose is {purpose!r} although splats are present (expected 'guide')")
    colliders = [p.GetPath() for p in stage.Traverse() if p.HasAPI(UsdPhysics.CollisionAPI)]
    if len(colliders) != 1:
        problems.append(f"the stage has {len(colliders)} collision prims ({', '.join(map(str, colliders[:5]))}); "
                        f"expected exactly {GROUND_PRIM}")

    # splats
    manifest_has_splats = "splats_usd" in world.manifest.files
    if manifest_has_splats and not has_splats:
        problems.append(f"world.json lists splats_usd but {WORLD_SPLATS_PRIM} is missing")
    if has_splats:
        prim = stage.GetPrimAtPath(WORLD_SPLATS_PRIM)
        if not prim.IsA(UsdVol.ParticleField3DGaussianSplat):
            problems.append(f"{WORLD_SPLATS_PRIM} is a {prim.GetTypeName()}, not a ParticleField3DGaussianSplat")
        else:
            splat_problems, count = _check_splats(prim, stage)
            problems += splat_problems
            data["splats"] = count
        if not (prim.HasAuthoredPayloads() or prim.HasAuthoredReferences()):
            problems.append(f"{WORLD_SPLATS_PRIM} is not brought in by a payload or reference")
        positions = prim.GetAttribute("positions")
        source_layer = next((spec.layer for spec in positions.GetPropertyStack()), None) if positions else None
        if source_layer is not None and source_layer == root_layer:
            problems.append(f"{WORLD_SPLATS_PRIM} holds its arrays in the root layer (expected its own layer)")
        elif source_layer is not None and manifest_has_splats and \
                Path(source_layer.realPath).name != world.manifest.files["splats_usd"]:
            problems.append(f"{WORLD_SPLATS_PRIM} arrays come from {Path(source_layer.realPath).name}, world.json "
                            f"says {world.manifest.files['splats_usd']}")

    # visual
    if has_visual:
        visual = stage.GetPrimAtPath(VISUAL_PRIM)
        if not visual.IsA(UsdGeom.Mesh):
            problems.append(f"{VISUAL_PRIM} is not a Mesh")
        else:
            problems += _check_mesh(visual, VISUAL_PRIM)
            data["visual_triangles"] = len(UsdGeom.Mesh(visual).GetFaceVertexCountsAttr().Get() or [])
            primvar = UsdGeom.PrimvarsAPI(visual).GetPrimvar("displayColor")
            points = UsdGeom.Mesh(visual).GetPointsAttr().Get()
            if not primvar or not primvar.HasValue():
                problems.append(f"{VISUAL_PRIM} has no primvars:displayColor")
            elif primvar.GetInterpolation() != UsdGeom.Tokens.vertex:
                problems.append(f"{VISUAL_PRIM} displayColor interpolation is {primvar.GetInterpolation()!r}, "
                                "expected 'vertex'")
            elif len(primvar.Get()) != len(points):
                problems.append(f"{VISUAL_PRIM} has {len(primvar.Get())} colours for {len(points)} points")

    # spawn points
    expected = world.spawn_points
    root = stage.GetPrimAtPath(SPAWN_ROOT_PRIM)
    spawns = [p for p in root.GetChildren() if p.IsA(UsdGeom.Xformable)] if root.IsValid() else []
    if len(spawns) != len(expected):
        problems.append(f"{SPAWN_ROOT_PRIM} has {len(spawns)} spawn Xforms, world.json lists {len(expected)}")
    else:
        for prim, (x, y, z, yaw) in zip(spawns, expected, strict=True):
            matrix = np.asarray(UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(Usd.TimeCode.Default()))
            position = matrix[3, :3]
            heading = math.atan2(matrix[0, 1], matrix[0, 0])
            yaw_error = abs((heading - yaw + math.pi) % (2 * math.pi) - math.pi)
            if np.abs(position - (x, y, z)).max() > TOLERANCE or yaw_error > 1e-4:
                problems.append(f"{prim.GetPath()} is at {np.round(position, 4).tolist()} yaw {heading:.4f}, "
                                f"world.json says {[x, y, z]} yaw {yaw:.4f}")
    data["spawn_points"] = len(spawns)

    # lights
    from pxr import UsdLux

    lights = [p for p in Usd.PrimRange(stage.GetPrimAtPath(LIGHTS_PRIM))] if stage.GetPrimAtPath(LIGHTS_PRIM) else []
    if not any(p.IsA(UsdLux.DomeLight) for p in lights) or not any(p.IsA(UsdLux.DistantLight) for p in lights):
        problems.append(f"{LIGHTS_PRIM} lacks a DomeLight and a DistantLight")

    problems += _check_custom_data(root_layer.customLayerData.get(CUSTOM_DATA_KEY), world)
    status = "fail" if problems else "pass"
    summary = (f"{len(data.get('layers', []))} layers, ground {data.get('ground_triangles', 0)} triangles, "
               f"{data.get('splats', 0)} splats, {data['spawn_points']} spawn points")
    return CheckResult("usd", status, summary, problems, data=data)



def _attribute_type_problems(prim, types: dict[str, str], name: str) -> list[str]:
    """Attributes of ``prim`` that have no value or another type than ``types`` (attribute -> USD type name)."""
    problems = []
    for attr_name, type_name in types.items():
        attr = prim.GetAttribute(attr_name)
        if not attr.HasValue():
            problems.append(f"{name}.{attr_name} has no value")
        elif str(attr.GetTypeName()) != type_name:
            problems.append(f"{name}.{attr_name} is {attr.GetTypeName()}, expected {type_name}")
    return problems

def _check_mesh(prim, name: str) -> list[str]:
    from pxr import UsdGeom

    problems = _attribute_type_problems(prim, MESH_ATTRIBUTE_TYPES, name)
    if problems:
        return problems
    mesh = UsdGeom.Mesh(prim)
    points = np.asarray(mesh.GetPointsAttr().Get(), dtype=np.float32).reshape(-1, 3)
    counts = np.asarray(mesh.GetFaceVertexCountsAttr().Get(), dtype=np.int64)
    indices = np.asarray(mesh.GetFaceVertexIndicesAttr().Get(), dtype=np.int64)
    if len(counts) == 0:
        problems.append(f"{name} has zero faces")
    if not np.isfinite(points).all():
        problems.append(f"{name} has {int((~np.isfinite(points)).any(axis=1).sum())} non-finite points")
    if counts.sum() != len(indices):
        problems.append(f"{name} faceVertexCounts sum {counts.sum()} != {len(indices)} faceVertexIndices")
    if len(indices) and (indices.min() < 0 or indices.max() >= len(points)):
        problems.append(f"{name} faceVertexIndices reference points outside 0..{len(points) - 1}")
    extent = np.asarray(mesh.GetExtentAttr().Get(), dtype=np.float64)
    if len(points) and np.isfinite(points).all() and (
            (points.min(axis=0) < extent[0] - 1e-4).any() or (points.max(axis=0) > extent[1] + 1e-4).any()):
        problems.append(f"{name} extent {extent.tolist()} does not contain its points")
    if problems:
        return problems
    # what omni_asset_validate's NormalsValidChecker and ZeroAreaFaceChecker test, vectorized (they loop in Python)
    normals_attr = mesh.GetNormalsAttr()
    if normals_attr.HasValue():
        normals = np.asarray(normals_attr.Get(), dtype=np.float64).reshape(-1, 3)
        want = {"vertex": len(points), "varying": len(points), "faceVarying": len(indices), "uniform": len(counts),
                "constant": 1}.get(mesh.GetNormalsInterpolation())
        length = np.linalg.norm(normals, axis=1)
        if want is None or len(normals) != want:
            problems.append(f"{name} has {len(normals)} normals for interpolation "
                            f"{mesh.GetNormalsInterpolation()!r} (expected {want})")
        elif not np.isfinite(normals).all():
            problems.append(f"{name} has non-finite normals")
        elif len(length) and np.abs(length - 1.0).max() > NORMAL_LENGTH_TOLERANCE:
            bad = int((np.abs(length - 1.0) > NORMAL_LENGTH_TOLERANCE).sum())
            problems.append(f"{name} has {bad} non-unit normals")
    if (counts == 3).all() and len(counts):
        tri = points[indices.reshape(-1, 3)].astype(np.float64)
        area2 = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        zero = int((area2 <= ZERO_AREA * 2).sum())
        if zero:
            problems.append(f"{name} has {zero} zero-area triangles")
    return problems


def _check_splats(prim, stage) -> tuple[list[str], int]:
    from pxr import UsdVol

    problems = _attribute_type_problems(prim, SPLAT_ATTRIBUTE_TYPES, WORLD_SPLATS_PRIM)
    if problems:
        return problems, 0
    field_ = UsdVol.ParticleField3DGaussianSplat(prim)
    positions = np.asarray(field_.GetPositionsAttr().Get(), dtype=np.float32)
    n = len(positions)
    quats = np.asarray(field_.GetOrientationsAttr().Get(), dtype=np.float32).reshape(-1, 4)
    scales = np.asarray(field_.GetScalesAttr().Get(), dtype=np.float32).reshape(-1, 3)
    opacities = np.asarray(field_.GetOpacitiesAttr().Get(), dtype=np.float32)
    degree = int(field_.GetRadianceSphericalHarmonicsDegreeAttr().Get())
    coeffs = field_.GetRadianceSphericalHarmonicsCoefficientsAttr().Get()
    for name, array, want in (("orientations", quats, n), ("scales", scales, n), ("opacities", opacities, n),
                              ("sphericalHarmonicsCoefficients", coeffs, n * (degree + 1) ** 2)):
        if len(array) != want:
            problems.append(f"{WORLD_SPLATS_PRIM}.{name} has {len(array)} entries, expected {want}")
    if problems:
        return problems, n
    if not np.isfinite(positions).all():
        problems.append(f"{WORLD_SPLATS_PRIM} has non-finite positions")
    norms = np.linalg.norm(quats, axis=1)
    if n and np.abs(norms - 1).max() > 1e-3:
        problems.append(f"{WORLD_SPLATS_PRIM} has {int((np.abs(norms - 1) > 1e-3).sum())} non-unit orientations")
    if n and not ((scales > 0) & np.isfinite(scales)).all():
        problems.append(f"{WORLD_SPLATS_PRIM} has {int((~((scales > 0) & np.isfinite(scales))).any(axis=1).sum())} "
                        "non-positive or non-finite scales (scales must be linear, not log)")
    sh_attr = prim.GetAttribute("radiance:sphericalHarmonicsCoefficients")
    if sh_attr.GetMetadata("interpolation") != "vertex" or sh_attr.GetMetadata("elementSize") != (degree + 1) ** 2:
        problems.append(f"{WORLD_SPLATS_PRIM}.radiance:sphericalHarmonicsCoefficients lacks interpolation 'vertex' "
                        f"and elementSize {(degree + 1) ** 2} metadata")
    if n and not ((opacities >= 0) & (opacities <= 1)).all():
        problems.append(f"{WORLD_SPLATS_PRIM} has opacities outside [0, 1] (must be sigmoid-activated)")
    return problems, n


def _check_custom_data(data, world: WorldDir) -> list[str]:
    if not data:
        return [f"root layer customLayerData has no '{CUSTOM_DATA_KEY}' dictionary"]
    m = world.manifest
    expected = {
        "source_sha256": str((m.source or {}).get("sha256", "")),
        "scale_factor": float(m.scale_factor),
        "source_to_world": np.asarray(m.source_to_world, dtype=np.float64).reshape(-1),
        "walkable_area_m2": float(m.walkable_area_m2),
        "spawn_count": len(m.spawn_points),
        "version": str(m.version),
        "format_version": int(m.format_version),
    }
    problems = []
    for key, want in expected.items():
        if key not in data:
            problems.append(f"customLayerData {CUSTOM_DATA_KEY}.{key} is missing")
            continue
        got = data[key]
        if isinstance(want, str):
            same = str(got) == want
        else:
            got_array = np.asarray(list(got) if not np.isscalar(got) else got, dtype=np.float64)
            same = got_array.shape == np.shape(want) and np.allclose(got_array, want, atol=TOLERANCE, rtol=1e-6)
        if not same:
            shown = np.asarray(want).tolist() if not isinstance(want, str) else want
            problems.append(f"customLayerData {CUSTOM_DATA_KEY}.{key} = {got!r} but world.json says {shown!r}")
    return problems


# --------------------------------------------------------------------------------------------------------------
# omni_asset_validate


def _check_asset_validator(world: WorldDir, splat_count: int | None = None,
                           triangles: int | None = None) -> CheckResult:
    logging.getLogger("omni.asset_validator").setLevel(logging.WARNING)  # its plugin start-up logs at INFO
    try:
        import omni.asset_validator as validator
    except ImportError:
        return CheckResult("asset_validator", "skip", "omniverse-asset-validator is not installed: "
                           "pip install 'lyra-isaac[validate]'")
    path = world.file("usd")
    if not path.is_file():
        return CheckResult("asset_validator", "fail", "no USD file", [f"{path.name} is missing"])
    engine = validator.ValidationEngine()
    notes = []
    if (triangles or 0) > HEAVY_MESH_RULES_MAX_TRIANGLES:
        for rule in HEAVY_MESH_RULES:
            if hasattr(validator, rule):
                engine.disable_rule(getattr(validator, rule))
        notes.append(f"{', '.join(HEAVY_MESH_RULES)} not run on {triangles} mesh triangles (Python loops: "
                     "~10-20 s per million each); the usd check tests normals and zero-area faces with numpy and "
                     "manifold findings are accepted warnings")
    for rule in EXTRA_VALIDATOR_RULES:
        if rule == "GaussianSplatSchemaChecker" and (splat_count or 0) > GAUSSIAN_RULE_MAX_SPLATS:
            notes.append(f"GaussianSplatSchemaChecker not run on {splat_count} splats (its per-splat Python loops "
                         "take ~6 s per million); the usd check tested the same properties")
            continue
        if hasattr(validator, rule):
            engine.enable_rule(getattr(validator, rule))
    results = engine.validate(str(path))
    errors, warnings = [], []
    accepted = 0
    for issue in results.issues():
        rule = getattr(issue.rule, "__name__", str(issue.rule))
        where = getattr(getattr(issue, "at", None), "path", None)
        text = f"[{rule}] {issue.message}" + (f" at {where}" if where else "")
        severity = str(issue.severity).rsplit(".", 1)[-1]
        if severity in ("ERROR", "FAILURE"):
            errors.append(text)
        elif severity == "WARNING":
            if rule in ACCEPTED_WARNINGS:
                accepted += 1
                text += " (expected on lyra_isaac worlds; see README: accepted validator warnings)"
            warnings.append(text)
    warnings += notes
    status = "fail" if errors else "pass"
    summary = f"{len(errors)} errors, {len(warnings) - len(notes)} warnings ({accepted} accepted)"
    return CheckResult("asset_validator", status, summary, errors, warnings,
                       data={"errors": len(errors), "warnings": len(warnings)})


# --------------------------------------------------------------------------------------------------------------
# drop probes


@dataclass
class _Probes:
    points: np.ndarray
    """(P, 3) sphere start centres, metres, world frame."""
    expected: np.ndarray
    """(P,) rest height of each sphere's centre where it was dropped, metres."""
    labels: list[str]
    skipped: list[str]
    surface: _Surface


class _Surface:
    """The collision mesh for vertical ray casts: per-triangle xy bounding boxes, prefiltered per query patch."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        self.tri = np.asarray(vertices, dtype=np.float32)[np.asarray(faces)]  # (F, 3, 3); float64 per query
        self.lo = self.tri[:, :, :2].min(axis=1)
        self.hi = self.tri[:, :, :2].max(axis=1)

    def patch(self, x: float, y: float, half: float) -> _Surface:
        """The triangles whose xy box meets the square of half-size ``half`` around (x, y)."""
        keep = ((self.lo[:, 0] <= x + half) & (self.hi[:, 0] >= x - half) & (self.lo[:, 1] <= y + half)
                & (self.hi[:, 1] >= y - half))
        sub = object.__new__(_Surface)
        sub.tri, sub.lo, sub.hi = self.tri[keep], self.lo[keep], self.hi[keep]
        return sub

    def heights(self, xy: np.ndarray, z_top: float | np.ndarray) -> np.ndarray:
        """(R,) height of the first surface hit by vertical rays cast down from (x, y, z_top); NaN where none.

        Args:
            xy: (R, 2) ray positions, metres; z_top: ray start height(s), metres.
        """
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        z_top = np.broadcast_to(np.asarray(z_top, dtype=np.float64), (len(xy),))
        out = np.full(len(xy), np.nan)
        for r, (x, y) in enumerate(xy):
            cand = np.nonzero((self.lo[:, 0] <= x) & (self.hi[:, 0] >= x) & (self.lo[:, 1] <= y)
                              & (self.hi[:, 1] >= y))[0]
            if not len(cand):
                continue
            t = self.tri[cand].astype(np.float64)
            a, b, c = t[:, 0], t[:, 1], t[:, 2]
            det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
            ok = np.abs(det) > 1e-12
            det = np.where(ok, det, 1.0)
            u = ((x - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (y - a[:, 1])) / det
            v = ((b[:, 0] - a[:, 0]) * (y - a[:, 1]) - (x - a[:, 0]) * (b[:, 1] - a[:, 1])) / det
            eps = 1e-9
            inside = ok & (u >= -eps) & (v >= -eps) & (u + v <= 1 + eps)
            z = a[:, 2] + u * (b[:, 2] - a[:, 2]) + v * (c[:, 2] - a[:, 2])
            z = z[inside & (z <= z_top[r])]
            if len(z):
                out[r] = z.max()
        return out

    def sphere_rest(self, x: float, y: float, radius: float, z_top: float) -> tuple[float, float]:
        """Lowest height of a sphere's centre above (x, y) that does not penetrate the surface, metres.

        ``max over p in the disk of (h(p) + sqrt(r^2 - |p - c|^2))`` on a grid of vertical rays (spacing
        radius / 8): exact on flat ground, ~1 mm on smooth slopes, within ~5 mm where the sphere leans on a step
        edge. Rays through holes of a reconstructed mesh only remove constraints (a sphere on the rim of a hole
        rests on the rim).

        Returns:
            (height, hole_fraction): NaN height when no ray under the disk hits the surface; the fraction of the
            disk over holes.
        """
        offsets = _disk_grid(radius)
        patch = self.patch(x, y, radius)
        heights = patch.heights(np.array([x, y]) + offsets, z_top)
        hit = np.isfinite(heights)
        if not hit.any():
            return math.nan, 1.0
        lift = np.sqrt(np.maximum(radius**2 - (offsets[hit] ** 2).sum(axis=1), 0.0))
        return float((heights[hit] + lift).max()), float(1.0 - hit.mean())


def _disk_grid(radius: float, steps: int = 8) -> np.ndarray:
    """(K, 2) offsets on a square grid (spacing radius / steps) inside a disk of ``radius``."""
    axis = np.linspace(-radius, radius, 2 * steps + 1)
    gx, gy = np.meshgrid(axis, axis)
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    return grid[(grid**2).sum(axis=1) <= radius**2 + 1e-12]


def _ring(radius: float, count: int = 12) -> np.ndarray:
    """(count + 1, 2) offsets: the centre and ``count`` points on a circle of ``radius``."""
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return np.vstack([[0.0, 0.0], radius * np.column_stack([np.cos(angles), np.sin(angles)])])


_SURFACES: dict[tuple[str, float], _Surface] = {}
"""collision.ply (path, mtime) -> its _Surface, so the spawns and probe checks of one run load it once."""


def _surface(world: WorldDir) -> _Surface:
    if "collision" not in world.manifest.files or not world.file("collision").is_file():
        raise InputError(world.path, "world has no collision.ply (needed for the expected heights)")
    path = world.file("collision")
    key = (str(path.resolve()), path.stat().st_mtime)
    if key not in _SURFACES:
        _SURFACES.clear()  # keep one mesh in memory at most
        mesh = world.collision_mesh()
        _SURFACES[key] = _Surface(mesh.vertices, mesh.faces)
    return _SURFACES[key]


def _check_spawns(world: WorldDir) -> CheckResult:
    spawns = world.spawn_points
    if not len(spawns):
        return CheckResult("spawns", "fail", "no spawn points", ["world.json lists no spawn points"])
    surface_mesh = _surface(world)
    surface = np.array([surface_mesh.patch(x, y, 0.01).heights([[x, y]], z + 0.5)[0] for x, y, z, _ in spawns])
    problems = []
    for i, ((x, y, z, _), h) in enumerate(zip(spawns, surface, strict=True)):
        if not np.isfinite(h):
            problems.append(f"spawn_{i:03d} ({x:.2f}, {y:.2f}, {z:.2f}) has no collision surface below it")
        elif abs(z - h) > SPAWN_TOLERANCE:
            problems.append(f"spawn_{i:03d} ({x:.2f}, {y:.2f}) is at z={z:.3f} but the collision surface is at "
                            f"z={h:.3f}")
    if "heightmap" in world.manifest.files and world.file("heightmap").is_file():
        walkable = world.heightmap().is_walkable(spawns[:, :2])
        problems += [f"spawn_{i:03d} ({spawns[i, 0]:.2f}, {spawns[i, 1]:.2f}) is not on a walkable height-map cell"
                     for i in np.nonzero(~walkable)[0]]
    errors = np.abs(spawns[:, 2] - surface)
    worst = f", max height error {np.nanmax(errors) * 100:.1f} cm" if np.isfinite(errors).any() else ""
    return CheckResult("spawns", "fail" if problems else "pass", f"{len(spawns)} spawn points{worst}", problems)


def _probe_points(world: WorldDir, radius: float = PROBE_RADIUS) -> _Probes:
    """Spawn points plus walkable height-map cells where a sphere can rest: the ground under a disk of
    ``PROBE_MARGIN * radius`` has a collision surface everywhere, a fitted slope under ``MAX_PROBE_SLOPE_DEG`` and
    less than ``MAX_PROBE_RELIEF`` of relief (no step edge under the sphere)."""
    surface = _surface(world)
    candidates = [(f"spawn_{i:03d}", x, y, z) for i, (x, y, z, _) in enumerate(world.spawn_points)]
    if "heightmap" in world.manifest.files and world.file("heightmap").is_file():
        candidates += _walkable_cells(world.heightmap())
    ring = _ring(PROBE_MARGIN * radius)
    max_slope = math.tan(math.radians(MAX_PROBE_SLOPE_DEG))
    points, expected, labels, skipped = [], [], [], []
    extra = rejected_cells = 0
    for label, x, y, z in candidates:
        is_cell = label.startswith("cell")
        if len(points) >= MAX_PROBES or (is_cell and extra >= MAX_EXTRA_PROBES):
            break
        if any(math.hypot(x - p[0], y - p[1]) < 4 * radius for p in points):
            continue  # keep spheres apart so they never touch each other
        patch = surface.patch(x, y, PROBE_MARGIN * radius)
        heights = patch.heights(np.array([x, y]) + ring, z + 0.5)
        reason = None
        hit = np.isfinite(heights)
        if not hit[0] or hit.mean() < 1.0 - MAX_HOLE_FRACTION:
            reason = "no collision surface under part of the sphere's footprint"
        else:
            heights = heights[hit]
            design = np.column_stack([ring[hit], np.ones(int(hit.sum()))])
            (gx, gy, _), *_ = np.linalg.lstsq(design, heights, rcond=None)
            if math.hypot(gx, gy) > max_slope:
                reason = f"ground slope {math.degrees(math.atan(math.hypot(gx, gy))):.0f} deg under the sphere"
            elif heights.max() - heights.min() > MAX_PROBE_RELIEF + math.hypot(gx, gy) * 2 * PROBE_MARGIN * radius:
                reason = f"a step under the sphere ({heights.max() - heights.min():.3f} m relief)"
        rest, holes = (math.nan, 1.0) if reason else patch.sphere_rest(x, y, radius, z + 0.5)
        if reason is None and holes > MAX_HOLE_FRACTION:
            reason = f"{holes:.0%} of the sphere's disk lies over holes in the collision surface"
        if reason is not None:
            if is_cell:
                rejected_cells += 1
            else:
                skipped.append(f"{label}: {reason}")
            continue
        points.append((x, y, rest + DROP_CLEARANCE))
        expected.append(rest)
        labels.append(label)
        extra += is_cell
    if rejected_cells:
        skipped.append(f"{rejected_cells} walkable height-map cells: too steep or a step under the sphere")
    if not points:
        raise InputError(world.path, "no probe point where a sphere can rest (spawn points and walkable cells "
                                     f"with slope < {MAX_PROBE_SLOPE_DEG} deg)")
    return _Probes(np.asarray(points), np.asarray(expected), labels, skipped, surface)


def _walkable_cells(heightmap) -> list[tuple[str, float, float, float]]:
    """Walkable height-map cells (finite height), in a fixed random order."""
    rows, cols = np.nonzero(heightmap.walkable & np.isfinite(heightmap.heights))
    order = np.random.default_rng(0).permutation(len(rows))[: 40 * MAX_EXTRA_PROBES]
    return [(f"cell_{rows[k]}_{cols[k]}", heightmap.origin[0] + cols[k] * heightmap.cell_size,
             heightmap.origin[1] + rows[k] * heightmap.cell_size, float(heightmap.heights[rows[k], cols[k]]))
            for k in order]


def _compare_rest(rest: np.ndarray, probes: _Probes, engine: str) -> tuple[list[str], list[str], np.ndarray]:
    """Compare each sphere's rest centre with the collision surface under *where it came to rest*.

    Returns:
        problems, warnings (spheres that rolled more than ``MAX_DRIFT``), and (P,) signed height errors in metres
        (engine minus surface; NaN where the sphere left the surface).
    """
    problems, warnings = [], []
    errors = np.full(len(rest), np.nan)
    for k, (label, start, got) in enumerate(zip(probes.labels, probes.points, rest, strict=True)):
        if not np.isfinite(got).all():
            problems.append(f"{engine}: sphere at {label} has a non-finite position")
            continue
        drift = math.hypot(got[0] - start[0], got[1] - start[1])
        want, holes = probes.surface.sphere_rest(float(got[0]), float(got[1]), PROBE_RADIUS, float(start[2]))
        if not math.isfinite(want):
            problems.append(f"{engine}: sphere at {label} fell off or through the collision surface (now at "
                            f"{np.round(got, 3).tolist()})")
            continue
        if holes > MAX_HOLE_FRACTION:
            warnings.append(f"{engine}: sphere at {label} rests on the rim of a hole in the collision surface "
                            f"({holes:.0%} of its disk over the hole, at {np.round(got[:2], 2).tolist()})")
        errors[k] = got[2] - want
        if abs(errors[k]) > REST_TOLERANCE:
            problems.append(f"{engine}: sphere at {label} ({start[0]:.2f}, {start[1]:.2f}) rests at z={got[2]:.3f}, "
                            f"collision surface says z={want:.3f} ({errors[k] * 100:+.1f} cm)")
        if drift > MAX_DRIFT:
            warnings.append(f"{engine}: sphere at {label} rolled {drift:.2f} m before resting")
    return problems, warnings, errors


def _check_newton(world: WorldDir, probes: _Probes, timeout: float) -> CheckResult:
    try:
        import importlib.util

        if any(importlib.util.find_spec(name) is None for name in ("newton", "warp", "newton_usd_schemas")):
            raise ImportError
    except ImportError:
        return CheckResult("newton", "skip", "newton (with newton-usd-schemas) is not installed: "
                           "pip install 'lyra-isaac[validate]'")
    request = {"usd": str(world.file("usd").resolve()), "points": probes.points.tolist(), "radius": PROBE_RADIUS,
               "duration": SETTLE_SECONDS, "rolling_friction": ROLLING_FRICTION}
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        proc = subprocess.run([sys.executable, "-m", "lyra_isaac.usd._newton_drop"], input=json.dumps(request),
                              capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return CheckResult("newton", "fail", "timed out", [f"Newton did not finish within {timeout:.0f} s"])
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return CheckResult("newton", "fail", "Newton could not load or simulate the stage",
                           [" | ".join(tail) or f"exit code {proc.returncode}"])
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return CheckResult("newton", "fail", "unreadable Newton output", [proc.stdout[-300:]])
    rest = np.asarray(result["rest"], dtype=np.float64).reshape(-1, 3)
    problems = []
    if result.get("shapes", 0) < 1:
        problems.append("Newton found no collision shape in the stage")
    gravity = result.get("gravity")
    if gravity is not None and not np.allclose(gravity, (0.0, 0.0, -9.81), atol=0.05):
        problems.append(f"Newton read gravity {np.round(gravity, 3).tolist()} from the stage, expected (0, 0, -9.81)")
    found, warnings, errors = _compare_rest(rest, probes, "Newton")
    problems += found
    status = "fail" if problems else "pass"
    summary = (f"{len(rest)} spheres, max rest error {_max_cm(errors)} "
               f"(load {result['seconds']['load']:.1f} s, simulate {result['seconds']['simulate']:.1f} s)")
    warnings += [f"probes skipped: {s}" for s in probes.skipped]
    return CheckResult("newton", status, summary, problems, warnings,
                       data={"rest": rest.tolist(), "errors_m": errors.tolist(), "labels": probes.labels})


def _max_cm(errors: np.ndarray) -> str:
    finite = np.abs(errors[np.isfinite(errors)])
    return f"{finite.max() * 100:.2f} cm" if len(finite) else "n/a"


def _check_mujoco(world: WorldDir, probes: _Probes, newton: dict | None) -> CheckResult:
    import mujoco

    path = world.path / world.manifest.files.get("mjcf", MJCF_SCENE)
    if not path.is_file():
        return CheckResult("mujoco", "fail", f"no MuJoCo scene ({path.name} missing)",
                           [f"{path.name} is not in the world directory; convert writes it (write_mjcf_scene)"])
    try:
        spec = mujoco.MjSpec.from_file(str(path))
        for i, (x, y, z) in enumerate(probes.points):
            body = spec.worldbody.add_body(name=f"lyra_probe_{i}", pos=[x, y, z])
            body.add_freejoint()
            body.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[PROBE_RADIUS, 0, 0], density=500.0,
                          condim=6, friction=[1.0, 0.02, ROLLING_FRICTION])
        model = spec.compile()
    except Exception as exc:  # mujoco raises ValueError with the compiler message
        return CheckResult("mujoco", "fail", "MuJoCo cannot compile the scene", [f"{path.name}: {exc}"])
    data = mujoco.MjData(model)
    steps = int(round(SETTLE_SECONDS / model.opt.timestep))
    mujoco.mj_step(model, data, nstep=steps)
    ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"lyra_probe_{i}") for i in range(len(probes.points))]
    rest = data.xpos[ids].astype(np.float64)
    problems, warnings, errors = _compare_rest(rest, probes, "MuJoCo")
    data_out = {"rest": rest.tolist(), "errors_m": errors.tolist(), "labels": probes.labels}
    newton_rest = np.asarray(newton["rest"], dtype=np.float64).reshape(-1, 3) if newton else None
    newton_errors = newton["errors_m"] if newton else None
    if newton_rest is not None and len(newton_rest) == len(rest):
        # Compare each engine's rest height above the collision surface under where *it* came to rest: equal to
        # comparing heights when both rest at the same place, and still meaningful when one rolled a few cm.
        apart = np.hypot(*(rest[:, :2] - newton_rest[:, :2]).T) > MAX_DRIFT
        gap = np.abs(errors - np.asarray(newton_errors, dtype=np.float64))
        data_out["max_gap_to_newton_m"] = float(np.nanmax(gap)) if np.isfinite(gap).any() else None
        rows = zip(probes.labels, gap, rest[:, 2], newton_rest[:, 2], errors, newton_errors, apart, strict=True)
        for label, g, m, n, em, en, far in rows:
            if np.isfinite(g) and g > ENGINE_TOLERANCE:
                problems.append(f"sphere at {label}: MuJoCo rests {em * 100:+.1f} cm from the collision surface "
                                f"(z={m:.3f}), Newton {en * 100:+.1f} cm (z={n:.3f}): {g * 100:.1f} cm apart, "
                                f"tolerance {ENGINE_TOLERANCE * 100:.0f} cm")
            if far:
                warnings.append(f"sphere at {label} came to rest at different places in MuJoCo and Newton")
        compared = f", max gap to Newton {_max_cm(gap)}"
    else:
        compared = " (Newton heights unavailable: compared with the collision surface only)"
    status = "fail" if problems else "pass"
    return CheckResult("mujoco", status, f"{len(rest)} spheres, max rest error {_max_cm(errors)}{compared}",
                       problems, warnings, data=data_out)
