"""write_world_files: the writers on a thread pool give the serial writer's files, in the same manifest order; one
thread stays serial; a failing writer raises its own error after every other writer has finished."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from worlds import make_valley_world

import lyra_isaac.convert as convert_module
from lyra_isaac.convert import load_convert_config, write_world_files
from lyra_isaac.errors import OutputError
from lyra_isaac.usd.splats import read_splats


def _write(directory: Path, threads: str, monkeypatch, with_visual: bool = True) -> dict:
    monkeypatch.setenv("OMP_NUM_THREADS", threads)
    cfg = load_convert_config("fast")
    world = make_valley_world()
    if not with_visual:
        world.visual = None
    directory.mkdir()
    files = write_world_files(world, directory, cfg.usd, cfg.mjcf)
    assert world.manifest.files is files
    return files


def _tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("with_visual", [True, False])
def test_threaded_writers_give_the_serial_files(tmp_path, monkeypatch, with_visual):
    serial = _write(tmp_path / "serial", "1", monkeypatch, with_visual)
    threaded = _write(tmp_path / "threaded", "3", monkeypatch, with_visual)
    assert list(serial.items()) == list(threaded.items())  # same entries, same order
    assert list(serial)[:2] == (["collision", "visual"] if with_visual else ["collision", "heightmap"])
    one, many = _tree(tmp_path / "serial"), _tree(tmp_path / "threaded")
    assert sorted(one) == sorted(many)
    assert "previews/topdown.png" in one and "scene.xml" in one and "splats.usdc" in one
    for name in one:
        assert one[name] == many[name], name  # byte for byte
    splats = read_splats(tmp_path / "threaded" / "world.usda")  # and the USD written on a worker reads back
    np.testing.assert_allclose(splats.means, make_valley_world().splats.means, atol=1e-5)


def test_one_thread_runs_the_writers_in_order_on_the_calling_thread(tmp_path, monkeypatch):
    def no_pool(*args, **kwargs):
        raise AssertionError("a thread pool was started at OMP_NUM_THREADS=1")

    monkeypatch.setattr(convert_module, "ThreadPoolExecutor", no_pool)
    seen = []
    def spied(name, original):
        def spy(*args, **kwargs):
            seen.append((name, threading.current_thread() is threading.main_thread()))
            return original(*args, **kwargs)
        return spy

    for name in ("write_mesh_ply", "write_usd_stage", "write_mjcf_scene"):
        monkeypatch.setattr(convert_module, name, spied(name, getattr(convert_module, name)))
    original_jobs = convert_module.preview_jobs
    monkeypatch.setattr(convert_module, "preview_jobs", lambda *args: [
        spied(f"preview_{i}", job) for i, job in enumerate(original_jobs(*args))])
    _write(tmp_path / "out", "1", monkeypatch)
    assert seen == [("write_mesh_ply", True), ("write_mesh_ply", True), ("write_usd_stage", True),
                    ("write_mjcf_scene", True), *[(f"preview_{i}", True) for i in range(4)]]


def test_failing_writer_raises_its_error_after_the_others_finish(tmp_path, monkeypatch):
    finished = []
    original_jobs = convert_module.preview_jobs

    def slow(job):
        def run():
            time.sleep(0.3)  # still running when the MuJoCo writer fails
            out = job()
            finished.append("preview")
            return out
        return run

    def broken_mjcf(world, directory, cfg):
        raise OutputError(directory / "scene.xml", "disk full")

    def broken_usd(world, directory, cfg):
        raise OutputError(directory / "world.usda", "cannot save")

    monkeypatch.setattr(convert_module, "preview_jobs", lambda *args: [slow(job) for job in original_jobs(*args)])
    monkeypatch.setattr(convert_module, "write_mjcf_scene", broken_mjcf)
    with pytest.raises(OutputError, match="disk full"):
        _write(tmp_path / "one", "2", monkeypatch)
    assert finished == ["preview"] * 4  # nothing still writes into the directory after the raise
    assert len(list((tmp_path / "one" / "previews").glob("*.png"))) == 4
    # two failures: the one first in file order (USD before MuJoCo) is raised, as the serial writer would
    monkeypatch.setattr(convert_module, "write_usd_stage", broken_usd)
    with pytest.raises(OutputError, match="cannot save"):
        _write(tmp_path / "two", "2", monkeypatch)
    with pytest.raises(OutputError, match="cannot save"):
        _write(tmp_path / "three", "1", monkeypatch)


WRITE_IN_FRESH_PROCESS = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from worlds import make_valley_world
from lyra_isaac.convert import load_convert_config, write_world_files
cfg = load_convert_config("fast")
files = write_world_files(make_valley_world(), Path(sys.argv[1]), cfg.usd, cfg.mjcf)
print(sorted(files))
"""


def test_threaded_writers_in_a_fresh_process_do_not_deadlock_on_first_imports(tmp_path):
    """Nothing of USD, PIL or matplotlib imported yet: the writers' first imports on several threads at once
    deadlocked (USD's load-time initializers take the GIL under the dynamic loader's lock)."""
    import os
    import subprocess
    import sys

    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="3")
    result = subprocess.run([sys.executable, "-c", WRITE_IN_FRESH_PROCESS, str(out), str(Path(__file__).parent)],
                            capture_output=True, text=True, timeout=300, env=env, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "world.usda").is_file() and (out / "previews" / "topdown.png").is_file()
