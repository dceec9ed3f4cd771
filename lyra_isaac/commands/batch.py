"""``lyra-isaac batch INPUT... -o OUTROOT``: many splat scenes -> many worlds, on Ray, resumable."""

from __future__ import annotations

import argparse
import sys

from ..cli import EXIT_FAILURE, EXIT_OK
from ..errors import InputError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "batch",
        help="convert many scenes into worlds on Ray (local or cluster), resumable",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert many splat scenes into world directories OUTROOT/<name>/, one Ray task per scene.\n"
        "OUTROOT/index.json records every scene's status, source hash, stats, timings and errors; running the same\n"
        "command again skips complete worlds whose source is unchanged and converts the rest. report.html and\n"
        "report.md summarize the worlds.\n\n"
        "exit codes: 0 all complete, 3 some scenes failed, 1 none complete or bad input.",
    )
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="Lyra output folder (reconstructed_scene.ply + cameras.npz), PLY file, folder of scenes, "
                             "glob (quote it), or manifest file (one path a line, # comments)")
    parser.add_argument("-o", "--out", metavar="OUTROOT", help="output folder of the batch")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="CPUs of the local Ray instance (default: all cores); ignored with --ray-address")
    parser.add_argument("--ray-address", metavar="ADDR",
                        help="run on an existing Ray cluster (HOST:6379, ray://HOST:10001 or auto) instead of a "
                             "local instance; OUTROOT and the inputs must be on storage every node mounts")
    parser.add_argument("--memory-per-task", type=float, metavar="GB",
                        help="Ray memory request per scene (default: 8x the PLY size, at least 0.5 GB); Ray runs no "
                             "more scenes on a node than its memory allows")
    parser.add_argument("--cpus-per-task", type=float, default=1.0, metavar="N",
                        help="Ray CPU request per scene; BLAS/OpenMP threads follow it (default: 1)")
    parser.add_argument("--retries", type=int, default=1, metavar="K",
                        help="extra attempts for a scene whose failure may be transient (crashed or killed "
                             "worker, unexpected error); bad input files are not retried (default: 1)")
    parser.add_argument("--preset", choices=("fast", "quality"), default="fast", help="conversion preset")
    parser.add_argument("--config", metavar="FILE.toml", help="conversion config overrides on top of the preset")
    parser.add_argument("--status", action="store_true",
                        help="summarize the batch in OUTROOT (given as -o or as the only INPUT) and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.status:
        return _status(args)
    if not args.out:
        raise InputError(None, "no output folder: pass -o OUTROOT")
    if not args.inputs:
        raise InputError(None, "no inputs given (pass Lyra output folders, PLY files, globs or a manifest)")
    from ..batch.run import run_batch
    from ..progress import NO_PROGRESS, Progress

    progress, bar = NO_PROGRESS, None
    if not args.no_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=100, desc="batch", unit="%", bar_format="{l_bar}{bar}| [{elapsed}] {postfix}")

        def callback(stage: str, fraction: float) -> None:
            bar.set_postfix_str(stage, refresh=False)
            bar.n = round(100 * fraction, 1)
            bar.refresh()

        progress = Progress(callback)
    try:
        summary = run_batch(args.inputs, args.out, workers=args.workers, ray_address=args.ray_address,
                            memory_per_task_gb=args.memory_per_task, cpus_per_task=args.cpus_per_task,
                            retries=args.retries, config=args.config, preset=args.preset, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    for name, message in summary.failures.items():
        print(f"failed {name}: {message}", file=sys.stderr)
    print(summary)
    print(f"index: {summary.index_path}")
    return summary.exit_code


def _status(args: argparse.Namespace) -> int:
    from ..batch.run import batch_status

    targets = [args.out] if args.out else list(args.inputs)
    if len(targets) != 1:
        raise InputError(None, "--status needs exactly one OUTROOT")
    index, counts = batch_status(targets[0])
    print(f"{index.out_root}: {len(index.entries)} scene(s): "
          + ", ".join(f"{n} {status}" for status, n in counts.items()))
    width = max((len(name) for name in index.entries), default=4)
    for entry in index.entries.values():
        world = entry.world or {}
        if entry.status == "complete":
            detail = (f"walkable {world.get('walkable_area_m2') or 0:.1f} m^2, {world.get('spawn_points')} spawns, "
                      f"{world.get('collision_triangles')} triangles, {entry.duration_s or 0:.1f} s")
        elif entry.status == "failed":
            detail = (entry.error or {}).get("message", "")
        else:
            detail = f"attempts {entry.attempts}"
        print(f"  {entry.name:<{width}}  {entry.status:<8}  {detail}")
    if counts["complete"] == len(index.entries):
        return EXIT_OK
    return 3 if counts["complete"] else EXIT_FAILURE
