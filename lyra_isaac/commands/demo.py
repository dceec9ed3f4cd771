"""``lyra-isaac demo``: generate a Lyra-format scene, inspect, convert, validate, and step a humanoid in it."""

from __future__ import annotations

import argparse
import json

from ..cli import EXIT_FAILURE, EXIT_OK


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on a generated Lyra-format scene",
        description="Generate a Lyra 2.0-format scene from a known mesh (tilted, mis-scaled, noisy, with sky), "
        "inspect it, convert it into a world (USD + MuJoCo + previews), validate the world with pxr, "
        "omni_asset_validate, Newton and MuJoCo, and step a humanoid in it.",
    )
    parser.add_argument("-o", "--out", default="demo_out", help="output folder (default: ./demo_out, replaced)")
    parser.add_argument("--scene", default="apartment", help="synthetic scene: apartment, terrain, corridor, courtyard")
    parser.add_argument("--steps", type=int, default=200, help="humanoid environment steps (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scene and the environment")
    parser.add_argument("--skip-newton", action="store_true", help="skip the Newton physics check (saves ~40 s)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON at the end")
    return parser


def _print(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    from ..progress import tqdm_progress

    progress = tqdm_progress("convert")
    try:
        summary = run_demo(args.out, scene=args.scene, steps=args.steps, seed=args.seed,
                           skip_newton=args.skip_newton, report=_print, progress=progress)
    finally:
        progress.bar.close()
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    return EXIT_OK if summary.get("validation_ok", False) else EXIT_FAILURE
