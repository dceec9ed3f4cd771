"""The ``lyra-isaac`` command.

Each subcommand lives in ``lyra_isaac/commands/<name>.py`` with ``add_parser(subparsers)`` and ``run(args) -> int``
and calls one library function. This module only wires them up, sets up logging and turns
:class:`lyra_isaac.errors.LyraError` into ``error: ...`` and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from . import __version__
from .errors import LyraError

COMMANDS = ("inspect", "convert", "validate", "preview", "batch", "play", "demo")
"""Subcommand modules under lyra_isaac.commands, in --help order. A missing module is skipped."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lyra-isaac",
        description="Turn generated Gaussian-splat worlds (Lyra 2.0, Lyra 1, INRIA 3DGS) into simulation-ready "
        "worlds: USD stages for Isaac Sim, MuJoCo scenes, and Gymnasium humanoid environments.",
    )
    parser.add_argument("--version", action="version", version=f"lyra-isaac {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"lyra_isaac.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"lyra_isaac.commands.{name}":
                continue
            raise
        sub = module.add_parser(subparsers)
        sub.set_defaults(_run=module.run)
    return parser


def configure_logging(verbose: int = 0, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose >= 2 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)
    if verbose < 2:
        for noisy in ("trimesh", "PIL", "matplotlib", "numba", "ray", "filelock"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lyra-isaac`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    configure_logging(args.verbose, args.quiet)
    try:
        return int(args._run(args) or EXIT_OK)
    except LyraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error of ours
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
