"""LyraWorld-v0 and LyraWorldNav-v0: humanoid locomotion and navigation in converted Lyra worlds."""

from __future__ import annotations

import logging
import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..errors import ConfigError, InputError
from . import tasks
from .config import EnvConfig, load_env_config, load_robot_config
from .robots import load_robot
from .sensors import GroundLookup, height_scan, scan_grid
from .spaces import RobotState, build_observation, observation_size
from .worlds import resolve_worlds

logger = logging.getLogger(__name__)

TERMINATION_REASONS = ("fall_height", "fall_tilt", "left_walkable", "physics_error", "goal_reached")


class LyraWorldEnv(gym.Env):
    r"""
    ## Description

    A humanoid robot in a world converted from a generated Gaussian-splat scene (metric, Z up, floor at z = 0).
    ``LyraWorld-v0`` (``task="velocity"``) asks it to track velocity commands that change during the episode, as
    Isaac Lab's ``Isaac-Velocity-Rough-*`` tasks do; ``LyraWorldNav-v0`` (``task="nav"``) asks it to walk to a
    goal sampled on walkable ground reachable from its spawn point. Worlds are chosen per episode when several
    are given. The definition of each id is data: ``envs/<id>.toml`` (``lyra_isaac.envs.config.EnvConfig``),
    robots in ``envs/robots.toml``.

    ## Action Space

    ``Box(-1, 1, (n,), float32)``, one entry per actuated joint (``env.unwrapped.joint_names``).

    | robot    | n  | control  | meaning of action a_i                                                  |
    |----------|----|----------|------------------------------------------------------------------------|
    | humanoid | 17 | torque   | motor control = 0.4 a_i (x gear 100 N m), as Humanoid-v5's actions      |
    | g1       | 29 | position | joint target = stand keyframe + 0.25 a_i rad (kp 500, critically damped)|
    | h1       | 19 | position | joint target = qpos0 + 0.25 a_i rad (PD gains in robots.toml)           |

    Non-finite entries are replaced by 0 and the rest clipped to [-1, 1]; ``info["action_invalid"]`` and
    ``info["action_clipped"]`` count them.

    ## Observation Space

    ``Box(-clip, clip, (12 + 3n + 187,), float32)`` (humanoid: 250) laid out as documented in
    :mod:`lyra_isaac.envs.spaces` (shared with the Isaac Sim backend): base linear and angular velocity (base
    frame), projected gravity, command (velocity: v_x, v_y, w_z; nav: goal x, y in the base yaw frame and its
    distance), joint positions relative to the nominal pose, joint velocities, last action, and a 17 x 11 height
    scan (1.6 x 1.0 m, 0.1 m, yaw-aligned, base z - ground z - 0.5 clipped to +-1) read from the world's height
    map. With ``obs_mode="depth"`` / ``"rgb"`` the observation is ``Dict(state=<that Box>, image=Box)`` from an
    egocentric camera on the base.

    ## Rewards

    ``reward = dt * sum_i w_i r_i`` (Isaac Lab's convention; dt = timestep x decimation, 0.015 s by default:
    Humanoid-v5's 0.003 s x 5, with the implicitfast integrator where Humanoid-v5 uses RK4)
    with the weights ``w_i`` of the TOML ``[rewards]`` table. Terms (``lyra_isaac.envs.tasks``):

    | term               | r_i                                                | LyraWorld-v0 | LyraWorldNav-v0 |
    |--------------------|----------------------------------------------------|--------------|-----------------|
    | track_lin_vel_xy   | exp(-\|v_cmd,xy - v_xy\|^2 / 0.5^2), base frame    | 1.0          | -               |
    | track_ang_vel_z    | exp(-(w_cmd - w_z)^2 / 0.5^2)                      | 0.5          | -               |
    | progress           | speed towards the goal (m/s)                       | -            | 2.0             |
    | goal_reached       | 1 on the step the goal is reached                  | -            | 100             |
    | alive              | 1                                                  | 1.0          | 1.0             |
    | termination        | 1 on a failure termination                         | -200         | -200            |
    | lin_vel_z          | v_z^2                                              | -2.0         | -2.0            |
    | ang_vel_xy         | w_x^2 + w_y^2                                      | -0.05        | -0.05           |
    | joint_torques      | sum tau^2                                          | -1e-5        | -1e-5           |
    | joint_acc          | sum qdd^2                                          | -2.5e-7      | -2.5e-7         |
    | action_rate        | \|a - a_prev\|^2                                    | -0.01        | -0.01           |
    | orientation        | g_x^2 + g_y^2 (projected gravity)                  | -1.0         | -1.0            |
    | base_height        | (h - h_target)^2, h above the local floor           | 0            | 0               |
    | feet_air_time      | sum over landings of (t_air - 0.4 s), moving only  | 0.25         | 0               |

    ``info["reward_terms"]`` holds every weighted term (already multiplied by dt); ``info["base_height"]`` is the
    base's height above the floor under it (metres).

    ## Starting State

    The base is placed ``spawn_height`` above a spawn point of the world (chosen uniformly) with a uniformly
    random yaw; joints at the nominal pose plus uniform noise of +-``reset_noise`` rad; zero velocity. The first
    command (or goal) is sampled at reset. Everything is drawn from the env's seeded ``np_random``.

    ## Episode End

    Terminated: the base height above the local floor leaves the robot's ``base_height_range``; the base tilts
    more than ``termination.max_tilt_deg``; the base leaves the walkable area; the physics blew up (MuJoCo
    bad-acceleration warning or non-finite state: ``info["physics_error"] = True``, the observation is the last
    valid one); nav only: the goal is reached (``info["success"] = True``). ``info["termination_reason"]`` names
    the cause. Truncated: after ``max_episode_steps`` (1000) steps by Gymnasium's ``TimeLimit``.

    ## Arguments

    ``gym.make(id, **kwargs)``: any field of ``EnvConfig``, overriding the TOML: ``world`` (world dir, list,
    folder of worlds, batch root; default: the bundled default world), ``robot`` ("humanoid", "g1", "h1"),
    ``task``, ``backend`` ("mujoco"; "isaacsim" inside Isaac Sim), ``obs_mode``, ``max_episode_steps``,
    tables such as ``rewards={...}``, ``physics={...}``, ``command={...}``; plus ``render_mode`` ("rgb_array",
    "human").

    ## Version History

    * v0: initial release.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 30}

    def __init__(self, env_id: str = "LyraWorld-v0", render_mode: str | None = None, **overrides: Any):
        self.cfg: EnvConfig = load_env_config(env_id, overrides)
        cfg = self.cfg
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ConfigError(f"render_mode must be one of {self.metadata['render_modes']} or None, "
                              f"got {render_mode!r}")
        if render_mode == "human" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise ConfigError("render_mode='human' needs a display (DISPLAY is not set); use render_mode='rgb_array'")
        self.render_mode = render_mode
        if cfg.backend == "mujoco":
            self.robot_cfg, model_path = load_robot(cfg.robot)
        else:  # Isaac Sim loads its own robot asset: the MuJoCo model (and its extra) is not needed
            self.robot_cfg, model_path = load_robot_config(cfg.robot), None
        self.worlds = resolve_worlds(cfg.world)
        self._grounds: dict[int, GroundLookup] = {}
        if cfg.termination.leave_walkable:
            self._check_spawns()
        if cfg.backend == "mujoco":
            from .backends.mujoco import MujocoBackend

            self.backend = MujocoBackend(self.worlds, self.robot_cfg, model_path, cfg)
        else:
            from .backends.isaacsim import IsaacSimBackend  # imports Isaac Sim lazily, with its own clear error

            self.backend = IsaacSimBackend(self.worlds, self.robot_cfg, model_path, cfg)
        self.dt = self.backend.dt
        self.metadata = dict(self.metadata, render_fps=int(round(1.0 / self.dt)))
        self.joint_names = list(self.backend.joint_names)
        self.n_joints = len(self.joint_names)
        self._grid = (scan_grid(cfg.observation.scan_size, cfg.observation.scan_resolution)
                      if cfg.observation.height_scan else np.zeros((0, 2)))
        self._weights = {k: float(v) for k, v in cfg.rewards.items() if v != 0}
        known_terms = {"track_lin_vel_xy", "track_ang_vel_z", "progress", "goal_reached", "alive", "termination",
                       "lin_vel_z", "ang_vel_xy", "joint_torques", "joint_acc", "action_rate", "orientation",
                       "base_height", "feet_air_time"}
        unknown = sorted(set(cfg.rewards) - known_terms)
        if unknown:
            raise ConfigError(f"rewards: unknown term(s) {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(known_terms))})")
        clip = cfg.observation.clip
        n_obs = observation_size(self.n_joints, len(self._grid))
        state_space = spaces.Box(-clip, clip, (n_obs,), np.float32)
        if cfg.obs_mode == "state":
            self.observation_space = state_space
        else:
            h, w = cfg.observation.image_height, cfg.observation.image_width
            image = (spaces.Box(0.0, cfg.observation.depth_far, (h, w, 1), np.float32) if cfg.obs_mode == "depth"
                     else spaces.Box(0, 255, (h, w, 3), np.uint8))
            self.observation_space = spaces.Dict({"state": state_space, "image": image})
        self.action_space = spaces.Box(-1.0, 1.0, (self.n_joints,), np.float32)
        self._last_action = np.zeros(self.n_joints)
        self._command = np.zeros(3)
        self._state: RobotState | None = None
        self._last_obs = None
        self._viewer = None

    # ------------------------------------------------------------------ helpers

    def _ground(self, index: int) -> GroundLookup:
        if index not in self._grounds:
            self._grounds[index] = GroundLookup.from_heightmap(self.worlds[index].heightmap())
        return self._grounds[index]

    def _check_spawns(self) -> None:
        """Spawn points off the walkable area would end every episode at once: none -> error, some -> warning."""
        for index, world in enumerate(self.worlds):
            spawns = world.spawn_points
            ok = np.array([self._ground(index).walkable_at(x, y) for x, y, _, _ in spawns])
            if not ok.any():
                raise InputError(world.path, f"none of the {len(spawns)} spawn points lies on the walkable area of "
                                             "heightmap.npz; every episode would end at once")
            if not ok.all():
                logger.warning("%s: spawn points %s lie off the walkable area", world.path,
                               np.nonzero(~ok)[0].tolist())

    def _floor_under(self, xy: np.ndarray) -> float:
        z = self._ground(self._world).height_at(float(xy[0]), float(xy[1]))
        return z if z == z else -np.inf

    def _command_block(self, state: RobotState) -> np.ndarray:
        if self.cfg.task == "velocity":
            return self._command.copy()
        yaw = state.yaw()
        dx, dy = self._goal[0] - state.base_pos[0], self._goal[1] - state.base_pos[1]
        c, s = np.cos(yaw), np.sin(yaw)
        return np.array([c * dx + s * dy, -s * dx + c * dy, np.hypot(dx, dy)])

    def _get_obs(self, state: RobotState):
        ocfg = self.cfg.observation
        scan = None
        if ocfg.height_scan:
            backend_scan = getattr(self.backend, "height_scan", None)  # Isaac Sim: PhysX ray casts
            if backend_scan is not None:
                scan = backend_scan(state, self._grid)
            else:  # MuJoCo: the world's height map, the same surface its height field was built from
                scan = height_scan(self._ground(self._world), state.base_pos, state.yaw(), self._grid,
                                   ocfg.scan_offset, ocfg.scan_clip)
        obs = build_observation(state, self.backend.nominal_joint_pos, self._command_block(state), self._last_action,
                                scan, ocfg.clip)
        if self.cfg.obs_mode == "state":
            return obs
        h, w = ocfg.image_height, ocfg.image_width
        if self.cfg.obs_mode == "depth":
            depth = self.backend.render("ego", w, h, depth=True)
            image = np.clip(np.nan_to_num(depth, nan=ocfg.depth_far), 0, ocfg.depth_far).astype(np.float32)[..., None]
        else:
            image = self.backend.render("ego", w, h)
        return {"state": obs, "image": image}

    def _resample_command(self) -> None:
        c = self.cfg.command
        self._command = tasks.sample_velocity_command(self.np_random, c.lin_vel_x, c.lin_vel_y, c.ang_vel_z,
                                                      c.standing_prob)
        self._next_resample = self._t + self.np_random.uniform(*c.resample_s)

    # ------------------------------------------------------------------ gym API

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        self._world = int(rng.integers(len(self.worlds))) if len(self.worlds) > 1 else 0
        spawns = self.worlds[self._world].spawn_points
        spawn = spawns[int(rng.integers(len(spawns)))].copy()
        spawn[3] = rng.uniform(-np.pi, np.pi)
        if options and "spawn" in options:  # [x, y, z, yaw] for tests and scripted evaluation
            spawn = np.asarray(options["spawn"], dtype=np.float64)
        noise = rng.uniform(-self.cfg.reset_noise, self.cfg.reset_noise, self.n_joints)
        state = self.backend.reset(self._world, spawn, noise)
        self._t = 0.0
        self._last_action = np.zeros(self.n_joints)
        self._air_time = np.zeros(len(self.robot_cfg.foot_bodies))
        self._in_contact = np.ones(len(self.robot_cfg.foot_bodies), dtype=bool)
        if self.cfg.task == "velocity":
            self._resample_command()
        else:
            ground = self._ground(self._world)
            reachable = tasks.reachable_mask(ground, spawn[:2])
            g = self.cfg.goal
            self._goal = tasks.sample_goal(rng, ground, reachable, spawn[:2], g.min_distance, g.max_distance)
            self._goal_distance = float(np.hypot(*(self._goal[:2] - state.base_pos[:2])))
        self._state = state
        obs = self._get_obs(state)
        self._last_obs = obs
        info = {"world": str(self.worlds[self._world].path), "spawn": spawn, "command": self._command_block(state)}
        if self.cfg.task == "nav":
            info["goal"] = self._goal.copy()
        return obs, info

    def step(self, action):
        raw = np.asarray(action, dtype=np.float64).reshape(self.n_joints)
        invalid = ~np.isfinite(raw)
        act = np.where(invalid, 0.0, raw)
        clipped = int(np.count_nonzero(np.abs(act) > 1.0))
        act = np.minimum(np.maximum(act, -1.0), 1.0)
        state, physics_ok = self.backend.step(act)
        self._t += self.dt
        info: dict[str, Any] = {"action_invalid": int(invalid.sum()), "action_clipped": clipped,
                                "physics_error": not physics_ok}
        if not physics_ok:
            logger.warning("physics blew up at t=%.3f s (world %s); ending the episode", self._t,
                           self.worlds[self._world].path)
            terms = {"termination": self.dt * self._weights.get("termination", 0.0)}
            info.update(reward_terms=terms, termination_reason="physics_error", success=False)
            self._last_action = act
            return self._last_obs, float(sum(terms.values())), True, False, info

        reward, terms, terminated, reason = self._get_rew(state, act)
        self._last_action = act
        self._state = state
        if self.cfg.task == "velocity" and self._t >= self._next_resample:
            self._resample_command()
        obs = self._get_obs(state)
        self._last_obs = obs
        info.update(reward_terms=terms, termination_reason=reason, success=reason == "goal_reached",
                    command=self._command_block(state), base_height=self._base_height)
        if self.render_mode == "human":
            self.render()
        return obs, reward, terminated, False, info

    def _get_rew(self, state: RobotState, action: np.ndarray) -> tuple[float, dict[str, float], bool, str | None]:
        """Reward, its weighted terms, terminated flag and reason for the state after a step."""
        w, cfg, rob = self._weights, self.cfg, self.robot_cfg
        rot = state.rotation()
        lin_b = rot.T @ state.base_lin_vel_w
        grav_b = -rot[2, :]
        ground = self._ground(self._world)
        floor = self._floor_under(state.base_pos)
        height = state.base_pos[2] - floor
        self._base_height = float(height)

        # terminations
        reason = None
        lo, hi = rob.base_height_range
        if cfg.termination.use_robot_height_range and not lo <= height <= hi:
            reason = "fall_height"
        elif rot[2, 2] < np.cos(np.radians(cfg.termination.max_tilt_deg)):
            reason = "fall_tilt"
        elif cfg.termination.leave_walkable and not ground.walkable_at(state.base_pos[0], state.base_pos[1]):
            reason = "left_walkable"

        # feet contact from foot height over the local floor (no contact iteration: cheap)
        if len(state.foot_pos):
            contact = np.array([z - ground.height_at(x, y) < rob.foot_contact_height  # NaN (off the map): no contact
                                for x, y, z in state.foot_pos])
            first_contact = contact & ~self._in_contact
            self._air_time = np.where(self._in_contact, 0.0, self._air_time + self.dt)
            landing_air = np.where(first_contact, self._air_time, 0.0)
            self._in_contact = contact
        else:
            first_contact = landing_air = np.zeros(0)

        raw: dict[str, float] = {}
        if cfg.task == "velocity":
            raw["track_lin_vel_xy"] = tasks.track_lin_vel_xy_exp(self._command[:2], lin_b[:2], cfg.tracking_std)
            raw["track_ang_vel_z"] = tasks.track_ang_vel_z_exp(self._command[2], state.base_ang_vel_b[2],
                                                               cfg.tracking_std)
        else:
            distance = float(np.hypot(*(self._goal[:2] - state.base_pos[:2])))
            raw["progress"] = tasks.goal_progress(self._goal_distance, distance, self.dt)
            self._goal_distance = distance
            if reason is None and distance < cfg.goal.reach_radius:
                reason = "goal_reached"
            raw["goal_reached"] = float(reason == "goal_reached")
        raw["alive"] = 1.0
        raw["termination"] = float(reason is not None and reason != "goal_reached")
        if "lin_vel_z" in w:
            raw["lin_vel_z"] = tasks.lin_vel_z_l2(lin_b)
        if "ang_vel_xy" in w:
            raw["ang_vel_xy"] = tasks.ang_vel_xy_l2(state.base_ang_vel_b)
        if "joint_torques" in w:
            raw["joint_torques"] = tasks.joint_torques_l2(state.joint_torque)
        if "joint_acc" in w:
            raw["joint_acc"] = tasks.joint_acc_l2(state.joint_acc)
        if "action_rate" in w:
            raw["action_rate"] = tasks.action_rate_l2(action, self._last_action)
        if "orientation" in w:
            raw["orientation"] = tasks.flat_orientation_l2(grav_b)
        if "base_height" in w:
            raw["base_height"] = tasks.base_height_l2(height, rob.base_height_target)
        if "feet_air_time" in w:
            raw["feet_air_time"] = tasks.feet_air_time(first_contact, landing_air,
                                                       float(np.hypot(self._command[0], self._command[1])),
                                                       cfg.feet_air_time_threshold)
        terms = {name: self.dt * w[name] * value for name, value in raw.items() if name in w}
        reward = float(sum(terms.values()))
        if reward != reward or abs(reward) == np.inf:
            reward = 0.0
        return reward, terms, reason is not None, reason

    def render(self):
        if self.render_mode == "rgb_array":
            return self.backend.render("chase")
        if self.render_mode == "human":
            if self._viewer is None:
                import mujoco.viewer

                self._viewer = mujoco.viewer.launch_passive(self.backend.model, self.backend.data)
            self._viewer.sync()
        return None

    def close(self):
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None
        self.backend.close()
