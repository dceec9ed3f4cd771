"""Batch inputs: expand what the user typed into a list of scenes, each with a unique world name.

An input is one of:

- a Lyra output folder: holds ``reconstructed_scene.ply`` (and usually ``cameras.npz``); the world is named after
  the folder;
- a splat PLY file; the world is named after the file stem, or after its folder when the file is
  ``reconstructed_scene.ply``;
- a folder of scenes: its Lyra output subfolders and the ``*.ply`` files directly inside it;
- a glob (``runs/*/reconstructed_scene.ply``, ``scenes/**/*.ply``), expanded in sorted order;
- a manifest: any other file, read as one input a line (``#`` starts a comment, blank lines are skipped, relative
  paths are relative to the manifest's folder).

Names are the folder or file stem made filesystem-safe. Two different sources with the same name get a
deterministic suffix from a hash of their absolute path (``kitchen``, ``kitchen-3fa2b91c``), so adding a scene
never renames another.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

logger = logging.getLogger(__name__)

LYRA_PLY_NAME = "reconstructed_scene.ply"
CAMERAS_NAME = "cameras.npz"
GLOB_CHARS = ("*", "?", "[")
MANIFEST_MAX_DEPTH = 4
"""Manifests may list manifests; deeper nesting than this is reported as a loop."""
NAME_HASH_CHARS = 8


@dataclass(frozen=True)
class SceneInput:
    """One scene of a batch.

    Attributes:
        source: the path handed to ``convert`` (a Lyra output folder or a PLY file), absolute.
        ply_path: the splat PLY, absolute.
        cameras_path: ``cameras.npz`` beside the PLY, or None.
        base_name: the world name before de-duplication.
    """

    source: Path
    ply_path: Path
    cameras_path: Path | None
    base_name: str


def expand_inputs(inputs: Sequence[str | Path] | str | Path) -> list[SceneInput]:
    """Expand folders, PLYs, globs and manifests into scenes (deduplicated by PLY path, input order kept).

    Raises:
        InputError: no inputs, a path that does not exist, a glob that matches nothing, a folder without scenes,
            an unreadable manifest (the message names the input).
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if not inputs:
        raise InputError(None, "no inputs given (pass Lyra output folders, PLY files, globs or a manifest)")
    scenes: list[SceneInput] = []
    seen: set[Path] = set()
    for item in inputs:
        for scene in _expand_one(str(item), Path.cwd(), depth=0):
            if scene.ply_path in seen:
                logger.warning("%s is listed more than once; converting it once", scene.ply_path)
                continue
            seen.add(scene.ply_path)
            scenes.append(scene)
    if not scenes:
        raise InputError(None, "the inputs hold no scenes")
    return scenes


def _expand_one(item: str, base: Path, depth: int) -> list[SceneInput]:
    text = item.strip()
    if not text:
        return []
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base / path
    if any(c in text for c in GLOB_CHARS) and not path.exists():
        matches = sorted(glob.glob(str(path), recursive=True))
        if not matches:
            raise InputError(text, "the pattern matches no file or folder")
        found: list[SceneInput] = []
        for match in matches:
            match_path = Path(match)
            if match_path.is_dir() and not (match_path / LYRA_PLY_NAME).is_file():
                continue  # a glob like runs/* may also match folders that are not scenes
            if match_path.is_file() and match_path.suffix.lower() != ".ply":
                continue
            found.append(_scene_from_path(match_path))
        if not found:
            raise InputError(text, f"the pattern matches {len(matches)} path(s) but none is a PLY file or a Lyra "
                                   f"output folder (with {LYRA_PLY_NAME})")
        return found
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_dir():
        if (path / LYRA_PLY_NAME).is_file():
            return [_scene_from_path(path)]
        children = sorted(p for p in path.iterdir() if not p.name.startswith("."))
        found = [_scene_from_path(p) for p in children
                 if (p.is_dir() and (p / LYRA_PLY_NAME).is_file()) or (p.is_file() and p.suffix.lower() == ".ply")]
        if not found:
            raise InputError(path, f"folder holds no {LYRA_PLY_NAME}, no Lyra output subfolders and no .ply files")
        return found
    if path.suffix.lower() == ".ply":
        return [_scene_from_path(path)]
    return _read_manifest(path, depth)


def _read_manifest(path: Path, depth: int) -> list[SceneInput]:
    if depth >= MANIFEST_MAX_DEPTH:
        raise InputError(path, f"manifests nested more than {MANIFEST_MAX_DEPTH} deep (a manifest lists itself?)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read as a manifest (one path a line): {exc}") from None
    found: list[SceneInput] = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            found.extend(_expand_one(entry, path.parent.absolute(), depth + 1))
        except InputError as exc:
            raise InputError(path, f"line {number}: {exc}") from None
    if not found:
        raise InputError(path, "manifest lists no scenes")
    return found


def _scene_from_path(path: Path) -> SceneInput:
    path = path.absolute()
    if path.is_dir():
        ply = path / LYRA_PLY_NAME
        name = path.name
    else:
        ply = path
        name = path.parent.name if path.name == LYRA_PLY_NAME else path.stem
    cameras = ply.parent / CAMERAS_NAME
    return SceneInput(source=path, ply_path=ply, cameras_path=cameras if cameras.is_file() else None,
                      base_name=safe_name(name))


def safe_name(name: str) -> str:
    """A folder-safe world name: letters, digits, ``-``, ``_`` and ``.``; never empty or hidden."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")
    return cleaned or "scene"


def hashed_name(base: str, source: Path) -> str:
    """``base-<8 hex>`` from the absolute source path: the deterministic name of a duplicate."""
    digest = hashlib.sha1(str(source).encode("utf-8")).hexdigest()[:NAME_HASH_CHARS]
    return f"{base}-{digest}"


def assign_names(scenes: Iterable[SceneInput], known: dict[Path, str], taken: set[str]) -> dict[Path, str]:
    """Give every scene a unique world name.

    Args:
        scenes: the batch's scenes.
        known: PLY path -> name already given in an earlier run (kept, so reruns never rename a world).
        taken: names not available (claimed in the index by other sources, or existing folders nobody claims).

    Returns:
        PLY path -> name, for every scene.
    """
    names: dict[Path, str] = {}
    used = set(taken) | set(known.values())
    for scene in scenes:
        if scene.ply_path in known:
            names[scene.ply_path] = known[scene.ply_path]
            continue
        name = scene.base_name
        if name in used:
            name = hashed_name(scene.base_name, scene.ply_path)
            counter = 2
            while name in used:  # a hash collision of 8 hex digits: practically never
                name = f"{hashed_name(scene.base_name, scene.ply_path)}-{counter}"
                counter += 1
        used.add(name)
        names[scene.ply_path] = name
    return names
