"""Truth fixtures and fidelity metrics.

Known meshes (:mod:`.scenes`) rendered along Lyra-like camera paths (:mod:`.path`, :mod:`.render`) become
Lyra 2.0-exact splat scenes with Lyra's faults (:mod:`.lyra_fixture`) or optimized INRIA 3DGS scenes as a trainer
leaves them (:mod:`.optimized_fixture`); :mod:`.metrics` compares a converted world
with the truth. The fixtures are also the default world of the Gym env and the CLI demo.
"""

from __future__ import annotations

from .lyra_fixture import FaultConfig, Fixture, load_fixture, make_fixture
from .metrics import FidelityReport, MetricsConfig, evaluate, evaluate_world
from .optimized_fixture import OptimizedConfig, load_optimized_fixture, make_optimized_fixture
from .path import CameraConfig, camera_path
from .scenes import SCENES, SyntheticScene, build_scene

__all__ = [
    "SCENES",
    "CameraConfig",
    "FaultConfig",
    "FidelityReport",
    "Fixture",
    "MetricsConfig",
    "OptimizedConfig",
    "SyntheticScene",
    "build_scene",
    "camera_path",
    "evaluate",
    "evaluate_world",
    "load_fixture",
    "load_optimized_fixture",
    "make_fixture",
    "make_optimized_fixture",
]
