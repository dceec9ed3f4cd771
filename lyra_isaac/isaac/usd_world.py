"""Bringing a world directory's USD stage into another stage (pxr only, no Kit: tested with usd-core).

The Isaac Sim backend lays several worlds side by side in one simulation stage. Referencing each whole
``world.usda`` would bring one ``PhysicsScene`` per world; instead each child of the world's default prim except the
physics scene (``ground``, ``Visual``, ``Splats``, ``SpawnPoints``, lights...) is referenced on its own under one
translated Xform per world, and the simulation stage keeps a single physics scene of its own.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import InputError

logger = logging.getLogger(__name__)

PHYSICS_SCENE_TYPE = "PhysicsScene"


def world_content_paths(usd_path: str | Path) -> list[str]:
    """Paths of the children of ``usd_path``'s default prim, physics scenes excluded, in stage order.

    The stage is opened without loading payloads (splats stay unloaded), so this is cheap.

    Raises:
        InputError: the layer cannot be opened or has no default prim.
    """
    from pxr import Usd

    try:
        stage = Usd.Stage.Open(str(usd_path), load=Usd.Stage.LoadNone)
    except Exception as exc:  # noqa: BLE001 - pxr raises Tf.ErrorException on unreadable layers
        raise InputError(usd_path, f"cannot open the world's USD stage: {exc}") from None
    root = stage.GetDefaultPrim()
    if not root:
        raise InputError(usd_path, "the world's USD stage has no default prim")
    return [str(child.GetPath()) for child in root.GetChildren() if child.GetTypeName() != PHYSICS_SCENE_TYPE]


def reference_world_content(stage: Any, usd_path: str | Path, parent: str,
                            translation: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> list[str]:
    """Reference every non-physics-scene child of a world's default prim under ``parent`` (an Xform, translated).

    Each child becomes ``<parent>/<name>``: an ``over`` with a reference to ``(usd_path, /World/<name>)``, so its
    type, geometry, collision and material come from the world unchanged.

    Args:
        stage: the ``Usd.Stage`` to edit.
        usd_path: the world's root layer (``world.usda``), absolute.
        parent: prim path of the new Xform that holds the world.
        translation: where the world's origin goes in ``stage``, metres.

    Returns:
        The referenced prim paths in ``stage``.
    """
    from pxr import Gf, Sdf, UsdGeom

    children = world_content_paths(usd_path)
    holder = UsdGeom.Xform.Define(stage, parent)
    if any(translation):
        holder.AddTranslateOp().Set(Gf.Vec3d(*translation))
    made = []
    for child in children:
        path = f"{parent}/{Sdf.Path(child).name}"
        prim = stage.OverridePrim(path)
        prim.GetReferences().AddReference(str(usd_path), Sdf.Path(child))
        made.append(path)
    return made
