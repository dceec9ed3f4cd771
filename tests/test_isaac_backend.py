"""The Isaac Sim backend's pure parts (world layout, nominal pose, gains, ray-cast height scan), checked against the
MuJoCo-side height scan on the analytic valley world; the PhysX ray cast is replaced by an exact analytic one."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
from worlds import make_heightmap, surface_height

from lyra_isaac.envs.backends import isaacsim as backend
from lyra_isaac.envs.sensors import GroundLookup, height_scan, scan_grid

ROBOT = "/World/Robot"


class AnalyticRaycast:
    """raycast_closest / raycast_all stand-ins over the valley world (exact surface, like PhysX on the mesh), with an
    optional robot collider box ``(xmin, xmax, ymin, ymax, zmin, zmax)`` under /World/Robot that rays hit first."""

    def __init__(self, robot_box=None):
        self.robot_box = robot_box
        self.closest_calls = 0
        self.all_calls = 0

    def _hits(self, origin, direction, distance):
        assert direction == (0.0, 0.0, -1.0)
        x, y, z0 = origin
        hits = []
        if self.robot_box is not None:
            x0, x1, y0, y1, zb, zt = self.robot_box
            if x0 <= x <= x1 and y0 <= y <= y1 and zb < z0:
                hits.append({"hit": True, "position": (x, y, min(zt, z0)), "collision": f"{ROBOT}/pelvis/collisions"})
        if abs(x) <= 4 and abs(y) <= 4:
            z = float(surface_height(x, y))
            hits.append({"hit": True, "position": (x, y, z), "collision": "/World/Worlds/world_000/ground"})
        return sorted((h for h in hits if z0 - h["position"][2] <= distance), key=lambda h: -h["position"][2])

    def closest(self, origin, direction, distance):
        self.closest_calls += 1
        hits = self._hits(origin, direction, distance)
        return hits[0] if hits else {"hit": False}

    def all(self, origin, direction, distance, report):
        self.all_calls += 1
        for hit in self._hits(origin, direction, distance)[::-1]:  # PhysX reports in no particular order
            if not report(types.SimpleNamespace(**hit)):
                break
        return True


def _ground(cast, origins):
    return backend.ground_heights(cast.closest, cast.all, origins, ROBOT)


def test_layout_worlds_side_by_side():
    bounds = [[[-4, -4, 0], [4, 4, 1]], [[0, -1, 0], [10, 1, 2]], [[-2, -2, -1], [2, 2, 0]]]
    offsets = backend.layout_worlds(bounds, spacing=5.0)
    np.testing.assert_allclose(offsets[0], 0.0)
    assert offsets[1, 0] == pytest.approx(4 + 5 - 0)      # xmin 0 lands 5 m beyond x = 4
    assert offsets[2, 0] == pytest.approx(9 + 10 + 5 + 2)  # previous xmax 19, this xmin -2
    np.testing.assert_allclose(offsets[:, 1:], 0.0)


def test_nominal_pose_and_gains():
    names = ["left_hip_yaw_joint", "left_hip_pitch_joint", "left_knee_joint", "torso_joint", "right_elbow_joint"]
    np.testing.assert_allclose(backend.nominal_joint_positions("h1", names), [0.0, -0.28, 0.79, 0.0, 0.52])
    np.testing.assert_allclose(backend.nominal_joint_positions("unknown", names), 0.0)
    idx, kp, kd = backend.joint_gains({"hip": [150.0, 5.0], "knee": [200.0, 5.0]}, names)
    assert idx.tolist() == [0, 1, 2]
    assert kp.tolist() == [150.0, 150.0, 200.0] and kd.tolist() == [5.0, 5.0, 5.0]


def test_scan_origins_are_yaw_aligned():
    grid = np.array([[1.0, 0.0], [0.0, 1.0]])
    origins = backend.scan_origins(np.array([1.0, 2.0, 1.0]), math.pi / 2, grid, above=0.5)
    np.testing.assert_allclose(origins, [[1.0, 3.0, 1.5], [0.0, 2.0, 1.5]], atol=1e-12)


@pytest.mark.parametrize("yaw", [0.0, 0.7, -2.0])
def test_raycast_scan_matches_heightmap_scan(yaw):
    """The PhysX path (ray casts) and the MuJoCo path (height-map lookup) give the same observation block."""
    grid = scan_grid()
    assert grid.shape == (187, 2)
    base = np.array([0.6, 0.3, 1.05 + float(surface_height(0.6, 0.3))])
    origins = backend.scan_origins(base, yaw, grid)
    rays = backend.scan_values(base[2], _ground(AnalyticRaycast(), origins), 0.5, 1.0)
    lookup = height_scan(GroundLookup.from_heightmap(make_heightmap(cell_size=0.02)), base, yaw, grid)
    assert rays.dtype == np.float32 and rays.shape == (187,)
    np.testing.assert_allclose(rays, lookup, atol=0.02)  # bilinear lookup on 2 cm cells vs exact surface


def test_raycast_scan_skips_robot_colliders():
    base = np.array([0.0, 0.0, 1.0])
    grid = np.array([[0.0, 0.0], [0.5, 0.0], [-3.9, 0.0]])
    cast = AnalyticRaycast(robot_box=(-0.2, 0.2, -0.2, 0.2, 0.0, 1.2))
    ground = _ground(cast, backend.scan_origins(base, 0.0, grid))
    np.testing.assert_allclose(ground, surface_height(grid[:, 0], grid[:, 1]), atol=1e-9)
    assert (cast.closest_calls, cast.all_calls) == (3, 1)  # only the centre ray, which hit the robot, casts again


def test_raycast_scan_missing_ground_reads_clip():
    base = np.array([3.9, 0.0, 1.5])
    grid = np.array([[0.0, 0.0], [1.0, 0.0]])  # the second ray is off the 8 x 8 m world
    ground = _ground(AnalyticRaycast(), backend.scan_origins(base, 0.0, grid))
    assert np.isfinite(ground[0]) and np.isnan(ground[1])
    values = backend.scan_values(base[2], ground, 0.5, 1.0)
    assert values[1] == 1.0


def test_spawn_pose_round_trips_through_the_world_offset():
    from lyra_isaac.envs.spaces import yaw_of

    position, orientation = backend.spawn_pose(np.array([1.0, -2.0, 0.3, 2.5]), np.array([30.0, 0.0, 0.0]), 1.05)
    np.testing.assert_allclose(position, [[31.0, -2.0, 1.35]])
    assert orientation.shape == (1, 4) and yaw_of(orientation[0]) == pytest.approx(2.5)
    # _read_state reports positions relative to the world again
    np.testing.assert_allclose(position[0] - [30.0, 0.0, 0.0], [1.0, -2.0, 1.35])


def test_chase_camera_is_behind_the_robot():
    eye, target = backend.chase_camera_pose(np.array([1.0, 1.0, 1.0]), math.pi / 2, distance=3.0, height=1.0)
    np.testing.assert_allclose(eye, [1.0, -2.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(target, [1.0, 1.0, 1.0])


def test_ego_camera_looks_forward_from_the_base():
    yaw = math.pi / 2
    quat = np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])
    eye, target = backend.ego_camera_pose(np.array([1.0, 2.0, 1.0]), quat, np.array([0.1, 0.0, 0.4]))
    np.testing.assert_allclose(eye, [1.0, 2.1, 1.4], atol=1e-12)
    np.testing.assert_allclose(target - eye, [0.0, 1.0, 0.0], atol=1e-12)  # the base's +X, here world +Y


def test_camera_apertures_give_the_requested_fov():
    horizontal, vertical, focal = backend.camera_apertures(70.0, 64, 48)
    assert vertical / horizontal == pytest.approx(48 / 64)
    assert math.degrees(2 * math.atan(vertical / (2 * focal))) == pytest.approx(70.0)


def test_backend_refuses_without_isaac_sim():
    if backend.isaac_sim_available():
        pytest.skip("Isaac Sim is installed here")
    with pytest.raises(backend.IsaacSimUnavailableError, match="backend='mujoco'"):
        backend.IsaacSimBackend([], None, None, None)


def test_gym_make_with_isaacsim_backend_raises_one_clear_error():
    """Selecting the backend through the registered env gives the same single error (no Isaac import chain)."""
    if backend.isaac_sim_available():
        pytest.skip("Isaac Sim is installed here")
    gym = pytest.importorskip("gymnasium")
    import lyra_isaac  # noqa: F401  (registers the ids)

    with pytest.raises(backend.IsaacSimUnavailableError, match="needs Isaac Sim 6.x") as info:
        gym.make("LyraWorld-v0", backend="isaacsim")
    assert info.value.__cause__ is None
