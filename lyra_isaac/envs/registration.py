"""Gymnasium registration of the lyra_isaac environments: one id per ``envs/<id>.toml``.

``import lyra_isaac`` calls :func:`register_envs`; ``gym.make("lyra_isaac:LyraWorld-v0")`` imports ``lyra_isaac``
first, so it works without an explicit import. Registration reads only the TOML files (no MuJoCo import).
"""

from __future__ import annotations

import logging

from ..config import load_toml

logger = logging.getLogger(__name__)

ENTRY_POINT = "lyra_isaac.envs.lyra_world:LyraWorldEnv"


def register_envs() -> list[str]:
    """Register every ``envs/*-vN.toml`` id with Gymnasium (idempotent); returns the ids."""
    import gymnasium as gym

    from .config import registered_env_files

    ids = []
    try:
        files = registered_env_files()
    except FileNotFoundError as exc:  # a broken installation must not break `import lyra_isaac`
        logger.warning("lyra_isaac environments not registered: %s", exc)
        return ids
    for path in files:
        env_id = path.stem
        ids.append(env_id)
        if env_id in gym.registry:
            continue
        data = load_toml(path)
        gym.register(
            id=env_id,
            entry_point=ENTRY_POINT,
            max_episode_steps=int(data.get("max_episode_steps", 1000)),
            kwargs={"env_id": env_id},
            disable_env_checker=False,
        )
    return ids
