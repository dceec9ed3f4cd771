"""``lyra-isaac convert SCENE -o OUT``: one splat scene -> one world directory."""

from __future__ import annotations

import argparse
import json
import sys

from ..cli import EXIT_OK


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "convert",
        help="convert a splat scene into a simulation-ready world directory",
        description="Convert a Gaussian-splat scene (Lyra 2.0 reconstructed_scene.ply, Lyra 1, INRIA 3DGS) into a "
        "world directory: world.usda (Isaac Sim), scene.xml (MuJoCo), collision.ply, visual.ply, heightmap.npz, "
        "world.json and previews/. OUT is written atomically: complete or absent.",
    )
    parser.add_argument("scene", help="splat PLY, or a Lyra output folder (reconstructed_scene.ply + cameras.npz)")
    parser.add_argument("-o", "--out", required=True, help="world directory to create")
    parser.add_argument("--cameras", help="cameras.npz (default: the one beside the PLY, if present)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--scale", type=float, help="scene units -> metres factor (default: keep the file's scale)")
    group.add_argument("--camera-height", type=float, metavar="METRES",
                       help="median camera height above the floor in metres; sets the scale (e.g. 1.6 for eye level)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where surface extraction runs (cuda needs the gpu extra: torch + gsplat)")
    parser.add_argument("--preset", choices=("fast", "quality"), default="fast",
                        help="config preset from config/presets/ (default: fast)")
    parser.add_argument("--config", metavar="FILE.toml", help="TOML overrides on top of the preset")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    parser.add_argument("--json", action="store_true", help="print the world summary as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    from ..convert import convert
    from ..progress import NO_PROGRESS, tqdm_progress

    progress = NO_PROGRESS if args.no_progress else tqdm_progress("convert", disable=None)
    try:
        world = convert(args.scene, args.out, cameras=args.cameras, config=args.config, preset=args.preset,
                        scale=args.scale, camera_height=args.camera_height, device=args.device,
                        overwrite=args.overwrite, progress=progress)
    finally:
        bar = getattr(progress, "bar", None)
        if bar is not None:
            bar.close()
    summary = world_summary(world)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        width = max(len(k) for k in summary)
        for key, value in summary.items():
            print(f"{key:<{width}}  {value}", file=sys.stdout)
    return EXIT_OK


def world_summary(world) -> dict:
    """The key facts of a converted world, for printing."""
    m = world.manifest
    stats = m.stats
    return {
        "world": str(world.path),
        "source": f"{m.source.get('path')} ({m.source.get('format')}, {m.source.get('gaussians')} Gaussians)",
        "up (source frame)": stats.get("frame", {}).get("up_source"),
        "scale factor": round(m.scale_factor, 4),
        "scale method": stats.get("scale", {}).get("method"),
        "bounds (m)": [[round(v, 2) for v in row] for row in m.bounds],
        "walkable area (m^2)": round(m.walkable_area_m2, 2),
        "spawn points": len(m.spawn_points),
        "collision triangles": stats.get("collision_triangles"),
        "time (s)": stats.get("timings_s", {}).get("total"),
        "peak RSS (MB)": stats.get("peak_rss_mb"),
        "files": ", ".join(sorted(k for k in m.files)),
    }
