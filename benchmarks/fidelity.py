"""Conversion fidelity table: synthetic Lyra-format scenes with known truth -> convert -> metrics.

For each scene (and seed) this makes a fixture (lyra_isaac.synthetic.make_fixture: a known mesh rendered along a
Lyra-like path into a Lyra 2.0-exact PLY with Lyra's faults), converts it with lyra_isaac.convert.convert, and
compares the world with the truth (lyra_isaac.synthetic.metrics): Chamfer, F-score at 2 and 5 cm against the
visible truth, floor height error and holes at probes, up-axis and scale error, valid spawn points, and physics
probes (spheres dropped on the true floor in the world's MuJoCo scene: rest height error, fraction fallen through).

Two reference rows per scene put the numbers in context:
- ``points``: the Gaussian centres themselves (opacity > 0.5, within 10 m of a camera) as the "surface", mapped
  with the *true* frame: what the raw splats give before any fusion (no mesh, so only accuracy-type figures and
  recall make sense; its precision counts flying pixels and floaters).
- ``convert``: the pipeline under test.

Usage::

    python benchmarks/fidelity.py --small                 # CI-size fixtures, all scenes (a minute or two)
    python benchmarks/fidelity.py --size large            # 64 views of 320x180 per scene
    python benchmarks/fidelity.py --size lyra --scenes apartment   # 128 views of 392x224: ~11M Gaussians
    python benchmarks/fidelity.py --fixtures-only --size lyra      # time fixture generation only
    python benchmarks/fidelity.py --small --kind optimized --oracle-scale   # optimized 3DGS with cameras.json
    python benchmarks/fidelity.py --small --kind optimized --no-cameras     # ... without cameras (true scale given)
    python benchmarks/fidelity.py --small --oracle-scale --device cuda      # the GPU path (torch fusion, meshing)

``--kind optimized`` builds optimized-3DGS fixtures instead (lyra_isaac.synthetic.optimized_fixture: Gaussians as
an INRIA trainer leaves them, in a random COLMAP-like frame, with INRIA's cameras.json); ``--cameras`` picks the
camera file the conversion reads (json, npz or none; ``--no-cameras`` = ``--cameras none``). Without cameras there
is no eye height, so the true scale factor is passed as ``scale``.

Writes ``fidelity.json`` (all figures) into ``--out`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lyra_isaac.synthetic import SCENES, evaluate_world, make_fixture
from lyra_isaac.synthetic.metrics import MetricsConfig, visible_truth_points
from lyra_isaac.synthetic.optimized_fixture import make_optimized_fixture

SIZES = {
    "small": dict(n_views=24, width=160, height=90),
    "large": dict(n_views=64, width=320, height=180),
    "lyra": dict(n_views=128, width=392, height=224),
}
POINTS_MIN_OPACITY = 0.5
POINTS_MAX_DISTANCE_M = 10.0

COLUMNS = [
    ("scene", "{:<10}"), ("seed", "{:>4}"), ("method", "{:<8}"), ("gaussians", "{:>9}"), ("seconds", "{:>7.1f}"),
    ("chamfer_m", "{:>9.3f}"), ("fscore_2cm", "{:>6.3f}"), ("fscore_5cm", "{:>6.3f}"), ("recall_5cm", "{:>6.3f}"),
    ("floor_error_mean_m", "{:>8.3f}"), ("floor_hole_fraction", "{:>6.2f}"), ("up_error_deg", "{:>6.2f}"),
    ("scale_error_pct", "{:>7.1f}"), ("floor_offset_m", "{:>7.3f}"), ("spawn_valid_fraction", "{:>6.2f}"),
    ("drop_error_mean_m", "{:>6.3f}"), ("drop_fell_fraction", "{:>5.2f}"),
]
HEADERS = ["scene", "seed", "method", "gaussians", "sec", "chamfer", "F@2cm", "F@5cm", "R@5cm", "floor", "holes",
           "up", "scale%", "offset", "spawn", "drop", "fell"]


def _width(fmt: str) -> int:
    spec = fmt.split(":")[1].rstrip("}").lstrip("<>")
    return int(spec.split(".")[0])


def _fmt(row: dict) -> str:
    out = []
    for key, fmt in COLUMNS:
        value = row.get(key)
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            out.append("-".rjust(_width(fmt)))
        else:
            out.append(fmt.format(value))
    return " ".join(out)


def _header() -> str:
    return " ".join(name.ljust(_width(fmt)) if "<" in fmt else name.rjust(_width(fmt))
                    for (_, fmt), name in zip(COLUMNS, HEADERS, strict=True))


def points_baseline(fixture, cfg: MetricsConfig, truth_points: np.ndarray) -> dict:
    """Precision/recall of the raw Gaussian centres mapped with the true frame (no surface reconstruction)."""
    from lyra_isaac.splats.ply import read_ply

    scene = read_ply(fixture.ply_path)
    m = fixture.source_to_world
    world = scene.means.astype(np.float64) @ m[:3, :3].T + m[:3, 3]
    centers = fixture.c2w_world[:, :3, 3]
    keep = scene.opacities() > POINTS_MIN_OPACITY
    per_view = fixture.width * fixture.height
    if fixture.ply_format == "inria":  # optimized: no view order; within reach of any camera
        from scipy.spatial import cKDTree as _Tree

        near = _Tree(centers).query(world)[0] < POINTS_MAX_DISTANCE_M
    else:
        near = np.zeros(len(world), dtype=bool)
        for i, c in enumerate(centers):  # each view's Gaussians against its own camera (file order is per view)
            rows = slice(i * per_view, (i + 1) * per_view)
            near[rows] = np.linalg.norm(world[rows] - c, axis=1) < POINTS_MAX_DISTANCE_M
    pts = world[keep & near]
    rng = np.random.default_rng(0)
    if len(pts) > cfg.pred_samples:
        pts = pts[rng.choice(len(pts), cfg.pred_samples, replace=False)]
    rc = fixture.raycaster()
    d_pred = rc.distance(pts).astype(np.float64)
    from scipy.spatial import cKDTree

    d_truth, _ = cKDTree(pts).query(truth_points, k=1)
    row = {"chamfer_m": 0.5 * (d_pred.mean() + d_truth.mean())}
    for tau, name in ((0.02, "2cm"), (0.05, "5cm")):
        p, r = float(np.mean(d_pred <= tau)), float(np.mean(d_truth <= tau))
        row[f"fscore_{name}"] = 2 * p * r / (p + r) if p + r > 0 else 0.0
        row[f"recall_{name}"] = r
    return row


def _overrides(items: list[str]) -> dict:
    """``["a.b=1", "c=x"]`` -> ``{"a": {"b": 1}, "c": "x"}`` (values parsed as JSON where they parse)."""
    out: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = out
        *parents, leaf = key.split(".")
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="same as --size small")
    parser.add_argument("--size", choices=sorted(SIZES), default="small", help="fixture size (default small)")
    parser.add_argument("--scenes", nargs="+", default=sorted(SCENES), choices=sorted(SCENES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--preset", default="fast", help="convert preset (fast | quality)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="convert device (default cpu)")
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temp folder)")
    parser.add_argument("--fixtures-only", action="store_true", help="only time fixture generation")
    parser.add_argument("--no-baseline", action="store_true", help="skip the raw-points reference row")
    parser.add_argument("--oracle-scale", action="store_true",
                        help="convert with camera_height = the fixture's true eye height (isolates scale errors)")
    parser.add_argument("--kind", choices=("lyra", "optimized"), default="lyra",
                        help="fixture kind: Lyra 2.0 pixel-aligned (default) or optimized INRIA 3DGS")
    parser.add_argument("--cameras", choices=("json", "npz", "none"), default="json",
                        help="optimized fixtures: the camera file the conversion reads (default json)")
    parser.add_argument("--no-cameras", action="store_true", help="same as --cameras none (true scale given)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="convert config override, e.g. --set walkable.spawn_clearance=0.3 (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    size = "small" if args.small else args.size
    out = args.out or Path(tempfile.mkdtemp(prefix="lyra_fidelity_"))
    out.mkdir(parents=True, exist_ok=True)
    convert = None
    convert_missing = None
    if not args.fixtures_only:
        try:
            from lyra_isaac.convert import convert
        except ImportError as exc:
            convert_missing = f"lyra_isaac.convert is not importable ({exc}): only fixtures and reference rows"
            print(convert_missing, file=sys.stderr)
    cfg = MetricsConfig()
    overrides = _overrides(args.set)
    rows: list[dict] = []
    cameras_mode = "none" if args.no_cameras else args.cameras
    kind = args.kind if args.kind == "lyra" else f"optimized, cameras {cameras_mode}"
    print(f"fidelity benchmark: {kind} fixtures, size {size} {SIZES[size]}, preset {args.preset}, "
          f"device {args.device}, work folder {out}")
    print(_header())
    for scene in args.scenes:
        for seed in args.seeds:
            t0 = time.perf_counter()
            if args.kind == "optimized":
                fx = make_optimized_fixture(scene, out / f"{scene}_{seed}", seed=seed, overwrite=True,
                                            cameras="both" if cameras_mode != "none" else "none", **SIZES[size])
            else:
                fx = make_fixture(scene, out / f"{scene}_{seed}", seed=seed, overwrite=True, **SIZES[size])
            fixture_s = time.perf_counter() - t0
            base = {"scene": scene, "seed": seed, "gaussians": fx.n_gaussians, "scale_true": fx.scale}
            rows.append({**base, "method": "fixture", "seconds": fixture_s})
            print(_fmt(rows[-1]), flush=True)
            if args.fixtures_only:
                continue
            truth_points = visible_truth_points(fx, cfg)
            if not args.no_baseline:
                t0 = time.perf_counter()
                rows.append({**base, "method": "points", **points_baseline(fx, cfg, truth_points),
                             "seconds": time.perf_counter() - t0})
                print(_fmt(rows[-1]), flush=True)
            if convert is None:
                continue
            t0 = time.perf_counter()
            scale_args = {"camera_height": fx.eye_height_m} if args.oracle_scale else {}
            cameras_file = None
            if args.kind == "optimized":
                cameras_file = {"json": fx.directory / "cameras.json", "npz": fx.directory / "cameras.npz",
                                "none": None}[cameras_mode]
                if cameras_file is None:  # no eye height without cameras: the true scale
                    scale_args = {"scale": 1.0 / fx.scale}
            try:
                world = convert(fx.ply_path, out / f"{scene}_{seed}_world", preset=args.preset, overwrite=True,
                                config=overrides or None, cameras=cameras_file, device=args.device, **scale_args)
            except Exception as exc:  # report and go on with the other scenes
                rows.append({**base, "method": "convert", "error": f"{type(exc).__name__}: {exc}"})
                print(f"{scene:<10} {seed:>4} convert  FAILED: {type(exc).__name__}: {exc}", flush=True)
                continue
            convert_s = time.perf_counter() - t0
            report = evaluate_world(world.path, fx, cfg=cfg, truth_points=truth_points).as_dict()
            report["metric_seconds"] = report.pop("seconds")
            rows.append({**base, "method": "convert", **report, "seconds": convert_s})
            print(_fmt(rows[-1]), flush=True)
    converted = [r for r in rows if r["method"] == "convert" and "error" not in r]
    if converted:
        print("\nmean over converted scenes:")
        for key in ("chamfer_m", "fscore_2cm", "fscore_5cm", "floor_error_mean_m", "floor_hole_fraction",
                    "up_error_deg", "scale_error_pct", "seconds"):
            values = np.array([r[key] for r in converted], dtype=float)
            print(f"  {key:<22} {np.nanmean(values):8.3f}")
        points = {(r["scene"], r["seed"]): r for r in rows if r["method"] == "points"}
        ratios = [r["fscore_5cm"] / points[(r["scene"], r["seed"])]["fscore_5cm"] for r in converted
                  if (r["scene"], r["seed"]) in points and points[(r["scene"], r["seed"])]["fscore_5cm"] > 0]
        if ratios:
            print(f"  F@5cm convert / raw points: {np.mean(ratios):.2f}x")
    (out / "fidelity.json").write_text(json.dumps(rows, indent=1, default=float) + "\n")
    print(f"\nwrote {out / 'fidelity.json'}")
    failed = [r for r in rows if "error" in r]
    return 1 if failed else (2 if convert_missing else 0)


if __name__ == "__main__":
    sys.exit(main())
