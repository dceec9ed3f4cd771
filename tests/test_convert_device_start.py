"""convert(device="cuda") starts torch and its CUDA context on a worker thread while the scene loads: the stages
that overlap it load no native module (first imports on two threads can hang), the surface stage waits for it, one
thread stays serial, and a missing torch fails before any work."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

import lyra_isaac.convert as convert_module
from lyra_isaac.errors import MissingDependencyError
from lyra_isaac.geometry import surface_gpu
from lyra_isaac.synthetic import make_fixture


@pytest.fixture(scope="module")
def small_scene(tmp_path_factory):
    """A Lyra-format scene of 8 views of 64 x 36 with cameras.npz, and the same PLY alone (no cameras)."""
    root = tmp_path_factory.mktemp("device_start")
    fixture = make_fixture("apartment", root / "scene", n_views=8, width=64, height=36, seed=0)
    alone = root / "alone"
    alone.mkdir()
    shutil.copy(fixture.ply_path, alone / fixture.ply_path.name)
    return fixture, alone / fixture.ply_path.name


NATIVE_MODULES_OF_THE_EARLY_STAGES = """
import json, sys
from pathlib import Path
import lyra_isaac.convert as convert_module

def native():
    return {name for name, module in list(sys.modules.items())
            if str(getattr(module, "__file__", "") or "").endswith((".so", ".pyd"))}

convert_module._import_modules(convert_module.STAGE_MODULES)
before = native()

class Reached(Exception):
    pass

def surface_stage(*args, **kwargs):
    print(json.dumps(sorted(native() - before)))
    raise Reached

convert_module.extract_surface = surface_stage
camera_height = float(sys.argv[3]) if sys.argv[3] != "none" else None
try:
    convert_module.convert(sys.argv[1], sys.argv[2], camera_height=camera_height)
except Reached:
    pass
"""


@pytest.mark.parametrize("with_cameras", [True, False])
def test_stages_before_the_surface_load_no_native_module_beyond_stage_modules(small_scene, tmp_path, with_cameras):
    """A fresh process: after STAGE_MODULES, loading, cleaning and levelling the scene import no native module, so
    the torch start-up thread never loads one at the same time as them."""
    fixture, alone = small_scene
    ply = fixture.ply_path if with_cameras else alone
    height = str(fixture.eye_height_m) if with_cameras else "none"
    env = dict(os.environ, OMP_NUM_THREADS="2")
    result = subprocess.run([sys.executable, "-c", NATIVE_MODULES_OF_THE_EARLY_STAGES, str(ply),
                             str(tmp_path / "world"), height], capture_output=True, text=True, timeout=300, env=env,
                            check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    assert not (tmp_path / "world").exists()


class Reached(Exception):
    pass


def _spy_device_start(monkeypatch, delay: float = 0.3) -> list[tuple[str, float]]:
    """Replace start_device and the GPU surface stage with spies; returns the (event, time) log they fill."""
    log: list[tuple[str, float]] = []

    def start_device(device=None):
        log.append(("start", time.perf_counter(), threading.current_thread() is threading.main_thread()))
        time.sleep(delay)
        log.append(("started", time.perf_counter(), threading.current_thread() is threading.main_thread()))

    def extract_surface(*args, **kwargs):
        log.append(("surface", time.perf_counter(), threading.current_thread() is threading.main_thread()))
        raise Reached

    monkeypatch.setattr(surface_gpu, "start_device", start_device)
    monkeypatch.setattr(surface_gpu, "extract_surface", extract_surface)
    return log


def test_cuda_starts_the_device_on_a_worker_thread_and_the_surface_stage_waits(small_scene, tmp_path, monkeypatch):
    fixture, _ = small_scene
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    log = _spy_device_start(monkeypatch, delay=0.5)
    with pytest.raises(Reached):
        convert_module.convert(fixture.ply_path, tmp_path / "world", camera_height=fixture.eye_height_m,
                               device="cuda")
    assert [event for event, _, _ in log] == ["start", "started", "surface"]
    assert not log[0][2] and not log[1][2]  # on the worker thread
    assert log[2][2] and log[2][1] >= log[1][1]  # the surface stage, on the calling thread, after the start
    assert not (tmp_path / "world").exists()


def test_cuda_on_one_thread_starts_the_device_at_the_surface_stage(small_scene, tmp_path, monkeypatch):
    fixture, _ = small_scene
    monkeypatch.setenv("OMP_NUM_THREADS", "1")

    def no_pool(*args, **kwargs):
        raise AssertionError("a thread pool was started at OMP_NUM_THREADS=1")

    monkeypatch.setattr(convert_module, "ThreadPoolExecutor", no_pool)
    log = _spy_device_start(monkeypatch, delay=0.0)
    with pytest.raises(Reached):
        convert_module.convert(fixture.ply_path, tmp_path / "world", camera_height=fixture.eye_height_m,
                               device="cuda")
    assert [(event, main) for event, _, main in log] == [("start", True), ("started", True), ("surface", True)]


def test_cuda_without_torch_fails_before_loading(small_scene, tmp_path, monkeypatch):
    fixture, _ = small_scene
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "torch" else real_find_spec(name, *args))

    def load_scene(*args, **kwargs):
        raise AssertionError("the scene was loaded although the device cannot start")

    monkeypatch.setattr(convert_module, "load_scene", load_scene)
    with pytest.raises(MissingDependencyError, match=r"torch.*lyra-isaac\[gpu\]"):
        convert_module.convert(fixture.ply_path, tmp_path / "world", device="cuda")
    assert not (tmp_path / "world").exists()


def test_a_failed_device_start_is_raised_by_the_surface_stage(small_scene, tmp_path, monkeypatch):
    fixture, _ = small_scene
    monkeypatch.setenv("OMP_NUM_THREADS", "2")

    def start_device(device=None):
        raise RuntimeError("CUDA driver initialization failed")

    monkeypatch.setattr(surface_gpu, "start_device", start_device)
    with pytest.raises(RuntimeError, match="CUDA driver initialization failed"):
        convert_module.convert(fixture.ply_path, tmp_path / "world", camera_height=fixture.eye_height_m,
                               device="cuda")
    assert not (tmp_path / "world").exists()
