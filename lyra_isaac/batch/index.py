"""OUTROOT/index.json: the state of a batch, written only by the batch driver, atomically (temp file + os.replace).

Schema (``format_version`` 1)::

    {
      "format_version": 1,
      "updated": "2026-11-24T08:30:00+00:00",       # UTC, ISO 8601
      "scenes": [                                   # one entry per scene ever submitted to this OUTROOT
        {
          "name": "kitchen",                        # world name, unique in OUTROOT
          "status": "complete",                     # "pending" | "running" (submitted to Ray: queued or
                                                    # running) | "complete" | "failed"
          "world_dir": "kitchen",                   # world directory, relative to OUTROOT (stable)
          "source": "/data/lyra/kitchen",           # what was converted: a Lyra folder or a PLY, absolute
          "ply": "/data/lyra/kitchen/reconstructed_scene.ply",
          "cameras": "/data/lyra/kitchen/cameras.npz",   # or null
          "source_sha256": "9f86d0...",             # of the PLY
          "source_bytes": 761234567,
          "source_mtime_ns": 1764000000000000000,   # with source_bytes: reuse the hash while the file is unchanged
          "attempts": 1,                            # conversion attempts, all runs together
          "memory_gb": 5.7, "num_cpus": 1,          # Ray resources requested for the last attempt
          "cost_estimate": 38.2,                    # expected conversion seconds on one core, from cheap facts
                                                    # (batch/cost.py): the longest-first order of the run
          "node": "10.0.0.12",                      # node that ran the last attempt (null before)
          "started": "...", "finished": "...",      # last attempt, UTC ISO 8601 (null before)
          "duration_s": 41.3,                       # wall time of the last attempt on the worker
          "cpu_s": 40.9,                            # CPU time of the last attempt, all its threads (about
                                                    # num_cpus x duration_s at most when threads are capped)
          "world": {                                # from world.json, complete worlds only (else null)
            "walkable_area_m2": 48.2, "spawn_points": 32, "goal_points": 64,
            "collision_triangles": 98012, "scale_factor": 1.0, "scale_method": "file",
            "up_source": [0.0, -1.0, 0.0], "frame_method": "camera+ransac",
            "bounds": [[...], [...]], "timings_s": {...}, "peak_rss_mb": 2300.5,
            "topdown": "kitchen/previews/topdown.png"   # relative to OUTROOT, or null
          },
          "error": null                  # failed: {"type": "InputError", "message": "...", "traceback": "..."}
        }
      ]
    }

Consumers (the environments' world sampler, the report) should select entries with ``"status": "complete"`` and
join ``world_dir`` to OUTROOT; :func:`complete_world_dirs` does exactly that. Fields may be added within format
version 1; none is renamed or removed without bumping it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputError

logger = logging.getLogger(__name__)

INDEX_NAME = "index.json"
INDEX_FORMAT_VERSION = 1
STATUSES = ("pending", "running", "complete", "failed")


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string (seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class SceneEntry:
    """One scene in index.json (see the module docstring for the meaning of each field)."""

    name: str
    source: str
    ply: str
    status: str = "pending"
    world_dir: str = ""
    cameras: str | None = None
    source_sha256: str | None = None
    source_bytes: int | None = None
    source_mtime_ns: int | None = None
    attempts: int = 0
    memory_gb: float | None = None
    num_cpus: float | None = None
    node: str | None = None
    started: str | None = None
    finished: str | None = None
    duration_s: float | None = None
    cpu_s: float | None = None
    cost_estimate: float | None = None
    world: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.world_dir:
            self.world_dir = self.name
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "extra"}
        data.update(self.extra)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SceneEntry:
        known = {k for k in cls.__dataclass_fields__ if k != "extra"}
        return cls(**{k: v for k, v in data.items() if k in known},
                   extra={k: v for k, v in data.items() if k not in known})


class BatchIndex:
    """index.json in memory: entries by name, saved atomically.

    Args:
        out_root: the batch output folder.
        entries: scene entries in index order.
    """

    def __init__(self, out_root: str | Path, entries: list[SceneEntry] | None = None):
        self.out_root = Path(out_root)
        self.entries: dict[str, SceneEntry] = {e.name: e for e in entries or []}

    @property
    def path(self) -> Path:
        return self.out_root / INDEX_NAME

    @classmethod
    def load(cls, out_root: str | Path) -> BatchIndex:
        """Read OUTROOT/index.json; an absent file gives an empty index.

        Raises:
            InputError: the file is not valid JSON, has another format_version, or malformed entries.
        """
        out_root = Path(out_root)
        path = out_root / INDEX_NAME
        if not path.exists():
            return cls(out_root)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(path, f"corrupt batch index: {exc} (move it aside to start the batch afresh)") from None
        if not isinstance(data, dict) or data.get("format_version") != INDEX_FORMAT_VERSION:
            version = data.get("format_version") if isinstance(data, dict) else None
            raise InputError(path, f"batch index format_version {version!r} is not supported "
                                   f"(this lyra_isaac reads {INDEX_FORMAT_VERSION})")
        try:
            entries = [SceneEntry.from_json(item) for item in data.get("scenes", [])]
        except (TypeError, ValueError) as exc:
            raise InputError(path, f"malformed scene entry in batch index: {exc}") from None
        return cls(out_root, entries)

    def save(self) -> Path:
        """Write index.json atomically (a reader sees the old or the new file, never a partial one)."""
        data = {"format_version": INDEX_FORMAT_VERSION, "updated": utc_now(),
                "scenes": [e.to_json() for e in self.entries.values()]}
        text = json.dumps(data, indent=2, allow_nan=False) + "\n"
        try:
            handle, temp = tempfile.mkstemp(prefix=f".{INDEX_NAME}.", suffix=".tmp", dir=self.out_root)
            try:
                os.fchmod(handle, 0o666 & ~current_umask())  # mkstemp makes 0600; readers (envs) need the usual mode
                with os.fdopen(handle, "w", encoding="utf-8") as stream:
                    stream.write(text)
                    stream.flush()
                    os.fsync(stream.fileno())
                os.replace(temp, self.path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise OutputError(self.path, f"cannot write batch index: {exc.strerror or exc}") from None
        return self.path

    def by_ply(self) -> dict[Path, SceneEntry]:
        """PLY path -> entry."""
        return {Path(e.ply): e for e in self.entries.values()}

    def add(self, entry: SceneEntry) -> None:
        if entry.name in self.entries:
            raise ValueError(f"scene name {entry.name!r} already in the index")
        self.entries[entry.name] = entry

    def counts(self) -> dict[str, int]:
        """Number of entries per status (every status present, zero included)."""
        counts = dict.fromkeys(STATUSES, 0)
        for entry in self.entries.values():
            counts[entry.status] += 1
        return counts


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def complete_world_dirs(out_root: str | Path) -> list[Path]:
    """Absolute world directories of the complete scenes of a batch, in index order.

    Raises:
        InputError: OUTROOT has no index.json, or it is corrupt.
    """
    out_root = Path(out_root)
    if not (out_root / INDEX_NAME).is_file():
        raise InputError(out_root, f"is not a batch output folder ({INDEX_NAME} missing)")
    index = BatchIndex.load(out_root)
    return [out_root / e.world_dir for e in index.entries.values() if e.status == "complete"]
