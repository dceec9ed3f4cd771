"""The converted apartment fixture (Lyra 2.0-format, with Lyra's faults) is one walkable world through its door.

The apartment's two rooms are joined by a 1.0 m x 2.1 m doorway under a lintel (lyra_isaac.synthetic.scenes).
Its reconstructed lintel is a folded sheet; the walkable map, the height map and the MuJoCo scene must all keep
the doorway open (issue 5: the demo's rooms were cut apart).
"""

from __future__ import annotations

import numpy as np
import pytest

from lyra_isaac.convert import convert
from lyra_isaac.synthetic import make_fixture
from lyra_isaac.synthetic.metrics import prediction_to_truth

CI_VIEWS = {"n_views": 24, "width": 128, "height": 72}
X_WALL, DOOR_Y = 6.0, 2.1
"""Interior wall and door centre of the apartment at size 1 (truth frame, metres)."""


@pytest.fixture(scope="module")
def apartment(tmp_path_factory):
    root = tmp_path_factory.mktemp("apartment_door")
    fixture = make_fixture("apartment", root / "scene", seed=0, **CI_VIEWS)
    world = convert(fixture.ply_path, root / "world", camera_height=fixture.eye_height_m)
    matrix = np.asarray(world.manifest.source_to_world, dtype=np.float64).reshape(4, 4)
    to_world = np.linalg.inv(prediction_to_truth(matrix, fixture))
    return fixture, world, to_world


def _to_world(points: np.ndarray, to_world: np.ndarray) -> np.ndarray:
    return np.asarray(points, dtype=np.float64) @ to_world[:3, :3].T + to_world[:3, 3]


def test_both_rooms_walkable(apartment):
    fixture, world, to_world = apartment
    hm = world.heightmap()
    probes = fixture.probes[np.abs(fixture.probes[:, 2]) < 0.02]  # main floor, seen by the cameras
    rows, cols = hm.cell_of(_to_world(probes, to_world)[:, :2])
    on_walkable = hm.walkable[rows, cols]
    for name, room in (("west", probes[:, 0] < X_WALL - 0.5), ("east", probes[:, 0] > X_WALL + 0.5)):
        assert room.sum() >= 10
        assert on_walkable[room].mean() > 0.6, f"{name} room: {on_walkable[room].mean():.0%} of probes walkable"


def test_doorway_open_in_height_map_and_mujoco(apartment):
    mujoco = pytest.importorskip("mujoco")
    _, world, to_world = apartment
    hm = world.heightmap()
    door = np.array([[X_WALL + dx, DOOR_Y + dy, 0.0] for dx in (-0.05, 0.0, 0.05) for dy in (-0.2, 0.0, 0.2)])
    door_world = _to_world(door, to_world)
    rows, cols = hm.cell_of(door_world[:, :2])
    assert np.all(np.abs(hm.heights[rows, cols] - door_world[:, 2]) < 0.05), hm.heights[rows, cols]
    assert hm.walkable[rows, cols].all()
    # a ray at knee, waist and chest height through the doorway, room to room, meets nothing in MuJoCo
    model = mujoco.MjModel.from_xml_path(str(world.file("mjcf")))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    geomid = np.zeros(1, dtype=np.int32)
    for z in (0.4, 1.0, 1.6):
        a, b = _to_world(np.array([[X_WALL - 0.8, DOOR_Y, z], [X_WALL + 0.8, DOOR_Y, z]]), to_world)
        dist = mujoco.mj_ray(model, data, a, (b - a) / np.linalg.norm(b - a), None, 1, -1, geomid)
        assert dist < 0 or dist > np.linalg.norm(b - a), f"blocked at z={z} after {dist:.2f} m"
