"""How the MuJoCo ground representation sets the physics speed (the measurements behind lyra_isaac.mjcf.scene).

    python benchmarks/mjcf_ground.py [--steps 1500]

Gymnasium's humanoid (17 torque joints) with random controls, 5 physics steps per env step, same options
(RK4 as Humanoid-v5, and implicitfast as LyraWorld-v0), on: a plane; one 14 m box; single 14 x 14 m height fields
of 5/10/41 cm cells (smooth, and 5 cm with 1 cm per-cell noise); and the scene writer's output for a noisy flat
floor with one 0.3 m platform (plane + height-field rectangles, noise smoothed). Prints env-steps/s (CPU time).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import gymnasium
import mujoco
import numpy as np

HUMANOID = Path(os.path.dirname(gymnasium.__file__)) / "envs/mujoco/assets/humanoid.xml"


def compose(scene: mujoco.MjSpec, integrator: str) -> mujoco.MjModel:
    robot = mujoco.MjSpec.from_file(str(HUMANOID))
    for key in list(robot.keys):
        robot.delete(key)
    robot.nkey = 0
    scene.nuser_geom = 1
    for name in ("timestep", "iterations", "solver", "integrator"):
        setattr(scene.option, name, getattr(robot.option, name))
    frame = scene.worldbody.add_frame()
    frame.attach_body(robot.body("torso"), "r/", "")
    scene.option.integrator = getattr(mujoco.mjtIntegrator, f"mjINT_{integrator.upper()}")
    return scene.compile()


def speed(model: mujoco.MjModel, steps: int) -> float:
    data = mujoco.MjData(model)
    ctrl = np.random.default_rng(0).uniform(-0.4, 0.4, (steps, model.nu))
    start = time.process_time()
    for k, c in enumerate(ctrl):
        if k % 100 == 0:  # restart upright now and then: standing, falling and lying states all count
            mujoco.mj_resetData(model, data)
        data.ctrl[:] = c
        mujoco.mj_step(model, data, nstep=5)
    return steps / (time.process_time() - start)


def hfield_scene(n: int, noise: float = 0.0) -> mujoco.MjSpec:
    heights = np.random.default_rng(1).normal(0, noise, (n, n)) if noise else np.zeros((n, n))
    spec = mujoco.MjSpec()
    spec.add_hfield(name="h", nrow=n, ncol=n, size=[7, 7, max(np.ptp(heights), 1e-3), 0.5],
                    userdata=list(((heights - heights.min()) / max(np.ptp(heights), 1e-3)).ravel()))
    spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_HFIELD, hfieldname="h", pos=[0, 0, heights.min()])
    return spec


def writer_scene(directory: Path) -> mujoco.MjSpec:
    from lyra_isaac.envs.worlds import analytic_world
    from lyra_isaac.mjcf.scene import MjcfConfig, write_mjcf_scene

    world = analytic_world()
    rng = np.random.default_rng(2)
    hm = world.heightmap
    hm.heights = (0.003 * rng.standard_normal(hm.heights.shape)).astype(np.float32)  # noisy flat floor
    hm.heights[200:240, 200:240] += 0.3  # one platform
    write_mjcf_scene(world, directory, MjcfConfig(overhang_margin=100.0))  # the mesh no longer matches: no parts
    return mujoco.MjSpec.from_file(str(directory / "scene.xml"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            "plane": lambda: mujoco.MjSpec.from_string(
                '<mujoco><worldbody><geom type="plane" size="10 10 .1"/></worldbody></mujoco>'),
            "box 14 m": lambda: mujoco.MjSpec.from_string(
                '<mujoco><worldbody><geom type="box" size="7 7 .5" pos="0 0 -.5"/></worldbody></mujoco>'),
            "hfield 280x280 (5 cm)": lambda: hfield_scene(281),
            "hfield 280x280 (5 cm), 1 cm noise": lambda: hfield_scene(281, 0.01),
            "hfield 140x140 (10 cm)": lambda: hfield_scene(141),
            "hfield 35x35 (41 cm)": lambda: hfield_scene(35),
            "scene writer: noisy floor + platform": lambda: writer_scene(Path(tmp)),
        }
        for integrator in ("RK4", "implicitfast"):
            base = None
            for name, make in cases.items():
                sps = max(speed(compose(make(), integrator), args.steps) for _ in range(2))
                base = base or sps
                print(f"{integrator:12s} {name:40s} {sps:7.0f} env-steps/s  ({sps / base:.2f}x plane)")


if __name__ == "__main__":
    main()
