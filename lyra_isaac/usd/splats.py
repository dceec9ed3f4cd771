"""Gaussian splats as ``UsdVol.ParticleField3DGaussianSplat`` (usd-core >= 26.3): write a layer, read it back.

The schema stores *activated* values, unlike the 3DGS PLY family (``schema.usda`` of usdVol):

==================================  ===============  ==============================================================
attribute                           USD type         from :class:`~lyra_isaac.splats.scene.GaussianScene`
==================================  ===============  ==============================================================
``positions``                       ``point3f[]``    ``means`` (metres, in the prim's local frame)
``orientations``                    ``quatf[]``      ``quats`` normalized; Vt/Gf quaternions are stored x, y, z, w
``scales``                          ``float3[]``     ``exp(log_scales)``: linear per-axis standard deviation
``opacities``                       ``float[]``      ``sigmoid(opacity_logits)`` in [0, 1]
``radiance:sphericalHarmonicsDegree``  ``uniform int``  0 (DC only) .. 3
``radiance:sphericalHarmonicsCoefficients``  ``float3[]``  per particle ``(degree + 1)^2`` RGB coefficients: DC then the
                                                     rest bands in the usual 3DGS order (raw SH, not colours);
                                                     metadata ``interpolation = "vertex"``,
                                                     ``elementSize = (degree + 1)^2`` as NVIDIA's validator expects
``primvars:displayColor``           ``color3f[]``    ``0.5 + SH_C0 * sh_dc`` clipped to [0, 1], ``vertex`` interpolation
==================================  ===============  ==============================================================

The float (not half) variants are written because the schema says consumers should prefer them. Every array goes
from numpy to Vt with ``FromNumpy`` (one memcpy) and back with ``np.asarray`` (no copy): no per-splat Python.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError
from ..splats.scene import SH_REST_COUNTS, GaussianScene

logger = logging.getLogger(__name__)

SPLATS_ROOT_PRIM = "/Splats"
"""The root (default) prim of a standalone splats layer; referenced/payloaded as ``/World/Splats``."""
WORLD_SPLATS_PRIM = "/World/Splats"
"""Where a world stage holds its splats."""
EXTENT_SIGMAS = 3.0
"""Extent padding: each splat is bounded by its centre +- this many standard deviations (largest axis)."""
CHUNK = 1 << 16
"""Rows converted at once by the per-splat array conversions (temporaries stay in cache)."""


def _pxr():
    from pxr import Sdf, Usd, UsdGeom, UsdVol, Vt

    return Sdf, Usd, UsdGeom, UsdVol, Vt


def orientations_xyzw(quats: np.ndarray) -> np.ndarray:
    """(N, 4) wxyz quaternions -> (N, 4) float32 unit quaternions in Gf memory order x, y, z, w (zero -> identity).

    Works through CHUNK rows at a time with column arithmetic (the norm summed w, x, y, z in order, as
    ``np.linalg.norm`` does), so temporaries stay in cache: 0.39 -> 0.14 s at 11M splats, bit-identical.
    """
    quats = np.asarray(quats, dtype=np.float32)
    xyzw = np.empty(quats.shape, dtype=np.float32)
    norm = np.empty(min(len(quats), CHUNK), dtype=np.float32)
    square = np.empty_like(norm)
    for start in range(0, len(quats), CHUNK):
        q, out = quats[start:start + CHUNK], xyzw[start:start + CHUNK]
        n, sq = norm[:len(q)], square[:len(q)]
        np.multiply(q[:, 0], q[:, 0], out=n)
        for k in (1, 2, 3):
            np.multiply(q[:, k], q[:, k], out=sq)
            n += sq
        np.sqrt(n, out=n)
        zero = n == 0
        n[zero] = 1.0
        out[:, :3] = q[:, 1:]
        out[:, 3] = q[:, 0]
        out /= n[:, None]
        out[zero] = (0.0, 0.0, 0.0, 1.0)
    return xyzw


def sh_coefficients(scene: GaussianScene) -> np.ndarray:
    """(N * (degree + 1)^2, 3) float32: per splat the DC coefficient then the rest bands (schema order)."""
    n, degree = len(scene), scene.sh_degree
    if degree == 0:
        return np.ascontiguousarray(scene.sh_dc, dtype=np.float32)
    coeffs = np.empty((n, (degree + 1) ** 2, 3), dtype=np.float32)
    coeffs[:, 0] = scene.sh_dc
    coeffs[:, 1:] = scene.sh_rest
    return coeffs.reshape(-1, 3)


def splat_extent(positions: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """(2, 3) float32 bounds of (N, 3) centres padded by EXTENT_SIGMAS times each splat's largest linear scale.

    Both (N, 3) float32; non-finite pads count as 0. CHUNK rows at a time, one axis at a time (a reduction over
    the 3-wide axis of an (N, 3) array is slow in numpy): 1.1 -> 0.1 s at 11M splats, bit-identical.
    """
    if len(positions) == 0:
        return np.zeros((2, 3), dtype=np.float32)
    positions = np.asarray(positions, dtype=np.float32)
    scales = np.asarray(scales, dtype=np.float32)
    low = np.full(3, np.inf, dtype=np.float32)
    high = np.full(3, -np.inf, dtype=np.float32)
    padded = np.empty(min(len(positions), CHUNK), dtype=np.float32)
    for start in range(0, len(positions), CHUNK):
        s, p = scales[start:start + CHUNK], positions[start:start + CHUNK]
        pad = np.maximum(s[:, 0], s[:, 1])
        np.maximum(pad, s[:, 2], out=pad)
        pad *= np.float32(EXTENT_SIGMAS)
        pad[~np.isfinite(pad)] = 0.0
        out = padded[:len(p)]
        for k in range(3):
            np.subtract(p[:, k], pad, out=out)
            low[k] = np.minimum(low[k], out.min())
            np.add(p[:, k], pad, out=out)
            high[k] = np.maximum(high[k], out.max())
    return np.stack([low, high])


def author_splats(prim, scene: GaussianScene, *, display_color: bool = True) -> None:
    """Author ``scene`` on ``prim`` (a ``UsdVol.ParticleField3DGaussianSplat``); arrays in the prim's local frame.

    Attributes are converted and handed to USD one at a time, so peak memory stays near the input plus the
    largest single array (SH coefficients for degree 3).
    """
    _, _, UsdGeom, UsdVol, Vt = _pxr()
    field = UsdVol.ParticleField3DGaussianSplat(prim)
    positions = np.ascontiguousarray(scene.means, dtype=np.float32)
    field.CreatePositionsAttr(Vt.Vec3fArray.FromNumpy(positions))
    field.CreateOrientationsAttr(Vt.QuatfArray.FromNumpy(orientations_xyzw(scene.quats)))
    scales = scene.scales()
    field.CreateScalesAttr(Vt.Vec3fArray.FromNumpy(scales))
    field.CreateExtentAttr(Vt.Vec3fArray.FromNumpy(splat_extent(positions, scales)))
    del scales
    field.CreateOpacitiesAttr(Vt.FloatArray.FromNumpy(scene.opacities()))
    field.CreateRadianceSphericalHarmonicsDegreeAttr(int(scene.sh_degree))
    sh = field.CreateRadianceSphericalHarmonicsCoefficientsAttr(Vt.Vec3fArray.FromNumpy(sh_coefficients(scene)))
    # Primvar-style metadata: (degree + 1)^2 coefficients per particle. NVIDIA's omni_asset_validate
    # (GaussianSplatSchemaChecker, VG.035) and Omniverse consumers read the stride from it.
    sh.SetMetadata("interpolation", UsdGeom.Tokens.vertex)
    sh.SetMetadata("elementSize", (int(scene.sh_degree) + 1) ** 2)
    if display_color:
        primvar = UsdGeom.PrimvarsAPI(prim).CreatePrimvar("displayColor", _color3f_array_type(),
                                                          UsdGeom.Tokens.vertex)
        primvar.Set(Vt.Vec3fArray.FromNumpy(scene.colors()))


def _color3f_array_type():
    from pxr import Sdf

    return Sdf.ValueTypeNames.Color3fArray


def write_splats_layer(scene: GaussianScene, path: str | Path, *, display_color: bool = True) -> Path:
    """Write ``scene`` as a standalone USD layer whose default prim ``/Splats`` is a ParticleField3DGaussianSplat.

    The layer is written to a temporary name beside ``path`` and renamed into place, so a failure never leaves a
    half-written ``path``. Stage metadata: ``upAxis = Z``, ``metersPerUnit = 1`` (the scene must already be in
    the world frame, metres).

    Args:
        scene: Gaussians, (N, ...) arrays as documented in :mod:`lyra_isaac.splats.scene`; any frame name, but
            the arrays are written as they are.
        path: target file (``.usdc`` recommended: binary crate, ~68 bytes per DC-only splat with displayColor).
        display_color: also write ``primvars:displayColor`` for renderers without splat support.

    Returns:
        ``path`` as a Path.

    Raises:
        OutputError: the directory is missing or not writable, or USD fails to save.
    """
    Sdf, Usd, UsdGeom, UsdVol, _ = _pxr()
    path = Path(path)
    if not path.parent.is_dir():
        raise OutputError(path, "output directory does not exist")
    if not os.access(path.parent, os.W_OK):
        raise OutputError(path, "output directory is not writable")
    temp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        stage = Usd.Stage.CreateNew(str(temp))
        if stage is None:
            raise OutputError(path, "USD could not create the layer")
        UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
        UsdGeom.SetStageMetersPerUnit(stage, 1.0)
        field = UsdVol.ParticleField3DGaussianSplat.Define(stage, SPLATS_ROOT_PRIM)
        stage.SetDefaultPrim(field.GetPrim())
        author_splats(field.GetPrim(), scene, display_color=display_color)
        stage.GetRootLayer().Save()
        del stage
        os.replace(temp, path)
    except OutputError:
        temp.unlink(missing_ok=True)
        raise
    except Exception as exc:  # pxr raises Tf.ErrorException and friends
        temp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(path, f"cannot write splats layer: {exc.strerror or exc}") from None
        raise OutputError(path, f"cannot write splats layer: {exc}") from None
    logger.info("wrote %d splats (SH degree %d) to %s", len(scene), scene.sh_degree, path)
    return path


def read_splats(stage_or_path, prim_path: str | None = None, *, world_frame: bool = True) -> GaussianScene:
    """Read a ParticleField3DGaussianSplat back into a :class:`GaussianScene`.

    Args:
        stage_or_path: a ``Usd.Stage`` or a path to a layer (a world stage or a standalone splats layer).
        prim_path: the splat prim; default ``/World/Splats`` if present, else the default prim.
        world_frame: apply the prim's local-to-world transform (a similarity) so the result is in the stage's
            world frame; otherwise return the arrays as authored.

    Returns:
        GaussianScene with ``means`` (N, 3) float32, ``quats`` (N, 4) wxyz, ``log_scales = log(scales)``,
        ``opacity_logits = logit(opacities)`` (+-inf for opacities of exactly 1/0), ``sh_dc`` and ``sh_rest``,
        ``frame = "world"`` (or ``"local"``).

    Raises:
        InputError: the file cannot be opened, the prim is missing or not a splat field, or arrays disagree in length.
    """
    Sdf, Usd, UsdGeom, UsdVol, _ = _pxr()
    if isinstance(stage_or_path, Usd.Stage):
        stage, source = stage_or_path, Path(stage_or_path.GetRootLayer().realPath or "<memory>")
    else:
        source = Path(stage_or_path)
        if not source.is_file():
            raise InputError(source, "USD file not found")
        try:
            stage = Usd.Stage.Open(str(source), Usd.Stage.LoadAll)
        except Exception as exc:
            raise InputError(source, f"cannot open USD stage: {exc}") from None
    if prim_path is None:
        prim = stage.GetPrimAtPath(WORLD_SPLATS_PRIM)
        if not prim.IsValid():
            prim = stage.GetDefaultPrim()
    else:
        prim = stage.GetPrimAtPath(prim_path)
    if not prim or not prim.IsValid():
        raise InputError(source, f"no splat prim at {prim_path or WORLD_SPLATS_PRIM} (and no default prim)")
    if not prim.IsLoaded():
        stage.Load(prim.GetPath())  # a stage opened with LoadNone: bring the splats payload in
    if not prim.IsA(UsdVol.ParticleField3DGaussianSplat):
        raise InputError(source, f"{prim.GetPath()} is a {prim.GetTypeName() or 'typeless prim'}, "
                                 "not a ParticleField3DGaussianSplat")
    field = UsdVol.ParticleField3DGaussianSplat(prim)

    def get(attr, dtype, width):
        # Copy out of the Vt array at once: a crate layer hands out arrays that map its file, and USD copies
        # ("detaches") every such array still alive when the layer closes, which costs more than this copy.
        value = attr.Get()
        if value is None:
            return None
        array = np.array(value, dtype=dtype, copy=True)
        del value
        return array.reshape(-1, width) if width else array.reshape(-1)

    positions = get(field.GetPositionsAttr(), np.float32, 3)
    if positions is None:
        raise InputError(source, f"{prim.GetPath()} has no positions")
    n = len(positions)
    xyzw = get(field.GetOrientationsAttr(), np.float32, 4)
    scales = get(field.GetScalesAttr(), np.float32, 3)
    opacities = get(field.GetOpacitiesAttr(), np.float32, 0)
    degree = field.GetRadianceSphericalHarmonicsDegreeAttr().Get()
    coeffs = get(field.GetRadianceSphericalHarmonicsCoefficientsAttr(), np.float32, 3)
    per = (int(degree) + 1) ** 2
    if degree not in (0, *SH_REST_COUNTS):
        raise InputError(source, f"{prim.GetPath()} has unsupported SH degree {degree}")
    for name, array, want in (("orientations", xyzw, n), ("scales", scales, n), ("opacities", opacities, n),
                              ("sphericalHarmonicsCoefficients", coeffs, n * per)):
        if array is None or len(array) != want:
            got = "none" if array is None else len(array)
            raise InputError(source, f"{prim.GetPath()}.{name} has {got} entries, expected {want}")
    quats = np.concatenate([xyzw[:, 3:4], xyzw[:, :3]], axis=1)
    with np.errstate(divide="ignore"):
        log_scales = np.log(scales).astype(np.float32)
        opacities64 = opacities.astype(np.float64)
        logits = (np.log(opacities64) - np.log1p(-opacities64)).astype(np.float32)
    coeffs = coeffs.reshape(n, per, 3)
    scene = GaussianScene(
        means=positions,
        quats=quats.astype(np.float32),
        log_scales=log_scales,
        opacity_logits=logits,
        sh_dc=coeffs[:, 0].copy(),
        sh_rest=coeffs[:, 1:] if per > 1 else None,  # a view: no second copy of the largest array
        source_format="usd",
        source_path=source,
        frame="local",
    )
    if world_frame:
        matrix = np.asarray(UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(Usd.TimeCode.Default()),
                            dtype=np.float64).T  # Gf matrices are row-vector: transpose to p' = M @ p
        if not np.allclose(matrix, np.eye(4)):
            scene = scene.transformed(matrix, frame="world")
        else:
            scene.frame = "world"
    return scene

