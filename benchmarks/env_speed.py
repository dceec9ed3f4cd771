"""Steps per second of LyraWorld-v0 (humanoid, height scan on) against Gymnasium's Humanoid-v5, same run.

    python benchmarks/env_speed.py [--world DIR] [--steps 3000] [--vector-steps 1000]

Prints single-env steps/s of both, their ratio (goal >= 0.8), raw mj_step throughput of both models, and the
throughput of async vector envs with 1 and 2 workers. Random actions; resets are included in the timing.
Single-env figures use process CPU time (the machine is shared); vector-env figures are wall-clock.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import lyra_isaac  # noqa: F401  (registers LyraWorld-v0)


def single(env: gym.Env, steps: int, seed: int = 0) -> float:
    env.action_space.seed(seed)
    env.reset(seed=seed)
    actions = [env.action_space.sample() for _ in range(steps)]
    start = time.process_time()  # CPU time of this process: less sensitive to other load on a shared machine
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    return steps / (time.process_time() - start)


def raw_mujoco(model, data, steps: int, nu_scale: float) -> float:
    import mujoco

    rng = np.random.default_rng(0)
    ctrl = rng.uniform(-nu_scale, nu_scale, (steps, model.nu))
    start = time.process_time()
    for c in ctrl:
        data.ctrl[:] = c
        mujoco.mj_step(model, data, nstep=5)
    return steps / (time.process_time() - start)


def vector(num_envs: int, steps: int, world: str | None) -> float:
    envs = gym.make_vec("LyraWorld-v0", num_envs=num_envs, vectorization_mode="async", world=world)
    try:
        envs.reset(seed=0)
        actions = [envs.action_space.sample() for _ in range(steps)]
        start = time.perf_counter()
        for a in actions:
            envs.step(a)
        return steps * num_envs / (time.perf_counter() - start)
    finally:
        envs.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", default=None, help="world directory (default: the bundled default world)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--vector-steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats; the best of each is kept")
    args = parser.parse_args()

    lyra = gym.make("LyraWorld-v0", world=args.world)
    ref = gym.make("Humanoid-v5")
    lyra_sps, ref_sps = [], []
    for _ in range(args.repeats):  # alternate so both see the same machine load
        lyra_sps.append(single(lyra, args.steps))
        ref_sps.append(single(ref, args.steps))
    best_lyra, best_ref = max(lyra_sps), max(ref_sps)
    print(f"LyraWorld-v0 (humanoid, height scan) : {best_lyra:8.0f} steps/s  (runs: {[round(v) for v in lyra_sps]})")
    print(f"Humanoid-v5                          : {best_ref:8.0f} steps/s  (runs: {[round(v) for v in ref_sps]})")
    print(f"ratio LyraWorld-v0 / Humanoid-v5     : {best_lyra / best_ref:8.2f}  (goal >= 0.8)")
    b = lyra.unwrapped.backend
    lyra.reset(seed=0)
    ref.reset(seed=0)
    raw_lyra = raw_mujoco(b.model, b.data, args.steps, 1.0)
    raw_ref = raw_mujoco(ref.unwrapped.model, ref.unwrapped.data, args.steps, 0.4)
    print(f"raw mj_step x5 from reset, random controls: lyra scene {raw_lyra:.0f}/s, Humanoid-v5 {raw_ref:.0f}/s, "
          f"ratio {raw_lyra / raw_ref:.2f}")
    lyra.close()
    ref.close()
    rk4 = gym.make("LyraWorld-v0", world=args.world, physics={"integrator": "RK4"})
    rk4_sps = max(single(rk4, args.steps) for _ in range(args.repeats))
    print(f"LyraWorld-v0 with Humanoid-v5's RK4 integrator: {rk4_sps:8.0f} steps/s (ratio {rk4_sps / best_ref:.2f})")
    rk4.close()
    for n in (1, 2):
        print(f"async vector env, {n} worker(s)       : {vector(n, args.vector_steps, args.world):8.0f} steps/s total")


if __name__ == "__main__":
    main()
