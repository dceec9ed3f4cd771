"""MuJoCo backend of the lyra_isaac environments: a world's ``scene.xml`` + a robot, composed with ``MjSpec``.

Composition: ``MjSpec.from_file(scene.xml)``; the robot's model file is loaded into its own spec and its root body
is attached into a frame of the scene's worldbody with prefix ``robot/`` (``frame.attach_body``). The robot's
defaults, meshes and actuators come with it; the scene's own floor-free worldbody keeps the ground. Physics
options (timestep, integrator, solver, iterations) are set from the env config after the attach. Position-
controlled robots whose model has torque motors get PD servos (``set_to_position(kp, kv)``) with their
``forcerange`` kept at the motor's control limits.

One compiled model per world is built on first use and kept (worlds sampled per episode reuse them).
Offscreen rendering picks ``MUJOCO_GL`` automatically when unset and there is no display (see
:func:`lyra_isaac.envs.offscreen_gl_platform`): ``egl``, ``osmesa``, or none (``disable``: physics only).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _choose_offscreen_gl  # noqa: E402

_choose_offscreen_gl()  # before the first `import mujoco` of the process (lyra_isaac.envs did it already)

import mujoco  # noqa: E402

from ...errors import ConfigError, InputError  # noqa: E402
from ...world import WorldDir  # noqa: E402
from ..config import EnvConfig, RobotConfig  # noqa: E402
from ..spaces import RobotState  # noqa: E402

logger = logging.getLogger(__name__)

ROBOT_PREFIX = "robot/"
EGO_CAMERA = "ego"
CHASE_CAMERA = "chase"


_INSTABILITY = (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL, mujoco.mjtWarning.mjWARN_BADQACC)


def _instability_warnings(data: mujoco.MjData) -> int:
    """Count of MuJoCo's divergence warnings (bad qpos/qvel/qacc: MuJoCo resets the state when they fire)."""
    return sum(int(data.warning[w].number) for w in _INSTABILITY)


@dataclass
class _Compiled:
    model: mujoco.MjModel
    data: mujoco.MjData


class MujocoBackend:
    """Physics for :class:`lyra_isaac.envs.lyra_world.LyraWorldEnv` (see :class:`lyra_isaac.envs.spaces.Backend`).

    Args:
        worlds: world directories (each with ``scene.xml``).
        robot: the robot entry; ``model_path`` its resolved model file.
        cfg: the environment config (physics options, render sizes, camera).
    """

    def __init__(self, worlds: list[WorldDir], robot: RobotConfig, model_path: Path, cfg: EnvConfig):
        self.worlds = worlds
        self.robot = robot
        self.model_path = model_path
        self.cfg = cfg
        self._compiled: dict[int, _Compiled] = {}
        self._renderers: dict[tuple[int, int, int], mujoco.Renderer] = {}
        self._robot_spec_cache: mujoco.MjSpec | None = None
        self.current = 0
        first = self._get(0)  # compile now: bad models fail at gym.make
        self._bind(first.model)
        self.dt = cfg.physics.timestep * cfg.physics.decimation

    # ------------------------------------------------------------------ model composition

    def _robot_spec(self) -> mujoco.MjSpec:
        try:
            spec = mujoco.MjSpec.from_file(str(self.model_path))
        except Exception as exc:  # mujoco raises ValueError with the parser's message
            raise InputError(self.model_path, f"cannot load robot model: {exc}") from None
        return spec

    def _compose(self, world: WorldDir) -> mujoco.MjModel:
        scene_path = world.file("mjcf")
        try:
            scene = mujoco.MjSpec.from_file(str(scene_path))
        except Exception as exc:
            raise InputError(scene_path, f"cannot load MuJoCo scene: {exc}") from None
        robot_spec = self._robot_spec()
        root = robot_spec.body(self.robot.root_body)
        if root is None:
            raise ConfigError(f"robot root_body '{self.robot.root_body}' not found in {self.model_path}")
        nominal = self._nominal_from_spec(robot_spec)
        # keyframes and model-wide sizes/options do not carry over: avoid attach conflicts
        for key in list(robot_spec.keys):
            robot_spec.delete(key)
        robot_spec.nkey = 0
        scene.nuser_geom = max(scene.nuser_geom, robot_spec.nuser_geom)
        for name in ("timestep", "iterations", "integrator", "solver", "cone", "impratio", "ls_iterations",
                     "noslip_iterations", "tolerance"):
            setattr(scene.option, name, getattr(robot_spec.option, name))
        frame = scene.worldbody.add_frame()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # option conflicts: the env config sets them below
            frame.attach_body(root, ROBOT_PREFIX, "")
        p = self.cfg.physics
        scene.option.timestep = p.timestep
        scene.option.integrator = getattr(mujoco.mjtIntegrator, f"mjINT_{p.integrator.upper()}")
        scene.option.solver = getattr(mujoco.mjtSolver, f"mjSOL_{p.solver.upper()}")
        scene.option.iterations = p.iterations
        # cameras: a chase camera tracking the robot, an egocentric one fixed to the base
        body = scene.body(ROBOT_PREFIX + self.robot.root_body)
        body.add_camera(name=EGO_CAMERA, pos=list(self.robot.camera_pos), xyaxes=[0, -1, 0, 0, 0, 1],
                        fovy=self.cfg.observation.image_fovy)
        scene.worldbody.add_camera(name=CHASE_CAMERA, mode=mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM,
                                   pos=[-2.5, -2.5, 2.0], xyaxes=[0.707, -0.707, 0, 0.35, 0.35, 0.87],
                                   fovy=50)
        if self.robot.control == "position" and self.robot.position_gains:
            for act in scene.actuators:
                jname = act.target[len(ROBOT_PREFIX):] if act.target.startswith(ROBOT_PREFIX) else act.target
                gains = next((g for key, g in self.robot.position_gains.items() if key in jname), None)
                if gains is None:
                    raise ConfigError(f"robots: no position_gains entry matches joint '{jname}'")
                lo, hi = act.ctrlrange
                act.set_to_position(kp=float(gains[0]), kv=float(gains[1]))
                act.forcerange = [lo, hi]
                act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
                act.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
        try:
            model = scene.compile()
        except Exception as exc:
            raise InputError(scene_path, f"cannot compile scene with robot '{self.model_path.name}': {exc}") from None
        self._nominal_by_joint = nominal
        return model

    def _nominal_from_spec(self, spec: mujoco.MjSpec) -> dict[str, float]:
        """Nominal joint positions by joint name from the robot's keyframe (or qpos0)."""
        model = spec.compile()
        qpos = model.qpos0.copy()
        if self.robot.nominal_keyframe:
            kid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, self.robot.nominal_keyframe)
            if kid < 0:
                raise ConfigError(f"robots: keyframe '{self.robot.nominal_keyframe}' not in {self.model_path}")
            qpos = model.key_qpos[kid].copy()
        out = {}
        for j in range(model.njnt):
            if model.jnt_type[j] in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE):
                out[model.joint(j).name] = float(qpos[model.jnt_qposadr[j]])
        return out

    def _get(self, index: int) -> _Compiled:
        if index not in self._compiled:
            model = self._compose(self.worlds[index])
            self._compiled[index] = _Compiled(model, mujoco.MjData(model))
        return self._compiled[index]

    def _bind(self, model: mujoco.MjModel) -> None:
        """Index arrays for the robot in ``model`` (same for every world: the robot part is identical)."""
        free = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
        if len(free) != 1:
            raise ConfigError(f"robot model {self.model_path.name} must have exactly one free joint "
                              f"(found {len(free)})")
        self._free_q = int(model.jnt_qposadr[free[0]])
        self._free_v = int(model.jnt_dofadr[free[0]])
        self._root_body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, ROBOT_PREFIX + self.robot.root_body)
        joints = [int(model.actuator_trnid[a, 0]) for a in range(model.nu)]
        if model.nu == 0 or np.any(model.actuator_trntype != mujoco.mjtTrn.mjTRN_JOINT):
            raise ConfigError(f"robot {self.model_path.name}: every actuator must drive one joint (nu={model.nu})")
        self.joint_names = [model.joint(j).name[len(ROBOT_PREFIX):] for j in joints]
        self._qadr = np.array([model.jnt_qposadr[j] for j in joints])
        self._vadr = np.array([model.jnt_dofadr[j] for j in joints])
        self.nominal_joint_pos = np.array([self._nominal_by_joint.get(n, 0.0) for n in self.joint_names])
        if self.robot.control == "torque":
            rng = model.actuator_ctrlrange
            self._ctrl_scale = np.where(model.actuator_ctrllimited.astype(bool), np.abs(rng).max(axis=1), 1.0)
            self._ctrl_scale = self._ctrl_scale * self.robot.action_scale
        missing = [n for n in self.robot.foot_bodies
                   if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, ROBOT_PREFIX + n) < 0]
        if missing:
            raise ConfigError(f"robots: foot bodies {missing} not found in {self.model_path.name}")
        self._feet = np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, ROBOT_PREFIX + n)
                               for n in self.robot.foot_bodies], dtype=np.int64)
        self._robot_bodies = np.nonzero(model.body_rootid == self._root_body)[0]

    @property
    def model(self) -> mujoco.MjModel:
        return self._compiled[self.current].model

    @property
    def data(self) -> mujoco.MjData:
        return self._compiled[self.current].data

    # ------------------------------------------------------------------ simulation

    def reset(self, world_index: int, spawn: np.ndarray, joint_noise: np.ndarray) -> RobotState:
        self.current = world_index
        c = self._get(world_index)
        m, d = c.model, c.data
        mujoco.mj_resetData(m, d)
        x, y, z, yaw = (float(v) for v in spawn)
        d.qpos[self._free_q:self._free_q + 3] = (x, y, z + self.robot.spawn_height)
        d.qpos[self._free_q + 3:self._free_q + 7] = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
        d.qpos[self._qadr] = self.nominal_joint_pos + joint_noise
        if self.robot.control == "position":
            d.ctrl[:] = self.nominal_joint_pos
        mujoco.mj_forward(m, d)
        self._warnings = _instability_warnings(d)
        return self.state()

    def control(self, action: np.ndarray) -> np.ndarray:
        """Actuator controls for a clipped action in [-1, 1]^n."""
        if self.robot.control == "torque":
            return action * self._ctrl_scale
        return self.nominal_joint_pos + self.robot.action_scale * action

    def step(self, action: np.ndarray) -> tuple[RobotState, bool]:
        m, d = self.model, self.data
        d.ctrl[:] = self.control(action)
        t0 = d.time
        mujoco.mj_step(m, d, nstep=self.cfg.physics.decimation)
        # MuJoCo resets the state (time back to 0) when qpos/qvel/qacc diverge; the counters say it did
        ok = d.time > t0 and bool(np.isfinite(d.qvel.sum()))
        if not ok or d.time < 2 * self.dt:
            bad = _instability_warnings(d)
            ok = ok and bad == self._warnings
            self._warnings = bad
        return self.state(), ok

    def state(self) -> RobotState:
        d = self.data
        q, v = self._free_q, self._free_v
        return RobotState(
            base_pos=d.qpos[q:q + 3].copy(),
            base_quat=d.qpos[q + 3:q + 7].copy(),
            base_lin_vel_w=d.qvel[v:v + 3].copy(),
            base_ang_vel_b=d.qvel[v + 3:v + 6].copy(),
            joint_pos=d.qpos[self._qadr].copy(),
            joint_vel=d.qvel[self._vadr].copy(),
            joint_acc=d.qacc[self._vadr].copy(),
            joint_torque=d.actuator_force.copy(),
            foot_pos=d.xpos[self._feet].copy(),
            time=float(d.time),
            base_rot=d.xmat[self._root_body].reshape(3, 3).copy(),
        )

    # ------------------------------------------------------------------ rendering

    def render(self, camera: str = CHASE_CAMERA, width: int | None = None, height: int | None = None,
               depth: bool = False) -> np.ndarray:
        """(H, W, 3) uint8 RGB, or (H, W) float32 depth in metres with ``depth=True``."""
        width = width or self.cfg.render_width
        height = height or self.cfg.render_height
        key = (self.current, width, height)
        renderer = self._renderers.get(key)
        if renderer is None:
            try:
                renderer = mujoco.Renderer(self.model, height, width)
            except Exception as exc:
                raise RuntimeError(f"MuJoCo offscreen rendering failed (MUJOCO_GL={os.environ.get('MUJOCO_GL')}): "
                                   f"{exc}; install libosmesa6 or libegl1, or set MUJOCO_GL") from exc
            self._renderers[key] = renderer
        if depth:
            renderer.enable_depth_rendering()
        else:
            renderer.disable_depth_rendering()
        renderer.update_scene(self.data, camera=camera)
        return renderer.render()

    def close(self) -> None:
        for renderer in self._renderers.values():
            try:
                renderer.close()
            except Exception:  # noqa: BLE001 - GL teardown at exit must not raise
                pass
        self._renderers.clear()
