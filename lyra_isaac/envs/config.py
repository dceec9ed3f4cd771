"""Typed environment definitions: ``envs/<id>.toml`` -> :class:`EnvConfig`, ``envs/robots.toml`` ->
:class:`RobotConfig`.

``gym.make(id, **kwargs)`` overlays kwargs on the id's TOML before validation, so every field can be set from
Python: ``gym.make("LyraWorld-v0", robot="g1", rewards={"alive": 0.5}, physics={"decimation": 4})``. Unknown
keys raise :class:`~lyra_isaac.errors.ConfigError` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..config import from_dict, load_toml, merge
from ..errors import ConfigError
from ..resources import envs_dir

ROBOTS_TOML = "robots.toml"


@dataclass
class PhysicsConfig:
    timestep: float = 0.003
    """Seconds per physics step."""
    decimation: int = 5
    """Physics steps per env step (env dt = timestep * decimation)."""
    integrator: Literal["Euler", "RK4", "implicit", "implicitfast"] = "implicitfast"
    solver: Literal["PGS", "CG", "Newton"] = "PGS"
    iterations: int = 50


@dataclass
class ObservationConfig:
    height_scan: bool = True
    scan_size: tuple[float, float] = (1.6, 1.0)
    """Metres (forward x, lateral y) covered by the scan grid."""
    scan_resolution: float = 0.1
    scan_offset: float = 0.5
    """Subtracted from (base z - ground z), Isaac Lab's height_scan offset."""
    scan_clip: float = 1.0
    clip: float = 100.0
    """Every observation entry is clipped to +-clip."""
    image_width: int = 64
    image_height: int = 48
    image_fovy: float = 70.0
    depth_far: float = 10.0


@dataclass
class CommandConfig:
    """Velocity commands (LyraWorld-v0), resampled during the episode."""

    lin_vel_x: tuple[float, float] = (-0.5, 1.0)
    lin_vel_y: tuple[float, float] = (-0.3, 0.3)
    ang_vel_z: tuple[float, float] = (-0.5, 0.5)
    resample_s: tuple[float, float] = (4.0, 8.0)
    """Seconds between command changes (uniform in the range)."""
    standing_prob: float = 0.05
    """Probability a sampled command is zero (stand still)."""


@dataclass
class GoalConfig:
    """Goals (LyraWorldNav-v0): sampled on walkable cells connected to the spawn."""

    min_distance: float = 1.0
    max_distance: float = 5.0
    reach_radius: float = 0.4


@dataclass
class TerminationConfig:
    max_tilt_deg: float = 60.0
    """Terminate when the base's up axis leans further than this from +Z."""
    leave_walkable: bool = True
    """Terminate when the base's ground point leaves the walkable area."""
    use_robot_height_range: bool = True
    """Terminate when the base height above the local floor leaves the robot's ``base_height_range``."""


@dataclass
class EnvConfig:
    """One registered environment (``envs/<id>.toml``)."""

    id: str = ""
    task: Literal["velocity", "nav"] = "velocity"
    robot: str = "humanoid"
    backend: Literal["mujoco", "isaacsim"] = "mujoco"
    world: Any = None
    """A world directory, a list of them, a folder of worlds or a batch output root; None = the default world."""
    obs_mode: Literal["state", "depth", "rgb"] = "state"
    max_episode_steps: int = 1000
    reset_noise: float = 0.01
    """Uniform joint-position noise at reset, rad."""
    render_width: int = 480
    render_height: int = 360
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    observation: ObservationConfig = field(default_factory=ObservationConfig)
    command: CommandConfig = field(default_factory=CommandConfig)
    goal: GoalConfig = field(default_factory=GoalConfig)
    termination: TerminationConfig = field(default_factory=TerminationConfig)
    rewards: dict[str, float] = field(default_factory=dict)
    """Reward weights by term name (see lyra_isaac.envs.tasks); every term's value is reported in info."""
    tracking_std: float = 0.5
    """Standard deviation (m/s, rad/s) of the exponential tracking kernels."""
    feet_air_time_threshold: float = 0.4
    """Seconds; feet_air_time rewards swings longer than this."""


@dataclass
class RobotConfig:
    """One robot entry of ``envs/robots.toml``."""

    model: str = ""
    """Model file: ``<python package>:<path inside it>`` (resolved in the installed package) or a file path."""
    extra: str = ""
    """The lyra-isaac pip extra that installs the package holding the model ('' = always installed)."""
    root_body: str = ""
    """The floating base body that is attached to the scene."""
    control: Literal["torque", "position"] = "torque"
    action_scale: float = 1.0
    """position: rad of joint target per unit action; torque: fraction of each actuator's control limit."""
    position_gains: dict[str, list[float]] = field(default_factory=dict)
    """For position control of a model with motor actuators: joint-name substring -> [kp, kd]."""
    nominal_keyframe: str = ""
    """Keyframe of the model file holding the nominal pose ('' = qpos0)."""
    foot_bodies: list[str] = field(default_factory=list)
    foot_contact_height: float = 0.05
    """A foot counts as in contact when its body origin is lower than this above the local floor, metres."""
    spawn_height: float = 1.0
    """Base height above the floor at reset, metres."""
    base_height_range: tuple[float, float] = (0.5, 2.0)
    """Healthy base height above the local floor, metres."""
    base_height_target: float = 1.0
    camera_pos: tuple[float, float, float] = (0.1, 0.0, 0.3)
    """Egocentric camera position in the base frame, metres."""
    physics: dict[str, Any] = field(default_factory=dict)
    """Overrides of EnvConfig.physics for this robot (e.g. a smaller timestep)."""


def env_toml_path(env_id: str) -> Path:
    return envs_dir() / f"{env_id}.toml"


def registered_env_files() -> list[Path]:
    """The env definition files: ``envs/*-v<N>.toml``."""
    return sorted(p for p in envs_dir().glob("*-v*.toml"))


def load_env_config(env_id: str, overrides: dict[str, Any] | None = None) -> EnvConfig:
    """The EnvConfig of ``env_id`` with ``overrides`` (gym.make kwargs) laid over its TOML."""
    path = env_toml_path(env_id)
    if not path.is_file():
        raise ConfigError(f"no environment definition for '{env_id}' ({path} missing)")
    base = load_toml(path)
    overrides = dict(overrides or {})
    data = merge(base, overrides)
    data.setdefault("id", env_id)
    robot = data.get("robot", EnvConfig.robot)
    if isinstance(robot, str):
        # physics: env TOML < robot entry < gym.make kwargs
        robot_physics = load_robot_config(robot).physics
        data["physics"] = merge(merge(base.get("physics", {}), robot_physics), overrides.get("physics", {}))
    cfg = from_dict(EnvConfig, data)
    _check_env(cfg)
    return cfg


def load_robot_config(name: str) -> RobotConfig:
    """The robot entry ``name`` of ``envs/robots.toml``; unknown names raise ConfigError listing the known ones."""
    table = load_toml(envs_dir() / ROBOTS_TOML)
    if name not in table:
        raise ConfigError(f"robot: unknown robot '{name}' (known: {', '.join(sorted(table))})")
    return from_dict(RobotConfig, table[name], f"robots.{name}")


def known_robots() -> list[str]:
    return sorted(load_toml(envs_dir() / ROBOTS_TOML))


def _check_env(cfg: EnvConfig) -> None:
    p = cfg.physics
    if p.timestep <= 0 or p.decimation < 1:
        raise ConfigError(f"physics: timestep must be > 0 and decimation >= 1 (got {p.timestep}, {p.decimation})")
    if cfg.max_episode_steps < 1:
        raise ConfigError(f"max_episode_steps must be >= 1 (got {cfg.max_episode_steps})")
    o = cfg.observation
    if o.scan_resolution <= 0 or min(o.scan_size) < 0:
        raise ConfigError("observation: scan_resolution must be > 0 and scan_size >= 0")
    for name, (lo, hi) in (("lin_vel_x", cfg.command.lin_vel_x), ("lin_vel_y", cfg.command.lin_vel_y),
                           ("ang_vel_z", cfg.command.ang_vel_z), ("resample_s", cfg.command.resample_s)):
        if lo > hi:
            raise ConfigError(f"command.{name}: lower bound {lo} above upper bound {hi}")
    if cfg.goal.min_distance > cfg.goal.max_distance:
        raise ConfigError("goal.min_distance is larger than goal.max_distance")
