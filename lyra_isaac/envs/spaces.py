"""The observation and action layout shared by every backend (MuJoCo here, Isaac Sim in backends/isaacsim.py).

A policy trained on one backend runs on the other because both build observations with :func:`build_observation`
from the same :class:`RobotState` and :func:`lyra_isaac.envs.sensors.height_scan`.

Observation (``obs_mode="state"``): a flat ``float32`` Box, ``n`` = number of actuated joints of the robot:

==========  ==============================  ====  ====================================================
slice       term                            size  units / frame
==========  ==============================  ====  ====================================================
0:3         base linear velocity            3     m/s, base (root body) frame
3:6         base angular velocity           3     rad/s, base frame
6:9         projected gravity               3     unit vector of world -Z in the base frame
9:12        command                         3     velocity task: (v_x m/s, v_y m/s, w_z rad/s) in the
                                                  base yaw frame; nav task: goal (x, y) m in the base yaw
                                                  frame and distance to it (m)
12:12+n     joint positions                 n     rad, relative to the robot's nominal pose
..+n        joint velocities                n     rad/s
..+n        last action                     n     the clipped action of the previous step, -1..1
..+187      height scan                     187   m: base z - ground z - 0.5, clipped to [-1, 1]; 17 x 11
                                                  rays on a 1.6 x 1.0 m grid at 0.1 m around the base,
                                                  yaw-aligned; index = iy * 17 + ix, x (forward) fastest,
                                                  both from negative to positive (Isaac Lab's
                                                  ``GridPatternCfg(resolution=0.1, size=[1.6, 1.0])`` with
                                                  ``height_scan`` offset 0.5). Missing ground reads +1.
==========  ==============================  ====  ====================================================

With ``height_scan=false`` the last block is absent. Values are finite (NaN/inf replaced) and clipped to
``observation.clip``. With ``obs_mode="depth"`` or ``"rgb"`` the observation is a Dict ``{"state": <the Box
above>, "image": Box}`` with a (H, W, 1) float32 depth image in metres (``depth``) or (H, W, 3) uint8 (``rgb``)
from a camera fixed to the base looking forward.

Action: ``float32`` Box in [-1, 1]^n, one entry per actuated joint in :attr:`RobotState.joint_names` order.
``torque`` robots: torque = action * actuator control limit (the gear applies). ``position`` robots: joint
target = nominal + action * ``action_scale`` (rad), tracked by PD actuators.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

OBS_BASE_LIN_VEL = slice(0, 3)
OBS_BASE_ANG_VEL = slice(3, 6)
OBS_PROJECTED_GRAVITY = slice(6, 9)
OBS_COMMAND = slice(9, 12)
OBS_FIXED = 12
"""Number of entries before the joint blocks."""


@dataclass
class RobotState:
    """What a backend reports after a step; everything the tasks and the observation need.

    Attributes:
        base_pos: (3,) root body position, metres, world frame.
        base_quat: (4,) root orientation, w-first, world frame.
        base_lin_vel_w: (3,) root linear velocity, m/s, world frame.
        base_ang_vel_b: (3,) root angular velocity, rad/s, base frame.
        joint_pos: (n,) actuated joint positions, rad.
        joint_vel: (n,) rad/s.
        joint_acc: (n,) rad/s^2.
        joint_torque: (n,) actuator force on each joint, N m.
        foot_pos: (F, 3) foot body positions, metres, world frame.
        time: simulated seconds since reset.
    """

    base_pos: np.ndarray
    base_quat: np.ndarray
    base_lin_vel_w: np.ndarray
    base_ang_vel_b: np.ndarray
    joint_pos: np.ndarray
    joint_vel: np.ndarray
    joint_acc: np.ndarray
    joint_torque: np.ndarray
    foot_pos: np.ndarray
    time: float = 0.0
    base_rot: np.ndarray | None = None
    """(3, 3) base -> world rotation matrix; computed from ``base_quat`` when a backend leaves it None."""
    extra: dict = field(default_factory=dict)

    def rotation(self) -> np.ndarray:
        """(3, 3) base -> world rotation (cached)."""
        if self.base_rot is None:
            self.base_rot = quat_to_matrix(self.base_quat)
        return self.base_rot

    def yaw(self) -> float:
        """Heading of the base x axis about +Z, rad."""
        r = self.rotation()
        return float(np.arctan2(r[1, 0], r[0, 0]))


class Backend(Protocol):
    """What :class:`lyra_isaac.envs.lyra_world.LyraWorldEnv` needs from a physics backend."""

    joint_names: list[str]
    nominal_joint_pos: np.ndarray
    dt: float
    """Seconds per env step (physics timestep x decimation)."""

    def reset(self, world_index: int, spawn: np.ndarray, joint_noise: np.ndarray) -> RobotState:
        """Place the robot at ``spawn`` = [x, y, floor_z, yaw] of world ``world_index`` and return its state."""

    def step(self, action: np.ndarray) -> tuple[RobotState, bool]:
        """Apply a clipped action for one env step; returns (state, physics_ok)."""

    def render(self, camera: str = "chase") -> np.ndarray:
        """(H, W, 3) uint8 image."""

    def close(self) -> None: ...


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(4,) w-first unit quaternion -> (3, 3) rotation matrix (body -> world)."""
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def yaw_of(q: np.ndarray) -> float:
    """Heading (rad about +Z) of a w-first quaternion."""
    w, x, y, z = q
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def observation_size(n_joints: int, height_scan_points: int) -> int:
    """Length of the state observation vector."""
    return OBS_FIXED + 3 * n_joints + height_scan_points


def build_observation(state: RobotState, nominal_joint_pos: np.ndarray, command: np.ndarray,
                      last_action: np.ndarray, scan: np.ndarray | None, clip: float) -> np.ndarray:
    """Assemble the state observation (layout in the module docstring).

    Args:
        state: robot state from a backend.
        nominal_joint_pos: (n,) rad.
        command: (3,) the command block (velocity command or relative goal).
        last_action: (n,) previous clipped action.
        scan: (K,) height scan or None.
        clip: symmetric bound applied to every entry.

    Returns:
        (observation_size,) float32, finite.
    """
    rot = state.rotation()
    parts = [
        rot.T @ state.base_lin_vel_w,
        state.base_ang_vel_b,
        -rot[2, :],  # world -Z in the base frame = R^T (0, 0, -1)
        command,
        state.joint_pos - nominal_joint_pos,
        state.joint_vel,
        last_action,
    ]
    if scan is not None:
        parts.append(scan)
    obs = np.concatenate(parts).astype(np.float32)
    np.minimum(np.maximum(obs, -clip, out=obs), clip, out=obs)  # also maps +-inf to +-clip
    if np.isnan(obs.sum()):
        obs[np.isnan(obs)] = 0.0
    return obs
