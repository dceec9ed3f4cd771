"""What is in a splat scene: :func:`inspect_scene` (the library call behind ``lyra-isaac inspect``).

The summary is a plain JSON-able dict; :func:`format_summary` renders it as the CLI's table.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from .cameras import CameraPath, find_cameras, load_cameras
from .ply import read_ply, resolve_scene_path
from .scene import GaussianScene

logger = logging.getLogger(__name__)

PERCENTILES = (1.0, 50.0, 99.0)
"""Percentiles reported for opacity, scale and position."""

LOW_OPACITY = 0.05
"""Opacity below which a Gaussian is reported as nearly transparent (the cleaning stage's usual geometry cut)."""

STATS_SAMPLE = 2_000_000
"""Percentiles and fractions are computed on every k-th row so that at most this many rows are used (exact for
smaller scenes; the rows of a Lyra file are pixels, so this is a regular pixel-grid sample of every view)."""

COVERAGE_SAMPLES = 20_000
"""Gaussians sampled (fixed seed) to measure how much of the scene the cameras see."""

COVERAGE_CAMERAS = 64
"""Cameras (evenly spaced along the path) used for the coverage figure."""

LOW_COVERAGE = 0.2
"""Below this fraction of Gaussians seen by any camera, the camera file probably belongs to another scene or frame."""


def inspect_scene(path: str | Path, cameras: str | Path | None = None, strict: bool = False,
                  views: str = "render") -> dict[str, Any]:
    """Read a splat scene (and optionally its cameras) and summarize it.

    Args:
        path: a splat PLY, or a Lyra output folder (its ``reconstructed_scene.ply``).
        cameras: None (no cameras), ``"auto"`` (``cameras.npz`` beside the PLY, if present) or a camera file.
        strict: refuse rows the reader would drop (see :func:`lyra_isaac.splats.ply.read_ply`).
        views: which cameras of the file to summarize: "render" (the trajectory), "da3" or "vipe" (Lyra 2.0; see
            :func:`lyra_isaac.splats.cameras.load_cameras`).

    Returns:
        dict with: ``path``, ``file_bytes``, ``format`` (lyra2 / lyra1 / inria / generic), ``encoding`` (PLY body
        format), ``gaussians_in_file``, ``gaussians_kept``, ``dropped_non_finite``, ``dropped_zero_quaternion``,
        ``scale_clamped``, ``opacity_inf``, ``sh_degree``, ``ignored_properties``, ``bounds`` ([min, max], scene
        units, source frame), ``bounds_p1_p99`` (the same between the 1st and 99th percentile per axis, robust to
        floaters and sky), ``opacity`` (sigmoid; p1 / p50 / p99 and ``fraction_below_0.05``), ``scale`` (largest
        per-axis standard deviation, exp of the log-scales, scene units; p1 / p50 / p99), ``stats_sample_step``
        (percentiles use every k-th row, see ``STATS_SAMPLE``), ``read_seconds``, and
        ``cameras``: None, or ``path``, ``count``, ``width``, ``height``, ``path_length`` (scene units),
        ``pose_key``, ``intrinsics_key``, ``image_size_from``, ``available_views``, ``gaussians_seen_fraction``
        (:func:`camera_coverage`; below ``LOW_COVERAGE`` a warning is logged) and, for Lyra 2.0 files,
        ``da3_views`` (views whose pixels became the Gaussians) and ``gaussians_per_da3_view`` (rows in the file /
        views).

    Raises:
        InputError: the PLY or the camera file is unusable (the message names the file and the fault).
    """
    ply_path = resolve_scene_path(path)
    started = time.perf_counter()
    scene = read_ply(ply_path, strict=strict)
    read_seconds = time.perf_counter() - started
    report = scene.read_report
    summary: dict[str, Any] = {
        "path": str(ply_path),
        "file_bytes": ply_path.stat().st_size,
        "format": scene.source_format,
        "encoding": scene.extra.get("ply", {}).get("format", "unknown"),
        "gaussians_in_file": report.rows_in_file,
        "gaussians_kept": len(scene),
        "dropped_non_finite": report.non_finite_dropped,
        "dropped_zero_quaternion": report.zero_quaternion_dropped,
        "scale_clamped": report.scale_clamped,
        "opacity_inf": report.opacity_inf,
        "sh_degree": scene.sh_degree,
        "ignored_properties": list(scene.extra.get("ply", {}).get("ignored_properties", [])),
        **_statistics(scene),
        "read_seconds": round(read_seconds, 3),
        "cameras": None,
    }

    camera_path: Path | None
    if cameras is None:
        camera_path = None
    elif isinstance(cameras, str) and cameras == "auto":
        camera_path = find_cameras(ply_path)
        if camera_path is None:
            logger.info("no camera file beside %s", ply_path.name)
    else:
        camera_path = Path(cameras)
    if camera_path is not None:
        cams = load_cameras(camera_path, views=views)
        summary["cameras"] = {
            "path": str(camera_path),
            "views": views,
            "count": len(cams),
            "width": cams.width,
            "height": cams.height,
            "path_length": round(cams.path_length(), 4),
            "pose_key": cams.meta.get("pose_key"),
            "intrinsics_key": cams.meta.get("intrinsics_key"),
            "image_size_from": cams.meta.get("image_size_from"),
            "available_views": cams.meta.get("available_views", []),
        }
        seen = camera_coverage(scene, cams)
        summary["cameras"]["gaussians_seen_fraction"] = round(seen, 4)
        if seen < LOW_COVERAGE:
            logger.warning("%s: only %.0f%% of the Gaussians project into any camera of %s: the cameras may belong to "
                           "another scene or frame", ply_path.name, 100 * seen, camera_path.name)
        indices = cams.meta.get("indices_da3")
        if indices is not None and len(indices):
            # Lyra 2.0: the Gaussians are pixel-aligned to these views
            summary["cameras"]["da3_views"] = int(len(indices))
            summary["cameras"]["gaussians_per_da3_view"] = round(report.rows_in_file / len(indices), 1)
    return summary


def camera_coverage(scene: GaussianScene, cameras: CameraPath, samples: int = COVERAGE_SAMPLES,
                    max_cameras: int = COVERAGE_CAMERAS, seed: int = 0) -> float:
    """Fraction of Gaussian centres that lie in front of, and project inside the image of, at least one camera.

    A sanity check that a camera file belongs to a scene (same frame, same scale): a Lyra scene is built from
    its cameras' views, so nearly all of it is seen (the sky too); a camera file of another scene sees little.

    Args:
        scene: the Gaussians (means in the cameras' world frame).
        cameras: the camera path.
        samples: Gaussians sampled at random (fixed ``seed``); all if fewer.
        max_cameras: cameras used, evenly spaced along the path.

    Returns:
        The fraction in [0, 1].
    """
    rng = np.random.default_rng(seed)
    n = len(scene)
    pick = rng.choice(n, size=samples, replace=False) if n > samples else np.arange(n)
    points = scene.means[pick].astype(np.float64)
    views = np.unique(np.linspace(0, len(cameras) - 1, min(max_cameras, len(cameras))).round().astype(int))
    seen = np.zeros(len(points), dtype=bool)
    for i in views:
        cam = points @ cameras.w2c[i, :3, :3].T + cameras.w2c[i, :3, 3]
        z = cam[:, 2]
        front = z > 1e-6
        uv = cam[front, :2] / z[front, None] @ cameras.intrinsics[i, :2, :2].T + cameras.intrinsics[i, :2, 2]
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < cameras.width) & (uv[:, 1] >= 0) & (uv[:, 1] < cameras.height)
        seen[np.flatnonzero(front)[inside]] = True
    return float(seen.mean()) if len(seen) else 0.0


def _statistics(scene: GaussianScene) -> dict[str, Any]:
    """Bounds (exact) and distribution figures (on a regular subsample of at most ``STATS_SAMPLE`` rows) of a
    cleaned, non-empty scene."""
    q = np.asarray(PERCENTILES)
    n = len(scene)
    step = max(1, -(-n // STATS_SAMPLE))
    rows = slice(None, None, step)
    bounds = scene.bounds()
    robust = np.percentile(scene.means[rows], [q[0], q[-1]], axis=0)
    with np.errstate(over="ignore"):
        logits = scene.opacity_logits[rows].astype(np.float64)
        opacity = 1.0 / (1.0 + np.exp(-logits))
    largest_scale = np.exp(scene.log_scales[rows].max(axis=1).astype(np.float64))
    return {
        "bounds": _rounded(bounds),
        "bounds_p1_p99": _rounded(robust),
        "opacity": {
            **{f"p{p:g}": v for p, v in zip(PERCENTILES, _rounded(np.percentile(opacity, q)), strict=True)},
            f"fraction_below_{LOW_OPACITY:g}": round(float(np.count_nonzero(opacity < LOW_OPACITY)) / opacity.size, 6),
        },
        "scale": {f"p{p:g}": v for p, v in zip(PERCENTILES, _rounded(np.percentile(largest_scale, q), 6),
                                               strict=True)},
        "stats_sample_step": step,
    }


def _rounded(array: np.ndarray, digits: int = 4) -> list:
    """A float array as (nested) Python lists rounded to ``digits`` significant-ish decimals, JSON-ready."""
    return np.round(np.asarray(array, dtype=np.float64), digits).tolist()


def format_summary(summary: dict[str, Any]) -> str:
    """The summary of :func:`inspect_scene` as an aligned, human-readable table."""
    def vec(values: list[float]) -> str:
        return "(" + ", ".join(f"{v:.3g}" for v in values) + ")"

    def pcts(values: dict[str, float], unit: str = "") -> str:
        return "  ".join(f"{k} {v:.3g}{unit}" for k, v in values.items() if k.startswith("p"))

    dropped = summary["dropped_non_finite"] + summary["dropped_zero_quaternion"]
    rows = [
        ("file", f"{summary['path']} ({summary['file_bytes'] / 1e6:,.1f} MB)"),
        ("format", f"{summary['format']} ({summary['encoding']})"),
        ("Gaussians", f"{summary['gaussians_kept']:,} kept of {summary['gaussians_in_file']:,} in the file"),
        ("dropped", f"{dropped:,} ({summary['dropped_non_finite']:,} NaN/inf, "
                    f"{summary['dropped_zero_quaternion']:,} zero quaternions)"),
        ("scales clamped", f"{summary['scale_clamped']:,}"),
        ("opacity +-inf", f"{summary['opacity_inf']:,} (kept)"),
        ("SH degree", str(summary["sh_degree"])),
    ]
    if summary["ignored_properties"]:
        rows.append(("ignored props", ", ".join(summary["ignored_properties"])))
    (lo, hi), (rlo, rhi) = summary["bounds"], summary["bounds_p1_p99"]
    rows += [
        ("bounds", f"{vec(lo)} .. {vec(hi)}"),
        ("bounds p1..p99", f"{vec(rlo)} .. {vec(rhi)}"),
        ("opacity", pcts(summary["opacity"]) + f"  (<{LOW_OPACITY:g}: "
                    f"{100 * summary['opacity'][f'fraction_below_{LOW_OPACITY:g}']:.1f}%)"),
        ("scale (max axis)", pcts(summary["scale"])),
        ("read time", f"{summary['read_seconds']:.2f} s"),
    ]
    cams = summary.get("cameras")
    if cams is None:
        rows.append(("cameras", "none"))
    else:
        rows += [
            ("cameras", f"{cams['count']} {cams.get('views', 'render')} views from {cams['path']} "
                        f"({cams['pose_key']}, {cams['intrinsics_key']})"),
            ("image size", f"{cams['width']} x {cams['height']} px"
                           + (" (estimated from the principal point)" if cams["image_size_from"] != "keys" else "")),
            ("camera path", f"{cams['path_length']:.3g} scene units"),
            ("seen by cameras", f"{100 * cams['gaussians_seen_fraction']:.1f}% of the Gaussians"
                                + ("  (low: cameras of another scene or frame?)"
                                   if cams["gaussians_seen_fraction"] < LOW_COVERAGE else "")),
        ]
        if "da3_views" in cams:
            rows.append(("DA3 views", f"{cams['da3_views']} ({cams['gaussians_per_da3_view']:,.0f} Gaussians in the "
                                      "file per view)"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
