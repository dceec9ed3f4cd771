"""Batch machinery on a real local Ray instance: partial failure, resume, retries, cancellation, moved inputs,
thread safety, and a rerun after SIGKILL of the driver.

The scenes are tiny synthetic Lyra fixtures (12 views of 64 x 48). The task function here is :func:`tiny_convert`,
a small real conversion (the real PLY reader with its real InputError on truncated files, a world directory
written atomically with world.json and a top-down PNG): it keeps these tests about the batch machinery and fast.
tests/test_batch_real.py runs the same done-when scenarios with the real ``lyra_isaac.convert.convert`` (slow).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from lyra_isaac.batch import run_batch  # noqa: E402
from lyra_isaac.batch.index import BatchIndex  # noqa: E402
from lyra_isaac.cli import main  # noqa: E402
from lyra_isaac.errors import ConfigError  # noqa: E402
from lyra_isaac.world import load_world  # noqa: E402

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the tests folder

FIXTURE_SCENES = ("apartment", "corridor", "courtyard", "terrain")
FIXTURE_KW = {"n_views": 12, "width": 64, "height": 48, "seed": 0}


def tiny_convert(source, out, *, cameras=None, config=None, preset="fast", overwrite=False, delay_s=0.0, **_):
    """A small real conversion: load the PLY (real reader, real InputError), write world.json + a top-down PNG."""
    from PIL import Image

    from lyra_isaac.splats.ply import load_scene
    from lyra_isaac.world import WorldManifest, atomic_directory, sha256_file, write_manifest

    source = Path(source)
    ply = source / "reconstructed_scene.ply" if source.is_dir() else source
    scene = load_scene(ply)
    time.sleep(delay_s)
    lo, hi = scene.means.min(axis=0), scene.means.max(axis=0)
    with atomic_directory(out, overwrite=overwrite) as temp:
        (temp / "previews").mkdir()
        Image.new("RGB", (64, 64), (40, 160, 60)).save(temp / "previews" / "topdown.png")
        manifest = WorldManifest(
            source={"path": str(ply), "sha256": sha256_file(ply), "format": scene.source_format,
                    "gaussians": len(scene)},
            source_to_world=np.eye(4).tolist(), scale_factor=1.0, bounds=[lo.tolist(), hi.tolist()],
            walkable_area_m2=float(np.prod((hi - lo)[:2])), spawn_points=[[0.0, 0.0, 0.0, 0.0]],
            files={"previews": ["previews/topdown.png"]}, stats={"collision_triangles": 2}, config={}, version="t")
        write_manifest(manifest, temp)
    return load_world(out)


def _convert_fn():
    return tiny_convert


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from lyra_isaac.synthetic import make_fixture

    root = tmp_path_factory.mktemp("batch_fixtures")
    return {name: Path(make_fixture(name, root / name, **FIXTURE_KW).ply_path).parent for name in FIXTURE_SCENES}


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the in-process tests (run_batch uses it and leaves it running)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=96 << 20,
             logging_level="WARNING")
    yield ray
    ray.shutdown()


def test_run_batch_from_a_worker_thread_starts_and_stops_its_own_ray(fixtures, tmp_path):
    """The Isaac Sim extension calls run_batch off the main thread; Ray must start, run and stop there."""
    import threading

    assert not ray.is_initialized()
    results: list = []
    thread = threading.Thread(target=lambda: results.append(
        run_batch([fixtures["apartment"]], tmp_path / "w", workers=1, convert_fn=_convert_fn())))
    thread.start()
    thread.join(300)
    assert results and results[0].exit_code == 0, results
    assert "1 scene(s): 1 complete (0 done before, 1 converted now)" in str(results[0])
    assert not ray.is_initialized()


def _truncated_copy(source_folder: Path, target: Path) -> Path:
    data = (source_folder / "reconstructed_scene.ply").read_bytes()
    target.write_bytes(data[: len(data) * 2 // 3])
    return target


def test_partial_failure_then_resume_skips_complete_worlds(local_ray, fixtures: dict[str, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    bad = _truncated_copy(fixtures["corridor"], tmp_path / "broken.ply")
    out = tmp_path / "worlds"
    inputs = [fixtures["apartment"], fixtures["courtyard"], bad]
    updates: list[tuple[str, float]] = []
    from lyra_isaac.progress import Progress

    summary = run_batch(inputs, out, retries=1, convert_fn=_convert_fn(),
                        progress=Progress(lambda text, fraction: updates.append((text, fraction))))
    assert (summary.total, summary.complete, summary.failed, summary.converted) == (3, 2, 1, 2)
    assert summary.exit_code == 3
    assert "is truncated" in summary.failures["broken"]
    assert updates[-1][1] == 1.0 and updates[-1][0].startswith("2/3 done, 1 failed, 0 left")

    index = json.loads((out / "index.json").read_text())
    entries = {e["name"]: e for e in index["scenes"]}
    assert {n: e["status"] for n, e in entries.items()} == {"apartment": "complete", "courtyard": "complete",
                                                           "broken": "failed"}
    assert entries["broken"]["attempts"] == 1  # a bad file is not retried
    assert entries["broken"]["error"]["type"] == "InputError"
    for name in ("apartment", "courtyard"):
        world = load_world(out / entries[name]["world_dir"])
        assert world.manifest.source["sha256"] == entries[name]["source_sha256"]
        assert entries[name]["world"]["walkable_area_m2"] == pytest.approx(world.manifest.walkable_area_m2)
        assert entries[name]["world"]["topdown"] == f"{name}/previews/topdown.png"
    assert not (out / "broken").exists()
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 2
    mtimes = {n: (out / n / "world.json").stat().st_mtime_ns for n in ("apartment", "courtyard")}
    assert main(["batch", "--status", str(out)]) == 3
    status = capsys.readouterr().out
    assert "3 scene(s): 0 pending, 0 running, 2 complete, 1 failed" in status
    assert "broken" in status and "is truncated" in status

    # Rerun: complete worlds are skipped, the failure is tried again (and fails again).
    again = run_batch(inputs, out, convert_fn=_convert_fn())
    assert (again.skipped, again.converted, again.failed, again.exit_code) == (2, 0, 1, 3)
    assert {n: (out / n / "world.json").stat().st_mtime_ns for n in mtimes} == mtimes

    # Fix the broken file: only it is converted; then everything is complete (exit 0).
    shutil.copy(fixtures["corridor"] / "reconstructed_scene.ply", bad)
    fixed = run_batch(inputs, out, convert_fn=_convert_fn())
    assert (fixed.skipped, fixed.converted, fixed.complete, fixed.exit_code) == (2, 1, 3, 0)
    assert {n: (out / n / "world.json").stat().st_mtime_ns for n in mtimes} == mtimes


def test_changed_source_is_converted_again_and_duplicates_get_distinct_names(local_ray, fixtures, tmp_path):
    first = tmp_path / "a" / "room"
    second = tmp_path / "b" / "room"
    shutil.copytree(fixtures["apartment"], first)
    shutil.copytree(fixtures["courtyard"], second)
    out = tmp_path / "worlds"
    summary = run_batch([first, second], out, convert_fn=_convert_fn())
    assert summary.exit_code == 0
    names = summary.names
    assert names[0] == "room" and names[1].startswith("room-") and len(set(names)) == 2
    # Replace the second scene's PLY with another scene: its world is rebuilt under the same name.
    shutil.copy(fixtures["corridor"] / "reconstructed_scene.ply", second / "reconstructed_scene.ply")
    before = (out / "room" / "world.json").stat().st_mtime_ns
    rerun = run_batch([first, second], out, convert_fn=_convert_fn())
    assert (rerun.skipped, rerun.converted, rerun.names) == (1, 1, names)
    assert (out / "room" / "world.json").stat().st_mtime_ns == before
    index = BatchIndex.load(out)
    assert load_world(out / names[1]).manifest.source["sha256"] == index.entries[names[1]].source_sha256
    # Move the first scene's folder: matched by hash, its world is kept under its name.
    moved = tmp_path / "c" / "room"
    moved.parent.mkdir()
    first.rename(moved)
    after_move = run_batch([moved, second], out, convert_fn=_convert_fn())
    assert (after_move.skipped, after_move.converted, after_move.names) == (2, 0, names)
    assert BatchIndex.load(out).entries["room"].ply == str(moved / "reconstructed_scene.ply")


def flaky_convert(source, out, **kwargs):
    """Fails on the first attempt (a transient error), converts on the second."""
    marker = Path(out).parent / f".{Path(out).name}.attempted"
    if not marker.exists():
        marker.write_text("1")
        raise RuntimeError("transient failure")
    return tiny_convert(source, out, **kwargs)


def test_transient_failures_are_retried(local_ray, fixtures, tmp_path):
    out = tmp_path / "worlds"
    summary = run_batch([fixtures["apartment"]], out, retries=1, convert_fn=flaky_convert)
    assert summary.exit_code == 0
    assert BatchIndex.load(out).entries["apartment"].attempts == 2
    out2 = tmp_path / "worlds2"
    summary = run_batch([fixtures["apartment"]], out2, retries=0, convert_fn=flaky_convert)
    assert summary.exit_code == 1
    assert "RuntimeError: transient failure" in summary.failures["apartment"]


def env_convert(source, out, **kwargs):
    """tiny_convert that also records the thread settings the task ran with."""
    world = tiny_convert(source, out, **kwargs)
    keys = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    (Path(out) / "env.json").write_text(json.dumps({k: os.environ.get(k) for k in keys}))
    return world


def test_tasks_get_their_cpu_request_and_blas_threads(local_ray, fixtures, tmp_path):
    out = tmp_path / "worlds"
    summary = run_batch([fixtures["apartment"]], out, cpus_per_task=2, memory_per_task_gb=0.75,
                        convert_fn=env_convert)
    assert summary.exit_code == 0
    assert json.loads((out / "apartment" / "env.json").read_text()) == dict.fromkeys(
        ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "2")
    entry = BatchIndex.load(out).entries["apartment"]
    assert (entry.num_cpus, entry.memory_gb) == (2, 0.75)


def test_memory_request_larger_than_any_node_is_refused(local_ray, fixtures, tmp_path):
    with pytest.raises(ConfigError, match="exceeds the memory Ray can give a task"):
        run_batch([fixtures["apartment"]], tmp_path / "w", memory_per_task_gb=10_000, convert_fn=_convert_fn())
    entry = BatchIndex.load(tmp_path / "w").entries["apartment"]
    assert entry.status == "pending"


def slow_convert(source, out, **kwargs):
    return tiny_convert(source, out, delay_s=2.0, **kwargs)


def test_cancel_through_progress_leaves_the_rest_pending(local_ray, fixtures, tmp_path):
    from lyra_isaac.errors import CancelledError
    from lyra_isaac.progress import Progress

    out = tmp_path / "worlds"
    inputs = [fixtures[name] for name in FIXTURE_SCENES]
    progress = Progress()
    progress._callback = lambda text, fraction: progress.cancel() if fraction > 0 else None
    with pytest.raises(CancelledError):
        run_batch(inputs, out, convert_fn=slow_convert, progress=progress)
    # the cancelled tasks are dead when run_batch returns: none of them writes into OUTROOT any more (each sleeps
    # 2 s before it writes), and none left a temp folder
    written = sorted(p.name for p in out.iterdir())
    assert [name for name in written if name.startswith(".") and name != ".batch.lock"] == []
    time.sleep(2.5)
    assert sorted(p.name for p in out.iterdir()) == written
    statuses = {e.name: e.status for e in BatchIndex.load(out).entries.values()}
    assert 1 <= list(statuses.values()).count("complete") < len(inputs)
    assert set(statuses.values()) == {"complete", "pending"}
    summary = run_batch(inputs, out, convert_fn=tiny_convert)
    # A task that finished its world between the cancel and Ray's kill is adopted by the rerun, not redone.
    assert summary.exit_code == 0 and summary.skipped >= list(statuses.values()).count("complete")
    assert summary.skipped + summary.converted == len(inputs) and summary.converted >= 1
    assert [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".batch.lock"] == []


DRIVER_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import test_batch
from lyra_isaac.batch import run_batch
fn = test_batch.tiny_convert
slow = lambda source, out, **kw: fn(source, out, delay_s=3.0, **kw)
summary = run_batch({inputs!r}, {out!r}, workers=1, convert_fn=slow)
sys.exit(summary.exit_code)
"""


def _driver_command(inputs: list[Path], out: Path) -> list[str]:
    """A Python driver around run_batch with a slowed-down tiny_convert, one worker."""
    script = DRIVER_SCRIPT.format(tests=str(Path(__file__).parent), inputs=[str(p) for p in inputs], out=str(out))
    return [sys.executable, "-c", textwrap.dedent(script)]


def check_sigkill_then_rerun(command: list[str], names: list[str], out: Path, timeout_s: float = 240) -> None:
    """Run ``command`` (a batch driver), SIGKILL it once the first world is complete, rerun it, and check that
    finished worlds were not redone, the rest completed, and no partial directory remains."""
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout_s
        complete: dict[str, dict] = {}
        while time.monotonic() < deadline and process.poll() is None:
            try:
                scenes = json.loads((out / "index.json").read_text())["scenes"]
            except (FileNotFoundError, json.JSONDecodeError):
                scenes = []
            complete = {e["name"]: e for e in scenes if e["status"] == "complete"}
            if complete:
                break
            time.sleep(0.1)
        assert process.poll() is None, f"driver ended early: {process.stderr.read().decode()[-2000:]}"
        assert complete, f"no world completed within {timeout_s} s"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        time.sleep(1.0)
        try:  # Ray processes the killed driver started, if any outlived it
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    done_first = {name: (out / e["world_dir"] / "world.json").stat().st_mtime_ns for name, e in complete.items()}
    assert [n for n in names if n not in done_first], "the kill came after the last world"

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    index = BatchIndex.load(out)
    assert {e.name: e.status for e in index.entries.values()} == dict.fromkeys(names, "complete")
    for name, mtime in done_first.items():  # not redone
        assert (out / name / "world.json").stat().st_mtime_ns == mtime
        assert index.entries[name].finished == complete[name]["finished"]
        assert index.entries[name].attempts == 1
    for name in names:
        load_world(out / name)
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".batch.lock"]
    assert leftovers == []


@pytest.mark.slow
def test_sigkill_driver_then_rerun_finishes_without_redoing(fixtures, tmp_path):
    inputs = [fixtures[name] for name in FIXTURE_SCENES]
    out = tmp_path / "worlds"
    check_sigkill_then_rerun(_driver_command(inputs, out), list(FIXTURE_SCENES), out)
