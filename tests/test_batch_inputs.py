"""Batch input expansion, naming, index.json, reports and bad input, without Ray (fast)."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import numpy as np
import pytest

from lyra_isaac.batch.index import BatchIndex, SceneEntry, complete_world_dirs
from lyra_isaac.batch.inputs import assign_names, expand_inputs, hashed_name
from lyra_isaac.batch.report import write_reports
from lyra_isaac.batch.run import LOCK_NAME, _probe_address, remove_stale_temps, run_batch
from lyra_isaac.cli import main
from lyra_isaac.errors import InputError, OutputError

PLY_HEADER = b"ply\nformat binary_little_endian 1.0\nelement vertex 0\nend_header\n"


def _lyra_folder(root: Path, name: str, cameras: bool = True) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "reconstructed_scene.ply").write_bytes(PLY_HEADER)
    if cameras:
        np.savez(folder / "cameras.npz", w2c_render=np.eye(4)[None])
    return folder


def test_folders_plys_globs_and_manifests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    a = _lyra_folder(runs, "kitchen")
    b = _lyra_folder(runs, "garage", cameras=False)
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "yard.ply").write_bytes(PLY_HEADER)

    one = expand_inputs([a])
    assert [(s.base_name, s.ply_path, s.cameras_path) for s in one] == [
        ("kitchen", a / "reconstructed_scene.ply", a / "cameras.npz")]
    # A folder of scenes: its Lyra subfolders in sorted order.
    assert [s.base_name for s in expand_inputs(runs)] == ["garage", "kitchen"]
    assert expand_inputs([b])[0].cameras_path is None
    # The PLY itself, named after its folder when it is Lyra's file name.
    assert expand_inputs([a / "reconstructed_scene.ply"])[0].base_name == "kitchen"
    assert expand_inputs([loose / "yard.ply"])[0].base_name == "yard"
    # Globs, relative to the working directory.
    monkeypatch.chdir(tmp_path)
    assert [s.base_name for s in expand_inputs(["runs/*/reconstructed_scene.ply"])] == ["garage", "kitchen"]
    assert [s.base_name for s in expand_inputs(["runs/*"])] == ["garage", "kitchen"]
    # Manifest: comments, blank lines, relative paths resolved against the manifest's folder; duplicates once.
    manifest = tmp_path / "lists" / "scenes.txt"
    manifest.parent.mkdir()
    manifest.write_text("# my scenes\n../runs/kitchen   # the kitchen\n\n../loose/*.ply\n../runs/kitchen\n")
    assert [s.base_name for s in expand_inputs([manifest])] == ["kitchen", "yard"]


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        ([], "no inputs given"),
        (["missing_folder"], "no such file or folder"),
        (["nothing/*.ply"], "matches no file or folder"),
        (["empty"], "holds no reconstructed_scene.ply"),
    ],
)
def test_bad_inputs_raise_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inputs: list[str],
                                          fragment: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=fragment):
        expand_inputs(inputs)


def test_manifest_errors_name_the_line(tmp_path: Path) -> None:
    manifest = tmp_path / "list.txt"
    manifest.write_text("# header\n/does/not/exist\n")
    with pytest.raises(InputError, match=r"list.txt: line 2: /does/not/exist: no such file or folder"):
        expand_inputs([manifest])
    manifest.write_text("# only comments\n\n")
    with pytest.raises(InputError, match="manifest lists no scenes"):
        expand_inputs([manifest])


def test_duplicate_names_are_deterministic_and_never_renamed(tmp_path: Path) -> None:
    first = _lyra_folder(tmp_path / "day1", "room")
    second = _lyra_folder(tmp_path / "day2", "room")
    scenes = expand_inputs([first, second])
    names = assign_names(scenes, known={}, taken=set())
    assert names[first / "reconstructed_scene.ply"] == "room"
    assert names[second / "reconstructed_scene.ply"] == hashed_name("room", second / "reconstructed_scene.ply")
    assert names == assign_names(scenes, known={}, taken=set())  # same inputs, same names
    # A later run that lists only the second scene keeps the names the index recorded.
    second_ply, first_ply = second / "reconstructed_scene.ply", first / "reconstructed_scene.ply"
    known = {second_ply: names[second_ply], first_ply: "room"}
    assert assign_names(scenes[1:], known=known, taken={"room"}) == {
        second / "reconstructed_scene.ply": names[second / "reconstructed_scene.ply"]}
    # A folder that already exists in OUTROOT and is not ours is never reused.
    assert assign_names(scenes[:1], known={}, taken={"room"})[first / "reconstructed_scene.ply"] != "room"


def test_index_round_trip_atomic_and_schema(tmp_path: Path) -> None:
    index = BatchIndex(tmp_path)
    index.add(SceneEntry(name="a", source="/x/a", ply="/x/a/reconstructed_scene.ply", status="complete",
                         world={"walkable_area_m2": 3.5}))
    index.add(SceneEntry(name="b", source="/x/b.ply", ply="/x/b.ply", status="failed",
                         error={"type": "InputError", "message": "bad"}))
    index.save()
    data = json.loads((tmp_path / "index.json").read_text())
    assert data["format_version"] == 1
    assert [(s["name"], s["status"], s["world_dir"]) for s in data["scenes"]] == [("a", "complete", "a"),
                                                                                 ("b", "failed", "b")]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    loaded = BatchIndex.load(tmp_path)
    assert loaded.counts() == {"pending": 0, "running": 0, "complete": 1, "failed": 1}
    assert loaded.entries["a"].world == {"walkable_area_m2": 3.5}
    assert complete_world_dirs(tmp_path) == [tmp_path / "a"]
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(InputError, match="corrupt batch index"):
        BatchIndex.load(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"format_version": 99, "scenes": []}))
    with pytest.raises(InputError, match="format_version 99 is not supported"):
        BatchIndex.load(tmp_path)


def test_report_rows_thumbnails_and_errors(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "a" / "previews").mkdir(parents=True)
    Image.new("RGB", (400, 300), (10, 200, 30)).save(tmp_path / "a" / "previews" / "topdown.png")
    index = BatchIndex(tmp_path)
    index.add(SceneEntry(name="a", source="/x/a", ply="/x/a.ply", status="complete", duration_s=4.2,
                         world={"walkable_area_m2": 12.345, "spawn_points": 7, "collision_triangles": 12000,
                                "up_source": [0.0, -1.0, 0.0], "frame_method": "camera", "scale_factor": 1.0,
                                "scale_method": "file", "topdown": "a/previews/topdown.png"}))
    index.add(SceneEntry(name="b", source="/x/b.ply", ply="/x/b.ply", status="failed",
                         error={"type": "InputError", "message": "/x/b.ply: is truncated <here>"}))
    html_path, md_path = write_reports(index)
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 1
    assert "12.3" in page and "12,000" in page and "is truncated &lt;here&gt;" in page
    md = md_path.read_text()
    assert "![a](a/previews/topdown.png)" in md
    assert "| b | failed |" in md and "/x/b.ply: is truncated <here>" in md


def test_stale_temps_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".room.tmp-abc123").mkdir()
    (tmp_path / ".room.tmp-abc123" / "world.json").write_text("{}")
    (tmp_path / ".room.old-42").mkdir()
    (tmp_path / ".index.json.xyz.tmp").write_text("")
    (tmp_path / "room").mkdir()
    removed = remove_stale_temps(tmp_path)
    assert sorted(p.name for p in removed) == [".room.old-42", ".room.tmp-abc123"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["room"]


def test_run_batch_rejects_bad_output_roots(tmp_path: Path) -> None:
    scene = _lyra_folder(tmp_path, "room")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        run_batch([scene], a_file)
    with pytest.raises(OutputError, match="cannot create the output folder"):
        run_batch([scene], a_file / "out")
    with pytest.raises(OutputError, match="cannot create the output folder"):
        run_batch([scene], "/proc/lyra_isaac_batch_out")


def test_second_driver_on_the_same_out_root_is_refused(tmp_path: Path) -> None:
    scene = _lyra_folder(tmp_path, "room")
    out = tmp_path / "out"
    out.mkdir()
    with (out / LOCK_NAME).open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(OutputError, match="another batch is running"):
            run_batch([scene], out)


def test_unreachable_or_malformed_ray_address() -> None:
    from lyra_isaac.batch.run import RayConnectionError

    with pytest.raises(RayConnectionError, match=r"cannot reach the Ray cluster at 127.0.0.1:1: .*ray start --head"):
        _probe_address("127.0.0.1:1")
    with pytest.raises(RayConnectionError, match="invalid Ray address 'no-port-here'"):
        _probe_address("no-port-here")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["batch", "-o", "{out}"], "no inputs given"),
        (["batch", "{tmp}/nothing/*.ply", "-o", "{out}"], "matches no file or folder"),
        (["batch", "{scene}", "-o", "/proc/lyra_isaac_batch_out"], "cannot create the output folder"),
        (["batch", "{scene}", "-o", "{out}", "--ray-address", "127.0.0.1:1"], "cannot reach the Ray cluster"),
        (["batch", "{scene}", "-o", "{out}", "--ray-address", "ray://"], "invalid Ray address"),
        (["batch", "--status", "{tmp}"], "is not a batch output folder"),
        (["batch", "{scene}", "-o", "{out}", "--retries", "-1"], "retries must be a non-negative integer"),
    ],
)
def test_cli_bad_input_exits_1_with_one_message(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                argv: list[str], fragment: str) -> None:
    scene = _lyra_folder(tmp_path, "room")
    values = {"tmp": tmp_path, "out": tmp_path / "out", "scene": scene}
    code = main([a.format(**values) for a in argv] + ["--no-progress"] * ("--status" not in argv))
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and fragment in err
    assert err.count("error: ") == 1


FAKE_CLUSTER_SCRIPT = """
import socket, sys, threading
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(16)
threading.Thread(target=lambda: [server.accept() for _ in range(1000)], daemon=True).start()
import lyra_isaac.batch.run as run
run.RAY_CONNECT_TIMEOUT_S = 4.0
run._load_config = lambda *args, **kwargs: None  # the conversion config is not what this test is about
from lyra_isaac.cli import main
code = main(["batch", sys.argv[1], "-o", sys.argv[2], "--no-progress",
             "--ray-address", "127.0.0.1:%d" % server.getsockname()[1]])
sys.stdout.flush(); sys.stderr.flush()
import os; os._exit(code)
"""


def test_address_that_is_not_a_ray_cluster_fails_within_the_deadline(tmp_path: Path) -> None:
    """A port that accepts TCP but speaks no Ray: ray.init would retry for minutes; we give up with one message."""
    import subprocess
    import sys
    import time

    pytest.importorskip("ray")
    scene = _lyra_folder(tmp_path, "room")
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", FAKE_CLUSTER_SCRIPT, str(scene), str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and ("timed out after 4 s" in errors[0] or "cannot connect to the Ray cluster" in errors[0])
    assert time.monotonic() - start < 60
