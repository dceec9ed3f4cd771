"""Gaussian-splat PLY files: reading (Lyra 2.0, Lyra 1.0, INRIA 3DGS, any other property order) and writing.

Formats (DESIGN.md section 1), all one ``vertex`` element of float32 properties:

- ``lyra2``: exactly ``x y z nx ny nz f_dc_0..2 opacity scale_0..2 rot_0..3`` (17 floats, 68 bytes a row; the
  normals are zero placeholders). Lyra 2.0's ``reconstructed_scene.ply``.
- ``lyra1``: exactly ``x y z f_dc_0..2 opacity scale_0..2 rot_0..3`` (14 floats, no normals). Trained 3DGS files
  without normals and SH degree 0 have the same layout and are reported as ``lyra1`` too.
- ``inria``: has ``f_rest_*`` (SH degree 1-3, 9/24/45 coefficients, stored channel-major: all R, then G, then B),
  with or without ``nx ny nz``. Degree 4 (72 coefficients, Depth-Anything-3's head) is read truncated to degree 3.
- ``generic``: any other order or subset that holds the required properties (``REQUIRED_PROPERTIES``); extra
  properties are ignored, other elements (faces, ...) are skipped.

PlayCanvas/SuperSplat compressed PLYs (``chunk`` + packed ``vertex`` + uchar ``sh`` elements) are decoded as
``splat-transform`` does (format ``compressed``; values are quantized). Lyra 1.0's ``sample.py`` also writes
``gaussians/gaussians_<i>.ply`` files that are not PLYs at all but ``torch.save``d tensors of activated values;
they are recognised by their zip magic and converted (needs torch).

Reading parses the header, then memory-maps the body with a structured dtype and processes it in chunks of
``CHUNK_BYTES``: every output array is allocated once and filled in place, each chunk's mapping is released after
use, so peak memory stays near the size of the outputs (below the file size for Lyra files, whose normals are
not kept). Validation happens in the same pass (see :func:`read_ply`).

Writing (:func:`write_ply`, :class:`PlyStreamWriter`) produces the byte-exact layouts above (the header is
plyfile's, as written by Lyra and the INRIA code), atomically (temp file + ``os.replace``).
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, MissingDependencyError, OutputError
from .scene import SH_C0, SH_REST_COUNTS, GaussianScene, ReadReport

logger = logging.getLogger(__name__)

MAX_HEADER_BYTES = 1 << 20
"""A header longer than this (without ``end_header``) is reported as truncated / not a PLY."""

CHUNK_BYTES = 64 << 20
"""Body bytes mapped and processed at a time while reading (bounds the temporary memory of a read)."""

COPY_BLOCK_ROWS = 1 << 14
"""Rows copied at a time from a mapped chunk into the outputs (about 1 MB of a Lyra 2 file: stays in cache while
every output column is taken from it; measured ~35% faster than whole-chunk column copies)."""

WRITE_CHUNK_ROWS = 1 << 20
"""Rows serialized at a time by :func:`write_ply` (bounds the temporary memory of a write)."""

MAX_ABS_LOG_SCALE = 30.0
"""Log-scales are clamped to [-30, 30]: exp(30) ~ 1e13 scene units, and its square (a covariance entry) stays finite
and normal in float32 (a float32 exp overflows above ~88.7). Clamped rows are kept (they stay pixel-aligned) and
counted in ``ReadReport.scale_clamped``; the cleaning stage removes such oversized Gaussians for geometry."""

MAX_SH_DEGREE_READ = 4
"""Highest SH degree accepted in a file (Depth-Anything-3's Gaussian head predicts degree 4); bands above degree 3,
the most a GaussianScene holds, are dropped on read with a warning (SH bands are ordered by degree, so truncation
keeps the lower bands exact)."""

QUAT_MIN_NORM = 1e-8
"""Quaternions with a norm below this are "zero": they encode no rotation, so their rows are dropped."""

QUAT_UNIT_TOLERANCE = 1e-6
"""Quaternions whose norm is within this of 1 are left as they are (already unit in float32), so reading a file
written from a read scene gives back identical bits."""

POSITION = ("x", "y", "z")
NORMALS = ("nx", "ny", "nz")
SH_DC = ("f_dc_0", "f_dc_1", "f_dc_2")
OPACITY = "opacity"
SCALES = ("scale_0", "scale_1", "scale_2")
ROTATION = ("rot_0", "rot_1", "rot_2", "rot_3")
REQUIRED_PROPERTIES = (*POSITION, *SH_DC, OPACITY, *SCALES, *ROTATION)
"""Vertex properties every splat PLY must have (any order)."""

LYRA2_PROPERTIES = (*POSITION, *NORMALS, *SH_DC, OPACITY, *SCALES, *ROTATION)
LYRA1_PROPERTIES = (*POSITION, *SH_DC, OPACITY, *SCALES, *ROTATION)
WRITE_FORMATS = ("lyra2", "lyra1", "inria")

PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
"""PLY property type names -> numpy type codes (byte order added per file)."""

ZIP_MAGIC = b"PK\x03\x04"
"""First bytes of a zip archive: what torch.save writes (Lyra 1's gaussians/gaussians_<i>.ply is one)."""

PLY_FORMATS = {"ascii": "", "binary_little_endian": "<", "binary_big_endian": ">"}


# --------------------------------------------------------------------------------------------------------- header


@dataclass
class PlyProperty:
    name: str
    type_code: str
    """numpy type code without byte order ("f4"); for a list property, the item type."""
    list_count_code: str | None = None
    """numpy type code of the list length for a list property, else None."""

    @property
    def is_list(self) -> bool:
        return self.list_count_code is not None


@dataclass
class PlyElement:
    name: str
    count: int
    properties: list[PlyProperty] = field(default_factory=list)

    def dtype(self, byte_order: str) -> np.dtype:
        """Structured dtype of one row (fixed-size elements only)."""
        return np.dtype([(p.name, byte_order + p.type_code) for p in self.properties])


@dataclass
class PlyHeader:
    """A parsed PLY header."""

    format: str
    """"ascii", "binary_little_endian" or "binary_big_endian"."""
    elements: list[PlyElement]
    body_offset: int
    """Byte offset of the first body byte (just after ``end_header`` and its newline)."""
    comments: list[str] = field(default_factory=list)

    @property
    def byte_order(self) -> str:
        return PLY_FORMATS[self.format] or "<"

    def element(self, name: str) -> PlyElement | None:
        return next((e for e in self.elements if e.name == name), None)


def read_header(path: str | Path) -> PlyHeader:
    """Parse the header of the PLY file at ``path``.

    Raises:
        InputError: the file does not exist, is a directory, is not a PLY (bad magic), has no ``end_header``,
            or has a malformed line (unknown format, unknown type, property outside an element...).
    """
    path = _check_file(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(MAX_HEADER_BYTES)
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror or exc})") from None
    if not (head.startswith(b"ply\n") or head.startswith(b"ply\r\n")):
        shown = head[:16].split(b"\n")[0]
        raise InputError(path, f"not a PLY file (bad magic {shown!r}, expected b'ply')")
    end = head.find(b"\nend_header")
    if end < 0:
        if len(head) >= MAX_HEADER_BYTES:
            raise InputError(path, f"no 'end_header' within the first {MAX_HEADER_BYTES} bytes (not a PLY header)")
        raise InputError(path, "header is truncated: no 'end_header' line")
    newline = head.find(b"\n", end + 1)
    tail = head[end + 1:newline if newline >= 0 else len(head)].strip()
    if tail != b"end_header":
        raise InputError(path, f"malformed header line {tail[:40]!r} (expected 'end_header')")
    body_offset = newline + 1 if newline >= 0 else len(head)
    try:
        text = head[:end].decode("ascii")
    except UnicodeDecodeError:
        raise InputError(path, "header contains non-ASCII bytes") from None

    fmt: str | None = None
    elements: list[PlyElement] = []
    comments: list[str] = []
    for number, raw_line in enumerate(text.split("\n")[1:], start=2):
        line = raw_line.strip()
        if not line:
            continue
        words = line.split()
        keyword = words[0]
        if keyword in ("comment", "obj_info"):
            comments.append(line[len(keyword):].strip())
        elif keyword == "format":
            if len(words) != 3 or words[1] not in PLY_FORMATS:
                raise InputError(path, f"unknown format line {line!r} (header line {number}); expected "
                                       "'format ascii|binary_little_endian|binary_big_endian 1.0'")
            fmt = words[1]
        elif keyword == "element":
            if len(words) != 3 or not _is_count(words[2]):
                raise InputError(path, f"malformed element line {line!r} (header line {number})")
            elements.append(PlyElement(words[1], int(words[2])))
        elif keyword == "property":
            if not elements:
                raise InputError(path, f"property before any element: {line!r} (header line {number})")
            elements[-1].properties.append(_parse_property(path, words, line, number))
        else:
            raise InputError(path, f"unknown header line {line!r} (header line {number})")
    if fmt is None:
        raise InputError(path, "header has no 'format' line")
    return PlyHeader(fmt, elements, body_offset, comments)


def _is_count(word: str) -> bool:
    return word.isdigit()


def _parse_property(path: Path, words: list[str], line: str, number: int) -> PlyProperty:
    if len(words) == 3 and words[1] in PLY_TYPES:
        return PlyProperty(words[2], PLY_TYPES[words[1]])
    if len(words) == 5 and words[1] == "list" and words[2] in PLY_TYPES and words[3] in PLY_TYPES:
        return PlyProperty(words[4], PLY_TYPES[words[3]], PLY_TYPES[words[2]])
    raise InputError(path, f"malformed or unknown-type property line {line!r} (header line {number})")


LYRA_PLY_NAME = "reconstructed_scene.ply"
"""The PLY inside a Lyra 2.0 output folder."""
INRIA_POINT_CLOUD_DIR = "point_cloud"
INRIA_ITERATION_PREFIX = "iteration_"
INRIA_PLY_NAME = "point_cloud.ply"
"""An INRIA 3DGS model folder keeps its splats in ``point_cloud/iteration_<N>/point_cloud.ply``, one per saved
training iteration."""


def resolve_scene_path(path: str | Path) -> Path:
    """The PLY that ``path`` names: the file itself, or inside a folder its ``reconstructed_scene.ply`` (Lyra),
    else its only ``.ply``, else (an INRIA model folder) ``point_cloud/iteration_<N>/point_cloud.ply`` of the
    largest ``N`` (the final training iteration).

    Raises:
        InputError: the path does not exist, or a folder holds no ``reconstructed_scene.ply``, not exactly one
            ``.ply`` and no INRIA ``point_cloud/iteration_<N>/point_cloud.ply``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file does not exist")
    if not path.is_dir():
        return path
    candidate = path / LYRA_PLY_NAME
    if candidate.is_file():
        return candidate
    plys = sorted(p for p in path.glob("*.ply") if p.is_file())
    if len(plys) == 1:
        return plys[0]
    if not plys:
        iterations = [(int(d.name[len(INRIA_ITERATION_PREFIX):]), d / INRIA_PLY_NAME)
                      for d in (path / INRIA_POINT_CLOUD_DIR).glob(f"{INRIA_ITERATION_PREFIX}*")
                      if d.name[len(INRIA_ITERATION_PREFIX):].isdigit() and (d / INRIA_PLY_NAME).is_file()]
        if iterations:
            return max(iterations)[1]
    raise InputError(path, f"folder holds no {LYRA_PLY_NAME}, {len(plys)} other .ply files and no INRIA "
                           f"{INRIA_POINT_CLOUD_DIR}/{INRIA_ITERATION_PREFIX}<N>/{INRIA_PLY_NAME} (pass the PLY "
                           "file itself)")


def _check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file does not exist")
    if path.is_dir():
        inside = path / LYRA_PLY_NAME
        hint = f" (did you mean {inside}?)" if inside.exists() else ""
        raise InputError(path, f"is a directory, not a PLY file{hint}")
    return path


# --------------------------------------------------------------------------------------------------------- layout


@dataclass
class _Layout:
    """Where each output column comes from: property names in output-column order."""

    format: str
    sh_rest_count: int
    """K: rest coefficients per channel kept (0, 3, 8 or 15)."""
    ignored: list[str]
    file_rest_count: int = 0
    """Rest coefficients per channel in the file (K, or 24 for SH degree 4, truncated to 15 on read)."""

    def columns(self) -> dict[str, list[str]]:
        k = self.sh_rest_count
        stride = self.file_rest_count or k
        cols = {
            "means": list(POSITION),
            "quats": list(ROTATION),
            "log_scales": list(SCALES),
            "opacity_logits": [OPACITY],
            "sh_dc": list(SH_DC),
        }
        if k:
            # sh_rest[:, j, c] = f_rest_{c*K_file + j}; output column (j, c) flattened is j*3 + c.
            cols["sh_rest"] = [f"f_rest_{c * stride + j}" for j in range(k) for c in range(3)]
        return cols


def _resolve_layout(path: Path, vertex: PlyElement) -> _Layout:
    names = [p.name for p in vertex.properties]
    seen: set[str] = set()
    duplicates = sorted({n for n in names if n in seen or seen.add(n)})
    if duplicates:
        raise InputError(path, f"duplicate vertex properties: {', '.join(duplicates)}")
    lists = [p.name for p in vertex.properties if p.is_list]
    if lists:
        raise InputError(path, f"vertex element has list properties ({', '.join(lists)}); a splat PLY stores one "
                               "fixed-size row of floats per Gaussian")
    missing = [n for n in REQUIRED_PROPERTIES if n not in seen]
    if missing and "packed_position" in seen:
        raise InputError(path, "has packed_* vertex properties (PlayCanvas compressed layout) but no 'chunk' "
                               "element to decode them with")
    if missing:
        kind = " (a mesh or point cloud, not a Gaussian-splat PLY)" if len(missing) >= 10 else ""
        raise InputError(path, f"missing required vertex properties{kind}: {', '.join(missing)}")
    rest = [n for n in names if n.startswith("f_rest_")]
    k = file_k = 0
    if rest:
        counts = {3 * ((d + 1) ** 2 - 1): d for d in range(1, MAX_SH_DEGREE_READ + 1)}
        expected = [f"f_rest_{i}" for i in range(len(rest))]
        if len(rest) not in counts or sorted(rest, key=_rest_index) != expected:
            raise InputError(path, f"has {len(rest)} f_rest_* properties that are not f_rest_0..f_rest_N-1 with "
                                   f"N = {', '.join(str(n) for n in counts)} (SH degree 1-{MAX_SH_DEGREE_READ})")
        file_k = len(rest) // 3
        k = min(file_k, max(SH_REST_COUNTS.values()))
        if k < file_k:
            logger.warning("%s: SH degree %d in the file; keeping bands up to degree 3 (the rest are dropped)",
                           path.name, counts[len(rest)])
    used = set(REQUIRED_PROPERTIES) | set(rest)
    types = {p.name: p.type_code for p in vertex.properties}
    bad_types = [f"{n} ({_type_name(types[n])})" for n in names if n in used and types[n] not in ("f4", "f8")]
    if bad_types:
        raise InputError(path, f"properties must be float or double, found {', '.join(bad_types)}")
    if names == list(LYRA2_PROPERTIES) and all(types[n] == "f4" for n in names):
        fmt = "lyra2"
    elif names == list(LYRA1_PROPERTIES) and all(types[n] == "f4" for n in names):
        fmt = "lyra1"
    elif rest:
        fmt = "inria"
    else:
        fmt = "generic"
    ignored = [n for n in names if n not in used and n not in NORMALS]
    return _Layout(fmt, k, ignored, file_k)


def _rest_index(name: str) -> int:
    tail = name[len("f_rest_"):]
    return int(tail) if tail.isdigit() else -1


def _type_name(code: str) -> str:
    return next(name for name, c in PLY_TYPES.items() if c == code)


# --------------------------------------------------------------------------------------------------------- reading


def read_ply(path: str | Path, *, strict: bool = False) -> GaussianScene:
    """Read a Gaussian-splat PLY (Lyra 2.0, Lyra 1.0, INRIA 3DGS or any property order) into a GaussianScene.

    Binary (little- or big-endian) bodies are memory-mapped and processed in chunks without per-row Python; ASCII
    bodies are parsed with ``np.loadtxt``. ``float`` and ``double`` properties are accepted (converted to
    float32); integer types for required properties are rejected. A Lyra 1 torch-saved tensor with a ``.ply`` name
    is converted (see :func:`_plan_lyra1_tensor`; needs torch); PlayCanvas compressed PLYs are decoded
    (:func:`_plan_compressed`).

    Cleaning, counted in ``scene.read_report`` and logged:

    - rows with NaN/inf in any kept column are dropped, except that an opacity logit of +-inf is legal (Lyra's
      writer does not clamp it: it means opacity 1 or 0); such rows are kept and counted in ``opacity_inf``.
      A NaN opacity is dropped.
    - rows whose quaternion norm is below ``QUAT_MIN_NORM`` are dropped; all others are normalized (w, x, y, z;
      quaternions already unit to ``QUAT_UNIT_TOLERANCE`` keep their bits).
    - log-scales outside +-``MAX_ABS_LOG_SCALE`` are clamped (rows kept, counted in ``scale_clamped``).

    Args:
        path: the ``.ply`` file.
        strict: raise InputError instead of dropping rows (non-finite values, zero quaternions).

    Returns:
        GaussianScene in the file's frame (``frame="source"``), float32 arrays, with
        ``extra["rows_in_file"]`` (int, rows declared in the file), ``extra["row_index"]`` ((N,) int64, the file
        row of every kept Gaussian, always present; the identity when nothing was dropped; Lyra files are
        pixel-aligned, so row -> (view, pixel)) and ``extra["ply"]`` (header facts: format, properties,
        ignored properties, comments).

    Raises:
        InputError: naming the file and the fault: missing file or directory, not a PLY, truncated header or body,
            unknown format line, missing / duplicate / non-float / list properties, zero Gaussians (in the file or
            after cleaning), and, with ``strict``, any row that would be dropped.
        MissingDependencyError: a Lyra 1 torch-saved tensor without torch installed (extra ``gpu``).
    """
    started = time.perf_counter()
    path = _check_file(path)
    if _peek(path, 4) == ZIP_MAGIC:
        n, layout, chunks, facts = _plan_lyra1_tensor(path)
    else:
        n, layout, chunks, facts = _plan_ply(path)
    out = _Output(n, layout.sh_rest_count)
    counts = _Counts()
    columns = layout.columns()
    for start, records in chunks:
        _fill_chunk(out, records, start, columns, counts)
        del records  # drop the last reference so the chunk's mapping is released before the next one
    kept = out.cursor

    report = ReadReport(
        rows_in_file=n,
        non_finite_dropped=counts.non_finite,
        zero_quaternion_dropped=counts.zero_quat,
        scale_clamped=counts.scale_clamped,
        opacity_inf=counts.opacity_inf,
    )
    dropped = counts.non_finite + counts.zero_quat
    if strict and dropped:
        raise InputError(path, f"strict mode: {counts.non_finite} rows with NaN/inf values and {counts.zero_quat} "
                               f"rows with zero-norm quaternions (first bad row: {counts.first_bad_row})")
    if kept == 0:
        raise InputError(path, f"has zero usable Gaussians: all {n} rows were dropped ({counts.non_finite} with "
                               f"NaN/inf values, {counts.zero_quat} with zero-norm quaternions)")
    if dropped:
        logger.warning("%s: dropped %d of %d rows (%d with NaN/inf values, %d with zero-norm quaternions; first: row "
                       "%d)", path.name, dropped, n, counts.non_finite, counts.zero_quat, counts.first_bad_row)
    if counts.scale_clamped:
        logger.warning("%s: clamped log-scales of %d rows to +-%g", path.name, counts.scale_clamped,
                       MAX_ABS_LOG_SCALE)
    if counts.opacity_inf:
        logger.info("%s: %d rows have +-inf opacity logits (kept: saturated opacity)", path.name, counts.opacity_inf)

    row_index = out.finish_row_index()
    arrays = out.finish()
    scene = GaussianScene(
        **arrays,
        source_format=layout.format,
        source_path=path,
        frame="source",
        read_report=report,
        extra={
            "rows_in_file": n,
            "row_index": row_index,
            "ply": facts,
        },
    )
    logger.info("read %s: %s layout, %s, %d of %d Gaussians kept, SH degree %d (%.2f s)", path.name, layout.format,
                facts["format"], kept, n, scene.sh_degree, time.perf_counter() - started)
    return scene


def _peek(path: Path, size: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror or exc})") from None


def _plan_ply(path: Path) -> tuple[int, _Layout, Any, dict[str, Any]]:
    """Parse and check a PLY header and body size: (rows, layout, chunk iterable, header facts)."""
    header = read_header(path)
    vertex = header.element("vertex")
    if vertex is None:
        found = ", ".join(e.name for e in header.elements) or "none"
        raise InputError(path, f"has no 'vertex' element (elements: {found})")
    if header.element("chunk") is not None and any(p.name == "packed_position" for p in vertex.properties):
        return _plan_compressed(path, header)
    layout = _resolve_layout(path, vertex)
    n = vertex.count
    if n == 0:
        raise InputError(path, "has zero Gaussians (element vertex 0)")
    # Check the body (size, or parse ASCII) before the caller allocates outputs for the declared count.
    if header.format == "ascii":
        chunks = _ascii_chunks(path, header, vertex)
    else:
        chunks = _binary_chunks(path, *_binary_body(path, header, vertex), n)
    facts = {
        "format": header.format,
        "properties": [p.name for p in vertex.properties],
        "ignored_properties": layout.ignored,
        "comments": header.comments,
    }
    return n, layout, chunks, facts


COMPRESSED_CHUNK_ROWS = 256
"""Splats per quantization chunk in the PlayCanvas/SuperSplat compressed PLY."""

COMPRESSED_CHUNK_PROPERTIES = ("min_x", "min_y", "min_z", "max_x", "max_y", "max_z", "min_scale_x", "min_scale_y",
                               "min_scale_z", "max_scale_x", "max_scale_y", "max_scale_z")
COMPRESSED_COLOR_PROPERTIES = ("min_r", "min_g", "min_b", "max_r", "max_g", "max_b")
COMPRESSED_VERTEX_PROPERTIES = ("packed_position", "packed_rotation", "packed_scale", "packed_color")
COMPRESSED_DECODE_ROWS = 1 << 20
"""Splats decoded at a time (bounds the temporary memory of decoding)."""


def _plan_compressed(path: Path, header: PlyHeader) -> tuple[int, _Layout, Any, dict[str, Any]]:
    """The PlayCanvas/SuperSplat compressed PLY (``splat-transform``'s ``.compressed.ply``).

    Elements: ``chunk`` (one per 256 splats: float32 position and log-scale bounds, optional colour bounds),
    ``vertex`` (uint32 ``packed_position`` 11-10-11 bits, ``packed_rotation`` 2-bit index of the largest component
    + 3 x 10 bits of the others scaled by sqrt(2), ``packed_scale`` 11-10-11, ``packed_color`` RGBA 8-8-8-8 with
    alpha = sigmoid(opacity)) and optionally ``sh`` (uint8 ``f_rest_*``, value = (byte/256 - 0.5) * 8). Decoded as
    splat-transform's ``decompress-ply`` does; the result is quantized (positions to 1/2047 of a chunk's extent).
    """
    if header.format == "ascii":
        raise InputError(path, "compressed splat PLY with an ASCII body is not supported")
    order = header.byte_order
    chunk_el, vertex = header.element("chunk"), header.element("vertex")
    sh_el = header.element("sh")
    chunk_names = {p.name: p.type_code for p in chunk_el.properties}
    vertex_names = {p.name: p.type_code for p in vertex.properties}
    missing = [n for n in COMPRESSED_CHUNK_PROPERTIES if chunk_names.get(n) != "f4"]
    missing += [n for n in COMPRESSED_VERTEX_PROPERTIES if vertex_names.get(n) != "u4"]
    if missing:
        raise InputError(path, f"compressed splat PLY lacks (or mistypes) {', '.join(missing)}")
    n = vertex.count
    if n == 0:
        raise InputError(path, "has zero Gaussians (element vertex 0)")
    if chunk_el.count != -(-n // COMPRESSED_CHUNK_ROWS):
        raise InputError(path, f"compressed splat PLY has {chunk_el.count} chunks for {n} splats (expected "
                               f"{-(-n // COMPRESSED_CHUNK_ROWS)})")
    k = 0
    if sh_el is not None:
        rest = [p.name for p in sh_el.properties]
        if sh_el.count != n or len(rest) not in (9, 24, 45) or rest != [f"f_rest_{i}" for i in range(len(rest))] \
                or any(p.type_code != "u1" for p in sh_el.properties):
            raise InputError(path, "compressed splat PLY 'sh' element must hold one row per splat of uchar "
                                   "f_rest_0..N-1 with N = 9, 24 or 45")
        k = len(rest) // 3
    offsets: dict[str, int] = {}
    offset = header.body_offset
    for element in header.elements:
        if any(p.is_list for p in element.properties):
            raise InputError(path, f"compressed splat PLY element '{element.name}' has list properties")
        offsets[element.name] = offset
        offset += element.count * element.dtype(order).itemsize
    if path.stat().st_size < offset:
        raise InputError(path, f"is truncated: the header declares {offset - header.body_offset} bytes of data but "
                               f"only {path.stat().st_size - header.body_offset} follow")
    chunks = np.fromfile(path, dtype=chunk_el.dtype(order), count=chunk_el.count, offset=offsets["chunk"])
    has_color = all(chunk_names.get(c) == "f4" for c in COMPRESSED_COLOR_PROPERTIES)
    names = [*POSITION, *SH_DC, *(f"f_rest_{i}" for i in range(3 * k)), OPACITY, *SCALES, *ROTATION]
    out_dtype = np.dtype([(name, "<f4") for name in names])

    def decode():
        for start in range(0, n, COMPRESSED_DECODE_ROWS):
            m = min(COMPRESSED_DECODE_ROWS, n - start)
            packed = np.memmap(path, dtype=vertex.dtype(order), mode="r",
                               offset=offsets["vertex"] + start * vertex.dtype(order).itemsize, shape=(m,))
            records = np.empty(m, dtype=out_dtype)
            ci = (np.arange(start, start + m) // COMPRESSED_CHUNK_ROWS)
            c = chunks[ci]
            _unpack_compressed(packed, c, has_color, records)
            if k:
                sh = np.memmap(path, dtype=sh_el.dtype(order), mode="r", offset=offsets["sh"] + start * 3 * k,
                               shape=(m,))
                for i in range(3 * k):
                    byte = sh[f"f_rest_{i}"].astype(np.float32)
                    unit = np.where(byte == 0, 0.0, np.where(byte == 255, 1.0, (byte + 0.5) / 256.0))
                    records[f"f_rest_{i}"] = (unit - 0.5) * 8.0
                del sh
            del packed
            yield start, records

    logger.info("%s: PlayCanvas compressed PLY, %d splats in %d chunks, SH degree %d (quantized values)",
                path.name, n, chunk_el.count, {0: 0, 3: 1, 8: 2, 15: 3}[k])
    facts = {"format": f"{header.format} (PlayCanvas compressed)", "properties": list(vertex_names),
             "ignored_properties": [], "comments": header.comments}
    layout = _Layout("compressed", k, [], k)
    return n, layout, decode(), facts


def _unpack_compressed(packed: np.ndarray, chunk: np.ndarray, has_color: bool, out: np.ndarray) -> None:
    """Decode packed vertex rows with their chunks' bounds into ``out`` (structured, PLY property names)."""
    def unorm(value: np.ndarray, shift: int, bits: int) -> np.ndarray:
        top = (1 << bits) - 1
        return ((value >> np.uint32(shift)) & np.uint32(top)).astype(np.float64) / top

    def lerp(lo: np.ndarray, hi: np.ndarray, t: np.ndarray) -> np.ndarray:
        return lo * (1.0 - t) + hi * t

    position = packed["packed_position"].astype(np.uint32)
    for axis, (shift, bits) in zip("xyz", ((21, 11), (11, 10), (0, 11)), strict=True):
        out[axis] = lerp(chunk[f"min_{axis}"], chunk[f"max_{axis}"], unorm(position, shift, bits))
    scale = packed["packed_scale"].astype(np.uint32)
    for i, (axis, (shift, bits)) in enumerate(zip("xyz", ((21, 11), (11, 10), (0, 11)), strict=True)):
        out[f"scale_{i}"] = lerp(chunk[f"min_scale_{axis}"], chunk[f"max_scale_{axis}"], unorm(scale, shift, bits))
    color = packed["packed_color"].astype(np.uint32)
    for i, (channel, shift) in enumerate(zip("rgb", (24, 16, 8), strict=True)):
        value = unorm(color, shift, 8)
        if has_color:
            value = lerp(chunk[f"min_{channel}"], chunk[f"max_{channel}"], value)
        out[f"f_dc_{i}"] = (value - 0.5) / SH_C0
    alpha = unorm(color, 0, 8)
    with np.errstate(divide="ignore"):
        out[OPACITY] = -np.log(1.0 / alpha - 1.0)  # alpha 0 / 1 -> -inf / +inf (saturated, legal)
    rotation = packed["packed_rotation"].astype(np.uint32)
    norm = np.sqrt(2.0)  # the three stored components lie in [-1/sqrt(2), 1/sqrt(2)]
    abc = np.stack([(unorm(rotation, shift, 10) - 0.5) * norm for shift in (20, 10, 0)], axis=1)
    largest = np.sqrt(np.maximum(0.0, 1.0 - (abc * abc).sum(axis=1)))
    which = (rotation >> np.uint32(30)).astype(np.int64)
    quat = np.empty((len(rotation), 4))
    for slot in range(4):
        rows = which == slot
        others = [j for j in range(4) if j != slot]
        quat[rows, slot] = largest[rows]
        quat[np.ix_(rows, others)] = abc[rows]
    for i in range(4):
        out[f"rot_{i}"] = quat[:, i]


def _plan_lyra1_tensor(path: Path) -> tuple[int, _Layout, Any, dict[str, Any]]:
    """Lyra 1.0's ``gaussians/gaussians_<i>.ply``: not a PLY but a ``torch.save``d (1, N, 14) float tensor of
    *activated* values (``sample.py`` -> ``save_ply``): xyz, opacity in [0, 1], linear scales, wxyz rotation, RGB.

    Converted the way Lyra's own ``save_ply_orig(compatible=True)`` writes ``gaussians_orig/``: opacity -> logit,
    scales -> log(scale + 1e-8), RGB -> (RGB - 0.5) / SH_C0. Loaded with ``torch.load(weights_only=True)`` (no
    arbitrary pickle code).
    """
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "gpu", f"reading {path.name} (a torch-saved Lyra 1 Gaussian tensor)")\
            from None
    try:
        tensor = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means "not this format"
        raise InputError(path, f"not a PLY file (bad magic b'PK\\x03\\x04': a zip archive that is not a torch-saved "
                               f"Lyra 1 Gaussian tensor: {type(exc).__name__})") from None
    if not isinstance(tensor, torch.Tensor) or tensor.ndim not in (2, 3) or tensor.shape[-1] != 14 \
            or (tensor.ndim == 3 and tensor.shape[0] != 1):
        shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise InputError(path, f"is a torch-saved object of shape {shape}, not a Lyra 1 Gaussian tensor (1, N, 14)")
    values = tensor.reshape(-1, 14).to(torch.float64).numpy()
    n = values.shape[0]
    if n == 0:
        raise InputError(path, "has zero Gaussians (empty Lyra 1 tensor)")
    records = np.empty(n, dtype=np.dtype([(name, "<f4") for name in LYRA1_PROPERTIES]))
    with np.errstate(divide="ignore", invalid="ignore"):
        opacity = values[:, 3]
        records["opacity"] = np.log(opacity / (1.0 - opacity))
        for i in range(3):
            records[POSITION[i]] = values[:, i]
            records[SCALES[i]] = np.log(values[:, 4 + i] + 1e-8)
            records[SH_DC[i]] = (values[:, 11 + i] - 0.5) / SH_C0
        for i in range(4):
            records[ROTATION[i]] = values[:, 7 + i]
    logger.info("%s is a torch-saved Lyra 1 tensor %s of activated values; converted to PLY encodings", path.name,
                tuple(tensor.shape))
    facts = {"format": "torch (Lyra 1 activated tensor)", "properties": list(LYRA1_PROPERTIES),
             "ignored_properties": [], "comments": []}
    return n, _Layout("lyra1", 0, []), [(0, records)], facts


def load_scene(path: str | Path, *, strict: bool = False) -> GaussianScene:
    """Load a splat scene: the public entry point (``lyra_isaac.load_scene``). Same as :func:`read_ply`."""
    return read_ply(path, strict=strict)


@dataclass
class _Counts:
    non_finite: int = 0
    zero_quat: int = 0
    scale_clamped: int = 0
    opacity_inf: int = 0
    first_bad_row: int = -1


class _Output:
    """The output arrays, allocated once for all declared rows, filled chunk by chunk and compacted in place."""

    def __init__(self, n: int, sh_rest_count: int):
        self.arrays: dict[str, np.ndarray] = {
            "means": np.empty((n, 3), np.float32),
            "quats": np.empty((n, 4), np.float32),
            "log_scales": np.empty((n, 3), np.float32),
            "opacity_logits": np.empty((n,), np.float32),
            "sh_dc": np.empty((n, 3), np.float32),
        }
        if sh_rest_count:
            self.arrays["sh_rest"] = np.empty((n, sh_rest_count, 3), np.float32)
        self.row_index = np.empty((n,), np.int64)
        self.n = n
        self.cursor = 0

    def finish(self) -> dict[str, np.ndarray | None]:
        kept = self.cursor
        result: dict[str, np.ndarray | None] = {"sh_rest": None}
        for name, array in self.arrays.items():
            view = array[:kept]
            # A view of the allocation is free; copy only when the dropped tail wastes real memory.
            result[name] = view.copy() if kept < 0.75 * self.n else view
        self.arrays = {}
        return result

    def finish_row_index(self) -> np.ndarray:
        kept = self.cursor
        return self.row_index[:kept].copy() if kept < 0.75 * self.n else self.row_index[:kept]


def _fill_chunk(out: _Output, records: np.ndarray, start: int, columns: dict[str, list[str]], counts: _Counts) -> None:
    """Copy one chunk of records into the outputs at the cursor, validate it and compact it in place."""
    m = int(records.shape[0])
    if m == 0:
        return
    w = out.cursor
    rows = slice(w, w + m)
    raw, index = _homogeneous_view(records)
    # Copy in blocks that stay in the CPU cache, so each file row is read from memory once, not once per output.
    for first in range(0, m, COPY_BLOCK_ROWS):
        last = min(m, first + COPY_BLOCK_ROWS)
        _copy_columns(out, w + first, w + last, records[first:last], None if raw is None else raw[first:last],
                      index, columns)

    arrays = {name: array[rows] for name, array in out.arrays.items()}
    quats = arrays["quats"]
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        # Squared quaternion norms in float32: non-finite exactly when a component is (or squares overflow,
        # re-checked below), so they stand in for the quaternion columns in the finiteness test.
        norm2 = _row_sum(quats, square=True)
    blocks = [arrays[name].reshape(m, -1) for name in ("means", "log_scales", "sh_dc", "sh_rest") if name in arrays]
    bad = _non_finite_rows(blocks, extra=norm2, extra_source=quats)
    opacity = arrays["opacity_logits"]
    bad |= np.isnan(opacity)
    counts.opacity_inf += int(np.count_nonzero(np.isinf(opacity) & ~bad))

    # Only rows whose norm is off 1 need work (all of them if the writer never normalized): exact norms in float64.
    with np.errstate(invalid="ignore"):
        off_unit = np.abs(norm2 - np.float32(1.0)) > 2 * QUAT_UNIT_TOLERANCE
    candidates = np.flatnonzero(off_unit & ~bad)
    zero = np.zeros(m, dtype=bool)
    if candidates.size:
        q64 = quats[candidates].astype(np.float64)
        norms = np.sqrt(np.einsum("ij,ij->i", q64, q64))
        is_zero = norms < QUAT_MIN_NORM
        zero[candidates[is_zero]] = True
        fix = ~is_zero & (np.abs(norms - 1.0) > QUAT_UNIT_TOLERANCE)  # float32 rounding can flag unit ones
        if fix.any():
            quats[candidates[fix]] = q64[fix] / norms[fix, None]

    log_scales = arrays["log_scales"]
    if log_scales.max() > MAX_ABS_LOG_SCALE or log_scales.min() < -MAX_ABS_LOG_SCALE:
        with np.errstate(invalid="ignore"):
            clamped = (np.abs(log_scales) > MAX_ABS_LOG_SCALE).any(axis=1) & ~bad
        np.clip(log_scales, -MAX_ABS_LOG_SCALE, MAX_ABS_LOG_SCALE, out=log_scales)
        counts.scale_clamped += int(np.count_nonzero(clamped))

    drop = bad | zero
    n_drop = int(np.count_nonzero(drop))
    if n_drop == 0:
        out.row_index[rows] = np.arange(start, start + m, dtype=np.int64)
        out.cursor = w + m
        return
    counts.non_finite += int(np.count_nonzero(bad))
    counts.zero_quat += int(np.count_nonzero(zero))
    keep = np.flatnonzero(~drop)
    if counts.first_bad_row < 0:
        counts.first_bad_row = start + int(np.flatnonzero(drop)[0])
    k = keep.size
    for array in arrays.values():
        array[:k] = array[keep]
    out.row_index[w:w + k] = keep + start
    out.cursor = w + k


def _copy_columns(out: _Output, lo: int, hi: int, records: np.ndarray, raw: np.ndarray | None,
                  index: dict[str, int], columns: dict[str, list[str]]) -> None:
    """Copy ``records`` (rows for outputs lo..hi) into every output array."""
    m = hi - lo
    for name, props in columns.items():
        target = out.arrays[name][lo:hi]
        dst = target.reshape(m, -1)
        if raw is not None and name == "sh_rest" and _copy_rest_block(target, raw, index):
            continue
        if raw is not None:
            idx = [index[p] for p in props]
            if idx == list(range(idx[0], idx[0] + len(idx))):
                dst[...] = raw[:, idx[0]:idx[0] + len(idx)]
            else:
                dst[...] = raw[:, idx]
        else:
            for j, prop in enumerate(props):
                dst[:, j] = records[prop]


def _copy_rest_block(dst: np.ndarray, raw: np.ndarray, index: dict[str, int]) -> bool:
    """Copy channel-major ``f_rest_*`` columns into ``dst`` (m, K, 3) with one strided copy, when the file stores
    f_rest_0..N-1 side by side (every INRIA-style writer does). Returns False when it does not."""
    file_k = sum(1 for name in index if name.startswith("f_rest_")) // 3
    first = index.get("f_rest_0")
    if first is None or any(index.get(f"f_rest_{i}") != first + i for i in range(3 * file_k)):
        return False
    k = dst.shape[1]
    block = raw[:, first:first + 3 * file_k].reshape(raw.shape[0], 3, file_k)
    dst[...] = block[:, :, :k].transpose(0, 2, 1)
    return True


def _row_sum(array: np.ndarray, square: bool = False) -> np.ndarray:
    """(m,) float32 sum over the columns of an (m, c) array (of squares), column by column: much faster than a
    reduction along a short axis."""
    total = array[:, 0] * array[:, 0] if square else array[:, 0].copy()
    for j in range(1, array.shape[1]):
        column = array[:, j]
        total += column * column if square else column
    return total


def _non_finite_rows(blocks: list[np.ndarray], extra: np.ndarray | None = None,
                     extra_source: np.ndarray | None = None) -> np.ndarray:
    """(m,) bool: rows with a NaN or inf in any of the (m, c) float32 ``blocks`` (or in ``extra_source``, whose
    row-wise summary ``extra`` (m,) is non-finite when the row is).

    A row sum is non-finite when any term is; a finite row can still overflow to inf (terms near 3e38), so rows
    the sum flags are checked again exactly.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        total = _row_sum(blocks[0])
        for block in blocks[1:]:
            total += _row_sum(block)
        if extra is not None:
            total += extra
    flagged = np.flatnonzero(~np.isfinite(total))
    bad = np.zeros(total.shape[0], dtype=bool)
    if flagged.size:
        exact = np.zeros(flagged.size, dtype=bool)
        for block in blocks + ([extra_source] if extra_source is not None else []):
            exact |= ~np.isfinite(block[flagged]).all(axis=1)
        bad[flagged] = exact
    return bad


def _homogeneous_view(records: np.ndarray) -> tuple[np.ndarray | None, dict[str, int]]:
    """(rows, P) plain view of a structured array whose fields share one dtype (the common case), else None."""
    fields = records.dtype.fields
    dtypes = {f[0] for f in fields.values()}
    if len(dtypes) != 1 or not records.flags.c_contiguous:
        return None, {}
    (dtype,) = dtypes
    names = records.dtype.names
    if records.dtype.itemsize != dtype.itemsize * len(names):
        return None, {}
    raw = records.view(dtype).reshape(records.shape[0], len(names))
    return raw, {name: i for i, name in enumerate(names)}


def _binary_body(path: Path, header: PlyHeader, vertex: PlyElement) -> tuple[int, np.dtype]:
    """(byte offset, row dtype) of the vertex element of a binary PLY, after checking the file holds all of it."""
    order = header.byte_order
    offset = header.body_offset
    for element in header.elements:
        if element is vertex:
            break
        if any(p.is_list for p in element.properties):
            raise InputError(path, f"element '{element.name}' with list properties comes before 'vertex'; this "
                                   "reader cannot skip it")
        offset += element.count * element.dtype(order).itemsize
    dtype = vertex.dtype(order)
    n = vertex.count
    size = path.stat().st_size
    available = size - offset
    if available < n * dtype.itemsize:
        complete = max(available, 0) // dtype.itemsize
        raise InputError(path, f"is truncated: the header declares {n} Gaussians ({n * dtype.itemsize} bytes) but "
                               f"only {max(available, 0)} bytes of data follow ({complete} complete rows)")
    return offset, dtype


def _binary_chunks(path: Path, offset: int, dtype: np.dtype, n: int):
    """Yield (first row, memory-mapped structured chunk) over the ``n`` rows at ``offset``."""
    rows_per_chunk = max(1, CHUNK_BYTES // dtype.itemsize)
    for start in range(0, n, rows_per_chunk):
        m = min(rows_per_chunk, n - start)
        try:
            chunk = np.memmap(path, dtype=dtype, mode="r", offset=offset + start * dtype.itemsize, shape=(m,))
        except (OSError, ValueError) as exc:  # e.g. the file shrank after its size was checked
            raise InputError(path, f"cannot map rows {start}..{start + m - 1} ({exc})") from None
        yield start, chunk
        # Last reference: unmapping now takes the chunk's pages out of this process's resident set.
        del chunk


def _ascii_chunks(path: Path, header: PlyHeader, vertex: PlyElement) -> list[tuple[int, np.ndarray]]:
    """One chunk (0, structured float64 array) holding the vertex element of an ASCII PLY, parsed now."""
    n = vertex.count
    props = len(vertex.properties)
    with open(path, "rb") as fh:
        fh.seek(header.body_offset)
        text = io.TextIOWrapper(fh, encoding="ascii", errors="replace", newline=None)
        skip = 0
        for element in header.elements:
            if element is vertex:
                break
            skip += element.count
        lines = itertools.islice(text, skip, skip + n)
        try:
            data = np.loadtxt(lines, dtype=np.float64, ndmin=2, comments=None)
        except ValueError as exc:
            raise InputError(path, f"malformed ASCII vertex data: {exc}") from None
    if data.shape[0] < n:
        raise InputError(path, f"is truncated: the header declares {n} Gaussians but the ASCII body has "
                               f"{data.shape[0]} vertex lines")
    if data.shape[1] != props:
        raise InputError(path, f"ASCII vertex lines have {data.shape[1]} values, the header declares {props} "
                               "properties")
    dtype = np.dtype([(p.name, "f8") for p in vertex.properties])
    return [(0, np.ascontiguousarray(data).view(dtype).reshape(n))]


# --------------------------------------------------------------------------------------------------------- writing


def layout_properties(format: str, sh_degree: int = 0) -> list[str]:
    """Property names, in file order, of a layout written by :func:`write_ply`.

    Args:
        format: "lyra2" (17 floats), "lyra1" (14 floats) or "inria" (normals + f_rest for ``sh_degree`` 1-3).
        sh_degree: SH degree of the rest coefficients (inria only).
    """
    if format == "lyra2":
        return list(LYRA2_PROPERTIES)
    if format == "lyra1":
        return list(LYRA1_PROPERTIES)
    if format == "inria":
        k = SH_REST_COUNTS.get(sh_degree, 0)
        if sh_degree and not k:
            raise ValueError(f"SH degree {sh_degree} not supported (0-3)")
        return [*POSITION, *NORMALS, *SH_DC, *(f"f_rest_{i}" for i in range(3 * k)), OPACITY, *SCALES, *ROTATION]
    raise ValueError(f"unknown PLY write format {format!r}; expected one of {WRITE_FORMATS}")


class PlyStreamWriter:
    """Write a splat PLY of ``n_total`` Gaussians chunk by chunk, atomically.

    The file appears at ``path`` only when exactly ``n_total`` rows were written and the writer closed without
    error; until then it lives in a temp file beside it (removed on failure)::

        with PlyStreamWriter("big.ply", n_total=11_000_000, format="lyra2") as writer:
            for chunk in chunks:        # GaussianScene objects
                writer.write(chunk)

    Args:
        path: destination file.
        n_total: number of Gaussians the header declares.
        format: "lyra2", "lyra1" or "inria".
        sh_degree: SH degree of the chunks (inria; rest coefficients of other formats are not written).
    """

    def __init__(self, path: str | Path, n_total: int, format: str = "lyra2", sh_degree: int = 0):
        self.path = Path(path)
        self.format = format
        self.sh_degree = sh_degree if format == "inria" else 0
        self.properties = layout_properties(format, self.sh_degree)
        self.n_total = int(n_total)
        self.written = 0
        parent = self.path.parent
        if not parent.is_dir():
            raise OutputError(self.path, f"parent directory {parent} does not exist")
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=parent)
        except OSError as exc:
            raise OutputError(self.path, f"cannot create a file here: {exc.strerror}") from None
        self._tmp = Path(tmp)
        self._fh = os.fdopen(fd, "wb")
        header = ["ply", "format binary_little_endian 1.0", f"element vertex {self.n_total}"]
        header += [f"property float {name}" for name in self.properties]
        header.append("end_header\n")
        self._write(("\n".join(header)).encode("ascii"))

    def write(self, chunk: GaussianScene) -> None:
        """Append the rows of ``chunk`` (values written as they are: no validation, no normalization)."""
        m = len(chunk)
        if self.written + m > self.n_total:
            self.abort()
            raise OutputError(self.path, f"more rows written ({self.written + m}) than declared ({self.n_total})")
        if self.format == "inria" and chunk.sh_degree != self.sh_degree:
            self.abort()
            raise ValueError(f"chunk has SH degree {chunk.sh_degree}, the writer was opened for {self.sh_degree}")
        for first in range(0, m, WRITE_CHUNK_ROWS):
            last = min(m, first + WRITE_CHUNK_ROWS)
            self._write(_serialize(chunk, first, last, self.format, self.sh_degree).tobytes())
        self.written += m

    def close(self) -> Path:
        """Finish the file: check the row count and move it into place. Returns the path written."""
        if self._fh is None:
            return self.path
        if self.written != self.n_total:
            self.abort()
            raise OutputError(self.path, f"only {self.written} of the {self.n_total} declared rows were written")
        try:
            self._fh.close()
            self._fh = None
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self.abort()
            raise OutputError(self.path, f"cannot write: {exc.strerror}") from None
        logger.debug("wrote %s: %s layout, %d Gaussians", self.path, self.format, self.n_total)
        return self.path

    def abort(self) -> None:
        """Discard the partial file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._tmp.unlink(missing_ok=True)

    def _write(self, data: bytes) -> None:
        try:
            self._fh.write(data)
        except OSError as exc:
            self.abort()
            raise OutputError(self.path, f"cannot write: {exc.strerror}") from None

    def __del__(self) -> None:
        # Never leave a temp file behind when a writer is dropped without close() (e.g. an exception in user code).
        if getattr(self, "_fh", None) is not None:
            self.abort()

    def __enter__(self) -> PlyStreamWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _serialize(scene: GaussianScene, first: int, last: int, format: str, sh_degree: int) -> np.ndarray:
    """(rows, P) little-endian float32 block of scene rows first..last in the layout of ``format``."""
    m = last - first
    rows = slice(first, last)
    k = SH_REST_COUNTS.get(sh_degree, 0)
    normals = 3 if format in ("lyra2", "inria") else 0
    width = 14 + normals + 3 * k
    block = np.zeros((m, width), dtype="<f4")
    block[:, 0:3] = scene.means[rows]
    col = 3 + normals
    block[:, col:col + 3] = scene.sh_dc[rows]
    col += 3
    if k:
        # channel-major: f_rest_{c*K + j} = sh_rest[:, j, c]
        block[:, col:col + 3 * k] = scene.sh_rest[rows].transpose(0, 2, 1).reshape(m, 3 * k)
        col += 3 * k
    block[:, col] = scene.opacity_logits[rows]
    block[:, col + 1:col + 4] = scene.log_scales[rows]
    block[:, col + 4:col + 8] = scene.quats[rows]
    return block


def write_ply(path: str | Path, scene: GaussianScene, format: str = "lyra2") -> Path:
    """Write ``scene`` as a splat PLY in a byte-exact layout, atomically (temp file + ``os.replace``).

    Args:
        path: destination ``.ply``.
        scene: the Gaussians; values are written as they are (float32, no normalization).
        format: "lyra2" (17 floats, zero normals, DC only), "lyra1" (14 floats) or "inria" (zero normals, then
            ``f_rest_*`` channel-major when ``scene.sh_rest`` is set). Lyra layouts cannot hold higher SH bands;
            they are dropped with a warning.

    Returns:
        The path written.

    Raises:
        OutputError: the directory does not exist or the file cannot be written (nothing is left behind).
    """
    if format not in WRITE_FORMATS:
        raise ValueError(f"unknown PLY write format {format!r}; expected one of {WRITE_FORMATS}")
    if format != "inria" and scene.sh_rest is not None:
        logger.warning("writing %s as %s: dropping SH degree %d rest coefficients (layout holds DC only)",
                       Path(path).name, format, scene.sh_degree)
    with PlyStreamWriter(path, len(scene), format, scene.sh_degree) as writer:
        writer.write(scene)
    return writer.path
