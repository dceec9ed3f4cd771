"""Walkable connectivity through a doorway: two rooms joined by a standard door (0.9 m x 2.0 m) under a lintel.

The walkable map must join the rooms, the height map must stay at floor level in the doorway (the MuJoCo height
field is built from it), and the MuJoCo scene must leave the doorway open. Two lintels: a clean box, and a
"folded" one as a TSDF reconstruction leaves it (a stack of thin sheets, so a downward ray meets tens of surfaces
above the floor), the door shifted across the grid by fractions of a cell.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy import ndimage

from lyra_isaac.geometry.walkable import WalkableConfig, build_heightmap
from lyra_isaac.world import HeightMap, TriangleMesh

ROOM_W, ROOM_D, CEILING, WALL = 8.0, 4.0, 2.6, 0.15
WALL_X = 4.0
DOOR_Y, DOOR_H = (1.55, 2.45), 2.0
"""A standard door: 0.9 m wide, 2.0 m high (free height above the 1.9 m a humanoid needs)."""
FOLDS = 14
ROOM_CENTRES = np.array([[2.0, 2.0], [6.0, 2.0]])


def _box(lo, hi) -> trimesh.Trimesh:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    box = trimesh.creation.box(extents=hi - lo)
    box.apply_translation((lo + hi) / 2)
    return box


def two_rooms(folded: bool, shift: float = 0.0) -> TriangleMesh:
    """Floor slab (top z = 0), ceiling slab, outer walls, an interior wall at x = WALL_X + ``shift`` with the
    doorway at DOOR_Y + ``shift`` (the grid is aligned with the outer walls: shifts move the door across cells)."""
    t = WALL / 2
    wall_x, door_y = WALL_X + shift, (DOOR_Y[0] + shift, DOOR_Y[1] + shift)
    parts = [
        _box((0, 0, -0.1), (ROOM_W, ROOM_D, 0.0)),
        _box((-t, -t, CEILING), (ROOM_W + t, ROOM_D + t, CEILING + 0.1)),
        _box((-t, -t, 0), (t, ROOM_D + t, CEILING)),
        _box((ROOM_W - t, -t, 0), (ROOM_W + t, ROOM_D + t, CEILING)),
        _box((t, -t, 0), (ROOM_W - t, t, CEILING)),
        _box((t, ROOM_D - t, 0), (ROOM_W - t, ROOM_D + t, CEILING)),
        _box((wall_x - t, t, 0), (wall_x + t, door_y[0], CEILING)),
        _box((wall_x - t, door_y[1], 0), (wall_x + t, ROOM_D - t, CEILING)),
    ]
    if folded:  # the lintel as thin sheets: each adds two surfaces to a downward ray
        edges = np.linspace(DOOR_H, CEILING, FOLDS + 1)
        parts += [_box((wall_x - t, door_y[0], z0), (wall_x + t, door_y[1], z0 + 0.4 * (z1 - z0)))
                  for z0, z1 in zip(edges[:-1], edges[1:], strict=True)]
    else:
        parts.append(_box((wall_x - t, door_y[0], DOOR_H), (wall_x + t, door_y[1], CEILING)))
    mesh = trimesh.util.concatenate(parts)
    return TriangleMesh(np.asarray(mesh.vertices), np.asarray(mesh.faces))


def _cell(hm: HeightMap, xy) -> tuple[int, int]:
    return (int(round((xy[1] - hm.origin[1]) / hm.cell_size)), int(round((xy[0] - hm.origin[0]) / hm.cell_size)))


def _doorway_cells(hm: HeightMap, shift: float) -> tuple[slice, slice]:
    """Rows and columns of the cells inside the door opening (a cell's margin off the jambs)."""
    r0, c0 = _cell(hm, (WALL_X - WALL + shift, DOOR_Y[0] + 0.1 + shift))
    r1, c1 = _cell(hm, (WALL_X + WALL + shift, DOOR_Y[1] - 0.1 + shift))
    return slice(r0, r1 + 1), slice(c0, c1 + 1)


CASES = [(folded, shift) for folded in (False, True) for shift in (0.0, 0.013, 0.026, 0.04)]


@pytest.mark.parametrize(("folded", "shift"), CASES)
def test_rooms_joined_through_doorway(folded, shift):
    hm = build_heightmap(two_rooms(folded, shift), WalkableConfig(cell_size=0.05))
    cells = [_cell(hm, c) for c in ROOM_CENTRES]
    assert all(hm.walkable[rc] for rc in cells), "both room centres are walkable"
    labels, _ = ndimage.label(hm.walkable)
    assert labels[cells[0]] == labels[cells[1]] != 0, "the rooms are one walkable region"
    rows, cols = _doorway_cells(hm, shift)
    door = hm.heights[rows, cols]
    assert door.size >= 9 and np.all(np.abs(door) < 0.02), f"doorway heights {np.nanmax(door):.2f} m above floor"
    assert hm.walkable[rows, cols].all()
    clear = hm.clearance[rows, cols]
    assert np.all((clear > DOOR_H - 0.02) & (clear < CEILING + 0.02)) and np.any(np.abs(clear - DOOR_H) < 0.02)
    # the wall beside the door still stands as a column to the ceiling, and blocks
    r, c0 = _cell(hm, (WALL_X - WALL / 2 + shift, DOOR_Y[0] - 0.5 + shift))
    c1 = _cell(hm, (WALL_X + WALL / 2 + shift, 0))[1]
    assert np.nanmax(hm.heights[r, c0:c1 + 1]) > CEILING - 0.05
    assert not hm.walkable[r, c0:c1 + 1].any()


def test_low_lintel_still_blocks():
    """A door lower than the robot's clearance height is not a passage: the rooms stay apart."""
    hm = build_heightmap(two_rooms(folded=True), WalkableConfig(cell_size=0.05, clearance_height=2.1))
    labels, _ = ndimage.label(hm.walkable)
    cells = [_cell(hm, c) for c in ROOM_CENTRES]
    assert labels[cells[0]] != labels[cells[1]]


@pytest.mark.parametrize("folded", [False, True])
def test_mujoco_scene_keeps_doorway_open(tmp_path, folded):
    """The MuJoCo scene (height field + overhang parts) lets a ray through the door and has floor in it."""
    mujoco = pytest.importorskip("mujoco")
    from lyra_isaac.mjcf.scene import write_mjcf_scene
    from lyra_isaac.world import World, WorldManifest

    shift = 0.013
    mesh = two_rooms(folded, shift)
    hm = build_heightmap(mesh, WalkableConfig(cell_size=0.05))
    spawns = np.array([[*ROOM_CENTRES[0], 0.0, 0.0], [*ROOM_CENTRES[1], 0.0, 0.0]])
    manifest = WorldManifest(
        source={"path": "analytic://two_rooms", "sha256": "0" * 64, "format": "analytic", "gaussians": 0},
        source_to_world=np.eye(4).tolist(), scale_factor=1.0, bounds=mesh.bounds().tolist(),
        walkable_area_m2=float(hm.walkable.sum() * hm.cell_size**2), spawn_points=spawns.tolist(),
        goal_points=[], files={}, stats={}, config={}, version="test")
    world = World(collision=mesh, visual=None, heightmap=hm, spawn_points=spawns, goal_points=np.zeros((0, 3)),
                  manifest=manifest)
    write_mjcf_scene(world, tmp_path)
    model = mujoco.MjModel.from_xml_path(str(tmp_path / "scene.xml"))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    geomid = np.zeros(1, dtype=np.int32)
    door_y = float(np.mean(DOOR_Y)) + shift
    for z in (0.3, 1.0, 1.8):  # knee, waist and head height through the door
        start = np.array([ROOM_CENTRES[0, 0], door_y, z])
        dist = mujoco.mj_ray(model, data, start, np.array([1.0, 0.0, 0.0]), None, 1, -1, geomid)
        assert dist < 0 or dist > ROOM_CENTRES[1, 0] - ROOM_CENTRES[0, 0], f"blocked at z={z} after {dist:.2f} m"
    down = mujoco.mj_ray(model, data, np.array([WALL_X + shift, door_y, 1.5]), np.array([0.0, 0.0, -1.0]), None, 1, -1,
                         geomid)
    assert down == pytest.approx(1.5, abs=0.03), "the floor in the doorway is at z = 0"
    # the wall beside the door blocks
    start = np.array([ROOM_CENTRES[0, 0], DOOR_Y[0] - 0.5 + shift, 1.0])
    dist = mujoco.mj_ray(model, data, start, np.array([1.0, 0.0, 0.0]), None, 1, -1, geomid)
    assert 0 < dist < WALL_X - ROOM_CENTRES[0, 0] + 0.1
