"""``lyra-isaac preview WORLD_DIR``: regenerate a world's PNG previews (top-down map and perspective views)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..cli import EXIT_OK


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "preview",
        help="regenerate a world's PNG previews (top-down walkable map, perspective views)",
        description="Read a converted world directory (world.json, collision mesh, height map) and write "
        "previews/topdown.png (height map, walkable area, obstacles, numbered spawn points with headings, goals, "
        "scale bar in metres) and previews/perspective_*.png (shaded ray-cast views of the collision mesh, in the "
        "visual mesh's colours when it has the same vertices: two "
        "overviews with ceilings cut away, and the view from spawn point 0 at eye height). world.json's "
        "files.previews list is updated. Exits with status 1 and 'error: <path>: <fault>' on a broken world.",
    )
    parser.add_argument("world", help="world directory written by 'lyra-isaac convert'")
    parser.add_argument("-o", "--output", metavar="DIR",
                        help="write the previews/ folder under DIR instead of the world directory (world.json is "
                        "then left unchanged)")
    return parser


def run(args: argparse.Namespace) -> int:
    from ..preview import write_previews
    from ..world import World, load_world, read_mesh_ply, write_manifest

    world_dir = load_world(args.world)
    visual = read_mesh_ply(world_dir.file("visual")) if "visual" in world_dir.manifest.files else None
    world = World(collision=world_dir.collision_mesh(), visual=visual, heightmap=world_dir.heightmap(),
                  spawn_points=world_dir.spawn_points, goal_points=world_dir.goal_points,
                  manifest=world_dir.manifest)
    target = Path(args.output) if args.output else world_dir.path
    files = write_previews(world, target)
    if not args.output:
        manifest = world_dir.manifest
        manifest.files["previews"] = sorted(files.values())
        temp = target / ".world.json.preview.tmp"
        temp.mkdir(exist_ok=True)
        os.replace(write_manifest(manifest, temp), target / "world.json")
        temp.rmdir()
    for path in files.values():
        print(target / path)
    return EXIT_OK
