"""Tasks: reward terms as small pure functions, velocity-command and goal sampling.

Every term returns an unweighted value; the env multiplies by the weight from the TOML ``[rewards]`` table and by
the env step ``dt`` (as Isaac Lab's reward manager does, so Isaac Lab weights carry over) and reports each
weighted term in ``info["reward_terms"]``. Terms with weight 0 are not computed.
"""

from __future__ import annotations

import math

import numpy as np

from .sensors import GroundLookup

# ---------------------------------------------------------------- reward terms (pure functions)


def track_lin_vel_xy_exp(command_xy: np.ndarray, lin_vel_xy_b: np.ndarray, std: float) -> float:
    """exp(-|v_cmd - v|^2 / std^2), base-frame planar velocity (m/s); 1 when tracked exactly."""
    dx, dy = float(command_xy[0]) - float(lin_vel_xy_b[0]), float(command_xy[1]) - float(lin_vel_xy_b[1])
    return math.exp(-(dx * dx + dy * dy) / (std * std))


def track_ang_vel_z_exp(command_wz: float, ang_vel_z_b: float, std: float) -> float:
    """exp(-(w_cmd - w_z)^2 / std^2), yaw rate rad/s."""
    d = float(command_wz) - float(ang_vel_z_b)
    return math.exp(-(d * d) / (std * std))


def lin_vel_z_l2(lin_vel_b: np.ndarray) -> float:
    """Vertical base speed squared, (m/s)^2."""
    return float(lin_vel_b[2]) ** 2


def ang_vel_xy_l2(ang_vel_b: np.ndarray) -> float:
    """Roll and pitch rate squared, (rad/s)^2."""
    return float(ang_vel_b[0]) ** 2 + float(ang_vel_b[1]) ** 2


def joint_torques_l2(torque: np.ndarray) -> float:
    """Sum of squared joint torques, (N m)^2."""
    return float(np.dot(torque, torque))


def joint_acc_l2(acc: np.ndarray) -> float:
    """Sum of squared joint accelerations, (rad/s^2)^2."""
    return float(np.dot(acc, acc))


def action_rate_l2(action: np.ndarray, last_action: np.ndarray) -> float:
    """Sum of squared action changes between steps."""
    d = action - last_action
    return float(np.dot(d, d))


def flat_orientation_l2(projected_gravity: np.ndarray) -> float:
    """Squared xy of gravity in the base frame: 0 when upright."""
    return float(projected_gravity[0]) ** 2 + float(projected_gravity[1]) ** 2


def base_height_l2(height: float, target: float) -> float:
    """(base height above the local floor - target)^2, m^2."""
    return float((height - target) ** 2)


def feet_air_time(first_contact: np.ndarray, air_time: np.ndarray, command_norm: float, threshold: float) -> float:
    """Isaac Lab's feet_air_time: sum over feet landing this step of (air time - threshold), s; 0 when standing."""
    if command_norm < 0.1 or not first_contact.any():
        return 0.0
    return float(np.sum((air_time - threshold) * first_contact))


def goal_progress(previous_distance: float, distance: float, dt: float) -> float:
    """Speed towards the goal, m/s (negative when moving away)."""
    return float((previous_distance - distance) / dt)


# ---------------------------------------------------------------- commands and goals


def sample_velocity_command(rng: np.random.Generator, lin_vel_x: tuple[float, float], lin_vel_y: tuple[float, float],
                            ang_vel_z: tuple[float, float], standing_prob: float) -> np.ndarray:
    """(3,) (v_x, v_y, w_z) in the base yaw frame; zero with probability ``standing_prob``."""
    cmd = np.array([rng.uniform(*lin_vel_x), rng.uniform(*lin_vel_y), rng.uniform(*ang_vel_z)])
    if rng.uniform() < standing_prob:
        cmd[:] = 0.0
    return cmd


def reachable_mask(ground: GroundLookup, start_xy: np.ndarray) -> np.ndarray:
    """(H, W) bool: walkable cells 8-connected to the cell of ``start_xy`` (empty if that cell is not walkable)."""
    from scipy import ndimage

    labels, _ = ndimage.label(ground.walkable, structure=np.ones((3, 3)))
    col = int(np.floor((start_xy[0] - ground.origin[0]) / ground.cell_size + 0.5))
    row = int(np.floor((start_xy[1] - ground.origin[1]) / ground.cell_size + 0.5))
    h, w = labels.shape
    if not (0 <= row < h and 0 <= col < w) or labels[row, col] == 0:
        return np.zeros_like(ground.walkable)
    return labels == labels[row, col]


def sample_goal(rng: np.random.Generator, ground: GroundLookup, reachable: np.ndarray, start_xy: np.ndarray,
                min_distance: float, max_distance: float) -> np.ndarray:
    """(3,) goal [x, y, z] on a reachable walkable cell, preferring distances in [min, max] from ``start_xy``.

    Falls back to the farthest reachable cell within ``max_distance`` (small worlds), then to the start.
    """
    rows, cols = np.nonzero(reachable)
    if len(rows) == 0:
        return np.array([start_xy[0], start_xy[1], float(ground.height(start_xy[None])[0])])
    xs = ground.origin[0] + cols * ground.cell_size
    ys = ground.origin[1] + rows * ground.cell_size
    d = np.hypot(xs - start_xy[0], ys - start_xy[1])
    ok = np.nonzero((d >= min_distance) & (d <= max_distance))[0]
    if len(ok):
        k = int(ok[rng.integers(len(ok))])
    else:
        within = np.where(d <= max_distance, d, -1.0)
        k = int(np.argmax(within))
    return np.array([xs[k], ys[k], ground.heights[rows[k], cols[k]]])
