"""Isaac Sim 6.x backend of the LyraWorld environments: PhysX through ``isaacsim.core.experimental`` and
``SimulationManager``, robots from Isaac Sim's asset library, height scan by PhysX scene-query ray casts.

It implements :class:`lyra_isaac.envs.spaces.Backend` and reports :class:`~lyra_isaac.envs.spaces.RobotState`, so the
env builds the same observation (:func:`~lyra_isaac.envs.spaces.build_observation`) and action layout as on MuJoCo:
base linear / angular velocity (base frame), projected gravity, command, joint positions relative to the nominal
pose, joint velocities, last action, and the 17 x 11 height scan at 0.1 m (:meth:`IsaacSimBackend.height_scan`,
same values as :func:`lyra_isaac.envs.sensors.height_scan` on the world's height map).

Two modes:

- **standalone** (a plain ``python`` of an Isaac Sim install, e.g. ``./python.sh train.py`` or a pip-installed
  ``isaacsim``): no Kit app runs yet, so the backend starts a ``SimulationApp`` (headless by default) and closes it
  in :meth:`close`.
- **in-app** (Isaac Sim's Script Editor, an extension, a Jupyter kernel of Isaac Sim): the running Kit app is used and
  left open; the backend replaces the open stage with its own.

Everything from ``isaacsim``/``omni``/``carb``/``pxr`` is imported inside functions, so importing this module (and
``lyra_isaac``, and the MuJoCo envs) never needs Isaac Sim; :func:`require_isaac_sim` raises one clear
:class:`IsaacSimUnavailableError` when ``backend="isaacsim"`` is selected without it.

Scene layout built by :class:`IsaacSimBackend` (one stage, Z up, metres)::

    /World/PhysicsScene          UsdPhysics.Scene, gravity -Z 9.81, dt = physics.timestep
    /World/Worlds/world_NNN      one translated Xform per world, side by side (offsets from their bounds), holding
                                 references to the world's ground, Visual, Splats, SpawnPoints... (every child of
                                 its /World except its PhysicsScene, so one scene steps them all)
    /World/Robot                 the humanoid USD (H1 / G1) by reference
    /World/Cameras/<name>_WxH    chase / ego cameras, made on the first render at that size (Replicator annotators)
"""

from __future__ import annotations

import importlib.util
import logging
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import ConfigError, InputError, LyraError
from ...isaac.robots import RobotSpec, robot_spec
from ...isaac.usd_robot import prepare_robot_prim
from ...isaac.usd_world import reference_world_content
from ...world import WORLD_USD, WorldDir
from ..spaces import RobotState, quat_to_matrix, yaw_of

if TYPE_CHECKING:
    from ..config import EnvConfig, RobotConfig

logger = logging.getLogger(__name__)

PHYSICS_SCENE_PRIM = "/World/PhysicsScene"
WORLDS_PRIM = "/World/Worlds"
ROBOT_PRIM = "/World/Robot"
CAMERAS_PRIM = "/World/Cameras"
CHASE_CAMERA = "chase"
EGO_CAMERA = "ego"
CHASE_FOVY_DEG = 50.0
"""Vertical field of view of the chase camera (the MuJoCo backend's)."""
WORLD_SPACING_M = 5.0
"""Gap between worlds laid side by side in one stage, metres."""
RAY_START_ABOVE_BASE_M = 0.5
"""Height-scan rays start this far above the base and point down (below ceilings, above the robot's own hips)."""
RAY_MAX_DISTANCE_M = 20.0
GRAVITY = 9.81
REQUIRED_EXTENSIONS = ("omni.physx", "isaacsim.core.simulation_manager", "isaacsim.core.experimental.utils",
                       "isaacsim.core.experimental.prims", "isaacsim.storage.native", "isaacsim.core.rendering_manager")
"""Kit extensions the backend imports from; enabled on start (extension.toml declares the same for the extension)."""
SUPPORTED_PYTHON = (3, 12)

# Isaac Lab's nominal standing poses for its H1 and G1 configurations (joint-name regex -> rad); unmatched joints 0.
NOMINAL_POSES: dict[str, dict[str, float]] = {
    "h1": {r".*_hip_pitch.*": -0.28, r".*_knee.*": 0.79, r".*_ankle.*": -0.52, r".*_shoulder_pitch.*": 0.28,
           r".*_elbow.*": 0.52},
    "g1": {r".*_hip_pitch.*": -0.20, r".*_knee.*": 0.42, r".*_ankle_pitch.*": -0.23, r".*_elbow.*": 0.87,
           r"left_shoulder_roll.*": 0.16, r"right_shoulder_roll.*": -0.16, r".*_shoulder_pitch.*": 0.35},
}


class IsaacSimUnavailableError(LyraError, ImportError):
    """``backend="isaacsim"`` was selected but Isaac Sim 6.x is not importable in this Python."""


def isaac_sim_available() -> bool:
    """True when Isaac Sim's Python packages can be imported here (without importing them)."""
    return importlib.util.find_spec("isaacsim") is not None


def require_isaac_sim() -> None:
    """Raise :class:`IsaacSimUnavailableError` with what to do unless Isaac Sim 6.x is importable."""
    if isaac_sim_available():
        return
    version = ".".join(map(str, sys.version_info[:2]))
    raise IsaacSimUnavailableError(
        f"backend='isaacsim' needs Isaac Sim 6.x, which is not installed in this Python ({version}, "
        f"{sys.executable}). Run with Isaac Sim's own Python (./python.sh in the Isaac Sim folder) or install it "
        "with pip on Python 3.12 (pip install 'isaacsim[all,extscache]==6.*' --extra-index-url "
        "https://pypi.nvidia.com), then pip install lyra-isaac into that environment; or use backend='mujoco'."
    )


# ---------------------------------------------------------------------------------------- pure helpers (tested)
def layout_worlds(bounds: Sequence[Sequence[Sequence[float]]], spacing: float = WORLD_SPACING_M) -> np.ndarray:
    """Offsets that lay worlds side by side along +X without overlap.

    Args:
        bounds: per world [[xmin, ymin, zmin], [xmax, ymax, zmax]] (world.json ``bounds``), metres.
        spacing: gap between neighbouring worlds, metres.

    Returns:
        (N, 3) float64 translations; world 0 stays in place, each next world's xmin sits ``spacing`` beyond the
        previous world's xmax; y and z are unchanged.
    """
    offsets = np.zeros((len(bounds), 3))
    edge = None
    for i, b in enumerate(bounds):
        b = np.asarray(b, dtype=np.float64).reshape(2, 3)
        if edge is not None:
            offsets[i, 0] = edge + spacing - b[0, 0]
        edge = b[1, 0] + offsets[i, 0]
    return offsets


def nominal_joint_positions(robot: str, joint_names: Sequence[str]) -> np.ndarray:
    """(n,) nominal standing joint positions (rad) for ``joint_names`` from :data:`NOMINAL_POSES` (first match)."""
    import re

    patterns = [(re.compile(p), v) for p, v in NOMINAL_POSES.get(robot, {}).items()]
    out = np.zeros(len(joint_names))
    for i, name in enumerate(joint_names):
        out[i] = next((v for p, v in patterns if p.fullmatch(name)), 0.0)
    return out


def joint_gains(position_gains: dict[str, Sequence[float]], joint_names: Sequence[str]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PD gains per joint from robots.toml's ``position_gains`` (joint-name substring -> [kp, kd]).

    Returns:
        (indices, kp, kd): the joints that a substring matches (first match wins) and their gains; joints without a
        match keep the gains authored in the robot USD.
    """
    idx, kp, kd = [], [], []
    for i, name in enumerate(joint_names):
        for key, (p, d) in position_gains.items():
            if key in name:
                idx.append(i)
                kp.append(float(p))
                kd.append(float(d))
                break
    return np.asarray(idx, dtype=np.int32), np.asarray(kp), np.asarray(kd)


def scan_origins(base_pos: np.ndarray, yaw: float, grid: np.ndarray, above: float = RAY_START_ABOVE_BASE_M
                 ) -> np.ndarray:
    """(K, 3) ray origins: the yaw-aligned scan grid (K, 2, base yaw frame) around the base, ``above`` the base."""
    c, s = math.cos(yaw), math.sin(yaw)
    x = base_pos[0] + c * grid[:, 0] - s * grid[:, 1]
    y = base_pos[1] + s * grid[:, 0] + c * grid[:, 1]
    return np.stack([x, y, np.full(len(grid), base_pos[2] + above)], axis=1)


RaycastClosestFn = Callable[[tuple[float, float, float], tuple[float, float, float], float], dict]
"""``raycast_closest(origin, direction, max_distance) -> dict`` with ``hit`` (bool), ``position`` (3,) and
``collision`` (prim path of the hit collider): omni.physx's ``PhysXSceneQuery.raycast_closest``."""
RaycastAllFn = Callable[[tuple[float, float, float], tuple[float, float, float], float, Callable[[Any], bool]], bool]
"""``raycast_all(origin, direction, max_distance, report_fn)``: calls ``report_fn(hit)`` for every hit (``hit`` has
``position`` and ``collision``), continuing while it returns True: omni.physx's ``PhysXSceneQuery.raycast_all``."""


def _field(hit: Any, name: str) -> Any:
    return hit[name] if isinstance(hit, dict) else getattr(hit, name)


def ground_heights(raycast_closest: RaycastClosestFn, raycast_all: RaycastAllFn, origins: np.ndarray,
                   robot_prefix: str, max_distance: float = RAY_MAX_DISTANCE_M) -> np.ndarray:
    """Ground z under each origin by downward ray casts that ignore the robot's own colliders.

    Each ray is one closest-hit query; only a ray whose closest hit is on the robot (the few around the base) is
    cast again collecting every hit, and the nearest hit not under ``robot_prefix`` is the ground. (Re-casting a
    closest-hit ray from inside a robot collider would report that collider again: PhysX reports initial
    overlaps.)

    Returns:
        (K,) float64 hit heights, NaN where a ray finds no ground within ``max_distance``.
    """
    down = (0.0, 0.0, -1.0)
    prefix = robot_prefix.rstrip("/") + "/"

    def on_robot(hit: Any) -> bool:
        return (str(_field(hit, "collision")) + "/").startswith(prefix)

    out = np.full(len(origins), np.nan)
    for k, origin in enumerate(np.asarray(origins, dtype=np.float64)):
        start = (float(origin[0]), float(origin[1]), float(origin[2]))
        hit = raycast_closest(start, down, max_distance)
        if not hit or not hit.get("hit"):
            continue
        if not on_robot(hit):
            out[k] = float(hit["position"][2])
            continue
        hits: list[Any] = []

        def report(h: Any, hits: list[Any] = hits) -> bool:
            hits.append(h)
            return True

        raycast_all(start, down, max_distance, report)
        ground = [float(_field(h, "position")[2]) for h in hits if not on_robot(h)]
        if ground:
            out[k] = max(ground)  # downward rays: the highest non-robot hit is the nearest
    return out


def scan_values(base_z: float, ground_z: np.ndarray, offset: float, clip: float) -> np.ndarray:
    """Isaac Lab ``height_scan`` values: base z - ground z - offset, clipped; missing ground reads +clip (float32)."""
    values = base_z - np.asarray(ground_z, dtype=np.float64) - offset
    values = np.where(np.isfinite(values), values, clip)
    return np.clip(values, -clip, clip).astype(np.float32)


def chase_camera_pose(base_pos: np.ndarray, yaw: float, distance: float = 3.0, height: float = 1.0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(eye (3,), target (3,)) of a camera ``distance`` m behind and ``height`` m above the base, looking at it."""
    back = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    eye = np.asarray(base_pos, dtype=np.float64) - distance * back + np.array([0.0, 0.0, height])
    return eye, np.asarray(base_pos, dtype=np.float64)


def spawn_pose(spawn: np.ndarray, offset: np.ndarray, spawn_height: float) -> tuple[np.ndarray, np.ndarray]:
    """Root pose of a robot standing at ``spawn`` = [x, y, floor_z, yaw] of a world laid at ``offset`` in the stage.

    Returns:
        (positions (1, 3) stage metres, orientations (1, 4) w-first), as Articulation.set_world_poses takes them.
    """
    x, y, z, yaw = (float(v) for v in spawn)
    position = np.array([[x + offset[0], y + offset[1], z + offset[2] + spawn_height]])
    return position, np.array([[math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]])


def ego_camera_pose(base_pos: np.ndarray, base_quat: np.ndarray, camera_pos: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(eye (3,), target (3,)) of a camera at ``camera_pos`` (base frame) looking along the base's +X (forward)."""
    rot = quat_to_matrix(np.asarray(base_quat, dtype=np.float64))
    eye = np.asarray(base_pos, dtype=np.float64) + rot @ camera_pos
    return eye, eye + rot[:, 0]


def camera_apertures(fovy_deg: float, width: int, height: int, horizontal: float = 20.955
                     ) -> tuple[float, float, float]:
    """(horizontal aperture, vertical aperture, focal length) of a USD camera (same length unit) whose vertical
    field of view is ``fovy_deg`` on a ``width`` x ``height`` image with square pixels."""
    vertical = horizontal * height / width
    focal = vertical / (2.0 * math.tan(math.radians(fovy_deg) / 2.0))
    return horizontal, vertical, focal


@dataclass
class _Running:
    """Handles that exist only while Isaac Sim runs (filled by IsaacSimBackend._build)."""

    app: Any = None
    owns_app: bool = False
    robot: Any = None
    feet: Any = None
    scene_query: Any = None


class IsaacSimBackend:
    """PhysX humanoid simulation of one or more Lyra worlds in Isaac Sim 6.x (see the module docstring).

    The signature matches :class:`lyra_isaac.envs.backends.mujoco.MujocoBackend`, so LyraWorldEnv builds either.

    Args:
        worlds: the world directories (each with world.usda); episodes pick one by index.
        robot: the robots.toml entry (control mode, action scale, PD gains, spawn height, foot bodies, ego camera
            position), shared with the MuJoCo backend.
        model_path: the robot's MuJoCo model file (unused here: Isaac Sim loads its own USD of ``cfg.robot``).
        cfg: the environment; ``cfg.robot`` must be ``"h1"`` or ``"g1"`` (Isaac Sim's Unitree assets; Gymnasium's
            ``humanoid`` exists only in MuJoCo); physics.timestep and physics.decimation set the physics dt and the
            env dt; observation.* the height scan and the ego camera.
        headless: start the SimulationApp without a window (standalone mode only).
        device: PhysX device, ``"cpu"`` (default) or ``"cuda:0"``.
        assets_root: Isaac Sim's asset root; default ``isaacsim.storage.native.get_assets_root_path()``.

    Raises:
        IsaacSimUnavailableError: Isaac Sim is not importable. ConfigError: a robot without Isaac Sim asset.
        InputError: a world without USD stage, or an unreachable robot asset.
    """

    def __init__(self, worlds: Sequence[WorldDir], robot: RobotConfig, model_path: Path | None, cfg: EnvConfig, *,
                 headless: bool = True, device: str = "cpu", assets_root: str | None = None):
        require_isaac_sim()
        if not worlds:
            raise ConfigError("backend='isaacsim' needs at least one world directory")
        self.spec: RobotSpec = robot_spec(cfg.robot)
        self.robot_cfg = robot
        self.env_cfg = cfg
        self.worlds = list(worlds)
        for world in self.worlds:
            usd = world.path / world.manifest.files.get("usd", WORLD_USD)
            if not usd.is_file():
                raise InputError(world.path, f"world has no USD stage ({usd.name} missing); convert it again")
        self.headless = headless
        self.device = device
        self.physics_dt = float(cfg.physics.timestep)
        self.decimation = int(cfg.physics.decimation)
        self.dt = self.physics_dt * self.decimation
        self.offsets = layout_worlds([w.manifest.bounds for w in self.worlds])
        self._h = _Running()
        self._cameras: dict[tuple[str, int, int], tuple[str, Any, Any]] = {}
        self._world_index = 0
        self._time = 0.0
        self._prev_joint_vel: np.ndarray | None = None
        self._build(assets_root)

    # ------------------------------------------------------------------------------------------------ set-up
    def _start_app(self) -> None:
        """Use the running Kit app (in-app mode) or start a SimulationApp (standalone mode)."""
        try:
            import omni.kit.app

            app = omni.kit.app.get_app()
            running = app is not None and app.is_running()
        except (ImportError, RuntimeError):
            running = False
        if running:
            self._h.app, self._h.owns_app = omni.kit.app.get_app(), False
            return
        import isaacsim  # noqa: F401  (bootstraps the Kit paths of a pip install before SimulationApp)
        from isaacsim.simulation_app import SimulationApp

        self._h.app = SimulationApp({"headless": self.headless})
        self._h.owns_app = True

    @staticmethod
    def _enable_extensions(names: Sequence[str]) -> None:
        """Enable the Kit extensions the backend imports (a standalone app's experience may not load them)."""
        import omni.kit.app

        manager = omni.kit.app.get_app().get_extension_manager()
        for name in names:
            if not manager.is_extension_enabled(name) and not manager.set_extension_enabled_immediate(name, True):
                raise IsaacSimUnavailableError(f"backend='isaacsim' needs the Kit extension '{name}', which could "
                                               "not be enabled in this Isaac Sim")

    def _build(self, assets_root: str | None) -> None:
        self._start_app()
        self._enable_extensions(REQUIRED_EXTENSIONS)
        import isaacsim.core.experimental.utils.stage as stage_utils
        import omni.timeline
        from isaacsim.core.experimental.prims import Articulation, RigidPrim
        from isaacsim.core.simulation_manager import SimulationManager
        from isaacsim.storage.native import get_assets_root_path
        from omni.physx import get_physx_scene_query_interface
        from pxr import Gf, UsdPhysics

        root = assets_root if assets_root is not None else get_assets_root_path()
        try:
            robot_url = self.spec.usd_url(root)
        except ConfigError as exc:
            raise InputError(None, str(exc)) from None
        # the height scan uses PhysX scene queries, so the backend runs PhysX (Isaac Sim 6 may default to Newton)
        if (SimulationManager.get_active_physics_engine() or "").lower() != "physx":
            if not SimulationManager.switch_physics_engine("physx"):
                raise ConfigError("backend='isaacsim' needs the PhysX engine, and Isaac Sim could not switch to it")

        stage = stage_utils.create_new_stage()
        stage_utils.set_stage_up_axis("Z")
        stage_utils.set_stage_units(meters_per_unit=1.0, kilograms_per_unit=1.0)
        world_prim = stage_utils.define_prim("/World", "Xform")
        stage.SetDefaultPrim(world_prim)
        scene = UsdPhysics.Scene.Define(stage, PHYSICS_SCENE_PRIM)
        scene.CreateGravityDirectionAttr(Gf.Vec3f(0.0, 0.0, -1.0))
        scene.CreateGravityMagnitudeAttr(GRAVITY)
        for i, (world, offset) in enumerate(zip(self.worlds, self.offsets, strict=True)):
            usd = (world.path / world.manifest.files.get("usd", WORLD_USD)).resolve()
            reference_world_content(stage, usd, f"{WORLDS_PRIM}/world_{i:03d}", tuple(float(v) for v in offset))
        robot_prim = stage_utils.add_reference_to_stage(robot_url, ROBOT_PRIM)
        if not robot_prim.GetChildren():
            raise InputError(robot_url, f"{self.spec.title} USD could not be loaded (asset root '{root}' reachable?)")
        prepare_robot_prim(robot_prim, "physx")

        SimulationManager.setup_simulation(dt=self.physics_dt, device=self.device)
        omni.timeline.get_timeline_interface().play()
        SimulationManager.initialize_physics()
        self._h.robot = Articulation(ROBOT_PRIM)
        self.joint_names: list[str] = list(self._h.robot.dof_names)
        self.nominal_joint_pos = nominal_joint_positions(self.spec.name, self.joint_names)
        if self.robot_cfg.control == "position" and self.robot_cfg.position_gains:
            idx, kp, kd = joint_gains(self.robot_cfg.position_gains, self.joint_names)
            if len(idx):
                self._h.robot.set_dof_gains(kp[None], kd[None], dof_indices=idx)
        self._max_efforts = self._h.robot.get_dof_max_efforts().numpy().reshape(-1)
        feet = [p for p in self._h.robot.link_paths[0]
                if p.rsplit("/", 1)[-1] in set(self.robot_cfg.foot_bodies)]
        self._h.feet = RigidPrim(feet) if feet else None
        self._h.scene_query = get_physx_scene_query_interface()

    def _camera(self, name: str, width: int, height: int) -> tuple[str, Any, Any]:
        """(prim path, rgb annotator, depth annotator) of camera ``name`` at ``width`` x ``height`` (made once)."""
        key = (name, width, height)
        if key not in self._cameras:
            self._enable_extensions(["omni.replicator.core"])
            import omni.replicator.core as rep
            import omni.usd
            from pxr import UsdGeom

            path = f"{CAMERAS_PRIM}/{name}_{width}x{height}"
            camera = UsdGeom.Camera.Define(omni.usd.get_context().get_stage(), path)
            fovy = self.env_cfg.observation.image_fovy if name == EGO_CAMERA else CHASE_FOVY_DEG
            horizontal, vertical, focal = camera_apertures(fovy, width, height)
            camera.CreateHorizontalApertureAttr(horizontal)
            camera.CreateVerticalApertureAttr(vertical)
            camera.CreateFocalLengthAttr(focal)
            camera.CreateClippingRangeAttr((0.01, 1000.0))
            product = rep.create.render_product(path, (width, height))
            rgb = rep.AnnotatorRegistry.get_annotator("rgb")
            rgb.attach([product])
            depth = rep.AnnotatorRegistry.get_annotator("distance_to_image_plane")
            depth.attach([product])
            self._cameras[key] = (path, rgb, depth)
        return self._cameras[key]

    # ---------------------------------------------------------------------------------------------- running
    def _read_state(self) -> RobotState:
        robot = self._h.robot
        positions, orientations = robot.get_world_poses()
        lin_vel, ang_vel = robot.get_velocities()
        base_pos = positions.numpy().reshape(3).astype(np.float64)
        base_quat = orientations.numpy().reshape(4).astype(np.float64)
        rot = quat_to_matrix(base_quat)
        joint_vel = robot.get_dof_velocities().numpy().reshape(-1).astype(np.float64)
        joint_acc = (np.zeros_like(joint_vel) if self._prev_joint_vel is None
                     else (joint_vel - self._prev_joint_vel) / self.dt)
        self._prev_joint_vel = joint_vel
        feet = (self._h.feet.get_world_poses()[0].numpy().reshape(-1, 3).astype(np.float64)
                if self._h.feet is not None else np.zeros((0, 3)))
        offset = self.offsets[self._world_index]
        return RobotState(
            base_pos=base_pos - offset,
            base_quat=base_quat,
            base_lin_vel_w=lin_vel.numpy().reshape(3).astype(np.float64),
            base_ang_vel_b=rot.T @ ang_vel.numpy().reshape(3).astype(np.float64),
            joint_pos=robot.get_dof_positions().numpy().reshape(-1).astype(np.float64),
            joint_vel=joint_vel,
            joint_acc=joint_acc,
            joint_torque=robot.get_dof_projected_joint_forces().numpy().reshape(-1).astype(np.float64),
            foot_pos=feet - offset,
            time=self._time,
            extra={"world_index": self._world_index},
        )

    def reset(self, world_index: int, spawn: np.ndarray, joint_noise: np.ndarray) -> RobotState:
        """Place the robot standing at ``spawn`` = [x, y, floor_z, yaw] (world metres) of world ``world_index``."""
        from isaacsim.core.simulation_manager import SimulationManager

        if not 0 <= world_index < len(self.worlds):
            raise ConfigError(f"world_index {world_index} outside 0..{len(self.worlds) - 1}")
        self._world_index = world_index
        position, orientation = spawn_pose(spawn, self.offsets[world_index], self.robot_cfg.spawn_height)
        joints = (self.nominal_joint_pos + np.asarray(joint_noise, dtype=np.float64).reshape(-1))[None]
        robot = self._h.robot
        robot.set_world_poses(positions=position, orientations=orientation)
        robot.set_velocities(linear_velocities=np.zeros((1, 3)), angular_velocities=np.zeros((1, 3)))
        robot.set_dof_positions(joints)
        robot.set_dof_velocities(np.zeros_like(joints))
        if self.robot_cfg.control == "position":
            robot.set_dof_position_targets(joints)
        else:
            robot.set_dof_efforts(np.zeros_like(joints))
        SimulationManager.step(steps=1)
        self._time = 0.0
        self._prev_joint_vel = None
        return self._read_state()

    def step(self, action: np.ndarray) -> tuple[RobotState, bool]:
        """Apply one clipped action (position targets or torques, robots.toml ``control``) for ``decimation``
        physics steps; returns (state, physics_ok) where physics_ok is False once the state is not finite."""
        from isaacsim.core.simulation_manager import SimulationManager

        action = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
        if self.robot_cfg.control == "position":
            targets = self.nominal_joint_pos + action * self.robot_cfg.action_scale
            self._h.robot.set_dof_position_targets(targets[None])
        else:
            self._h.robot.set_dof_efforts((action * self.robot_cfg.action_scale * self._max_efforts)[None])
        SimulationManager.step(steps=self.decimation)
        self._time += self.dt
        state = self._read_state()
        ok = all(np.isfinite(a).all() for a in (state.base_pos, state.base_quat, state.joint_pos, state.joint_vel))
        return state, ok

    def height_scan(self, state: RobotState, grid: np.ndarray) -> np.ndarray:
        """(K,) Isaac Lab height scan by PhysX scene-query ray casts (robot colliders skipped).

        Same convention as :func:`lyra_isaac.envs.sensors.height_scan`: base z - ground z - offset, clipped,
        ``grid`` (K, 2) in the base yaw frame (:func:`lyra_isaac.envs.sensors.scan_grid`).
        """
        o = self.env_cfg.observation
        offset = self.offsets[self._world_index]
        base = state.base_pos + offset
        origins = scan_origins(base, yaw_of(state.base_quat), grid)
        query = self._h.scene_query
        ground = ground_heights(query.raycast_closest, query.raycast_all, origins, ROBOT_PRIM)
        return scan_values(base[2], ground, o.scan_offset, o.scan_clip)

    def render(self, camera: str = CHASE_CAMERA, width: int | None = None, height: int | None = None,
               depth: bool = False) -> np.ndarray:
        """(H, W, 3) uint8 RGB, or (H, W) float32 depth in metres (distance to the image plane) with ``depth=True``.

        ``camera``: ``"chase"`` (3 m behind, 1 m above the base, looking at it) or ``"ego"`` (fixed to the base at
        robots.toml ``camera_pos``, looking forward, ``observation.image_fovy``), as on the MuJoCo backend.
        """
        if camera not in (CHASE_CAMERA, EGO_CAMERA):
            raise ConfigError(f"camera must be '{CHASE_CAMERA}' or '{EGO_CAMERA}', not '{camera}'")
        import omni.usd
        from isaacsim.core.rendering_manager import RenderingManager
        from pxr import Gf, UsdGeom

        width = width or self.env_cfg.render_width
        height = height or self.env_cfg.render_height
        path, rgb, depth_annotator = self._camera(camera, width, height)
        positions, orientations = self._h.robot.get_world_poses()
        base = positions.numpy().reshape(3).astype(np.float64)
        quat = orientations.numpy().reshape(4).astype(np.float64)
        if camera == CHASE_CAMERA:
            eye, target = chase_camera_pose(base, yaw_of(quat))
        else:
            eye, target = ego_camera_pose(base, quat, np.asarray(self.robot_cfg.camera_pos, dtype=np.float64))
        view = Gf.Matrix4d().SetLookAt(Gf.Vec3d(*eye), Gf.Vec3d(*target), Gf.Vec3d(0, 0, 1))
        xform = UsdGeom.Xformable(omni.usd.get_context().get_stage().GetPrimAtPath(path))
        xform.ClearXformOpOrder()
        xform.AddTransformOp().Set(view.GetInverse())
        RenderingManager.render()
        if depth:
            data = np.asarray(depth_annotator.get_data(), dtype=np.float32).reshape(height, width)
            return np.where(np.isfinite(data), data, np.nan).astype(np.float32)
        data = np.asarray(rgb.get_data())
        return np.ascontiguousarray(data.reshape(height, width, -1)[..., :3]).astype(np.uint8)

    def close(self) -> None:
        """Stop the simulation; close the SimulationApp if this backend started it."""
        try:
            import omni.timeline

            omni.timeline.get_timeline_interface().stop()
        except ImportError:
            pass
        if self._h.owns_app and self._h.app is not None:
            self._h.app.close()
        self._h = _Running()
