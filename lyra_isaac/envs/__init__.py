"""Gymnasium environments over converted worlds: ``LyraWorld-v0`` (velocity tracking), ``LyraWorldNav-v0`` (goals).

Importing this package (``import lyra_isaac`` does) picks an offscreen OpenGL platform for MuJoCo when none is
set and there is no display: ``MUJOCO_GL=egl`` where libEGL is installed, else ``osmesa`` where libOSMesa is, else
``disable`` (physics without rendering: with ``osmesa`` and no libOSMesa, ``import mujoco`` itself fails, through
PyOpenGL). MuJoCo reads the variable when it is first imported, so this must happen before ``import mujoco``; set
MUJOCO_GL yourself to choose.
"""

from __future__ import annotations

import ctypes.util
import os
from collections.abc import Callable


def offscreen_gl_platform(find_library: Callable[[str], str | None] = ctypes.util.find_library) -> str:
    """The MUJOCO_GL value for offscreen rendering on this machine: "egl", "osmesa" or "disable" (none installed)."""
    if find_library("EGL"):
        return "egl"
    if find_library("OSMesa"):
        return "osmesa"
    return "disable"


def _choose_offscreen_gl() -> None:
    if os.environ.get("MUJOCO_GL") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    os.environ["MUJOCO_GL"] = offscreen_gl_platform()


_choose_offscreen_gl()
