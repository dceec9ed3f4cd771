"""MuJoCo scene of a world: :func:`write_mjcf_scene` (plane, height-field tiles, convex parts, spawn sites)."""

from __future__ import annotations

from .scene import MjcfConfig, write_mjcf_scene

__all__ = ["MjcfConfig", "write_mjcf_scene"]
