"""Exceptions raised by lyra_isaac.

Every error that reaches a user names the file (or world, or setting) and the fault in one sentence.
The CLI turns :class:`LyraError` into ``error: <message>`` on stderr and a non-zero exit code.
"""

from __future__ import annotations

from pathlib import Path


class LyraError(Exception):
    """Base class of every error lyra_isaac raises on purpose."""


class InputError(LyraError, ValueError):
    """An input file or directory is unusable: unreadable, wrong format, inconsistent, or empty.

    Args:
        path: the offending file or directory (``None`` for in-memory input).
        problem: what is wrong with it, as a sentence fragment ("header count 100 larger than data (40 rows)").
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = Path(path) if path is not None else None
        self.problem = problem
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{problem}")


class OutputError(LyraError, OSError):
    """An output location cannot be written (exists without overwrite, not writable, disk full)."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConversionError(LyraError, RuntimeError):
    """The conversion pipeline cannot produce a usable world from a scene (no floor, no walkable area...)."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = Path(path) if path is not None else None
        self.problem = problem
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{problem}")


class ConfigError(LyraError, ValueError):
    """A configuration file or value is invalid; the message names the field."""


class MissingDependencyError(LyraError, ImportError):
    """An optional dependency is needed for this feature; the message names the pip extra to install."""

    def __init__(self, module: str, extra: str, feature: str):
        super().__init__(
            f"{feature} needs the Python package '{module}', which is not installed: "
            f"pip install 'lyra-isaac[{extra}]'"
        )


class CancelledError(LyraError):
    """A long operation was cancelled through its :class:`lyra_isaac.progress.Progress`."""
