"""The end-to-end demo behind ``lyra-isaac demo``: the whole mission on one generated scene.

1. generate a Lyra 2.0-format scene (reconstructed_scene.ply + cameras.npz) from a known apartment mesh,
   tilted, mis-scaled, with per-view depth errors, flying pixels and sky (lyra_isaac.synthetic);
2. inspect it; 3. convert it into a world (USD, MuJoCo, meshes, previews); 4. validate the world with real
   consumers (pxr, omni_asset_validate, Newton, MuJoCo); 5. drop a humanoid into it and step the physics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .progress import NO_PROGRESS, Progress

logger = logging.getLogger(__name__)

Report = Callable[[str], None]


def run_demo(out_dir: str | Path, *, scene: str = "apartment", steps: int = 200, seed: int = 0,
             skip_newton: bool = False, report: Report = logger.info, progress: Progress = NO_PROGRESS
             ) -> dict[str, Any]:
    """Run the demo into ``out_dir`` and return a summary dict (also reported line by line through ``report``).

    Args:
        out_dir: folder for the generated scene (``scene/``) and the world (``world/``); replaced if it exists.
        scene: synthetic scene name (apartment, terrain, corridor, courtyard).
        steps: environment steps of the humanoid rollout.
        seed: seed of the scene generator and the environment.
        skip_newton: skip the Newton drop check in validation (it compiles kernels on first use: ~40 s).
        report: receives one human-readable line per step.
        progress: receives the conversion's progress (the CLI shows a bar).
    """
    from .convert import convert
    from .splats.inspect import inspect_scene
    from .synthetic import make_fixture

    out_dir = Path(out_dir)
    summary: dict[str, Any] = {}
    started = time.perf_counter()

    report(f"[1/5] generating a Lyra 2.0-format '{scene}' scene in {out_dir / 'scene'}")
    fixture = make_fixture(scene, out_dir / "scene", seed=seed, overwrite=True)
    summary["scene"] = str(fixture.ply_path)

    report("[2/5] inspecting it")
    info = inspect_scene(fixture.ply_path, cameras="auto")
    summary["inspect"] = info
    cameras = info.get("cameras") or {}
    report(f"      format {info['format']}, {info['gaussians_in_file']:,} Gaussians, SH degree {info['sh_degree']}, "
           f"{cameras.get('count', 0)} cameras of {cameras.get('width')}x{cameras.get('height')} px")

    # Lyra's camera path walks at eye level: telling convert the eye height fixes the scene's scale error
    # (this fixture's is x{fixture.scale:.2f}); without it convert keeps the file's scale and warns.
    report(f"[3/5] converting into a world in {out_dir / 'world'} (camera height {fixture.eye_height_m:.2f} m)")
    world = convert(fixture.ply_path, out_dir / "world", camera_height=fixture.eye_height_m, overwrite=True,
                    progress=progress)
    m = world.manifest
    summary["world"] = str(world.path)
    summary["walkable_area_m2"] = m.walkable_area_m2
    summary["spawn_points"] = len(m.spawn_points)
    report(f"      scale x{m.scale_factor:.3f}, walkable {m.walkable_area_m2:.1f} m^2, {len(m.spawn_points)} spawn "
           f"points, {m.stats.get('collision_triangles')} collision triangles, previews: "
           f"{', '.join(m.files.get('previews', []))}")

    report("[4/5] validating the world (pxr, omni_asset_validate, Newton, MuJoCo)")
    from .usd.validate import validate_world

    validation = validate_world(world.path, skip=("newton",) if skip_newton else ())
    summary["validation_ok"] = bool(validation.ok)
    for line in validation.summary_lines():
        report(f"      {line}")

    report("[5/5] stepping a humanoid in the world (gym.make('LyraWorld-v0', world=...), MuJoCo)")
    summary["rollout"] = _humanoid_rollout(world.path, steps, seed)
    r = summary["rollout"]
    report(f"      {r['robot']}: {r['steps']} steps, {r['episodes']} episode(s), base {r['base_height_min']:.2f}.."
           f"{r['base_height_max']:.2f} m above the floor, {r['steps_per_s']:.0f} steps/s")
    summary["seconds"] = round(time.perf_counter() - started, 1)
    report(f"done in {summary['seconds']} s: open {world.path / 'world.usda'} in Isaac Sim, or "
           f"{world.path / 'scene.xml'} in MuJoCo")
    return summary


def _humanoid_rollout(world_dir: Path, steps: int, seed: int) -> dict[str, Any]:
    """Step a humanoid with small random actions around its nominal pose (Unitree G1 when the ``robots`` extra is
    installed, else Gymnasium's torque-driven humanoid, which falls without a policy)."""
    import gymnasium as gym

    from .errors import MissingDependencyError

    try:
        env = gym.make("LyraWorld-v0", world=str(world_dir), robot="g1")
        robot = "g1"
    except MissingDependencyError:
        env = gym.make("LyraWorld-v0", world=str(world_dir))
        robot = "humanoid"
    try:
        env.reset(seed=seed)
        heights, episodes = [], 1
        rng = np.random.default_rng(seed)
        start = time.perf_counter()
        for _ in range(steps):
            action = rng.uniform(-0.1, 0.1, size=env.action_space.shape).astype(np.float32)
            _, _, terminated, truncated, info = env.step(action)
            heights.append(float(info.get("base_height", np.nan)))
            if terminated or truncated:
                episodes += 1
                env.reset()
        elapsed = time.perf_counter() - start
    finally:
        env.close()
    heights_arr = np.asarray(heights)
    return {"robot": robot, "steps": steps, "episodes": episodes, "steps_per_s": steps / max(elapsed, 1e-9),
            "base_height_min": float(np.nanmin(heights_arr)), "base_height_max": float(np.nanmax(heights_arr))}
