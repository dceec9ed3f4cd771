"""lyra_isaac.world: the world directory model, world.json, mesh PLY I/O and atomic writes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from worlds import make_valley_world

from lyra_isaac.errors import InputError, OutputError
from lyra_isaac.world import (
    HeightMap,
    TriangleMesh,
    atomic_directory,
    load_world,
    read_mesh_ply,
    write_manifest,
    write_mesh_ply,
)


def test_mesh_ply_round_trip_with_colours(tmp_path):
    world = make_valley_world(with_splats=False)
    path = tmp_path / "visual.ply"
    write_mesh_ply(world.visual, path)
    back = read_mesh_ply(path)
    np.testing.assert_array_equal(back.vertices, world.visual.vertices)
    np.testing.assert_array_equal(back.faces, world.visual.faces)
    np.testing.assert_array_equal(back.colors, world.visual.colors)


@pytest.mark.parametrize(
    ("mesh", "fragment"),
    [
        (TriangleMesh(np.zeros((3, 3)), np.zeros((0, 3))), "zero faces"),
        (TriangleMesh(np.array([[0, 0, 0], [1, 0, np.nan], [0, 1, 0]]), np.array([[0, 1, 2]])), "non-finite"),
        (TriangleMesh(np.zeros((3, 3)), np.array([[0, 1, 5]])), "face indices"),
    ],
)
def test_bad_meshes_are_rejected(tmp_path, mesh, fragment):
    with pytest.raises(InputError, match=fragment):
        write_mesh_ply(mesh, tmp_path / "m.ply")


def test_manifest_round_trip_and_load_world(tmp_path):
    world = make_valley_world(with_splats=False)
    world.manifest.files = {"collision": "collision.ply", "heightmap": "heightmap.npz"}
    write_mesh_ply(world.collision, tmp_path / "collision.ply")
    world.heightmap.save(tmp_path / "heightmap.npz")
    write_manifest(world.manifest, tmp_path)
    opened = load_world(tmp_path)
    assert opened.manifest.up_axis == "Z" and opened.manifest.format_version == 1
    np.testing.assert_allclose(opened.spawn_points, world.spawn_points)
    assert opened.collision_mesh().n_triangles == world.collision.n_triangles
    hm = opened.heightmap()
    np.testing.assert_array_equal(hm.walkable, world.heightmap.walkable)
    # exact surface lookups on the analytic world
    assert hm.height_at(np.array([[0.0, 0.0]]))[0] == pytest.approx(0.0, abs=1e-6)
    assert hm.height_at(np.array([[3.0, 0.0]]))[0] == pytest.approx(0.25 * 2.0, abs=0.02)
    assert np.isnan(hm.height_at(np.array([[50.0, 0.0]]))[0])


def test_load_world_errors(tmp_path):
    with pytest.raises(InputError, match="no such directory"):
        load_world(tmp_path / "nope")
    with pytest.raises(InputError, match="world.json missing"):
        load_world(tmp_path)
    (tmp_path / "world.json").write_text("{not json")
    with pytest.raises(InputError, match="corrupt JSON"):
        load_world(tmp_path)
    (tmp_path / "world.json").write_text(json.dumps({"source": {}}))
    with pytest.raises(InputError, match="lacks required key"):
        load_world(tmp_path)


def test_heightmap_lookup_conventions():
    hm = HeightMap(origin=(0.0, 10.0), cell_size=0.5, heights=np.arange(12, dtype=np.float32).reshape(3, 4),
                   walkable=np.ones((3, 4), bool))
    # row i <-> y = 10 + 0.5 i, column j <-> x = 0.5 j
    assert hm.height_at(np.array([[1.0, 10.5]]))[0] == 6.0
    assert hm.is_walkable(np.array([[1.0, 10.5], [-3.0, 0.0]])).tolist() == [True, False]


def test_atomic_directory_complete_or_absent(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_directory(target) as temp:
        (temp / "half.txt").write_text("x")
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_directory(target) as temp:
        (temp / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1"
    with pytest.raises(OutputError, match="exists"), atomic_directory(target):
        pass
    with atomic_directory(target, overwrite=True) as temp:
        (temp / "b.txt").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only directories")
def test_atomic_directory_unwritable_parent(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="cannot create"), atomic_directory(locked / "out"):
            pass
    finally:
        locked.chmod(0o700)


def test_atomic_directory_parent_is_a_file(tmp_path):
    """Unwritable output that even root meets: the parent path is a regular file."""
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create output directory"), atomic_directory(blocker / "out"):
        pass
    assert blocker.read_text() == "x"
