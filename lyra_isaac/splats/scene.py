"""The in-memory splat scene: :class:`GaussianScene`.

Conventions (identical to the 3DGS PLY family and Lyra's writer):

- ``means``: (N, 3) float32, scene units, in the scene's frame (Lyra: OpenCV axes of the first camera).
- ``quats``: (N, 4) float32, rotation quaternion **w, x, y, z** (PLY ``rot_0..3``); not necessarily unit in a file,
  unit after :func:`lyra_isaac.splats.ply.read_ply` (which normalizes and drops zero ones).
- ``log_scales``: (N, 3) float32, natural log of the per-axis standard deviation (PLY ``scale_0..2``).
- ``opacity_logits``: (N,) float32, logit of opacity (PLY ``opacity``); sigmoid gives opacity in [0, 1].
- ``sh_dc``: (N, 3) float32, degree-0 SH coefficients (PLY ``f_dc_0..2``); colour = 0.5 + SH_C0 * sh_dc.
- ``sh_rest``: (N, K, 3) float32 or None, higher SH bands, K = (degree + 1)^2 - 1, coefficient-major with RGB last
  (the PLY stores them channel-major: ``f_rest_0..K-1`` are R, the next K are G, then B).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

SH_C0 = 0.28209479177387814
"""Degree-0 real spherical-harmonic constant: colour = 0.5 + SH_C0 * f_dc."""

SH_REST_COUNTS = {1: 3, 2: 8, 3: 15}
"""Number of rest coefficients per channel for SH degrees 1-3."""

FORMATS = ("lyra2", "lyra1", "inria", "generic", "compressed")
"""Detected source formats: Lyra 2.0 (17 floats), Lyra 1.0 (14 floats), INRIA 3DGS (f_rest_*), any other order,
PlayCanvas/SuperSplat compressed PLY (quantized)."""


@dataclass
class ReadReport:
    """What a reader found and dropped. Counts are Gaussians (rows)."""

    rows_in_file: int = 0
    non_finite_dropped: int = 0
    zero_quaternion_dropped: int = 0
    scale_clamped: int = 0
    opacity_inf: int = 0
    """Rows whose opacity logit was +-inf (kept: +-inf is a valid saturated opacity in Lyra's writer)."""

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class GaussianScene:
    """A set of 3D Gaussians with their source metadata. See the module docstring for array conventions."""

    means: np.ndarray
    quats: np.ndarray
    log_scales: np.ndarray
    opacity_logits: np.ndarray
    sh_dc: np.ndarray
    sh_rest: np.ndarray | None = None
    source_format: str = "generic"
    source_path: Path | None = None
    frame: str = "source"
    """Name of the frame the arrays live in: "source" (as in the file) or "world" (Z up, metres, floor at 0)."""
    read_report: ReadReport = field(default_factory=ReadReport)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        expected = {
            "means": (self.means, (n, 3)),
            "quats": (self.quats, (n, 4)),
            "log_scales": (self.log_scales, (n, 3)),
            "opacity_logits": (self.opacity_logits, (n,)),
            "sh_dc": (self.sh_dc, (n, 3)),
        }
        for name, (array, shape) in expected.items():
            if array.shape != shape:
                raise ValueError(f"GaussianScene.{name} has shape {array.shape}, expected {shape}")
        if self.sh_rest is not None and (self.sh_rest.ndim != 3 or self.sh_rest.shape[0] != n
                                         or self.sh_rest.shape[2] != 3
                                         or self.sh_rest.shape[1] not in SH_REST_COUNTS.values()):
            raise ValueError(f"GaussianScene.sh_rest has shape {self.sh_rest.shape}, expected (N, 3|8|15, 3)")

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int:
        """Spherical-harmonic degree: 0 when only DC is stored."""
        if self.sh_rest is None:
            return 0
        return {v: k for k, v in SH_REST_COUNTS.items()}[self.sh_rest.shape[1]]

    def colors(self) -> np.ndarray:
        """(N, 3) float32 base RGB in [0, 1] from the DC band (view-independent colour)."""
        return np.clip(0.5 + SH_C0 * self.sh_dc, 0.0, 1.0).astype(np.float32)

    def opacities(self) -> np.ndarray:
        """(N,) float32 opacity in [0, 1] (sigmoid of the logits; +-inf maps to 1/0)."""
        with np.errstate(over="ignore"):
            return (1.0 / (1.0 + np.exp(-self.opacity_logits.astype(np.float32)))).astype(np.float32)

    def scales(self) -> np.ndarray:
        """(N, 3) float32 per-axis standard deviation in scene units (exp of log_scales)."""
        with np.errstate(over="ignore"):
            return np.exp(self.log_scales).astype(np.float32)

    def bounds(self) -> np.ndarray:
        """(2, 3) float64 axis-aligned min and max of the means (NaN-free input assumed)."""
        if len(self) == 0:
            return np.zeros((2, 3))
        return np.stack([self.means.min(axis=0), self.means.max(axis=0)]).astype(np.float64)

    def subset(self, keep: np.ndarray | slice) -> GaussianScene:
        """A new scene with the rows selected by ``keep`` ((N,) bool mask, integer indices or a slice).

        Per-row metadata in ``extra`` (``row_index``: the file row of each Gaussian) is selected with the rows.

        When ``keep`` selects every row in order (an all-True mask, ``arange(N)``, ``slice(None)``) nothing is copied:
        the result holds the same arrays as this scene (a fresh 11M-row copy of every array costs seconds), so it
        shares memory with it; callers must not modify either scene's arrays in place.
        """
        n = len(self)
        if isinstance(keep, slice) and keep.indices(n) == (0, n, 1):
            return replace(self, extra=dict(self.extra))
        keep = np.arange(n)[keep] if isinstance(keep, slice) else np.asarray(keep)
        if keep.dtype == bool:
            if keep.shape != (n,):
                raise IndexError(f"boolean mask of shape {keep.shape} for a scene of {n} Gaussians")
            if keep.all():
                return replace(self, extra=dict(self.extra))
            keep = np.flatnonzero(keep)  # take() with indices: ~3x faster than boolean indexing of each array
        elif _is_identity(keep, n):
            return replace(self, extra=dict(self.extra))

        extra = dict(self.extra)
        row_index = extra.get("row_index")
        names = ["means", "quats", "log_scales", "opacity_logits", "sh_dc"]
        names += ["sh_rest"] if self.sh_rest is not None else []
        arrays = [getattr(self, name) for name in names]
        has_rows = isinstance(row_index, np.ndarray) and row_index.shape == (n,)
        taken = take_rows([*arrays, row_index] if has_rows else arrays, keep)
        if has_rows:
            extra["row_index"] = taken.pop()
        fields = dict(zip(names, taken, strict=True))
        fields.setdefault("sh_rest", None)
        return replace(self, **fields, extra=extra)

    def transformed(self, matrix: np.ndarray, frame: str | None = None) -> GaussianScene:
        """Apply a similarity transform ``p' = M @ [p, 1]`` (rotation * uniform scale + translation).

        Means are transformed, quaternions are rotated (left-multiplied by the rotation), log-scales shift by
        log(scale). Higher SH bands are **not** rotated (their view dependence is carried over unchanged; exact SH
        rotation is left for later and is invisible for the DC-only Lyra scenes).

        Args:
            matrix: (4, 4) similarity transform; its 3x3 block must be s * R with R a rotation, s > 0.
            frame: name of the resulting frame (default: keep the current name).
        """
        matrix = np.asarray(matrix, dtype=np.float64)
        linear = matrix[:3, :3]
        scale = float(np.cbrt(np.linalg.det(linear)))
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"transform has non-positive determinant (scale {scale})")
        rotation = linear / scale
        if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-5):
            raise ValueError("transform is not a similarity (rotation * uniform scale + translation)")
        means = _transform_points_float32(self.means, linear, matrix[:3, 3])
        # q' = r * q for every q is one (N, 4) x (4, 4) product (BLAS), not 16 strided element-wise passes
        left = quat_left_matrix(rotation_matrix_to_quat(rotation)).astype(np.float32)
        quats = np.ascontiguousarray(self.quats, dtype=np.float32) @ left.T
        return replace(
            self,
            means=means,
            quats=quats,
            log_scales=np.asarray(self.log_scales, dtype=np.float32) + np.float32(np.log(scale)),
            frame=self.frame if frame is None else frame,
            extra=dict(self.extra),
        )


TRANSFORM_CHUNK_ROWS = 1 << 20
"""Rows of means transformed per float64 block (:func:`_transform_points_float32`)."""


def _transform_points_float32(points: np.ndarray, linear: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """(N, 3) float32 ``points @ linear.T + offset``, computed in float64 block by block.

    The result is that of one float64 pass over all rows, but the float64 temporaries are a block's (24 MB) and
    reused, not four fresh (N, 3) arrays (270 MB each at Lyra size): peak RSS of loading, cleaning and both
    transforms of an 11M-Gaussian scene 3.21 -> 3.07 GB on A.
    """
    points = np.asarray(points)
    out = np.empty((len(points), 3), dtype=np.float32)
    block = np.empty((min(TRANSFORM_CHUNK_ROWS, len(points)), 3), dtype=np.float64)
    for start in range(0, len(points), TRANSFORM_CHUNK_ROWS):
        part = points[start:start + TRANSFORM_CHUNK_ROWS]
        rows = block[: len(part)]
        np.matmul(part.astype(np.float64), linear.T, out=rows)
        rows += offset
        out[start:start + len(part)] = rows
    return out


FLAT_RATIO = 0.3
"""A Gaussian is flat (a disc) when its smallest sigma is under this fraction of its middle one."""


def flat_rows(log_scales: np.ndarray) -> np.ndarray:
    """(N,) bool: which Gaussians are flat (discs): the smallest of each row's three log sigmas ((N, 3), any float
    dtype, computed in it) lies ``log(FLAT_RATIO)`` below the middle one; NaN rows are not. Column by column, so
    without sorting a copy of every row."""
    a, b, c = (log_scales[:, k] for k in range(3))
    low = np.minimum(np.minimum(a, b), c)
    middle = np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
    with np.errstate(invalid="ignore"):
        return low < middle + log_scales.dtype.type(np.log(FLAT_RATIO))


PARALLEL_TAKE_ROWS = 1_000_000
"""From this many rows kept, :func:`take_rows` selects the arrays on parallel threads."""


def take_rows(arrays: list[np.ndarray], keep: np.ndarray) -> list[np.ndarray]:
    """``[a.take(keep, axis=0) for a in arrays]``: the rows ``keep`` ((M,) int64 indices) of arrays of one length.

    From ``PARALLEL_TAKE_ROWS`` rows, with more than one thread (:func:`~lyra_isaac.threads.cpu_threads`), the arrays
    are taken on a pool of threads: ``take`` releases the GIL, and at Lyra size much of its cost is the first touch
    of the new arrays' memory, which the kernel serves on every core at once. The clean stage's two 11M-row subsets
    on A (2 cores), fresh processes: clean 1.27-1.31 s serial, 1.16-1.20 s threaded (serial runs right after other
    large jobs took up to 4.5 s).
    """
    from ..threads import cpu_threads

    threads = min(cpu_threads(), len(arrays))
    if len(keep) < PARALLEL_TAKE_ROWS or threads < 2:
        return [a.take(keep, axis=0) for a in arrays]
    from concurrent.futures import ThreadPoolExecutor

    order = sorted(range(len(arrays)), key=lambda i: -arrays[i].nbytes)  # the largest first
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="take-rows") as pool:
        futures = {i: pool.submit(arrays[i].take, keep, 0) for i in order}
        return [futures[i].result() for i in range(len(arrays))]


def _is_identity(indices: np.ndarray, n: int, chunk: int = 1 << 20) -> bool:
    """Whether (M,) integer ``indices`` are exactly ``0, 1, ..., n - 1`` (compared in chunks: no (n,) temporary)."""
    if indices.shape != (n,) or not np.issubdtype(indices.dtype, np.integer):
        return False
    ramp = np.arange(min(chunk, n), dtype=np.int64)
    for start in range(0, n, chunk):
        part = indices[start:start + chunk].astype(np.int64, copy=False)
        if not np.array_equal(part - start, ramp[: len(part)]):
            return False
    return True


def quat_left_matrix(a: np.ndarray) -> np.ndarray:
    """(4, 4) matrix L of the wxyz quaternion ``a`` with ``L @ b == quat_multiply(a, b)`` for any b."""
    w, x, y, z = np.asarray(a, dtype=np.float64).reshape(4)
    return np.array([[w, -x, -y, -z], [x, w, -z, y], [y, z, w, -x], [z, -y, x, w]])


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (..., 4) wxyz quaternions, broadcasting."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_to_rotation_matrix(quats: np.ndarray) -> np.ndarray:
    """(N, 4) wxyz quaternions (normalized here) -> (N, 3, 3) rotation matrices."""
    q = quats / np.linalg.norm(quats, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    ).reshape(q.shape[:-1] + (3, 3))


def rotation_matrix_to_quat(matrix: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix -> (4,) wxyz unit quaternion with w >= 0."""
    m = np.asarray(matrix, dtype=np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q
