"""Test-wide hygiene shared by every test module."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """Put the root logger's handlers and level back after each test.

    ``lyra_isaac.cli.main`` configures logging the way a command should (``basicConfig(force=True)`` on the
    ``sys.stderr`` of the moment). Called in-process under pytest, that stream is the test's capture file, which
    pytest closes afterwards; left installed, the handler made every later log record in that worker print a
    "Logging error" traceback."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
