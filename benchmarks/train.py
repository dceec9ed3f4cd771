"""Train PPO (Stable-Baselines3) on LyraWorld-v0 and save a learning curve.

    python benchmarks/train.py [--world DIR] [--robot humanoid] [--steps 200000] [--envs 2] [--out runs/ppo]

Writes ``<out>/learning_curve.png`` (episode return and length against environment steps), ``<out>/monitor.csv``
(one line per episode) and ``<out>/model.zip``. Uses CPU torch; with 2 cores expect ~1k steps/s in total.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

import lyra_isaac  # noqa: F401  (registers LyraWorld-v0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="LyraWorld-v0")
    parser.add_argument("--world", default=None, help="world directory (default: the bundled default world)")
    parser.add_argument("--robot", default="humanoid")
    parser.add_argument("--steps", type=int, default=200_000, help="total environment steps")
    parser.add_argument("--envs", type=int, default=2, help="parallel environments (subprocesses when > 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/ppo_lyraworld"))
    args = parser.parse_args()

    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    env_kwargs = {"world": args.world, "robot": args.robot}
    venv = make_vec_env(args.env, n_envs=args.envs, seed=args.seed, env_kwargs=env_kwargs,
                        monitor_dir=str(args.out / "monitor"),
                        vec_env_cls=SubprocVecEnv if args.envs > 1 else None)
    model = PPO("MlpPolicy", venv, n_steps=1024, batch_size=256, n_epochs=5, learning_rate=3e-4, gamma=0.99,
                gae_lambda=0.95, clip_range=0.2, ent_coef=0.0, seed=args.seed, device="cpu", verbose=0,
                policy_kwargs={"net_arch": [256, 128]})
    start = time.perf_counter()
    model.learn(total_timesteps=args.steps, progress_bar=False)
    seconds = time.perf_counter() - start
    model.save(args.out / "model.zip")
    venv.close()

    steps, returns, lengths = _read_monitors(args.out / "monitor")
    _plot(steps, returns, lengths, args.out / "learning_curve.png", f"PPO on {args.env} ({args.robot})")
    first = np.mean(returns[: max(1, len(returns) // 10)]) if len(returns) else float("nan")
    last = np.mean(returns[-max(1, len(returns) // 10):]) if len(returns) else float("nan")
    print(f"{args.steps} steps in {seconds:.0f} s ({args.steps / seconds:.0f} steps/s), {len(returns)} episodes; "
          f"mean return first 10%: {first:.2f}, last 10%: {last:.2f}; mean length last 10%: "
          f"{np.mean(lengths[-max(1, len(lengths) // 10):]) if len(lengths) else float('nan'):.0f}")
    print(f"wrote {args.out / 'learning_curve.png'}, {args.out / 'model.zip'}")


def _read_monitors(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Episodes of all monitor files, ordered by wall time: (cumulative steps, returns, lengths)."""
    rows = []
    for path in sorted(folder.glob("*.monitor.csv")):
        with path.open() as handle:
            next(handle)  # JSON header line
            rows += [(float(r["t"]), float(r["r"]), int(r["l"])) for r in csv.DictReader(handle)]
    rows.sort()
    lengths = np.array([r[2] for r in rows])
    return np.cumsum(lengths), np.array([r[1] for r in rows]), lengths


def _plot(steps: np.ndarray, returns: np.ndarray, lengths: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    window = max(1, len(returns) // 50)
    smooth = np.convolve(returns, np.ones(window) / window, mode="valid") if len(returns) else returns
    ax1.plot(steps, returns, ".", alpha=0.2, ms=2, label="episode")
    ax1.plot(steps[window - 1:], smooth, label=f"mean of {window}")
    ax1.set(xlabel="environment steps", ylabel="episode return", title=title)
    ax1.legend()
    ax2.plot(steps, lengths, ".", alpha=0.2, ms=2)
    ax2.plot(steps[window - 1:], np.convolve(lengths, np.ones(window) / window, mode="valid") if len(lengths)
             else lengths)
    ax2.set(xlabel="environment steps", ylabel="episode length (steps)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
