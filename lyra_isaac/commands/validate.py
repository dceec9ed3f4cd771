"""``lyra-isaac validate WORLD``: check a world directory with pxr, omni_asset_validate, Newton and MuJoCo."""

from __future__ import annotations

import argparse
import json

from ..cli import EXIT_FAILURE, EXIT_OK


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..usd.validate import CHECKS, ENGINE_TOLERANCE, REST_TOLERANCE

    parser = subparsers.add_parser(
        "validate",
        help="check a converted world with the tools that consume it (pxr, omni_asset_validate, Newton, MuJoCo)",
        description="Run the checks of a world directory and print one line per check. files: world.json parses "
        "and lists only files that exist. usd: pxr reopens world.usda with all its layers and the prim contract "
        "holds (defaultPrim /World, Z up, metres, kilograms, /World/PhysicsScene gravity, ONE static collision "
        "Mesh /World/ground with approximation 'none' and a bound physics material, /World/Splats as a "
        "ParticleField3DGaussianSplat with linear scales, sigmoid opacities and unit quaternions, /World/Visual, "
        "one /World/SpawnPoints Xform per spawn point, customLayerData agreeing with world.json). "
        "asset_validator: NVIDIA omni_asset_validate reports no errors (warnings are listed). "
        "spawns: every spawn point stands on the collision surface and on a walkable cell. "
        "newton: Newton loads world.usda on the CPU and spheres dropped on the spawn points and gently sloped "
        f"walkable probe points rest on the collision surface (within {REST_TOLERANCE * 100:.0f} cm; the first "
        "run compiles Warp kernels for ~40 s). "
        f"mujoco: scene.xml compiles and the same spheres rest within {ENGINE_TOLERANCE * 100:.0f} cm of "
        f"Newton's heights above the surface. Checks: {', '.join(CHECKS)}. Exit status 1 when any check fails.",
    )
    parser.add_argument("world", help="world directory written by 'lyra-isaac convert'")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON (for scripts)")
    parser.add_argument("--skip", action="append", default=[], metavar="CHECK", choices=CHECKS,
                        help=f"do not run this check (repeatable; one of {', '.join(CHECKS)}), e.g. --skip newton")
    parser.add_argument("--newton-timeout", type=float, default=600.0, metavar="SECONDS",
                        help="time limit of the Newton subprocess (default 600)")
    return parser


def run(args: argparse.Namespace) -> int:
    from ..usd.validate import validate_world

    report = validate_world(args.world, skip=tuple(args.skip), newton_timeout=args.newton_timeout)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print("\n".join(report.summary_lines()))
    return EXIT_OK if report.ok else EXIT_FAILURE
