"""Batch throughput on a local Ray instance: the same scenes with 1 and 2 workers, and the speed-up.

    python benchmarks/batch.py [--scenes 4] [--views 12] [--width 64] [--height 48] [--workers 1 2] [--preset fast]
                               [--config FILE.toml]

Builds ``--scenes`` synthetic Lyra fixtures (apartment, corridor, courtyard, cycling, distinct seeds), then
converts all of them with ``run_batch`` once per worker count into a fresh OUTROOT. Prints, per worker count, the
task phase (first submission to last result: Ray start-up and input hashing excluded), the whole call, scenes per
minute, and the ratio of task-phase throughput against the first worker count (goal on a 2-core machine: >= 1.8x).
Each task asks for 1 CPU and gets 1 BLAS/OpenMP thread, so the worker count is the parallelism.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

SCENES = ("apartment", "corridor", "courtyard")
TINY_SCENE_CONFIG = {"walkable": {"spawn_clearance": 0.05}}
"""Tiny fixtures reconstruct little free floor: spawn points 5 cm from edges (default without --config)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--views", type=int, default=12)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=48)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--config", help="conversion config TOML (default: the tiny-scene spawn clearance)")
    parser.add_argument("--keep", metavar="DIR", help="build in DIR and keep it (default: a temp dir, removed)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from lyra_isaac.batch import BatchIndex, run_batch
    from lyra_isaac.synthetic import make_fixture

    with tempfile.TemporaryDirectory(prefix="lyra-batch-bench-") as temp:
        root = Path(args.keep) if args.keep else Path(temp)
        start = time.perf_counter()
        inputs = []
        for i in range(args.scenes):
            name = SCENES[i % len(SCENES)]
            fixture = make_fixture(name, root / "scenes" / f"{name}-{i}", n_views=args.views, width=args.width,
                                   height=args.height, seed=i, overwrite=True)
            inputs.append(Path(fixture.ply_path).parent)
        total_mb = sum((p / "reconstructed_scene.ply").stat().st_size for p in inputs) / 1e6
        print(f"{args.scenes} fixtures ({args.views} views of {args.width}x{args.height}, {total_mb:.1f} MB of PLY) "
              f"built in {time.perf_counter() - start:.1f} s; {os.cpu_count()} CPUs visible; load average "
              f"{os.getloadavg()[0]:.1f}")
        base = None
        print(f"{'workers':>7}  {'tasks s':>8}  {'call s':>7}  {'scenes/min':>10}  {'speed-up':>8}  {'task s':>7}  "
              f"{'overlap':>7}  result")
        for workers in args.workers:
            out = root / f"out-{workers}"
            summary = run_batch(inputs, out, workers=workers, preset=args.preset, retries=0,
                                config=args.config or TINY_SCENE_CONFIG)
            rate = 60.0 * summary.converted / summary.tasks_elapsed_s if summary.tasks_elapsed_s else 0.0
            base = base or rate
            result = f"{summary.complete}/{summary.total} complete" + (
                f", failed: {summary.failures}" if summary.failures else "")
            # Mean wall time of one task on its worker, and how many ran at once on average (sum of task times
            # over the task phase): overlap near the worker count with longer tasks means the CPUs were busy.
            durations = [e.duration_s or 0.0 for e in BatchIndex.load(out).entries.values()]
            mean_task = sum(durations) / max(len(durations), 1)
            overlap = sum(durations) / summary.tasks_elapsed_s if summary.tasks_elapsed_s else 0.0
            print(f"{workers:>7}  {summary.tasks_elapsed_s:>8.1f}  {summary.elapsed_s:>7.1f}  {rate:>10.2f}  "
                  f"{rate / base if base else 0.0:>7.2f}x  {mean_task:>7.1f}  {overlap:>7.2f}  {result}")
        print(f"load average after: {os.getloadavg()[0]:.1f} (other processes on the machine skew the ratio)")


if __name__ == "__main__":
    main()
