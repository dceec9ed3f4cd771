"""Camera paths: Lyra's ``cameras.npz`` (and its trajectory variant) and INRIA 3DGS's ``cameras.json`` as one
:class:`CameraPath`.

Conventions: ``w2c`` maps world (scene-frame) points to OpenCV camera coordinates (+X right, +Y down, +Z forward);
intrinsics are pixels with the principal point in pixels. The readers live in this module too
(:func:`load_cameras`).

INRIA's ``cameras.json`` (graphdeco-inria/gaussian-splatting, ``utils/camera_utils.py`` ``camera_to_JSON``, written
by ``scene/__init__.py`` into the model folder beside ``point_cloud/iteration_N/point_cloud.ply``) is a list of
``{"id", "img_name", "width", "height", "position", "rotation", "fy", "fx"}``. The names mislead: the code builds
``Rt = [R^T | T]``, which is COLMAP's world-to-camera (``R`` is stored transposed by the COLMAP reader,
``R = np.transpose(qvec2rotmat(extr.qvec))``), and then writes ``W2C = inv(Rt)``, which is therefore the
**camera-to-world** transform: ``position`` is the camera centre in the world and ``rotation`` (a list of three
rows) the camera-to-world rotation, whose columns are the camera's +X right, +Y down, +Z forward (COLMAP / OpenCV
axes) in the world. ``fx``, ``fy`` are pixels at ``width`` x ``height`` (the training resolution); the principal
point is the image centre (3DGS's projection assumes it).
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

logger = logging.getLogger(__name__)


@dataclass
class CameraPath:
    """A sequence of pinhole cameras.

    Attributes:
        w2c: (F, 4, 4) float64 world-to-camera transforms, OpenCV camera axes, scene units.
        intrinsics: (F, 3, 3) float64 pixel intrinsics (one per frame; a single shared matrix is broadcast).
        width, height: image size in pixels.
        source_path: the file read, if any.
        meta: how the reader found them: ``pose_key``, ``intrinsics_key`` (npz keys, "+"-joined when chunked),
            ``image_size_from`` ("keys" or "principal point").
    """

    w2c: np.ndarray
    intrinsics: np.ndarray
    width: int
    height: int
    source_path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        frames = self.w2c.shape[0]
        if self.w2c.ndim != 3 or self.w2c.shape[1:] != (4, 4):
            raise ValueError(f"CameraPath.w2c has shape {self.w2c.shape}, expected (F, 4, 4)")
        if self.intrinsics.shape == (3, 3):
            self.intrinsics = self.intrinsics[None]
        if self.intrinsics.ndim == 3 and self.intrinsics.shape[0] == 1 and frames > 1:
            self.intrinsics = np.repeat(self.intrinsics, frames, axis=0)
        if self.intrinsics.shape != (frames, 3, 3):
            raise ValueError(f"CameraPath.intrinsics has shape {self.intrinsics.shape}, expected ({frames}, 3, 3)")

    def __len__(self) -> int:
        return int(self.w2c.shape[0])

    def c2w(self) -> np.ndarray:
        """(F, 4, 4) camera-to-world transforms."""
        return np.linalg.inv(self.w2c)

    def centers(self) -> np.ndarray:
        """(F, 3) camera centres in the world frame."""
        return self.c2w()[:, :3, 3]

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World-frame unit axes of each camera: (right +X, down +Y, forward +Z), each (F, 3)."""
        rotation = self.c2w()[:, :3, :3]
        axes = [rotation[:, :, i] / np.linalg.norm(rotation[:, :, i], axis=1, keepdims=True) for i in range(3)]
        return axes[0], axes[1], axes[2]

    def up_vectors(self) -> np.ndarray:
        """(F, 3) camera up directions in the world frame (the -Y camera axis)."""
        return -self.axes()[1]

    def path_length(self) -> float:
        """Total length of the polyline through the camera centres, scene units."""
        centers = self.centers()
        return float(np.linalg.norm(np.diff(centers, axis=0), axis=1).sum()) if len(self) > 1 else 0.0

    def transformed(self, matrix: np.ndarray) -> CameraPath:
        """Cameras after the world moves by the similarity ``p' = M @ [p, 1]`` (M = s R | t).

        Camera centres move with M; orientations rotate by R; intrinsics are unchanged. The returned w2c is rigid
        (unit scale) in the new frame.
        """
        matrix = np.asarray(matrix, dtype=np.float64)
        scale = float(np.cbrt(np.linalg.det(matrix[:3, :3])))
        rotation = matrix[:3, :3] / scale
        c2w = self.c2w()
        new_c2w = np.tile(np.eye(4), (len(self), 1, 1))
        new_c2w[:, :3, :3] = rotation @ c2w[:, :3, :3]
        new_c2w[:, :3, 3] = c2w[:, :3, 3] @ matrix[:3, :3].T + matrix[:3, 3]
        return replace(self, w2c=np.linalg.inv(new_c2w))


# --------------------------------------------------------------------------------------------------------- reading

CAMERA_FILENAMES = ("cameras.npz", "{stem}_cameras.npz", "{stem}.cameras.npz", "cameras.json")
"""Files :func:`find_cameras` looks for beside a PLY, in this order (``{stem}``: the PLY's name without suffix)."""

INRIA_CAMERAS_JSON = "cameras.json"
"""INRIA 3DGS model folders hold ``cameras.json`` at their root and the splats at
``point_cloud/iteration_<N>/point_cloud.ply``: :func:`find_cameras` also looks two folders above such a PLY."""

INRIA_CAMERA_KEYS = ("width", "height", "position", "rotation", "fx", "fy")
"""Keys every entry of an INRIA ``cameras.json`` must have (``id`` and ``img_name`` are optional here)."""

VIEW_SETS: dict[str, dict[str, tuple[str, ...]]] = {
    "render": {
        "w2c": ("w2c_render", "w2c"),
        "c2w": ("c2w_render", "c2w"),
        "intrinsics": ("intrinsics_render", "intrinsics", "intrinsics_vipe", "K", "intrinsics_da3"),
    },
    "da3": {
        "w2c": ("w2c_da3", "w2c_da3_pred"),
        "c2w": (),
        "intrinsics": ("intrinsics_da3", "intrinsics_da3_pred"),
    },
    "vipe": {
        "w2c": ("w2c_vipe",),
        "c2w": (),
        "intrinsics": ("intrinsics_vipe",),
    },
}
"""Which npz keys make up each set of views, in order of preference.

Lyra 2.0's ``cameras.npz`` (``vipe_da3_gs_recon.py``) holds ``w2c_render`` (every video frame, the trajectory the
splats were rendered along) with ``intrinsics_vipe`` (same frames) or, without ViPE, ``intrinsics_render``; the DA3
views that produced the pixel-aligned Gaussians are ``w2c_da3`` + ``intrinsics_da3`` (``w2c_da3_pred`` +
``intrinsics_da3_pred`` without ViPE) at the video frames ``indices_da3``. Lyra's trajectory files hold ``w2c`` +
``intrinsics`` + ``image_height`` / ``image_width``. Intrinsics candidates whose frame count is neither 1 nor the
pose count are skipped in favour of the next candidate."""

W2C_KEYS = VIEW_SETS["render"]["w2c"]
C2W_KEYS = VIEW_SETS["render"]["c2w"]
INTRINSICS_KEYS = VIEW_SETS["render"]["intrinsics"]

IMAGE_SIZE_KEYS = (("image_width", "image_height"), ("width", "height"), ("W", "H"), ("img_w", "img_h"))
"""(width key, height key) pairs, in order of preference. Without them the size is 2 x the principal point
(Lyra's ``cameras.npz`` has none: its frames are the video's)."""

NORMALIZED_LIMIT = 4.0
"""Focal lengths and principal points all below this many "pixels" mean intrinsics normalized by the image size
(fx ~ 1, cx ~ 0.5); real pixel intrinsics have focal lengths of hundreds of pixels."""

RIGID_TOLERANCE = 1e-3
"""Largest |R R^T - I| entry (and |det R - 1|) accepted for a w2c rotation block (float32 files drift ~1e-6)."""


def find_cameras(ply_path: str | Path) -> Path | None:
    """The camera file that belongs to a splat PLY: ``cameras.npz`` (or INRIA's ``cameras.json``) beside it (see
    ``CAMERA_FILENAMES``), else the ``cameras.json`` at the root of an INRIA model folder when the PLY sits at
    ``<root>/point_cloud/iteration_<N>/<name>.ply``.

    Args:
        ply_path: the ``.ply`` file (or the directory holding it).

    Returns:
        The path of the first candidate that exists, or None.
    """
    ply_path = Path(ply_path)
    folder, stem = (ply_path, "") if ply_path.is_dir() else (ply_path.parent, ply_path.stem)
    candidates = [folder / pattern.format(stem=stem) for pattern in CAMERA_FILENAMES
                  if stem or "{stem}" not in pattern]
    if folder.name.startswith("iteration_") and folder.parent.name == "point_cloud":
        candidates.append(folder.parent.parent / INRIA_CAMERAS_JSON)
    for candidate in candidates:
        if candidate.is_file():
            logger.debug("cameras for %s: %s", ply_path.name, candidate)
            return candidate
    return None


def load_cameras(path: str | Path, views: str = "render") -> CameraPath:
    """Read a camera path from Lyra's ``cameras.npz``, a Lyra trajectory ``.npz`` or INRIA's ``cameras.json``.

    A ``.json`` file is read by :func:`load_inria_cameras` (it holds one set of views: "render"); the rest of this
    docstring is about ``.npz`` files.

    Poses: the first ``w2c`` key of ``VIEW_SETS[views]`` present ((F, 4, 4) or (F, 3, 4) world-to-camera, OpenCV
    axes), else the first ``c2w`` key (inverted). Intrinsics: the first ``intrinsics`` key present whose count is
    1 or F ((F or 1, 3, 3) pixels, or (F, 4) as fx, fy, cx, cy). A key may be split into numbered chunks
    (``w2c_render_0``, ``w2c_render_1``, ...): the chunks are concatenated in numeric order (a gap in the numbering
    is logged); intrinsics chunks of one matrix each are repeated over their pose chunk's frames. Image size:
    ``IMAGE_SIZE_KEYS``, else estimated as 2 x the principal point of the first camera (logged).

    Args:
        path: the ``.npz`` file (read with ``allow_pickle=False``).
        views: which cameras: "render" (the trajectory; default), "da3" (the views whose pixels became the
            Gaussians, Lyra 2.0) or "vipe" (every video frame's ViPE pose).

    Returns:
        CameraPath with float64 (F, 4, 4) ``w2c`` and (F, 3, 3) ``intrinsics``. ``meta``: ``pose_key``,
        ``intrinsics_key``, ``image_size_from``, ``inverted_c2w``, ``views``, ``available_views`` (view sets the
        file holds) and, when present, ``indices_da3`` ((V,) int64 video frames of the DA3 views) and ``fps``.

    Raises:
        InputError: naming the file and the fault: missing file, not a readable npz, no known pose or intrinsics
            keys (the keys found are listed), shapes that disagree, non-finite values, non-rigid w2c,
            non-positive focal lengths.
        ValueError: unknown ``views``.
    """
    if views not in VIEW_SETS:
        raise ValueError(f"unknown camera views {views!r}; expected one of {tuple(VIEW_SETS)}")
    keyset = VIEW_SETS[views]
    path = Path(path)
    if path.suffix.lower() == ".json":
        if views != "render":
            raise InputError(path, f"an INRIA cameras.json holds only the training views, not {views!r} views")
        return load_inria_cameras(path)
    if not path.exists():
        raise InputError(path, "camera file does not exist")
    if path.is_dir():
        raise InputError(path, "is a directory, not a camera .npz file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(path, f"not a readable .npz archive ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise InputError(path, "holds a single .npy array, not a .npz archive of named camera arrays")
    with archive:
        keys = list(archive.files)
        reader = _NpzReader(path, archive)
        available = [name for name, ks in VIEW_SETS.items() if any(reader.has(k) for k in ks["w2c"] + ks["c2w"])]
        poses, inverted = None, False
        for key in keyset["w2c"] + keyset["c2w"]:
            poses = reader.gather(key)
            if poses is not None:
                inverted = key in keyset["c2w"]
                break
        if poses is None:
            wanted = ", ".join(keyset["w2c"] + keyset["c2w"])
            raise InputError(path, f"has no {views} camera poses: none of the keys {wanted} (or numbered chunks of "
                                   f"them); keys found: {', '.join(keys) or 'none'}")
        pose_key, pose_array, pose_chunks = poses
        w2c = _as_poses(path, pose_key, pose_array)
        frames = w2c.shape[0]
        intrinsics = None
        mismatched: list[str] = []
        for key in keyset["intrinsics"]:
            found = reader.gather(key)
            if found is None:
                continue
            k_key, k_array, k_chunks = found
            k_matrices = _as_intrinsics(path, k_key, k_array)
            if (k_chunks is not None and pose_chunks is not None and len(k_chunks) == len(pose_chunks)
                    and k_matrices.shape[0] == len(k_chunks) != frames):
                k_matrices = np.repeat(k_matrices, pose_chunks, axis=0)
            if k_matrices.shape[0] in (1, frames):
                intrinsics = (k_key, k_matrices)
                break
            mismatched.append(f"{k_key} has {k_matrices.shape[0]}")
        if intrinsics is None:
            if mismatched:
                raise InputError(path, f"{pose_key} has {frames} frames but {'; '.join(mismatched)} intrinsics "
                                       "(expected 1 or one per frame)")
            raise InputError(path, f"has no intrinsics: none of the keys {', '.join(keyset['intrinsics'])}; keys "
                                   f"found: {', '.join(keys)}")
        size = _image_size(reader, keys)
        extras: dict[str, Any] = {}
        if reader.has("indices_da3"):
            extras["indices_da3"] = reader.get("indices_da3").astype(np.int64).ravel()
        if reader.has("fps"):
            fps = reader.get("fps").ravel()
            if fps.size == 1 and np.issubdtype(fps.dtype, np.number):
                extras["fps"] = float(fps[0])

    k_key, k_matrices = intrinsics
    if inverted:
        _check_finite(path, pose_key, w2c)
        w2c = np.linalg.inv(w2c)
    _check_finite(path, pose_key, w2c)
    _check_rigid(path, pose_key, w2c)
    _check_finite(path, k_key, k_matrices)
    focal = k_matrices[:, [0, 1], [0, 1]]
    if (focal <= 0).any():
        bad = int(np.flatnonzero((focal <= 0).any(axis=1))[0])
        raise InputError(path, f"{k_key}[{bad}] has a non-positive focal length {focal[bad].tolist()}")

    if np.any(k_matrices[:, 2, 2] <= 0):
        bad = int(np.flatnonzero(k_matrices[:, 2, 2] <= 0)[0])
        raise InputError(path, f"{k_key}[{bad}] has K[2, 2] = {k_matrices[bad, 2, 2]}, expected 1")
    if np.any(k_matrices[:, 2, 2] != 1.0):
        k_matrices = k_matrices / k_matrices[:, 2:3, 2:3]  # projective scale of K: normalize to K[2, 2] = 1
    principal = k_matrices[:, :2, 2]
    focal = k_matrices[:, [0, 1], [0, 1]]
    if np.all(np.abs(principal) <= NORMALIZED_LIMIT) and np.all(focal <= NORMALIZED_LIMIT):
        # Intrinsics normalized by the image size (principal point ~0.5, 0.5): convert to pixels if we know it.
        if size is None:
            raise InputError(path, f"{k_key} looks normalized (principal point {principal[0].tolist()}, not pixels) "
                                   "and the file has no image size keys to convert it")
        k_matrices = k_matrices.copy()
        k_matrices[:, 0, :] *= size[0]
        k_matrices[:, 1, :] *= size[1]
        logger.info("%s: %s is normalized; scaled to %d x %d pixels", path.name, k_key, size[0], size[1])
    if size is None:
        cx, cy = k_matrices[0, 0, 2], k_matrices[0, 1, 2]
        width, height = int(round(2 * cx)), int(round(2 * cy))
        if width <= 0 or height <= 0:
            raise InputError(path, f"has no image size keys and {k_key}'s principal point ({cx}, {cy}) cannot "
                                   "give one")
        logger.info("%s: no image size keys; estimated %d x %d from the principal point", path.name, width, height)
        size_from = "principal point"
    else:
        width, height = size
        size_from = "keys"
    cameras = CameraPath(w2c=w2c, intrinsics=k_matrices, width=width, height=height, source_path=path,
                         meta={"pose_key": pose_key, "intrinsics_key": k_key, "image_size_from": size_from,
                               "inverted_c2w": inverted, "views": views, "available_views": available, **extras})
    logger.info("read %s: %d %s cameras (%s, %s), %d x %d px, path length %.3f", path.name, len(cameras), views,
                pose_key, k_key, width, height, cameras.path_length())
    return cameras


def load_inria_cameras(path: str | Path) -> CameraPath:
    """Read INRIA 3DGS's ``cameras.json`` (see the module docstring for the format and its misleading names).

    Each entry's ``rotation`` (3 x 3, rows) and ``position`` (3,) form the camera-to-world transform (OpenCV
    axes, scene units); ``fx``, ``fy`` are pixels at its ``width`` x ``height``, principal point at the centre.
    Entries are kept in file order (INRIA writes the training cameras, then the test cameras). Cameras of another
    size than the first are rescaled to it (their intrinsics map the same rays onto the first camera's pixel
    grid; logged).

    Args:
        path: the ``cameras.json`` file.

    Returns:
        CameraPath with float64 (F, 4, 4) ``w2c`` and (F, 3, 3) ``intrinsics``; ``meta``: ``format = "inria_json"``,
        ``views = "render"``, ``available_views = ["render"]``, ``image_names`` (list of str or None),
        ``image_size_from = "keys"``.

    Raises:
        InputError: naming the file and the fault: missing or unreadable file, not JSON, not a non-empty list of
            objects, a missing key, values of the wrong shape or type, non-finite values, a rotation that is not
            a proper rotation (|R R^T - I| or |det R - 1| above ``RIGID_TOLERANCE``), non-positive focal lengths
            or image sizes.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "camera file does not exist")
    if path.is_dir():
        raise InputError(path, "is a directory, not a cameras.json file")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a readable JSON file ({exc})") from None
    if not isinstance(entries, list):
        raise InputError(path, f"expected a JSON list of cameras (INRIA cameras.json), found {type(entries).__name__}")
    if not entries:
        raise InputError(path, "holds no cameras (empty list)")
    count = len(entries)
    c2w = np.tile(np.eye(4), (count, 1, 1))
    k = np.tile(np.eye(3), (count, 1, 1))
    sizes = np.zeros((count, 2), dtype=np.int64)
    names: list[str | None] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InputError(path, f"camera {i} is a {type(entry).__name__}, expected an object")
        missing = [key for key in INRIA_CAMERA_KEYS if key not in entry]
        if missing:
            raise InputError(path, f"camera {i} lacks the key(s) {', '.join(missing)} (INRIA cameras.json entries "
                                   f"have {', '.join(INRIA_CAMERA_KEYS)})")
        rotation = _json_array(path, i, "rotation", entry["rotation"], (3, 3))
        position = _json_array(path, i, "position", entry["position"], (3,))
        values = {key: _json_array(path, i, key, entry[key], ()) for key in ("width", "height", "fx", "fy")}
        for key in ("width", "height", "fx", "fy"):
            if not values[key] > 0:
                raise InputError(path, f"camera {i} has {key} = {float(values[key])}, expected a positive number")
        orth = float(np.abs(rotation @ rotation.T - np.eye(3)).max())
        det = float(np.linalg.det(rotation))
        if orth > RIGID_TOLERANCE or abs(det - 1.0) > RIGID_TOLERANCE:
            raise InputError(path, f"camera {i} rotation is not a rotation matrix (|R R^T - I| = {orth:.3g}, det R = "
                                   f"{det:.4f})")
        c2w[i, :3, :3] = rotation
        c2w[i, :3, 3] = position
        width, height = float(values["width"]), float(values["height"])
        sizes[i] = int(round(width)), int(round(height))
        k[i, 0, 0], k[i, 1, 1] = float(values["fx"]), float(values["fy"])
        k[i, 0, 2], k[i, 1, 2] = width / 2, height / 2
        name = entry.get("img_name")
        names.append(str(name) if name is not None else None)
    width, height = int(sizes[0, 0]), int(sizes[0, 1])
    other = np.flatnonzero((sizes != sizes[0]).any(axis=1))
    if other.size:
        k[other, 0, :] *= (width / sizes[other, 0])[:, None]
        k[other, 1, :] *= (height / sizes[other, 1])[:, None]
        logger.info("%s: %d cameras are not %d x %d; their intrinsics were rescaled to it", path.name, other.size,
                    width, height)
    w2c = np.linalg.inv(c2w)
    cameras = CameraPath(w2c=w2c, intrinsics=k, width=width, height=height, source_path=path,
                         meta={"format": "inria_json", "pose_key": "rotation+position", "intrinsics_key": "fx+fy",
                               "image_size_from": "keys", "inverted_c2w": True, "views": "render",
                               "available_views": ["render"], "image_names": names})
    logger.info("read %s: %d INRIA cameras, %d x %d px, path length %.3f", path.name, len(cameras), width, height,
                cameras.path_length())
    return cameras


def _json_array(path: Path, index: int, key: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` of camera ``index``'s ``key`` as a finite float64 array of ``shape``, else InputError."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(path, f"camera {index} {key} is not numeric ({str(value)[:60]})") from None
    if array.shape != shape:
        raise InputError(path, f"camera {index} {key} has shape {array.shape}, expected {shape}")
    if not np.isfinite(array).all():
        raise InputError(path, f"camera {index} {key} has NaN/inf values")
    return array


class _NpzReader:
    """Reads named arrays (or numbered chunks of them) from an open npz, turning failures into InputError."""

    def __init__(self, path: Path, archive: np.lib.npyio.NpzFile):
        self.path = path
        self.archive = archive
        self.keys = set(archive.files)

    def has(self, base: str) -> bool:
        """Whether ``base`` or a numbered chunk of it is present."""
        return base in self.keys or any(re.match(rf"^{re.escape(base)}_\d+$", key) for key in self.keys)

    def get(self, key: str) -> np.ndarray:
        try:
            return np.asarray(self.archive[key])
        except ValueError as exc:
            raise InputError(self.path, f"key {key!r} cannot be read without pickle ({exc})") from None
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(self.path, f"key {key!r} is corrupt ({exc})") from None

    def gather(self, base: str) -> tuple[str, np.ndarray, list[int] | None] | None:
        """(key description, array, chunk lengths or None) for ``base`` or its numbered chunks; None if absent."""
        if base in self.keys:
            return base, self.get(base), None
        pattern = re.compile(rf"^{re.escape(base)}_(\d+)$")
        numbered = sorted((int(m.group(1)), key) for key in self.keys if (m := pattern.match(key)))
        if not numbered:
            return None
        numbers = [n for n, _ in numbered]
        if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
            logger.warning("%s: %s chunks are numbered %s (gaps); concatenating in numeric order", self.path.name,
                           base, numbers)
        arrays = []
        for _, key in numbered:
            array = self.get(key)
            if array.ndim == 2:
                array = array[None]
            arrays.append(array)
        try:
            joined = np.concatenate(arrays, axis=0)
        except ValueError:
            shapes = ", ".join(f"{key} {a.shape}" for (_, key), a in zip(numbered, arrays, strict=True))
            raise InputError(self.path, f"chunks of {base} have incompatible shapes: {shapes}") from None
        label = f"{base}_{numbers[0]}..{numbers[-1]}" if len(numbers) > 1 else numbered[0][1]
        return label, joined, [a.shape[0] for a in arrays]


def _image_size(reader: _NpzReader, keys: list[str]) -> tuple[int, int] | None:
    for width_key, height_key in IMAGE_SIZE_KEYS:
        if width_key in reader.keys and height_key in reader.keys:
            values = []
            for key in (width_key, height_key):
                array = reader.get(key)
                if array.size != 1 or not np.isfinite(array.astype(np.float64)).all() or array.item() <= 0:
                    raise InputError(reader.path, f"{key} must be one positive number, found {array.ravel()[:4]} "
                                                  f"(shape {array.shape})")
                values.append(int(round(float(array.item()))))
            return values[0], values[1]
    return None


def _as_poses(path: Path, key: str, array: np.ndarray) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.number):
        raise InputError(path, f"{key} has dtype {array.dtype}, expected numbers")
    array = array.astype(np.float64)
    if array.shape in ((4, 4), (3, 4)):
        array = array[None]
    if array.ndim != 3 or array.shape[1:] not in ((4, 4), (3, 4)) or array.shape[0] == 0:
        raise InputError(path, f"{key} has shape {array.shape}, expected (F, 4, 4) or (F, 3, 4) with F >= 1")
    if array.shape[1] == 3:
        full = np.tile(np.eye(4), (array.shape[0], 1, 1))
        full[:, :3, :] = array
        array = full
    return array


def _as_intrinsics(path: Path, key: str, array: np.ndarray) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.number):
        raise InputError(path, f"{key} has dtype {array.dtype}, expected numbers")
    array = array.astype(np.float64)
    if array.shape == (3, 3):
        return array[None]
    if array.ndim == 3 and array.shape[1:] == (3, 3) and array.shape[0] > 0:
        return array
    if array.shape == (4, 4) or (array.ndim == 3 and array.shape[1:] == (4, 4) and array.shape[0] > 0):
        return np.ascontiguousarray(array.reshape(-1, 4, 4)[:, :3, :3])  # homogeneous 4x4 intrinsics
    if array.shape == (4,) or (array.ndim == 2 and array.shape[1] == 4 and array.shape[0] > 0):
        fx, fy, cx, cy = np.atleast_2d(array).T
        k = np.zeros((fx.shape[0], 3, 3))
        k[:, 0, 0], k[:, 1, 1], k[:, 0, 2], k[:, 1, 2], k[:, 2, 2] = fx, fy, cx, cy, 1.0
        return k
    raise InputError(path, f"{key} has shape {array.shape}, expected (F, 3, 3), (3, 3), (F, 4, 4) or (F, 4) "
                           "[fx, fy, cx, cy]")


def _check_finite(path: Path, key: str, array: np.ndarray) -> None:
    finite = np.isfinite(array.reshape(array.shape[0], -1)).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise InputError(path, f"{key} has NaN/inf values in {bad.size} frames (first: frame {int(bad[0])})")


def _check_rigid(path: Path, key: str, w2c: np.ndarray) -> None:
    rotation = w2c[:, :3, :3]
    gram = rotation @ rotation.transpose(0, 2, 1)
    orth_error = np.abs(gram - np.eye(3)).max(axis=(1, 2))
    det_error = np.abs(np.linalg.det(rotation) - 1.0)
    bottom_error = np.abs(w2c[:, 3, :] - np.array([0.0, 0.0, 0.0, 1.0])).max(axis=1)
    error = np.maximum(np.maximum(orth_error, det_error), bottom_error)
    bad = np.flatnonzero(error > RIGID_TOLERANCE)
    if bad.size:
        first = int(bad[0])
        raise InputError(path, f"{key} is not a rigid transform in {bad.size} frames (first: frame {first}: "
                               f"|R R^T - I| = {orth_error[first]:.3g}, det R = {np.linalg.det(rotation[first]):.4f}, "
                               f"bottom row {w2c[first, 3].tolist()})")
