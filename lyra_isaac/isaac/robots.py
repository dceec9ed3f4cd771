"""Humanoids from Isaac Sim's asset library (UI-free, no Kit imports).

The USDs live on NVIDIA's asset server; Isaac Sim resolves the root with
``isaacsim.storage.native.get_assets_root_path()`` (the extension and the Isaac Sim env backend call it). The relative
paths below are the ones Isaac Sim 6.x's own examples load (``isaacsim.robot.policy.examples`` bundles H1 at
``Isaac/Robots/Unitree/H1/h1.usd``); the stand heights are Isaac Lab's ``init_state.pos`` z for the same robots.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RobotSpec:
    """One humanoid of Isaac Sim's asset library.

    Attributes:
        name: short id ("h1", "g1").
        title: what the UI shows.
        usd_relpath: path below the assets root.
        stand_height: root (pelvis) height above the feet when standing, metres.
    """

    name: str
    title: str
    usd_relpath: str
    stand_height: float

    def usd_url(self, assets_root: str) -> str:
        """Full USD path under ``assets_root`` (a URL or folder, as get_assets_root_path() returns it).

        Raises:
            ConfigError: ``assets_root`` is empty (Isaac Sim could not resolve its asset server).
        """
        if not assets_root:
            raise ConfigError(
                f"cannot locate the {self.title} USD: Isaac Sim's assets root path is not set or not reachable "
                "(set /persistent/isaac/asset_root/default, or check the network / local asset pack)"
            )
        return f"{assets_root.rstrip('/')}/{self.usd_relpath}"


ROBOTS: dict[str, RobotSpec] = {
    "h1": RobotSpec("h1", "Unitree H1", "Isaac/Robots/Unitree/H1/h1.usd", 1.05),
    "g1": RobotSpec("g1", "Unitree G1", "Isaac/Robots/Unitree/G1/g1.usd", 0.74),
}


def robot_spec(name: str) -> RobotSpec:
    """The RobotSpec called ``name`` (case-insensitive); ConfigError listing the choices otherwise."""
    key = name.strip().lower()
    if key not in ROBOTS:
        raise ConfigError(f"unknown Isaac Sim humanoid '{name}' (choose from {', '.join(sorted(ROBOTS))})")
    return ROBOTS[key]
