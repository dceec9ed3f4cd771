"""``lyra-isaac inspect SCENE``: what a splat PLY (and its cameras) holds, before converting it."""

from __future__ import annotations

import argparse
import json

from ..cli import EXIT_OK


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "inspect",
        help="summarize a splat scene: format, Gaussian counts, bounds, opacity/scale statistics, cameras",
        description="Read a Gaussian-splat PLY (Lyra 2.0 reconstructed_scene.ply, Lyra 1, INRIA 3DGS, or any "
        "property order) the way convert does, and print what it holds: the detected layout, Gaussians in the file "
        "and kept (rows with NaN/inf values or zero quaternions are dropped and counted), SH degree, bounds (full "
        "and 1st-99th percentile), opacity (sigmoid) and scale (largest axis, linear) percentiles 1/50/99, and, "
        "when a camera file is found or given, the camera count, image size, camera path length and the share of "
        "Gaussians the cameras see (a check that the cameras belong to the scene). "
        "Exits with status 1 and 'error: <file>: <fault>' when the file is unusable.",
    )
    parser.add_argument("scene", help="splat PLY, or a Lyra output folder (its reconstructed_scene.ply)")
    cams = parser.add_mutually_exclusive_group()
    cams.add_argument("--cameras", metavar="FILE.npz",
                      help="camera file (Lyra cameras.npz or trajectory .npz); default: cameras.npz beside the PLY "
                      "if present")
    cams.add_argument("--no-cameras", action="store_true", help="do not look for a camera file")
    parser.add_argument("--views", choices=("render", "da3", "vipe"), default="render",
                        help="which cameras of a Lyra 2.0 cameras.npz to summarize: the rendered trajectory "
                        "(default), the DA3 views whose pixels became the Gaussians, or every ViPE frame")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON (for scripts)")
    parser.add_argument("--strict", action="store_true",
                        help="fail on rows with NaN/inf values or zero quaternions instead of dropping them")
    return parser


def run(args: argparse.Namespace) -> int:
    from ..splats.inspect import format_summary, inspect_scene

    cameras = None if args.no_cameras else (args.cameras or "auto")
    summary = inspect_scene(args.scene, cameras=cameras, strict=args.strict, views=args.views)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_summary(summary))
    return EXIT_OK
