"""lyra_isaac: generated Gaussian-splat worlds -> simulation-ready worlds and humanoid environments.

Public API::

    from lyra_isaac import load_scene, load_cameras, load_world
    scene = load_scene("reconstructed_scene.ply")        # GaussianScene
    world = convert("reconstructed_scene.ply", "out/")   # writes a world directory (see DESIGN.md section 2)

Importing the package registers the Gymnasium ids (``LyraWorld-v0``, ``LyraWorldNav-v0``).
"""

from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("lyra-isaac")
except _metadata.PackageNotFoundError:  # source tree without installation
    __version__ = "0.0.0+unknown"

from .errors import ConfigError, ConversionError, InputError, LyraError, OutputError  # noqa: E402
from .splats.cameras import CameraPath  # noqa: E402
from .splats.scene import GaussianScene  # noqa: E402
from .world import World, WorldDir, load_world  # noqa: E402

__all__ = [
    "CameraPath",
    "ConfigError",
    "ConversionError",
    "GaussianScene",
    "InputError",
    "LyraError",
    "OutputError",
    "World",
    "WorldDir",
    "__version__",
    "load_world",
]


def __getattr__(name: str):
    # Heavier entry points load on first use so `import lyra_isaac` stays fast.
    if name in ("load_scene", "read_ply", "write_ply"):
        from .splats import ply

        return getattr(ply, name)
    if name == "load_cameras":
        from .splats.cameras import load_cameras

        return load_cameras
    if name == "convert":
        from .convert import convert

        return convert
    raise AttributeError(f"module 'lyra_isaac' has no attribute {name!r}")


def _register_envs() -> None:
    try:
        from .envs.registration import register_envs
    except ModuleNotFoundError as exc:  # envs package not built yet in this checkout
        if exc.name and exc.name.startswith("lyra_isaac.envs"):
            return
        raise
    register_envs()


_register_envs()
