"""LyraWorld-v0 / LyraWorldNav-v0 on the MuJoCo backend: API conformance, physics, determinism, errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")
mujoco = pytest.importorskip("mujoco")

import lyra_isaac  # noqa: E402,F401  (registers the ids)
from lyra_isaac.envs.robots import robot_available  # noqa: E402
from lyra_isaac.envs.spaces import OBS_COMMAND, OBS_FIXED  # noqa: E402
from lyra_isaac.envs.worlds import write_world_dir  # noqa: E402
from lyra_isaac.errors import ConfigError, InputError  # noqa: E402
from tests.worlds import make_valley_world, surface_height  # noqa: E402

ENV_IDS = ["LyraWorld-v0", "LyraWorldNav-v0"]
ROBOTS = [r for r in ("humanoid", "g1", "h1") if robot_available(r)]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def valley_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("valley_world") / "valley"
    write_world_dir(make_valley_world(with_splats=False), out)
    return out


def make(env_id="LyraWorld-v0", world=None, **kwargs):
    return gym.make(env_id, world=str(world) if world is not None else None, **kwargs)


def test_ids_registered():
    for env_id in ENV_IDS:
        assert env_id in gym.registry
        assert gym.spec(env_id).max_episode_steps == 1000


@pytest.mark.parametrize("robot", ROBOTS)
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env(env_id, robot, valley_dir):
    from gymnasium.utils.env_checker import check_env

    env = make(env_id, valley_dir, robot=robot)
    check_env(env.unwrapped, skip_render_check=True)
    n = len(env.unwrapped.joint_names)
    assert env.action_space.shape == (n,)
    assert env.observation_space.shape == (OBS_FIXED + 3 * n + 187,)
    env.close()


@pytest.mark.parametrize("robot", ROBOTS)
def test_robots_stand_at_every_spawn(robot, valley_dir):
    """1 s under the nominal-pose action (zero) at every spawn point: nothing sinks below the floor; PD robots stand."""
    env = make("LyraWorld-v0", valley_dir, robot=robot).unwrapped
    backend = env.backend
    steps = int(round(1.0 / env.dt))
    for spawn in env.worlds[0].spawn_points:
        env.reset(seed=0, options={"spawn": spawn})
        deepest = 0.0
        for _ in range(steps):
            _, _, terminated, _, info = env.step(np.zeros(env.n_joints))
            assert not info["physics_error"]
            contacts = backend.data.contact[: backend.data.ncon]
            if len(contacts.dist):
                deepest = min(deepest, float(contacts.dist.min()))
            if robot != "humanoid":  # the torque humanoid collapses without a policy; PD robots must stand
                assert not terminated, (robot, spawn, info["termination_reason"])
        data = backend.data
        robot_geoms = np.isin(backend.model.geom_bodyid, backend._robot_bodies)
        geom_z = data.geom_xpos[robot_geoms, 2]
        floor = surface_height(data.geom_xpos[robot_geoms, 0], data.geom_xpos[robot_geoms, 1])
        assert np.all(geom_z > floor - 0.02), (robot, spawn)  # no geom centre below the floor
        assert deepest > -0.02, (robot, spawn, deepest)  # no contact penetrates the ground by 2 cm or more
        if robot != "humanoid":
            height = env._state.base_pos[2] - surface_height(*env._state.base_pos[:2])
            assert height > 0.8 * env.robot_cfg.spawn_height, (robot, spawn, height)
    env.close()


def test_humanoid_dropped_over_valley_lands_on_surface(valley_dir):
    """The valley floor at x = 0 lies 0.75 m below the hull lid of its slopes: feet must reach z ~ 0."""
    env = make("LyraWorld-v0", valley_dir).unwrapped
    env.reset(seed=1, options={"spawn": [0.0, 0.0, 0.0, 0.0]})
    lowest = np.inf
    for _ in range(int(1.0 / env.dt)):
        env.step(np.zeros(env.n_joints))
        # foot spheres (r 7.5 cm) are centred 10 cm above their foot bodies: sole = body z + 0.025
        lowest = min(lowest, float(env._state.foot_pos[:, 2].min()) + 0.025)
    assert abs(lowest) < 0.02, lowest
    env.close()


def test_same_seed_same_observations(valley_dir):
    def rollout():
        env = make("LyraWorld-v0", valley_dir)
        env.action_space.seed(3)
        obs, _ = env.reset(seed=7)
        out = [obs]
        for _ in range(99):
            obs, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                obs, _ = env.reset()
            out.append(obs)
        env.close()
        return np.array(out)

    a, b = rollout(), rollout()
    assert a.shape == (100, 250)
    np.testing.assert_array_equal(a, b)
    env = make("LyraWorld-v0", valley_dir)
    c, _ = env.reset(seed=8)
    assert not np.array_equal(a[0], c)  # a different seed gives a different start


def test_invalid_actions_and_physics_blowup(valley_dir):
    env = make("LyraWorld-v0", valley_dir).unwrapped
    env.reset(seed=0)
    action = np.full(env.n_joints, np.nan)
    action[:3] = [5.0, -7.0, 0.5]
    obs, reward, _, _, info = env.step(action)
    assert info["action_invalid"] == env.n_joints - 3 and info["action_clipped"] == 2
    assert np.isfinite(obs).all() and np.isfinite(reward)
    np.testing.assert_array_equal(env._last_action[:3], [1.0, -1.0, 0.5])
    # blow the physics up: absurd velocities -> MuJoCo's bad-qacc warning -> clean termination
    env.backend.data.qvel[:] = 1e30
    obs, reward, terminated, truncated, info = env.step(np.zeros(env.n_joints))
    assert info["physics_error"] and terminated and not truncated
    assert info["termination_reason"] == "physics_error"
    assert np.isfinite(obs).all() and np.isfinite(reward)
    obs, _ = env.reset(seed=1)
    assert np.isfinite(obs).all()


def test_reward_terms_in_info_and_overrides(valley_dir):
    env = make("LyraWorld-v0", valley_dir, rewards={"alive": 3.0}).unwrapped
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.zeros(env.n_joints))
    terms = info["reward_terms"]
    assert terms["alive"] == pytest.approx(3.0 * env.dt)
    assert {"track_lin_vel_xy", "track_ang_vel_z", "action_rate", "termination"} <= set(terms)
    assert reward == pytest.approx(sum(terms.values()))
    # the base starts at the robot's spawn height above the floor under it (humanoid: 1.4 m) and has barely moved
    assert info["base_height"] == pytest.approx(env.robot_cfg.spawn_height, abs=0.1)
    env2 = make("LyraWorld-v0", valley_dir, physics={"decimation": 2}).unwrapped
    assert env2.dt == pytest.approx(0.006)


def test_nav_goal_observation(valley_dir):
    env = make("LyraWorldNav-v0", valley_dir).unwrapped
    obs, info = env.reset(seed=4)
    goal = info["goal"]
    base = env._state.base_pos
    assert obs[OBS_COMMAND][2] == pytest.approx(np.hypot(*(goal[:2] - base[:2])), abs=1e-5)
    assert 1.0 - 0.05 <= obs[OBS_COMMAND][2] <= 5.0 + 0.05
    assert env.worlds[0].heightmap().is_walkable(goal[None, :2])[0]
    _, _, _, _, info = env.step(np.zeros(env.n_joints))
    assert "progress" in info["reward_terms"] and "track_lin_vel_xy" not in info["reward_terms"]


def test_height_scan_matches_surface(valley_dir):
    env = make("LyraWorld-v0", valley_dir).unwrapped
    obs, _ = env.reset(seed=0, options={"spawn": [0.0, 0.0, 0.0, 0.0]})
    scan = obs[-187:].reshape(11, 17)
    base_z = env._state.base_pos[2]
    # yaw 0: scan column ix at x = -0.8 + 0.1 ix, row iy at y = -0.5 + 0.1 iy; valley floor z = 0 for |x| < 1
    np.testing.assert_allclose(scan, np.clip(base_z - 0.0 - 0.5, -1, 1), atol=1e-4)
    obs, _ = env.reset(seed=0, options={"spawn": [1.5, 0.0, float(surface_height(1.5, 0.0)), np.pi / 2]})
    scan = obs[-187:].reshape(11, 17)
    base = env._state.base_pos
    # yaw 90 deg: the scan's y axis (rows) points along -x; row 0 (y = -0.5) lies at world x = base_x + 0.5
    expected_row0 = np.clip(base[2] - surface_height(base[0] + 0.5, base[1]) - 0.5, -1, 1)
    np.testing.assert_allclose(scan[0, 8], expected_row0, atol=2e-3)


def test_world_selection(valley_dir, tmp_path):
    folder = tmp_path / "worlds"
    folder.mkdir()
    for name in ("a", "b"):
        shutil.copytree(valley_dir, folder / name)
    env = make("LyraWorld-v0", folder).unwrapped
    assert len(env.worlds) == 2
    seen = {env.reset(seed=s)[1]["world"] for s in range(12)}
    assert len(seen) == 2  # sampled per episode
    (folder / "index.json").write_text(json.dumps({"worlds": [
        {"name": "a", "status": "complete"}, {"name": "b", "status": "failed"},
        {"world_dir": str(folder / "b"), "status": "running"}]}))
    env = gym.make("LyraWorld-v0", world=str(folder)).unwrapped
    assert [w.path.name for w in env.worlds] == ["a"]
    env = gym.make("LyraWorld-v0", world=[str(folder / "a"), str(folder / "b")]).unwrapped
    assert len(env.worlds) == 2


def test_clear_errors(valley_dir, tmp_path):
    with pytest.raises(ConfigError, match="unknown robot 'spot'"):
        make("LyraWorld-v0", valley_dir, robot="spot")
    with pytest.raises(ConfigError, match="task"):
        make("LyraWorld-v0", valley_dir, task="dance")
    with pytest.raises(ConfigError, match="unknown config key"):
        make("LyraWorld-v0", valley_dir, not_a_field=1)
    with pytest.raises(ConfigError, match="rewards: unknown term"):
        make("LyraWorld-v0", valley_dir, rewards={"dance": 1.0})
    if not os.environ.get("DISPLAY"):
        with pytest.raises(ConfigError, match="needs a display"):
            make("LyraWorld-v0", valley_dir, render_mode="human")
    with pytest.raises(InputError, match="no such"):
        make("LyraWorld-v0", tmp_path / "missing")
    broken = tmp_path / "broken"
    shutil.copytree(valley_dir, broken)
    (broken / "world.json").write_text("{not json")
    with pytest.raises(InputError, match="corrupt JSON"):
        make("LyraWorld-v0", broken)
    nospawn = tmp_path / "nospawn"
    shutil.copytree(valley_dir, nospawn)
    data = json.loads((nospawn / "world.json").read_text())
    data["spawn_points"] = []
    (nospawn / "world.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="no spawn points"):
        make("LyraWorld-v0", nospawn)
    (nospawn / "world.json").write_text(json.dumps(dict(data, spawn_points=[[2.5, 2.5, 0.75, 0]])))  # on the box
    with pytest.raises(InputError, match="walkable area"):
        make("LyraWorld-v0", nospawn)
    (nospawn / "world.json").write_text(json.dumps(dict(data, spawn_points=[[0, 0, 0, 0]])))
    (nospawn / "scene.xml").unlink()
    with pytest.raises(InputError, match="'mjcf'.*missing"):
        make("LyraWorld-v0", nospawn)


def _run(code: str, tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, LYRA_ISAAC_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=tmp_path)


def test_make_without_import_and_default_world(tmp_path):
    """gym.make("lyra_isaac:LyraWorld-v0") in a fresh interpreter builds the default world once, in the cache."""
    code = ("import gymnasium as gym\n"
            "env = gym.make('lyra_isaac:LyraWorld-v0')\n"
            "obs, info = env.reset(seed=0)\n"
            "print(obs.shape, info['world'])\n")
    result = _run(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "(250,)" in result.stdout and str(tmp_path / "cache" / "worlds" / "default-") in result.stdout


def test_default_world_concurrent_first_use(tmp_path):
    code = "from lyra_isaac.envs.worlds import default_world; print(default_world())"
    env = dict(os.environ, LYRA_ISAAC_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    paths = {o[0].strip() for o in outs}
    assert len(paths) == 1
    worlds_dir = tmp_path / "cache" / "worlds"
    assert [p.name for p in worlds_dir.iterdir() if not p.name.endswith(".lock")] == [Path(paths.pop()).name]


def test_render_rgb_array_headless(valley_dir, tmp_path):
    code = (
        "import gymnasium as gym, numpy as np, lyra_isaac\n"
        f"env = gym.make('LyraWorld-v0', world={str(valley_dir)!r}, render_mode='rgb_array')\n"
        "env.reset(seed=0)\n"
        "frame = env.render()\n"
        "print(frame.shape, frame.dtype, float(frame.std()))\n"
        f"env2 = gym.make('LyraWorld-v0', world={str(valley_dir)!r}, obs_mode='depth')\n"
        "obs, _ = env2.reset(seed=0)\n"
        "d = obs['image']\n"
        "print(d.shape, float(d.min()), float(d.max()))\n"
        "assert env2.observation_space.contains(obs)\n"
        f"env3 = gym.make('LyraWorld-v0', world={str(valley_dir)!r}, obs_mode='rgb')\n"
        "obs, _ = env3.reset(seed=0)\n"
        "obs, *_ = env3.step(env3.action_space.sample())\n"
        "assert env3.observation_space.contains(obs) and obs['image'].std() > 1.0\n"
    )
    result = _run(code, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    first, second = result.stdout.strip().splitlines()[:2]
    assert first.startswith("(360, 480, 3) uint8")
    assert float(first.split()[-1]) > 5.0  # not a blank image
    assert second.startswith("(48, 64, 1)")
    dmin, dmax = map(float, second.split()[-2:])
    assert 0.05 < dmin < dmax <= 10.0


def test_async_vector_env(valley_dir):
    envs = gym.make_vec("LyraWorld-v0", num_envs=2, vectorization_mode="async", world=str(valley_dir))
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, 250)
        for _ in range(20):
            obs, reward, term, trunc, _ = envs.step(envs.action_space.sample())
        assert np.isfinite(obs).all() and reward.shape == (2,)
    finally:
        envs.close()


def test_sb3_ppo_runs(valley_dir, tmp_path):
    """Stable-Baselines3 PPO trains on LyraWorld-v0 unchanged for a few thousand steps (~5-10 s on 2 cores)."""
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.logger import configure

    env = make("LyraWorld-v0", valley_dir)
    model = sb3.PPO("MlpPolicy", env, n_steps=512, batch_size=128, n_epochs=2, seed=0, verbose=0, device="cpu")
    model.set_logger(configure(str(tmp_path / "sb3"), []))  # SB3's default makes a /tmp/SB3-<date> folder per run
    model.learn(total_timesteps=2048)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)


def test_missing_robot_package_names_the_extra(valley_dir, monkeypatch):
    import importlib.util

    from lyra_isaac.errors import MissingDependencyError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("envpool_assets") else real(name, *a))
    with pytest.raises(MissingDependencyError, match=r"lyra-isaac\[robots\]"):
        make("LyraWorld-v0", valley_dir, robot="g1")


def test_play_command_writes_frames(valley_dir, tmp_path):
    # a fresh process: offscreen GL must be chosen before mujoco is first imported
    result = _run(f"from lyra_isaac.cli import main; raise SystemExit(main(['play', {str(valley_dir)!r}, "
                  f"'--steps', '12', '--every', '5', '--frames', {str(tmp_path / 'frames')!r}, '--size', '96x64']))",
                  tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    frames = sorted((tmp_path / "frames").glob("frame_*.png"))
    assert len(frames) == 3
    from PIL import Image

    assert Image.open(frames[0]).size == (96, 64)
    from lyra_isaac.cli import main

    assert main(["play", str(tmp_path / "nowhere"), "--steps", "1"]) == 1  # clear error, non-zero exit


def test_ground_lookup_matches_scipy_reference():
    from scipy.ndimage import map_coordinates

    from lyra_isaac.envs.sensors import GroundLookup, height_scan, scan_grid
    from lyra_isaac.world import HeightMap

    rng = np.random.default_rng(0)
    heights = rng.normal(0, 0.2, (50, 70)).astype(np.float32)
    heights[3, 4] = np.nan  # filled from the nearest cell
    g = GroundLookup.from_heightmap(HeightMap((1.0, -2.0), 0.1, heights, np.ones_like(heights, bool)))
    assert np.isfinite(g.heights).all()
    xy = rng.uniform([0.0, -3.0], [9.0, 4.0], (4000, 2))
    z = g.height(xy)
    u, v = (xy[:, 0] - 1.0) / 0.1, (xy[:, 1] + 2.0) / 0.1
    outside = (u < -0.5) | (u > 69.5) | (v < -0.5) | (v > 49.5)
    ref = map_coordinates(g.heights, [v, u], order=1, mode="nearest")
    assert outside.any() and (~outside).any()
    np.testing.assert_allclose(z[~outside], ref[~outside], atol=1e-9)
    assert np.isnan(z[outside]).all()
    assert g.height_at(*xy[0]) == pytest.approx(z[0])
    # scan at yaw 0 from the middle: 17 x 11 rays, x fastest, values base z - ground - 0.5 clipped
    grid = scan_grid()
    assert grid.shape == (187, 2) and grid[1, 0] - grid[0, 0] == pytest.approx(0.1) and grid[17, 1] > grid[0, 1]
    base = np.array([4.0, 0.5, 0.9])
    scan = height_scan(g, base, 0.0, grid)
    expected = np.clip(0.9 - 0.5 - g.height(grid + base[:2]), -1, 1)
    np.testing.assert_allclose(scan, expected, atol=1e-6)
    far = height_scan(g, np.array([100.0, 0.0, 0.0]), 0.0, grid)
    assert np.all(far == 1.0)  # no ground: +clip


def test_offscreen_gl_platform_prefers_egl_then_osmesa_else_disables():
    from lyra_isaac.envs import offscreen_gl_platform

    def libraries(*present):
        return lambda name: f"lib{name}.so" if name in present else None

    assert offscreen_gl_platform(libraries("EGL", "OSMesa")) == "egl"
    assert offscreen_gl_platform(libraries("OSMesa")) == "osmesa"
    assert offscreen_gl_platform(libraries()) == "disable"


def test_without_opengl_physics_runs_and_rendering_says_what_to_install(valley_dir, tmp_path):
    """MUJOCO_GL=disable (what lyra_isaac picks on a machine with neither libEGL nor libOSMesa): the env imports,
    resets and steps; rendering fails with one clear error naming what to install."""
    code = (
        "import os; os.environ['MUJOCO_GL'] = 'disable'\n"
        "import gymnasium as gym, lyra_isaac\n"
        f"env = gym.make('LyraWorld-v0', world={str(valley_dir)!r}, render_mode='rgb_array')\n"
        "env.reset(seed=0)\n"
        "for _ in range(5): env.step(env.action_space.sample())\n"
        "print('stepped')\n"
        "try:\n"
        "    env.render()\n"
        "except RuntimeError as exc:\n"
        "    print('render error:', exc)\n"
    )
    result = _run(code, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert "stepped" in lines
    assert any(line.startswith("render error:") and "MUJOCO_GL=disable" in line and "libegl1" in line
               for line in lines), lines
