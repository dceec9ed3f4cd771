"""``lyra-isaac play WORLD``: drop a robot into a world, run a random or zero-action rollout, save frames or a video."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "play",
        help="run a robot in a world (MuJoCo) and save frames or a video",
        description="Load WORLD in the LyraWorld-v0 environment (MuJoCo backend), run a rollout with random or zero "
        "actions, print episode statistics and optionally write rendered frames (PNG) or a video (MP4, needs "
        "imageio with ffmpeg; falls back to an animated GIF).",
    )
    parser.add_argument("world", nargs="?", default=None,
                        help="world directory, folder of worlds or batch output root (default: the bundled world)")
    parser.add_argument("--env", default="LyraWorld-v0", help="environment id (LyraWorld-v0 or LyraWorldNav-v0)")
    parser.add_argument("--robot", default="humanoid", help="robot: humanoid (default), g1, h1")
    parser.add_argument("--steps", type=int, default=300, help="environment steps to run (default 300)")
    parser.add_argument("--policy", choices=("random", "zero"), default="zero",
                        help="zero: nominal pose / zero torque (default); random: uniform random actions")
    parser.add_argument("--seed", type=int, default=0, help="seed of the environment and the random policy")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--video", type=Path, default=None, help="write the rendered rollout to this .mp4 (or .gif)")
    out.add_argument("--frames", type=Path, default=None, help="write every --every-th frame as PNG into this folder")
    parser.add_argument("--every", type=int, default=5, help="frame stride for --frames/--video (default 5)")
    parser.add_argument("--size", default="480x360", help="render size WxH (default 480x360)")
    return parser


def run(args: argparse.Namespace) -> int:
    summary = play(args.world, env_id=args.env, robot=args.robot, steps=args.steps, policy=args.policy,
                   seed=args.seed, video=args.video, frames=args.frames, every=args.every, size=args.size)
    print(f"{summary['steps']} steps, {summary['episodes']} episode(s), return {summary['return']:.2f}, "
          f"base height {summary['base_height_min']:.2f}..{summary['base_height_max']:.2f} m, "
          f"end reasons {summary['reasons'] or '-'}")
    for path in summary["written"]:
        print(f"wrote {path}")
    return 0


def play(world: str | Path | None, *, env_id: str = "LyraWorld-v0", robot: str = "humanoid", steps: int = 300,
         policy: str = "zero", seed: int = 0, video: Path | None = None, frames: Path | None = None,
         every: int = 5, size: str = "480x360") -> dict[str, Any]:
    """Run a rollout and return statistics (steps, episodes, return, base height range, end reasons, files)."""
    import gymnasium as gym

    import lyra_isaac  # noqa: F401  (registers the ids)
    from lyra_isaac.errors import ConfigError

    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size: expected WxH such as 480x360, got {size!r}") from None
    render = video is not None or frames is not None
    env = gym.make(env_id, world=str(world) if world else None, robot=robot,
                   render_mode="rgb_array" if render else None, render_width=width, render_height=height)
    rng = np.random.default_rng(seed)
    images, written, reasons = [], [], {}
    total, episodes, heights = 0.0, 1, []
    try:
        env.reset(seed=seed)
        for i in range(steps):
            action = (rng.uniform(-1, 1, env.action_space.shape) if policy == "random"
                      else np.zeros(env.action_space.shape))
            _, reward, terminated, truncated, info = env.step(action.astype(np.float32))
            total += float(reward)
            heights.append(float(env.unwrapped._state.base_pos[2]))
            if render and i % max(every, 1) == 0:
                images.append(env.render())
            if terminated or truncated:
                reason = info.get("termination_reason") or "time_limit"
                reasons[reason] = reasons.get(reason, 0) + 1
                episodes += 1
                env.reset()
    finally:
        env.close()
    if frames is not None:
        from PIL import Image

        frames.mkdir(parents=True, exist_ok=True)
        for k, image in enumerate(images):
            path = frames / f"frame_{k:04d}.png"
            Image.fromarray(image).save(path)
            written.append(str(path))
    if video is not None and images:
        written.append(str(_write_video(images, Path(video), fps=max(1, round(1.0 / env.unwrapped.dt / every)))))
    return {"steps": steps, "episodes": episodes, "return": total, "base_height_min": min(heights),
            "base_height_max": max(heights), "reasons": reasons, "written": written}


def _write_video(images: list[np.ndarray], path: Path, fps: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() != ".gif":
        try:
            import imageio.v2 as imageio

            imageio.mimwrite(path, images, fps=fps)
            return path
        except Exception as exc:  # noqa: BLE001 - imageio or its ffmpeg plugin missing: fall back to GIF
            logger.warning("cannot write %s (%s); writing an animated GIF instead", path, exc)
            path = path.with_suffix(".gif")
    from PIL import Image

    first, *rest = [Image.fromarray(im) for im in images]
    first.save(path, save_all=True, append_images=rest, duration=int(1000 / fps), loop=0)
    return path
