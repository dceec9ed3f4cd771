"""The UI-free half of the Isaac Sim extension: what a picked path is, where its world goes, which prim it lands on,
where the next humanoid stands, and the conversion call itself.

Nothing here imports ``omni``, ``carb``, ``isaacsim`` or ``pxr``, so all of it is unit-tested outside Kit
(tests/test_isaac_importer.py). :mod:`lyra_isaac.isaac.extension` is the thin Kit layer on top: menu, window,
file picker, progress bar, and the USD edits this module plans.
"""

from __future__ import annotations

import enum
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..progress import NO_PROGRESS, Progress
from ..world import WORLD_JSON, WORLD_USD, WorldDir, load_world
from .robots import RobotSpec

logger = logging.getLogger(__name__)

LYRA_PLY_NAME = "reconstructed_scene.ply"
LYRA_CAMERAS_NAME = "cameras.npz"
WORLDS_ROOT_PRIM = "/World/LyraWorlds"
"""Every imported world is referenced under this prim, one child per world."""
ROBOTS_ROOT_PRIM = "/World/Robots"
"""Every added humanoid lands under this prim, one child per robot."""
DEFAULT_OUTPUT_FOLDER = "lyra_worlds"
"""Output folder (in the user's home) when the extension setting is empty."""
PRESETS = ("fast", "quality")
_IDENTIFIER_BAD = re.compile(r"[^A-Za-z0-9_]")


class SourceKind(enum.Enum):
    """What a path picked in the extension's file dialog holds."""

    PLY = "ply"
    """A Gaussian-splat PLY (Lyra 2.0, Lyra 1, INRIA 3DGS or any PLY with the 3DGS properties)."""
    LYRA_FOLDER = "lyra_folder"
    """A Lyra output folder: ``reconstructed_scene.ply`` (and usually ``cameras.npz``), or exactly one PLY."""
    WORLD = "world"
    """A converted world directory (holds ``world.json``): imported without converting."""


@dataclass(frozen=True)
class PickedSource:
    """A classified import source.

    Attributes:
        kind: what the path holds.
        path: the picked path, resolved (for a folder: the folder).
        ply: the splat PLY to convert (None for a world).
        cameras: ``cameras.npz`` beside the PLY, if present.
    """

    kind: SourceKind
    path: Path
    ply: Path | None = None
    cameras: Path | None = None


def _check_splat_ply(path: Path) -> None:
    """Raise InputError unless ``path`` is a PLY whose header has every 3DGS vertex property (reads the header only)."""
    from ..splats.ply import REQUIRED_PROPERTIES, read_header

    header = read_header(path)
    vertex = header.element("vertex")
    if vertex is None:
        raise InputError(path, "PLY has no 'vertex' element, so it holds no Gaussians")
    names = {p.name for p in vertex.properties}
    missing = [n for n in REQUIRED_PROPERTIES if n not in names]
    if missing:
        kind = " (a mesh or point cloud, not a Gaussian-splat PLY)" if len(missing) >= 10 else ""
        raise InputError(path, f"missing required vertex properties{kind}: {', '.join(missing)}")


def classify_source(path: str | Path) -> PickedSource:
    """Decide what a picked path is, reading at most a PLY header.

    Args:
        path: a splat PLY, a Lyra output folder, or a converted world directory.

    Returns:
        The classified source.

    Raises:
        InputError: the path does not exist, or is none of the three (the message says what was found instead).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(path, "no such file or folder")
    path = path.resolve()
    if path.is_dir():
        if (path / WORLD_JSON).is_file():
            return PickedSource(SourceKind.WORLD, path)
        ply = path / LYRA_PLY_NAME
        if not ply.is_file():
            plys = sorted(path.glob("*.ply"))
            if len(plys) != 1:
                raise InputError(path, f"is neither a converted world ({WORLD_JSON} missing) nor a Lyra output "
                                       f"folder ({LYRA_PLY_NAME} missing, {len(plys)} other .ply files)")
            ply = plys[0]
        _check_splat_ply(ply)
        cameras = path / LYRA_CAMERAS_NAME
        return PickedSource(SourceKind.LYRA_FOLDER, path, ply, cameras if cameras.is_file() else None)
    if path.name == WORLD_JSON:
        return PickedSource(SourceKind.WORLD, path.parent)
    if path.suffix.lower() != ".ply":
        raise InputError(path, "is not a splat PLY, a Lyra output folder or a world directory "
                               f"(expected a .ply file, a folder with {LYRA_PLY_NAME}, or a folder with {WORLD_JSON})")
    _check_splat_ply(path)
    cameras = path.parent / LYRA_CAMERAS_NAME
    return PickedSource(SourceKind.PLY, path, path, cameras if cameras.is_file() else None)


def world_name(source: PickedSource) -> str:
    """A short, file-system-safe name for the world made from ``source``.

    ``.../scene_042/reconstructed_scene.ply`` and the folder ``.../scene_042`` both give ``scene_042``; any other
    PLY gives its stem; a world directory gives its folder name.
    """
    if source.kind is SourceKind.PLY and source.path.name != LYRA_PLY_NAME:
        raw = source.path.stem
    elif source.kind is SourceKind.PLY:
        raw = source.path.parent.name
    else:
        raw = source.path.name
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", raw).strip("._-")
    return name or "world"


def output_root(setting: str | Path | None, home: Path | None = None) -> Path:
    """The folder converted worlds go to: the extension setting, or ``~/lyra_worlds`` when it is empty."""
    if setting is not None and str(setting).strip():
        return Path(str(setting).strip()).expanduser()
    return (home if home is not None else Path.home()) / DEFAULT_OUTPUT_FOLDER


def resolve_output_dir(source: PickedSource, root: str | Path) -> Path:
    """The world directory a conversion of ``source`` writes: ``<root>/<world_name>``.

    Raises:
        InputError: ``source`` is already a world (nothing is converted).
    """
    if source.kind is SourceKind.WORLD:
        raise InputError(source.path, "is already a converted world; it is imported as it is")
    return Path(root).expanduser() / world_name(source)


def usd_identifier(name: str) -> str:
    """A valid USD prim name for ``name`` (letters, digits, underscores; never starting with a digit)."""
    ident = _IDENTIFIER_BAD.sub("_", name) or "_"
    return f"_{ident}" if ident[0].isdigit() else ident


def unique_child_path(parent: str, name: str, taken: set[str] | frozenset[str]) -> str:
    """``parent/<identifier>``, with ``_1``, ``_2``... appended until the path is not in ``taken``."""
    base = f"{parent.rstrip('/')}/{usd_identifier(name)}"
    candidate, k = base, 0
    while candidate in taken:
        k += 1
        candidate = f"{base}_{k}"
    return candidate


@dataclass(frozen=True)
class WorldReference:
    """How a world directory enters the open stage: a payload (or reference) of its root layer on one Xform prim.

    Attributes:
        prim_path: the new prim, under :data:`WORLDS_ROOT_PRIM`.
        asset_path: absolute path of the world's root layer (``world.usda``).
        world_dir: the world directory.
        as_payload: author a payload (loaded on demand, keeps big splat layers out until needed) instead of a
            reference.
    """

    prim_path: str
    asset_path: str
    world_dir: Path
    as_payload: bool = True


def plan_world_reference(world: WorldDir, taken: set[str] | frozenset[str] = frozenset(),
                         as_payload: bool = True) -> WorldReference:
    """Plan the prim that brings ``world`` into the open stage.

    Args:
        world: an opened world directory.
        taken: prim paths that already exist on the stage (the new path avoids them).
        as_payload: payload (default) or reference.

    Raises:
        InputError: the world has no USD root layer on disk.
    """
    usd_key = world.manifest.files.get("usd", WORLD_USD)
    asset = world.path / usd_key
    if not asset.is_file():
        raise InputError(world.path, f"world has no USD stage ({usd_key} missing); convert it again")
    prim_path = unique_child_path(WORLDS_ROOT_PRIM, world.path.name, taken)
    return WorldReference(prim_path=prim_path, asset_path=asset.resolve().as_posix(), world_dir=world.path,
                          as_payload=as_payload)


def yaw_to_quat_wxyz(yaw: float) -> tuple[float, float, float, float]:
    """Unit quaternion (w, x, y, z) of a rotation by ``yaw`` radians about +Z."""
    return (math.cos(yaw / 2.0), 0.0, 0.0, math.sin(yaw / 2.0))


@dataclass(frozen=True)
class RobotPlacement:
    """Where a humanoid goes: prim path, root position (metres, stage frame) and orientation (w, x, y, z)."""

    prim_path: str
    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float]
    spawn_index: int


@dataclass
class SpawnCycler:
    """Hands out a world's spawn points in turn, so successive *Add Humanoid* clicks fill different spots.

    One counter per world directory; after the last spawn point it starts again at the first.
    """

    _next: dict[str, int] = field(default_factory=dict)

    def next_spawn(self, world: WorldDir) -> tuple[int, np.ndarray]:
        """(index, [x, y, z, yaw]) of the next spawn point of ``world``.

        Raises:
            InputError: the world lists no spawn points.
        """
        spawns = world.spawn_points
        if len(spawns) == 0:
            raise InputError(world.path, "world.json lists no spawn points (no walkable area was found)")
        key = str(Path(world.path).resolve())
        index = self._next.get(key, 0) % len(spawns)
        self._next[key] = index + 1
        return index, spawns[index]

    def place(self, world: WorldDir, robot: RobotSpec, taken: set[str] | frozenset[str] = frozenset(),
              world_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> RobotPlacement:
        """Plan the next robot of ``world``: at the next spawn point, standing (root at the robot's stand height).

        Args:
            world: the world the robot goes into.
            robot: the humanoid.
            taken: prim paths already on the stage.
            world_offset: translation of the world's prim in the stage (zero when it was referenced in place).
        """
        index, (x, y, z, yaw) = self.next_spawn(world)
        position = (float(x + world_offset[0]), float(y + world_offset[1]),
                    float(z + world_offset[2] + robot.stand_height))
        prim_path = unique_child_path(ROBOTS_ROOT_PRIM, robot.name.upper(), taken)
        return RobotPlacement(prim_path, position, yaw_to_quat_wxyz(float(yaw)), index)


@dataclass
class ConversionOptions:
    """The options of the extension's window (and its [settings]), checked before a conversion starts.

    Attributes:
        preset: "fast" or "quality".
        scale: explicit scene-units-to-metres factor, or None to keep the file's scale.
        camera_height: the cameras' height above the floor in metres (sets the scale), or None.
        output_root: folder that world directories are created in.
        overwrite: replace an existing world directory of the same name.
    """

    preset: str = "fast"
    scale: float | None = None
    camera_height: float | None = None
    output_root: Path = field(default_factory=lambda: output_root(None))
    overwrite: bool = False

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid field."""
        if self.preset not in PRESETS:
            raise ConfigError(f"preset '{self.preset}' is not one of {', '.join(PRESETS)}")
        for name in ("scale", "camera_height"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise ConfigError(f"{name} must be a positive number of metres (or empty), not {value}")
        if self.scale is not None and self.camera_height is not None:
            raise ConfigError("set either scale or camera_height, not both")

    @staticmethod
    def parse_optional_float(text: str, name: str) -> float | None:
        """A text field's value: empty -> None, else a float (ConfigError naming ``name`` otherwise)."""
        text = text.strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{name} must be a number, not '{text}'") from None


def import_world(path: str | Path, options: ConversionOptions, progress: Progress = NO_PROGRESS) -> WorldDir:
    """Everything *Import Generated World* does off the UI thread: classify, convert if needed, open the world.

    Calls the same :func:`lyra_isaac.convert.convert` as ``lyra-isaac convert``.

    Args:
        path: the picked path (PLY, Lyra folder or world directory).
        options: conversion options (validated here).
        progress: receives stage progress; its cancel() aborts the conversion (nothing is written).

    Returns:
        The world directory to bring into the stage.

    Raises:
        InputError, ConversionError, OutputError, ConfigError, CancelledError: from classification or conversion.
    """
    source = classify_source(path)
    if source.kind is SourceKind.WORLD:
        logger.info("importing converted world %s", source.path)
        return load_world(source.path)
    options.validate()
    out = resolve_output_dir(source, options.output_root)
    from ..convert import convert

    logger.info("converting %s -> %s (preset %s)", source.ply, out, options.preset)
    return convert(source.ply, out, cameras=source.cameras, preset=options.preset, scale=options.scale,
                   camera_height=options.camera_height, overwrite=options.overwrite, progress=progress)


def batch_inputs(folder: str | Path) -> list[str]:
    """The sources *Batch Convert Folder...* hands to ``run_batch``: every Lyra output folder and loose splat PLY
    directly inside ``folder`` (sorted; converted worlds are skipped).

    Raises:
        InputError: ``folder`` is not a folder or holds no convertible source.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputError(folder, "is not a folder")
    inputs: list[str] = []
    for child in sorted(folder.iterdir()):
        if child.is_dir() and (child / LYRA_PLY_NAME).is_file() and not (child / WORLD_JSON).is_file():
            inputs.append(str(child))
        elif child.is_file() and child.suffix.lower() == ".ply":
            inputs.append(str(child))
    if not inputs:
        raise InputError(folder, f"holds no Lyra output folders (with {LYRA_PLY_NAME}) and no .ply files")
    return inputs


def picked_path(filename: str, dirname: str) -> str:
    """The path a Kit file picker's apply handler means: ``dirname`` (which may end in a slash) joined with
    ``filename``; just the folder when no file is selected."""
    dirname = (dirname or "").rstrip("/\\")
    if not filename:
        return dirname
    if not dirname:
        return filename
    return f"{dirname}/{filename}"


def picker_shows(path: str, is_folder: bool) -> bool:
    """Whether the import file picker lists an entry: folders (Lyra output folders and worlds), PLYs, world.json."""
    if is_folder:
        return True
    name = path.replace("\\", "/").rsplit("/", 1)[-1].lower()
    return name.endswith(".ply") or name == WORLD_JSON


def stage_correction(up_axis: str, meters_per_unit: float) -> tuple[float, float]:
    """The transform that puts a world (Z up, metres) into a stage with another up axis or unit.

    Args:
        up_axis: the stage's up axis, "Y" or "Z".
        meters_per_unit: the stage's metres per unit (> 0).

    Returns:
        (rotate_x_degrees, uniform_scale) to author on the world's prim; (0, 1) for a Z-up metre stage.

    Raises:
        InputError: unknown up axis or non-positive unit.
    """
    if up_axis not in ("Y", "Z"):
        raise InputError(None, f"stage up axis '{up_axis}' is neither Y nor Z")
    if not (meters_per_unit > 0 and math.isfinite(meters_per_unit)):
        raise InputError(None, f"stage metersPerUnit {meters_per_unit} is not a positive number")
    # Rx(-90 deg) maps +Z to +Y.
    return (-90.0 if up_axis == "Y" else 0.0), 1.0 / meters_per_unit
