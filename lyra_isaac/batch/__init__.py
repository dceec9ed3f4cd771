"""Batch conversion of many splat scenes on Ray, resumable: :func:`run_batch` (see run.py), index.json schema
(index.py), report.html/report.md (report.py), input expansion (inputs.py)."""

from __future__ import annotations

from .index import INDEX_NAME, BatchIndex, SceneEntry, complete_world_dirs
from .inputs import SceneInput, expand_inputs
from .run import EXIT_PARTIAL, BatchSummary, RayConnectionError, batch_status, run_batch

__all__ = [
    "EXIT_PARTIAL",
    "INDEX_NAME",
    "BatchIndex",
    "BatchSummary",
    "RayConnectionError",
    "SceneEntry",
    "SceneInput",
    "batch_status",
    "complete_world_dirs",
    "expand_inputs",
    "run_batch",
]
