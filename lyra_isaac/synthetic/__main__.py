"""``python -m lyra_isaac.synthetic SCENE OUT``: write a Lyra 2.0-format fixture with known truth.

Example::

    python -m lyra_isaac.synthetic apartment fx/apartment --views 128 --width 392 --height 224
    lyra-isaac convert fx/apartment/reconstructed_scene.ply -o fx/apartment_world
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from ..errors import LyraError
from . import SCENES, FaultConfig, make_fixture


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lyra_isaac.synthetic", description=__doc__.split("\n\n")[0])
    parser.add_argument("scene", choices=sorted(SCENES), help="truth scene")
    parser.add_argument("out", help="fixture folder to create")
    parser.add_argument("--views", type=int, default=32, help="cameras along the route (Lyra: up to 128)")
    parser.add_argument("--width", type=int, default=160, help="image width, pixels (Lyra: ~392)")
    parser.add_argument("--height", type=int, default=90, help="image height, pixels (Lyra: ~224)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the scene, path and faults")
    parser.add_argument("--size", type=float, default=1.0, help="footprint scale of the scene")
    parser.add_argument("--scale", type=float, default=None, help="global scale error (default: drawn in 0.7-1.4)")
    parser.add_argument("--no-faults", action="store_true", help="exact depths (sky still present)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    faults = FaultConfig.none(scale=args.scale or 1.0) if args.no_faults else FaultConfig(scale=args.scale)
    try:
        fx = make_fixture(args.scene, args.out, n_views=args.views, width=args.width, height=args.height,
                          seed=args.seed, size=args.size, faults=faults, overwrite=args.overwrite)
    except LyraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summary = {"ply": str(fx.ply_path), "cameras": str(fx.cameras_path), "truth": str(fx.truth_path),
               "gaussians": fx.n_gaussians, "scale": fx.scale, "probes": len(fx.probes), **fx.stats}
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
