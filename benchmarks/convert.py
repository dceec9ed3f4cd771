"""Conversion benchmark: a Lyra-size scene (11.2M pixel-aligned Gaussians with cameras) through ``convert``.

Generates a Lyra 2.0-format truth fixture (``lyra_isaac.synthetic``: 128 views of 392 x 224 = 11.2M Gaussians,
~760 MB, the size of Lyra's single-pass writer, with Lyra's faults), then converts it in a fresh subprocess and
prints the seconds of every stage (from world.json ``stats.timings_s``), the peak RSS of the converting process
(VmHWM) and the fidelity against the truth. Goals (conversion issue): CPU <= 120 s and <= 8 GB on a 2-core machine;
GPU (``--device cuda``) <= 15 s on one H100.

Usage::

    python benchmarks/convert.py                       # Lyra size, CPU
    python benchmarks/convert.py --small               # 32 views of 160 x 90 (0.46M Gaussians)
    python benchmarks/convert.py --work /data/bench    # keep the fixture and the world between runs
    python benchmarks/convert.py --device cuda cpu --log   # both paths on one fixture, with the INFO log
    python benchmarks/convert.py --device cuda --repeat 2  # a fresh process, then the same process again
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONVERT_SNIPPET = r"""
import json, logging, sys, time
logging.basicConfig(level=logging.INFO if sys.argv[6] == "1" else logging.WARNING, stream=sys.stderr,
                    format="%(relativeCreated)8.0f ms %(name)s: %(message)s")
from lyra_isaac.convert import convert
for run in range(int(sys.argv[7])):
    t0 = time.perf_counter()
    world = convert(sys.argv[1], sys.argv[2], camera_height=float(sys.argv[3]), device=sys.argv[4],
                    preset=sys.argv[5], overwrite=True)
    wall = time.perf_counter() - t0
    print(json.dumps({"wall_s": wall, "timings_s": world.manifest.stats["timings_s"]}), flush=True)
with open("/proc/self/status") as fh:
    fields = dict(line.split(":", 1) for line in fh)
print(json.dumps({"vmhwm_bytes": int(fields["VmHWM"].split()[0]) * 1024}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="32 views of 160 x 90 instead of 128 of 392 x 224")
    parser.add_argument("--scene", default="apartment", help="synthetic scene: apartment, terrain, corridor, courtyard")
    parser.add_argument("--device", default=["cpu"], nargs="+", choices=("cpu", "cuda"),
                        help="one or more devices, converted one after the other from the same fixture")
    parser.add_argument("--log", action="store_true", help="print the converting process's INFO log (decisions, "
                        "sub-stage times)")
    parser.add_argument("--preset", default="fast", choices=("fast", "quality"))
    parser.add_argument("--work", type=Path, help="work folder (default: a temp folder, removed)")
    parser.add_argument("--no-metrics", action="store_true", help="skip the fidelity evaluation")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="convert N times in the same process: the first pays the imports (torch: seconds), "
                             "the CUDA context and first-use caches; later ones show the steady state of a process "
                             "that converts many scenes (batch workers)")
    args = parser.parse_args()
    views, width, height = (32, 160, 90) if args.small else (128, 392, 224)

    from lyra_isaac.synthetic import load_fixture, make_fixture

    with tempfile.TemporaryDirectory(prefix="lyra_bench_convert-") as temp:
        work = args.work or Path(temp)
        scene_dir = work / f"{args.scene}-{views}x{width}x{height}"
        t0 = time.perf_counter()
        if (scene_dir / "truth.npz").is_file():
            fixture = load_fixture(scene_dir)
            print(f"fixture: reused {scene_dir}")
        else:
            fixture = make_fixture(args.scene, scene_dir, n_views=views, width=width, height=height, seed=0,
                                   overwrite=True)
            print(f"fixture: {fixture.n_gaussians:,} Gaussians ({fixture.ply_path.stat().st_size / 1e6:.0f} MB) "
                  f"made in {time.perf_counter() - t0:.1f} s")
        for device in args.device:
            code = _convert_and_report(args, fixture, work / f"world-{device}", device)
            if code:
                return code
    return 0


def _convert_and_report(args: argparse.Namespace, fixture, out: Path, device: str) -> int:
    """Convert ``fixture`` on ``device`` in a fresh process; print stage seconds, peak RSS and fidelity."""
    from lyra_isaac.synthetic import evaluate_world

    result = subprocess.run([sys.executable, "-c", CONVERT_SNIPPET, str(fixture.ply_path), str(out),
                             str(fixture.eye_height_m), device, args.preset, "1" if args.log else "0",
                             str(max(1, args.repeat))],
                            capture_output=True, text=True, check=False,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    if result.returncode != 0:
        print(result.stderr[-4000:], file=sys.stderr)
        return result.returncode
    if args.log:
        print(result.stderr[-12000:])
    lines = [json.loads(line) for line in result.stdout.strip().splitlines() if line.startswith("{")]
    runs, measured = lines[:-1], lines[-1]
    world = json.loads((out / "world.json").read_text())
    print(f"\nconvert ({device}, preset {args.preset}, {os.cpu_count()} CPUs): "
          f"{fixture.n_gaussians:,} Gaussians, {len(world['spawn_points'])} spawn points, "
          f"{world['stats']['collision_triangles']:,} collision triangles")
    header = "".join(f"{'run ' + str(i + 1):>9}" for i in range(len(runs)))
    print(f"{'stage':<10}{header}   (run 1: fresh process; later runs: same process)")
    for stage in runs[0]["timings_s"]:
        print(f"{stage:<10}" + "".join(f"{run['timings_s'].get(stage, float('nan')):>9.1f}" for run in runs))
    peak_gb = measured["vmhwm_bytes"] / 2**30
    print(f"peak RSS  {peak_gb:>8.2f} GB   (goal <= 8 GB)")
    goal = 120.0 if device == "cpu" else 15.0
    totals = ", ".join(f"{run['timings_s']['total']:.1f} s (wall {run['wall_s']:.1f} s)" for run in runs)
    print(f"total     {totals}   (goal <= {goal:.0f} s)")
    if not args.no_metrics:
        report = evaluate_world(out, fixture).as_dict()
        keys = ("fscore_5cm", "chamfer_m", "floor_error_median_m", "floor_hole_fraction", "up_error_deg",
                "scale_error_pct", "spawn_valid_fraction")
        print("fidelity: " + ", ".join(f"{k} {report[k]:.3f}" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
