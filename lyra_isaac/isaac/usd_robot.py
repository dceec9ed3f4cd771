"""USD edits a referenced Isaac Sim robot needs before simulation (pxr only, no Kit: tested with usd-core).

Isaac Sim 6.x robot assets carry a ``Physics`` variant set with one variant per physics engine (``physx``, and
``mujoco`` for Newton); the variant for the engine in use must be selected before the articulation is created, and
PhysX articulation roots need ``PhysxArticulationAPI`` (what Isaac Sim's own ``isaacsim.robot.policy.examples`` does
when it spawns H1).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

PHYSICS_VARIANT_SET = "Physics"
ENGINE_VARIANTS = {"physx": "physx", "newton": "mujoco"}
"""Physics engine -> the variant name Isaac Sim's assets use for it."""


def physics_variant(available: Sequence[str], engine: str) -> str | None:
    """The variant of ``available`` that matches physics ``engine`` (case-insensitive), or None."""
    wanted = ENGINE_VARIANTS.get(engine.lower(), engine.lower())
    return next((v for v in available if v.lower() == wanted), None)


def select_physics_variant(prim: Any, engine: str = "physx") -> str | None:
    """Select the ``Physics`` variant for ``engine`` on a robot prim (a ``Usd.Prim`` holding the asset reference).

    Returns:
        The selected variant, or None when the asset has no Physics variant set or no variant for the engine (then
        the asset's default selection stays, with a warning in the log).
    """
    sets = prim.GetVariantSets()
    if PHYSICS_VARIANT_SET not in sets.GetNames():
        return None
    variant_set = sets.GetVariantSet(PHYSICS_VARIANT_SET)
    names = list(variant_set.GetVariantNames())
    choice = physics_variant(names, engine)
    if choice is None:
        logger.warning("%s: no Physics variant for engine '%s' (available: %s); keeping '%s'", prim.GetPath(), engine,
                       names, variant_set.GetVariantSelection())
        return None
    variant_set.SetVariantSelection(choice)
    return choice


def ensure_physx_articulation_api(prim: Any) -> list[str]:
    """Apply ``PhysxArticulationAPI`` (by schema name) to every articulation root under ``prim`` that lacks it.

    Returns:
        The paths it was applied to.
    """
    from pxr import Usd, UsdPhysics

    applied = []
    for child in Usd.PrimRange(prim):
        # the type info keeps schema names whose plugin is not loaded (GetAppliedSchemas() drops them)
        schemas = set(child.GetPrimTypeInfo().GetAppliedAPISchemas())
        if not (child.HasAPI(UsdPhysics.ArticulationRootAPI) or "NewtonArticulationRootAPI" in schemas):
            continue
        if "PhysxArticulationAPI" in schemas:
            continue
        # by name, without validation: works whether or not the PhysxSchema plugin is loaded (usd-core has none)
        child.AddAppliedSchema("PhysxArticulationAPI")
        applied.append(str(child.GetPath()))
    return applied


def prepare_robot_prim(prim: Any, engine: str = "physx") -> str | None:
    """Both edits for a freshly referenced robot prim: the engine's Physics variant and, for PhysX, the articulation
    API. Returns the selected variant (None if the asset has none)."""
    choice = select_physics_variant(prim, engine)
    if engine.lower() == "physx":
        ensure_physx_articulation_api(prim)
    return choice
