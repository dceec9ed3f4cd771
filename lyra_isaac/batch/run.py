"""Batch conversion on Ray: many splat scenes -> many world directories under one OUTROOT, resumable.

:func:`run_batch` is the one entry point (the CLI's ``lyra-isaac batch`` and the Isaac Sim extension's
*Batch Convert Folder...* call it). Its steps, in order:

1. expand the inputs (folders, PLYs, globs, manifests: :mod:`lyra_isaac.batch.inputs`) and name the worlds;
2. lock OUTROOT (one driver at a time), remove temp folders a killed run left (``.<name>.tmp-*``);
3. read OUTROOT/index.json and plan: a scene whose world is complete, loads, and was built from a PLY with the same
   SHA-256 is skipped; everything else (new, failed, interrupted, or changed since) is converted;
4. run one Ray task per scene with per-task CPU and memory requests, so Ray (not this module) decides how many
   large scenes share a node; retry failures that may be transient (crashed worker, out of memory, unexpected
   exceptions) up to ``retries`` times in the same run; bad input files fail at once;
5. after every finished task, update index.json atomically; at the end write report.html and report.md.

Each world is written by ``convert`` inside :func:`lyra_isaac.world.atomic_directory`, so OUTROOT/<name> is either
complete or absent whatever happens to the driver or a worker.

On a multi-node cluster OUTROOT and the inputs must be on a file system every node mounts at the same path, and
lyra_isaac must be installed on every node (docs/batch.md).
"""

from __future__ import annotations

import heapq
import logging
import os
import re
import shutil
import socket
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import load_toml
from ..errors import ConfigError, InputError, LyraError, MissingDependencyError, OutputError
from ..progress import NO_PROGRESS, Progress
from ..world import load_world, sha256_file
from .cost import estimate_cost_s, scene_facts
from .index import BatchIndex, SceneEntry, utc_now
from .inputs import SceneInput, assign_names, expand_inputs

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_PARTIAL = 3
"""Exit code of a batch where some scenes completed and some failed."""

MEMORY_PER_PLY_BYTE = 8.0
"""Default Ray memory request of a task: this many times the PLY's size (an 11M-Gaussian, 760 MB Lyra file asks
for ~6 GB), at least :data:`MIN_TASK_MEMORY_GB`."""
MIN_TASK_MEMORY_GB = 0.5
LOCAL_OBJECT_STORE_BYTES = 128 << 20
"""Object store of a local Ray instance: tasks exchange only small dicts (worlds go to disk)."""
RAY_CONNECT_TIMEOUT_S = 60.0
TCP_PROBE_TIMEOUT_S = 5.0
WAIT_POLL_S = 0.5
IN_FLIGHT_EXTRA = 1
"""Tasks kept in flight beyond the cluster's CPU slots: one waits in Ray, ready to start the moment a slot frees,
while the rest wait in the driver in longest-first order."""
IDLE_POLLS_BEFORE_EXTRA = 4
"""Polls (of :data:`WAIT_POLL_S`) that a free slot fitting the next scene must stay idle before the driver submits
beyond the cap (tasks in flight are blocked on memory)."""
BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS")
CANCEL_WAIT_S = 30.0
"""After a cancel, how long the driver waits for Ray to kill the cancelled tasks before it cleans up and returns."""
LOCK_NAME = ".batch.lock"
STALE_TEMP_PATTERN = re.compile(r"^\..+\.(tmp|old)-")
"""Folders ``atomic_directory`` builds in (``.<name>.tmp-XXXX``) or moves a replaced world to (``.<name>.old-PID``)."""
NON_RETRYABLE_ERRORS = ("InputError", "ConfigError", "ConversionError", "MissingDependencyError", "ImportError",
                        "ModuleNotFoundError")
"""Error types that a second attempt on the same file and config cannot fix (bad input, a scene the pipeline cannot
turn into a world): the scene fails at once."""

ConvertFn = Callable[..., Any]
"""``convert_fn(source, out, *, cameras, config, preset, overwrite) -> WorldDir``, like lyra_isaac.convert.convert."""


class RayConnectionError(LyraError, ConnectionError):
    """Ray could not be started or the cluster at ``--ray-address`` could not be reached."""


@dataclass
class BatchSummary:
    """What a batch run did, for the scenes given to this run.

    Attributes:
        out_root: the batch output folder.
        total: scenes in this run's inputs.
        complete: of them, complete now (converted in this run or before).
        skipped: complete before this run and left alone (source unchanged).
        converted: converted successfully in this run.
        failed: failed (after retries); ``failures`` maps their names to the error message.
        pending: not finished (the run was cancelled).
        elapsed_s: wall time of the whole call. tasks_elapsed_s: from first submission to last result
            (excludes input hashing and Ray start-up), 0 when nothing ran.
        index_path, report_html, report_md: files written.
    """

    out_root: Path
    total: int = 0
    complete: int = 0
    skipped: int = 0
    converted: int = 0
    failed: int = 0
    pending: int = 0
    elapsed_s: float = 0.0
    tasks_elapsed_s: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    index_path: Path | None = None
    report_html: Path | None = None
    report_md: Path | None = None

    def __str__(self) -> str:
        text = (f"{self.total} scene(s): {self.complete} complete ({self.skipped} done before, {self.converted} "
                f"converted now), {self.failed} failed, {self.pending} pending in {self.elapsed_s:.1f} s")
        return text + (f"; report: {self.report_html}" if self.report_html else "")

    @property
    def exit_code(self) -> int:
        """0 when every scene is complete, 3 when some are, 1 when none is."""
        if self.total > 0 and self.complete == self.total:
            return EXIT_OK
        return EXIT_PARTIAL if self.complete > 0 else EXIT_FAILURE


def run_batch(
    inputs: Sequence[str | Path] | str | Path,
    out_root: str | Path,
    *,
    workers: int | None = None,
    ray_address: str | None = None,
    memory_per_task_gb: float | None = None,
    cpus_per_task: float = 1.0,
    retries: int = 1,
    config: str | Path | dict | None = None,
    preset: str = "fast",
    progress: Progress | None = None,
    convert_fn: ConvertFn | None = None,
    write_report: bool = True,
) -> BatchSummary:
    """Convert many splat scenes into world directories under ``out_root`` with Ray; resumable.

    Args:
        inputs: Lyra output folders, PLY files, folders of scenes, globs, or manifest files (one path a line).
        out_root: output folder; each scene becomes ``out_root/<name>/``, plus ``index.json``, ``report.html``
            and ``report.md``.
        workers: CPUs of the local Ray instance (default: all cores); ignored with ``ray_address``.
        ray_address: address of an existing Ray cluster (``HOST:6379``, ``ray://HOST:10001`` or ``auto``); None
            starts a local Ray instance. If Ray is already initialized in this process it is used as is.
        memory_per_task_gb: Ray memory request per task; default :data:`MEMORY_PER_PLY_BYTE` x the PLY size,
            at least :data:`MIN_TASK_MEMORY_GB`, at most the largest node's memory.
        cpus_per_task: Ray CPU request per task; BLAS/OpenMP threads in the task are set to match.
        retries: extra attempts in this run for a scene that failed in a way another attempt may fix.
        config: conversion config overrides (TOML path or dict), applied on top of ``preset``.
        preset: "fast" or "quality".
        progress: receives ``("<done>/<n> done, <failed> failed, <left> left, ETA ...", fraction)`` after each
            scene; its ``cancel()`` stops the batch (running tasks are cancelled, their scenes stay pending).
        convert_fn: the conversion function run by each task (default :func:`lyra_isaac.convert.convert`); it must
            be importable or picklable on the workers and write ``out`` atomically.
        write_report: write report.html / report.md at the end.

    Returns:
        A :class:`BatchSummary`; its ``exit_code`` is 0 (all complete), 3 (partial) or 1 (none complete).

    Raises:
        InputError: no inputs, an input that does not exist, a glob that matches nothing, a corrupt index.json.
        OutputError: ``out_root`` cannot be created or written, or another batch is running on it.
        ConfigError: bad preset, config file, retries, workers or memory request.
        RayConnectionError: Ray cannot start or the cluster cannot be reached.
        MissingDependencyError: Ray is not installed (extra "ray").
        CancelledError: ``progress.cancel()`` was called (the index is saved first).
    """
    started = time.perf_counter()
    progress = progress or NO_PROGRESS
    _check_options(workers, memory_per_task_gb, cpus_per_task, retries, preset)
    config_data = _load_config(config, preset, validate=convert_fn is None)
    if ray_address is not None:
        _probe_address(ray_address)  # before hashing gigabytes of PLYs
    scenes = expand_inputs(inputs)
    out_root = _prepare_out_root(out_root)
    summary = BatchSummary(out_root=out_root.absolute(), total=len(scenes))
    with _out_root_lock(out_root):
        removed = remove_stale_temps(out_root)
        if removed:
            logger.info("removed %d temp folder(s) left by an interrupted run: %s", len(removed),
                        ", ".join(p.name for p in removed))
        index = BatchIndex.load(out_root)
        to_run, plan_names = _plan(index, scenes, out_root, summary)
        summary.names = plan_names
        index.save()
        if to_run:
            logger.info("%d scene(s) to convert, %d already complete", len(to_run), summary.skipped)
            _estimate_costs(to_run)
            _run_on_ray(index, to_run, summary, workers=workers, ray_address=ray_address,
                        memory_per_task_gb=memory_per_task_gb, cpus_per_task=cpus_per_task, retries=retries,
                        config=config_data, preset=preset, progress=progress, convert_fn=convert_fn)
        else:
            logger.info("all %d scene(s) already complete", summary.total)
            progress.update(f"{summary.total}/{summary.total} done (all complete before)", 1.0)
        _count(index, summary)
        summary.index_path = index.save()
        if write_report:
            from .report import write_reports

            summary.report_html, summary.report_md = write_reports(index)
    summary.elapsed_s = round(time.perf_counter() - started, 3)
    return summary


# --- planning -----------------------------------------------------------------------------------------------------


def _check_options(workers: int | None, memory_gb: float | None, cpus: float, retries: int, preset: str) -> None:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    if memory_gb is not None and not (isinstance(memory_gb, (int, float)) and memory_gb > 0):
        raise ConfigError(f"memory_per_task_gb must be a positive number of GB, got {memory_gb!r}")
    if not (isinstance(cpus, (int, float)) and cpus > 0):
        raise ConfigError(f"cpus_per_task must be positive, got {cpus!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"retries must be a non-negative integer, got {retries!r}")
    if preset not in ("fast", "quality"):
        raise ConfigError(f"unknown preset '{preset}' (choose from fast, quality)")


def _load_config(config: str | Path | dict | None, preset: str, validate: bool) -> dict | None:
    """Read a TOML config in the driver (workers on other nodes may not see the file) and check it early."""
    if config is None:
        data = None
    elif isinstance(config, (str, Path)):
        data = load_toml(config)
    elif isinstance(config, dict):
        data = config
    else:
        raise ConfigError(f"config must be a TOML path or a dict, not {type(config).__name__}")
    if validate:
        try:
            from ..convert import load_convert_config
        except ImportError as exc:  # a pipeline stage missing from this install: the workers will say which
            logger.debug("cannot validate the config in the driver: %s", exc)
        else:
            load_convert_config(preset, data)
    return data


def _prepare_out_root(out_root: str | Path) -> Path:
    out_root = Path(out_root).expanduser().absolute()
    if out_root.exists() and not out_root.is_dir():
        raise OutputError(out_root, "output root exists and is not a folder")
    try:
        out_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(out_root, f"cannot create the output folder: {exc.strerror or exc}") from None
    if not os.access(out_root, os.W_OK | os.X_OK):
        raise OutputError(out_root, "output folder is not writable")
    return out_root


def _try_lock(handle: Any) -> bool:
    """Take an exclusive, non-blocking lock on an open file; False if another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows (Isaac Sim runs there too)
        import msvcrt

        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class _out_root_lock:  # noqa: N801 - used as a context manager like a function
    """An exclusive lock on OUTROOT/.batch.lock: one driver per OUTROOT. Released by the OS if the driver dies."""

    def __init__(self, out_root: Path):
        self.path = out_root / LOCK_NAME
        self.handle: Any = None

    def __enter__(self) -> _out_root_lock:
        try:
            self.handle = self.path.open("a+")
        except OSError as exc:
            raise OutputError(self.path, f"cannot create the batch lock file: {exc.strerror or exc}") from None
        if not _try_lock(self.handle):
            self.handle.seek(0)
            holder = self.handle.read().strip() or "another process"
            self.handle.close()
            raise OutputError(self.path.parent, f"another batch is running on this output folder ({holder})") from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        self.handle.flush()
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()  # closing the file releases the lock


def remove_stale_temps(out_root: Path) -> list[Path]:
    """Delete ``.<name>.tmp-*`` / ``.<name>.old-*`` folders and ``.*.tmp`` files (index, report) in ``out_root``.

    Only call while holding the OUTROOT lock: then no conversion of this batch is writing there.
    """
    removed = []
    for path in sorted(out_root.iterdir()):
        if path.is_dir() and STALE_TEMP_PATTERN.match(path.name):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        elif path.is_file() and path.name.startswith(".") and path.name.endswith(".tmp"):  # index/report temps
            path.unlink(missing_ok=True)
    return removed


def _plan(index: BatchIndex, scenes: list[SceneInput], out_root: Path,
          summary: BatchSummary) -> tuple[list[SceneEntry], list[str]]:
    """Name every scene, hash its PLY, and decide what to convert; updates the index entries in place.

    A scene is matched to its index entry by PLY path, or, for a PLY that moved, by SHA-256 with an entry whose PLY
    no longer exists (so moving the inputs does not redo the batch).
    """
    by_ply = index.by_ply()
    hashes: dict[Path, tuple[str, int, int] | OSError] = {}
    for scene in scenes:
        try:
            hashes[scene.ply_path] = _hash(scene.ply_path, by_ply.get(scene.ply_path))
        except OSError as exc:
            hashes[scene.ply_path] = exc
    orphans = {e.source_sha256: e for e in index.entries.values()
               if e.source_sha256 and Path(e.ply) not in {s.ply_path for s in scenes} and not Path(e.ply).exists()}
    for scene in scenes:
        digest = hashes[scene.ply_path]
        if scene.ply_path not in by_ply and not isinstance(digest, OSError) and digest[0] in orphans:
            entry = orphans.pop(digest[0])
            logger.info("%s: %s moved to %s; keeping its world", entry.name, entry.ply, scene.ply_path)
            by_ply[scene.ply_path] = entry
    known = {ply: entry.name for ply, entry in by_ply.items()}
    claimed = {entry.name for entry in index.entries.values()} | {e.world_dir for e in index.entries.values()}
    unclaimed = {p.name for p in out_root.iterdir() if not p.name.startswith(".") and p.name not in claimed}
    names = assign_names(scenes, known, claimed | unclaimed | {"index.json", "report.html", "report.md"})
    to_run: list[SceneEntry] = []
    for scene in scenes:
        name = names[scene.ply_path]
        entry = by_ply.get(scene.ply_path)
        if entry is None:
            entry = SceneEntry(name=name, source=str(scene.source), ply=str(scene.ply_path))
            index.add(entry)
        entry.source, entry.ply = str(scene.source), str(scene.ply_path)
        entry.cameras = str(scene.cameras_path) if scene.cameras_path is not None else None
        digest = hashes[scene.ply_path]
        if isinstance(digest, OSError):
            _fail(entry, "InputError", f"{scene.ply_path}: cannot read: {digest.strerror or digest}")
            continue
        entry.source_sha256, entry.source_bytes, entry.source_mtime_ns = digest
        world_dir = out_root / entry.world_dir
        world_json = _load_world_json(world_dir)
        if world_json is not None and world_json.get("source", {}).get("sha256") in (None, entry.source_sha256):
            if entry.status != "complete":
                logger.info("%s: adopting the complete world found on disk (written by an interrupted run)", name)
                entry.status, entry.error = "complete", None
                entry.world = world_stats(world_json, entry.world_dir, world_dir)
            summary.skipped += 1
            continue
        if entry.status == "complete":
            reason = "its world no longer loads" if world_json is None else "the source PLY changed"
            logger.info("%s: converting again, %s", name, reason)
        entry.status, entry.world = "pending", None
        to_run.append(entry)
    return to_run, [names[s.ply_path] for s in scenes]


def _estimate_costs(entries: Sequence[SceneEntry]) -> None:
    """Set each entry's ``cost_estimate`` (expected seconds on one core) from its files' cheap facts."""
    started = time.perf_counter()
    for entry in entries:
        entry.cost_estimate = round(estimate_cost_s(scene_facts(entry.ply, entry.cameras)), 2)
    logger.info("cost estimates of %d scene(s) in %.2f s", len(entries), time.perf_counter() - started)


def _hash(ply: Path, entry: SceneEntry | None) -> tuple[str, int, int]:
    """(sha256, size, mtime_ns) of a PLY; the index's hash is reused while size and mtime are unchanged."""
    stat = ply.stat()
    if (entry is not None and entry.source_sha256 and entry.source_bytes == stat.st_size
            and entry.source_mtime_ns == stat.st_mtime_ns):
        return entry.source_sha256, stat.st_size, stat.st_mtime_ns
    return sha256_file(ply), stat.st_size, stat.st_mtime_ns


def _load_world_json(world_dir: Path) -> dict | None:
    """world.json of a world directory that loads with load_world, else None."""
    if not world_dir.is_dir():
        return None
    try:
        world = load_world(world_dir)
    except LyraError as exc:
        logger.debug("%s does not load: %s", world_dir, exc)
        return None
    return world.manifest.to_json_dict()


def world_stats(manifest: dict[str, Any], world_dir_rel: str, world_dir: Path) -> dict[str, Any]:
    """The index's ``world`` block from a world.json dict (missing facts are None)."""
    stats = manifest.get("stats") or {}
    frame = stats.get("frame") or {}
    scale = stats.get("scale") or {}
    topdown = None
    for candidate in list((manifest.get("files") or {}).get("previews") or []) + ["previews/topdown.png"]:
        if Path(candidate).name == "topdown.png" and (world_dir / candidate).is_file():
            topdown = f"{world_dir_rel}/{candidate}"
            break
    spawns = manifest.get("spawn_points") or []
    return {
        "walkable_area_m2": manifest.get("walkable_area_m2"),
        "spawn_points": len(spawns),
        "goal_points": len(manifest.get("goal_points") or []),
        "collision_triangles": stats.get("collision_triangles"),
        "scale_factor": manifest.get("scale_factor"),
        "scale_method": scale.get("method"),
        "eye_height_m": scale.get("eye_height_m"),
        "up_source": frame.get("up_source"),
        "frame_method": frame.get("method"),
        "bounds": manifest.get("bounds"),
        "gaussians": (manifest.get("source") or {}).get("gaussians"),
        "timings_s": stats.get("timings_s"),
        "peak_rss_mb": stats.get("peak_rss_mb"),
        "topdown": topdown,
    }


def _fail(entry: SceneEntry, error_type: str, message: str, trace: str | None = None) -> None:
    entry.status = "failed"
    entry.world = None
    entry.error = {"type": error_type, "message": message, "traceback": trace}


def _count(index: BatchIndex, summary: BatchSummary) -> None:
    summary.complete = summary.failed = summary.pending = 0
    summary.failures = {}
    for name in summary.names:
        entry = index.entries[name]
        if entry.status == "complete":
            summary.complete += 1
        elif entry.status == "failed":
            summary.failed += 1
            summary.failures[name] = (entry.error or {}).get("message", "unknown error")
        else:
            summary.pending += 1


# --- Ray ----------------------------------------------------------------------------------------------------------


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "ray", "batch conversion") from None
    return ray


def connect_ray(workers: int | None = None, address: str | None = None) -> bool:
    """Start a local Ray instance with ``workers`` CPUs, or connect to the cluster at ``address``.

    Returns:
        True if this call initialized Ray (the caller shuts it down), False if Ray was already initialized.

    Raises:
        RayConnectionError: the address is malformed or unreachable, or Ray fails or takes longer than
            :data:`RAY_CONNECT_TIMEOUT_S` to start.
    """
    ray = _import_ray()
    if ray.is_initialized():
        logger.info("using the Ray instance already initialized in this process")
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address is None:
        kwargs.update(num_cpus=workers or os.cpu_count() or 1, object_store_memory=LOCAL_OBJECT_STORE_BYTES)
        where = f"a local Ray instance with {kwargs['num_cpus']} CPUs"
    else:
        _probe_address(address)
        kwargs["address"] = address
        where = f"the Ray cluster at {address}"
        if workers is not None:
            logger.warning("--workers is ignored with --ray-address: the cluster's resources decide")
    if address is None:
        # In the main thread: Ray ties its local processes' lives to the thread that starts them.
        try:
            ray.init(**kwargs)
        except Exception as exc:
            raise RayConnectionError(f"cannot start Ray ({where}): {type(exc).__name__}: {exc}") from None
    else:
        _init_with_deadline(ray, kwargs, where)
    logger.info("connected to %s", where)
    return True


def _init_with_deadline(ray: Any, kwargs: dict[str, Any], where: str) -> None:
    """ray.init on a cluster address, waiting at most RAY_CONNECT_TIMEOUT_S (an address that accepts TCP but is
    no Ray GCS makes ray.init retry for minutes). Connecting starts no local processes, so a thread is safe."""
    outcome: dict[str, BaseException | None] = {}

    def start() -> None:
        try:
            ray.init(**kwargs)
            outcome["error"] = None
        except BaseException as exc:  # reported in the calling thread
            outcome["error"] = exc

    thread = threading.Thread(target=start, name="ray-init", daemon=True)
    thread.start()
    thread.join(RAY_CONNECT_TIMEOUT_S)
    if thread.is_alive():
        raise RayConnectionError(f"cannot start Ray: connecting to {where} timed out after "
                                 f"{RAY_CONNECT_TIMEOUT_S:.0f} s")
    if outcome.get("error") is not None:
        exc = outcome["error"]
        raise RayConnectionError(f"cannot connect to {where}: {type(exc).__name__}: {exc}") from None


def _probe_address(address: str) -> None:
    """Fail fast on an address nothing listens on (ray.init would retry for minutes)."""
    if address == "auto":
        return
    match = re.fullmatch(r"(?:ray://)?\[?([^\]\s/]+?)\]?:(\d+)/?", address.strip())
    if match is None:
        raise RayConnectionError(f"invalid Ray address '{address}' (expected HOST:PORT, ray://HOST:PORT or auto)")
    host, port = match.group(1), int(match.group(2))
    try:
        with socket.create_connection((host, port), timeout=TCP_PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise RayConnectionError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc} (is "
                                 f"`ray start --head` running there, and is port {port} open to this machine?)"
                                 ) from None


def _largest_node_memory(ray: Any) -> float:
    """Bytes of Ray "memory" resource on the largest alive node (0 if unknown)."""
    sizes = [node.get("Resources", {}).get("memory", 0) for node in ray.nodes() if node.get("Alive")]
    return float(max(sizes, default=0))


def _task_memory_bytes(entry: SceneEntry, memory_gb: float | None, node_max: float) -> int:
    if memory_gb is not None:
        request = memory_gb * 1e9
        if node_max and request > node_max:
            raise ConfigError(f"memory_per_task_gb {memory_gb:g} GB exceeds the memory Ray can give a task on the "
                              f"largest node ({node_max / 1e9:.1f} GB): no node could run it")
        return int(request)
    request = max(MIN_TASK_MEMORY_GB * 1e9, MEMORY_PER_PLY_BYTE * (entry.source_bytes or 0))
    if node_max and request > node_max:
        logger.warning("%s: estimated memory %.1f GB exceeds the largest node's %.1f GB; asking for all of it "
                       "(one such scene per node)", entry.name, request / 1e9, node_max / 1e9)
        request = node_max
    return int(request)


def _thread_env(cpus: float) -> dict[str, str]:
    threads = str(max(1, int(cpus)))
    return dict.fromkeys(BLAS_THREAD_VARS, threads)


class SceneQueue:
    """Scenes waiting in the driver, longest estimated cost first (ties: input order).

    Args:
        entries: the scenes to run; each one's ``cost_estimate`` (None counts as 0) orders it.
    """

    def __init__(self, entries: Sequence[SceneEntry]):
        self._costs = {entry.name: float(entry.cost_estimate or 0.0) for entry in entries}
        self._heap: list[tuple[float, int, SceneEntry]] = []
        self._counter = 0
        for entry in entries:
            self.push(entry)

    def cost(self, entry: SceneEntry) -> float:
        """The scene's estimated cost (seconds on one core, see :mod:`lyra_isaac.batch.cost`)."""
        return self._costs.get(entry.name, 0.0)

    def push(self, entry: SceneEntry) -> None:
        heapq.heappush(self._heap, (-self.cost(entry), self._counter, entry))
        self._counter += 1

    def pop(self) -> SceneEntry:
        return heapq.heappop(self._heap)[2]

    def peek(self) -> SceneEntry:
        return self._heap[0][2]

    def __len__(self) -> int:
        return len(self._heap)


def _task_slots(ray: Any, cpus_per_task: float) -> int:
    """Tasks the Ray cluster can run at once by CPU count: its CPUs // ``cpus_per_task`` (at least 1)."""
    return max(1, int(float(ray.cluster_resources().get("CPU", 0)) // cpus_per_task))


def _fits_now(ray: Any, cpus_per_task: float, memory_bytes: int) -> bool:
    """Whether the cluster has a free CPU slot and memory for one more task now (summed over nodes: approximate)."""
    free = ray.available_resources()
    return free.get("CPU", 0.0) >= cpus_per_task and free.get("memory", 0.0) >= memory_bytes


def _run_on_ray(index: BatchIndex, to_run: list[SceneEntry], summary: BatchSummary, *, workers: int | None,
                ray_address: str | None, memory_per_task_gb: float | None, cpus_per_task: float, retries: int,
                config: dict | None, preset: str, progress: Progress, convert_fn: ConvertFn | None) -> None:
    """Run the scenes longest-expected-first with about one task more in flight than Ray has CPU slots.

    Ray does not start queued tasks in submission order when their resource requests differ (every scene asks for
    its own memory: measured, 12 queued tasks started in an arbitrary order), so submitting everything at once
    would lose the order. Holding the rest in the driver keeps it: each finished task makes room for the next
    longest. One extra task waits in Ray so a slot never idles while the driver reacts; another is submitted when
    a slot that fits the next task stays free for :data:`IDLE_POLLS_BEFORE_EXTRA` polls (tasks blocked on memory
    elsewhere), so the cluster is never left idle by the cap.
    """
    ray = _import_ray()
    owns_ray = connect_ray(workers, ray_address)
    pending: dict[Any, SceneEntry] = {}
    queue = SceneQueue(to_run)
    attempts_this_run: dict[str, int] = {}
    try:
        node_max = _largest_node_memory(ray)
        memory = {entry.name: _task_memory_bytes(entry, memory_per_task_gb, node_max) for entry in to_run}
        task = ray.remote(convert_task)
        runtime_env = {"env_vars": _thread_env(cpus_per_task)}

        def submit(entry: SceneEntry) -> None:
            job = {"name": entry.name, "source": entry.source, "out": str(index.out_root / entry.world_dir),
                   "world_dir": entry.world_dir, "cameras": entry.cameras, "config": config, "preset": preset,
                   "cpus": cpus_per_task, "source_sha256": entry.source_sha256}
            ref = task.options(num_cpus=cpus_per_task, memory=memory[entry.name], max_retries=0,
                               runtime_env=runtime_env, name=f"lyra-convert:{entry.name}").remote(job, convert_fn)
            pending[ref] = entry
            logger.debug("submitted %s (estimated cost %.1f s, %d in flight)", entry.name, queue.cost(entry),
                         len(pending))
            attempts_this_run[entry.name] = attempts_this_run.get(entry.name, 0) + 1
            entry.status, entry.error = "running", None
            entry.attempts += 1
            entry.memory_gb, entry.num_cpus = round(memory[entry.name] / 1e9, 3), cpus_per_task

        def top_up() -> None:
            limit = _task_slots(ray, cpus_per_task) + IN_FLIGHT_EXTRA
            while queue and len(pending) < limit:
                submit(queue.pop())

        first_submit = time.perf_counter()
        top_up()
        index.save()
        finished = failed = idle_polls = 0
        total = len(to_run)
        total_cost = sum(queue.cost(entry) for entry in to_run)
        done_cost = 0.0
        progress.update(_progress_text(0, 0, total, 0.0, 0.0, total_cost), 0.0)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_POLL_S)
            progress.check_cancelled()
            for ref in ready:
                entry = pending.pop(ref)
                result = _collect(ray, ref, entry)
                if result["ok"]:
                    _record_success(entry, result, index.out_root)
                    finished += 1
                    summary.converted += 1
                    done_cost += queue.cost(entry)
                    logger.info("%s: complete in %.1f s (estimated cost %.1f)", entry.name,
                                result.get("duration_s") or 0.0, queue.cost(entry))
                    continue
                error = result["error"]
                if error["type"] not in NON_RETRYABLE_ERRORS and attempts_this_run[entry.name] <= retries:
                    logger.warning("%s: attempt %d failed (%s: %s); retrying", entry.name,
                                   attempts_this_run[entry.name], error["type"], error["message"])
                    entry.status = "pending"
                    queue.push(entry)
                    continue
                _record_times(entry, result)
                _fail(entry, error["type"], error["message"], error.get("traceback"))
                failed += 1
                done_cost += queue.cost(entry)
                logger.error("%s: failed: %s", entry.name, error["message"])
            if ready:
                idle_polls = 0
                top_up()
                index.save()
                done = finished + failed
                elapsed = time.perf_counter() - first_submit
                progress.update(_progress_text(finished, failed, total, elapsed, done_cost, total_cost),
                                done / total)
            elif queue:
                top_up()  # the cluster may have grown (an autoscaler added nodes)
                # Nothing finished: if a slot that fits the next scene stays free (the tasks in flight wait for
                # memory on other nodes), submit one more rather than leave it idle.
                idle_polls = idle_polls + 1 if queue and _fits_now(ray, cpus_per_task, memory[queue.peek().name]) else 0
                if queue and idle_polls >= IDLE_POLLS_BEFORE_EXTRA:
                    idle_polls = 0
                    submit(queue.pop())
                    index.save()
        summary.tasks_elapsed_s = round(time.perf_counter() - first_submit, 3)
    finally:
        if pending:  # cancelled, interrupted or crashed: the unfinished scenes stay pending for the next run
            for ref, entry in pending.items():
                entry.status = "pending"
                try:
                    ray.cancel(ref, force=True)
                except Exception as exc:  # cancelling is best effort; the atomic write keeps OUTROOT clean
                    logger.debug("cancel %s: %s", entry.name, exc)
            _await_cancelled(ray, list(pending), summary.out_root)
            index.save()
        if owns_ray:
            ray.shutdown()


def _await_cancelled(ray: Any, refs: list[Any], out_root: Path) -> None:
    """Wait (up to :data:`CANCEL_WAIT_S`) until force-cancelled tasks have ended, then remove the temp folders
    their killed workers left. A force cancel kills the worker asynchronously: a task could otherwise still create
    or fill its ``.<name>.tmp-*`` folder after the batch has returned (or after the next run's clean-up), and a
    killed task never removes it."""
    try:
        ray.wait(refs, num_returns=len(refs), timeout=CANCEL_WAIT_S)
    except Exception as exc:  # best effort, as the cancel itself
        logger.debug("waiting for cancelled tasks: %s", exc)
    removed = remove_stale_temps(out_root)
    if removed:
        logger.info("removed %d temp folder(s) of cancelled tasks: %s", len(removed),
                    ", ".join(p.name for p in removed))


def _progress_text(finished: int, failed: int, total: int, elapsed: float, done_cost: float = 0.0,
                   total_cost: float = 0.0) -> str:
    """Progress line; the ETA extrapolates the elapsed time by estimated cost done (longest scenes run first, so
    a count of scenes would overestimate it), or by scene count when no cost is known."""
    done = finished + failed
    left = total - done
    if done == 0:
        eta = "?"
    elif done_cost > 0 and total_cost > 0:
        eta = _format_seconds(elapsed * max(total_cost - done_cost, 0.0) / done_cost)
    else:
        eta = _format_seconds(elapsed / done * left)
    return f"{finished}/{total} done, {failed} failed, {left} left, ETA {eta}"


def _format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _collect(ray: Any, ref: Any, entry: SceneEntry) -> dict[str, Any]:
    """The task's result dict; Ray-level failures (worker died, out of memory) become error results."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        kind = type(exc).__name__
        text = str(exc).strip().splitlines()
        message = f"{entry.source}: Ray task failed ({kind}): {text[0] if text else 'no message'}"
        if isinstance(exc, ray.exceptions.OutOfMemoryError):
            message = (f"{entry.source}: the worker ran out of memory (Ray killed it); raise --memory-per-task "
                       f"above {entry.memory_gb:g} GB so fewer scenes share a node")
        return {"ok": False, "error": {"type": kind, "message": message, "traceback": str(exc)[-4000:]}}


def _record_times(entry: SceneEntry, result: dict[str, Any]) -> None:
    entry.started = result.get("started")
    entry.finished = result.get("finished")
    entry.duration_s = result.get("duration_s")
    entry.cpu_s = result.get("cpu_s")
    entry.node = result.get("node")


def _record_success(entry: SceneEntry, result: dict[str, Any], out_root: Path) -> None:
    _record_times(entry, result)
    entry.status, entry.error = "complete", None
    entry.world = result.get("world") or world_stats(_load_world_json(out_root / entry.world_dir) or {},
                                                     entry.world_dir, out_root / entry.world_dir)


def convert_task(job: dict[str, Any], convert_fn: ConvertFn | None = None) -> dict[str, Any]:
    """The body of one Ray task: convert one scene into ``job["out"]`` and describe the result.

    Never raises for conversion errors: returns ``{"ok": False, "error": {"type", "message", "traceback"}}`` so the
    driver records the message. Runs on a worker; also callable in-process (tests, debugging).
    """
    for var, value in _thread_env(job.get("cpus", 1)).items():
        os.environ.setdefault(var, value)
    started_wall = utc_now()
    started = time.perf_counter()
    started_cpu = time.process_time()  # every thread of the worker process: shows whether the task kept to its CPUs
    result: dict[str, Any] = {"name": job["name"], "started": started_wall, "node": _node_address()}
    try:
        if convert_fn is None:
            from ..convert import convert as convert_fn

        world = convert_fn(job["source"], job["out"], cameras=job.get("cameras"), config=job.get("config"),
                           preset=job.get("preset", "fast"), overwrite=True)
        out = Path(getattr(world, "path", job["out"]))
        manifest = _load_world_json(out)
        if manifest is None:
            raise OutputError(out, "conversion finished but the world directory does not load")
        result.update(ok=True, world=world_stats(manifest, job["world_dir"], out))
    except Exception as exc:  # every failure becomes a recorded error, the batch goes on
        message = str(exc) if isinstance(exc, LyraError) else f"{job['source']}: {type(exc).__name__}: {exc}"
        result.update(ok=False, error={"type": type(exc).__name__, "message": message,
                                       "traceback": traceback.format_exc()[-4000:]})
    result["finished"] = utc_now()
    result["duration_s"] = round(time.perf_counter() - started, 3)
    result["cpu_s"] = round(time.process_time() - started_cpu, 3)
    return result


def _node_address() -> str:
    try:
        import ray

        if ray.is_initialized():
            return ray.util.get_node_ip_address()
    except Exception:  # not on a Ray worker
        pass
    return socket.gethostname()


def batch_status(out_root: str | Path) -> tuple[BatchIndex, dict[str, int]]:
    """Read a batch's index: (index, counts per status).

    Raises:
        InputError: ``out_root`` is not a batch output folder or its index is corrupt.
    """
    out_root = Path(out_root)
    if not (out_root / "index.json").is_file():
        raise InputError(out_root, "is not a batch output folder (index.json missing)")
    index = BatchIndex.load(out_root)
    return index, index.counts()
