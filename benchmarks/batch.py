"""Batch throughput on a local Ray instance: the same scenes with 1 and 2 workers, the speed-up, and how close the
longest-first schedule gets to the ideal.

    python benchmarks/batch.py [--scenes 8] [--views 24] [--width 128] [--height 72] [--workers 1 2]
                               [--preset fast] [--config FILE.toml] [--keep DIR]

Builds ``--scenes`` synthetic Lyra fixtures (apartment, corridor, courtyard, terrain, cycling, distinct seeds: an
unequal mix, as real batches are), then converts all of them with ``run_batch`` once per worker count into a fresh
OUTROOT. What it compares: every run gives each task 1 CPU and 1 BLAS/OpenMP thread, so per-task resources are
equal and the worker count is the only difference (the ``cores`` column, task CPU time / task wall time, shows
that a task used one core). The driver and Ray's own processes share the machine with the tasks: with 1 worker
they have a spare core, with 2 on a 2-core machine they do not.

Prints, per worker count: the task phase (first submission to last result: Ray start-up and input hashing
excluded), the whole call, scenes per minute over the task phase, the speed-up against the first worker count
(goal on a 2-core machine: >= 1.8x), mean task time, overlap (sum of task times / task phase: the mean number of
tasks running), cores per task, and the makespan lower bound ``max(longest task, sum of tasks / workers)`` from
that run's own task times with its ratio to the task phase (1.00: no schedule could have finished sooner).
Then each task's estimated cost, wall and CPU seconds and start offset, in start order.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path

SCENES = ("apartment", "corridor", "courtyard", "terrain")
TINY_SCENE_CONFIG = {"walkable": {"spawn_clearance": 0.05}}
"""Tiny fixtures reconstruct little free floor: spawn points 5 cm from edges (default without --config)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--views", type=int, default=24)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--height", type=int, default=72)
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
              f"{os.getloadavg()[0]:.2f}")
        base = None
        tables = []
        print(f"{'workers':>7}  {'tasks s':>8}  {'call s':>7}  {'scenes/min':>10}  {'speed-up':>8}  {'task s':>7}  "
              f"{'overlap':>7}  {'cores':>5}  {'bound s':>7}  {'bound/tasks':>11}  load  result")
        for workers in args.workers:
            out = root / f"out-{workers}"
            load_before = os.getloadavg()[0]
            summary = run_batch(inputs, out, workers=workers, preset=args.preset, retries=0,
                                config=args.config or TINY_SCENE_CONFIG)
            rate = 60.0 * summary.converted / summary.tasks_elapsed_s if summary.tasks_elapsed_s else 0.0
            base = base or rate
            result = f"{summary.complete}/{summary.total} complete" + (
                f", failed: {summary.failures}" if summary.failures else "")
            entries = [e for e in BatchIndex.load(out).entries.values() if e.duration_s is not None]
            durations = [e.duration_s for e in entries]
            mean_task = sum(durations) / max(len(durations), 1)
            # overlap: how many tasks ran at once on average; cores: CPU time over wall time of a task (about 1.0
            # when the task kept to its one thread, less when it waited for a CPU or for I/O)
            overlap = sum(durations) / summary.tasks_elapsed_s if summary.tasks_elapsed_s else 0.0
            cores = sum(e.cpu_s or 0.0 for e in entries) / max(sum(durations), 1e-9)
            bound = max(max(durations, default=0.0), sum(durations) / workers)
            ratio = bound / summary.tasks_elapsed_s if summary.tasks_elapsed_s else 0.0
            load = f"{load_before:.2f}->{os.getloadavg()[0]:.2f}"
            print(f"{workers:>7}  {summary.tasks_elapsed_s:>8.1f}  {summary.elapsed_s:>7.1f}  {rate:>10.2f}  "
                  f"{rate / base if base else 0.0:>7.2f}x  {mean_task:>7.1f}  {overlap:>7.2f}  {cores:>5.2f}  "
                  f"{bound:>7.1f}  {ratio:>11.2f}  {load}  {result}")
            tables.append((workers, entries))
        for workers, entries in tables:
            print(f"\ntasks with {workers} worker(s), in start order: name, estimated cost s, wall s, CPU s, start s")
            first = min((_stamp(e.started) for e in entries), default=0.0)
            for e in sorted(entries, key=lambda e: (_stamp(e.started), -(e.cost_estimate or 0.0))):
                print(f"  {e.name:<14} {e.cost_estimate or 0.0:>7.1f}  {e.duration_s:>7.1f}  {e.cpu_s or 0.0:>7.1f}  "
                      f"{_stamp(e.started) - first:>7.0f}")
        if len(tables) > 1:
            # What the order alone is worth: list scheduling of the first run's task times on each other worker
            # count, in input order (the old FIFO submission) and in the estimate's longest-first order.
            names = [e.name for e in tables[0][1]]  # index order = input order
            times = {e.name: e.duration_s for e in tables[0][1]}
            by_cost = sorted(names, key=lambda n: -(next(e for e in tables[0][1] if e.name == n).cost_estimate or 0))
            for workers, _ in tables[1:]:
                bound = max(max(times.values()), sum(times.values()) / workers)
                print(f"\nwith {workers} workers and the {tables[0][0]}-worker task times: input order "
                      f"{_list_schedule([times[n] for n in names], workers):.1f} s, longest-estimated-first "
                      f"{_list_schedule([times[n] for n in by_cost], workers):.1f} s, lower bound {bound:.1f} s")
        print(f"\nload average after: {os.getloadavg()[0]:.2f} (other processes on the machine skew the ratio)")


def _list_schedule(durations: list[float], workers: int) -> float:
    """Makespan of starting the tasks in the given order, each on the first free worker."""
    free = [0.0] * workers
    for duration in durations:
        free[free.index(min(free))] += duration
    return max(free)


def _stamp(iso: str | None) -> float:
    return datetime.fromisoformat(iso).timestamp() if iso else 0.0


if __name__ == "__main__":
    main()
