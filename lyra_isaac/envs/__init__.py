"""Gymnasium environments over converted worlds: ``LyraWorld-v0`` (velocity tracking), ``LyraWorldNav-v0`` (goals).

Importing this package (``import lyra_isaac`` does) picks an offscreen OpenGL platform for MuJoCo when none is
set and there is no display: ``MUJOCO_GL=egl`` where libEGL is installed, else ``osmesa``. MuJoCo reads the
variable when it is first imported, so this must happen before ``import mujoco``; set MUJOCO_GL yourself to choose.
"""

from __future__ import annotations

import ctypes.util
import os


def _choose_offscreen_gl() -> None:
    if os.environ.get("MUJOCO_GL") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    os.environ["MUJOCO_GL"] = "egl" if ctypes.util.find_library("EGL") else "osmesa"


_choose_offscreen_gl()
