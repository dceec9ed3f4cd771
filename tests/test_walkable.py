"""build_heightmap / sample_points on meshes whose surfaces, obstacles and free space are known exactly."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
import worlds

from lyra_isaac.config import from_dict
from lyra_isaac.errors import ConversionError, InputError
from lyra_isaac.geometry.walkable import WalkableConfig, build_heightmap, heightmap_stats, sample_points
from lyra_isaac.world import TriangleMesh

ROOM_X, ROOM_Y, CEILING = 10.0, 8.0, 2.6
TABLE = dict(center=(3.0, 2.0), size=(1.2, 0.8), bottom=0.70, top=0.75)
PLATFORM = dict(center=(-3.0, -2.0), size=(2.0, 2.0), bottom=0.0, top=0.15)  # a 15 cm step: walkable
CRATE = dict(center=(2.0, -2.5), size=(1.0, 1.0), bottom=0.0, top=0.5)  # too tall to step on
HOLE = dict(center=(-3.0, 2.5), size=(1.0, 1.0))  # missing floor


def _box(center, size, bottom, top) -> trimesh.Trimesh:
    box = trimesh.creation.box(extents=(size[0], size[1], top - bottom))
    box.apply_translation((center[0], center[1], (top + bottom) / 2))
    return box


def _floor_with_hole() -> trimesh.Trimesh:
    """Floor slab top at z = 0 as four boxes around the hole."""
    hx, hy = ROOM_X / 2, ROOM_Y / 2
    (cx, cy), (sx, sy) = HOLE["center"], HOLE["size"]
    x0, x1, y0, y1 = cx - sx / 2, cx + sx / 2, cy - sy / 2, cy + sy / 2
    parts = [((-hx, -hy), (x0, hy)), ((x1, -hy), (hx, hy)), ((x0, -hy), (x1, y0)), ((x0, y1), (x1, hy))]
    boxes = [_box(((a[0] + b[0]) / 2, (a[1] + b[1]) / 2), (b[0] - a[0], b[1] - a[1]), -0.1, 0.0) for a, b in parts]
    return trimesh.util.concatenate(boxes)


def room_mesh(ceiling: float = CEILING, hole: bool = True) -> TriangleMesh:
    """Closed boxes: floor slab (top z = 0, with a hole), walls, a ceiling slab, table, platform, crate."""
    hx, hy, t = ROOM_X / 2, ROOM_Y / 2, 0.1
    parts = [
        _floor_with_hole() if hole else _box((0, 0), (ROOM_X, ROOM_Y), -0.1, 0.0),
        _box((0, 0), (ROOM_X + 2 * t, ROOM_Y + 2 * t), ceiling, ceiling + t),
        _box((-hx - t / 2, 0), (t, ROOM_Y), 0.0, ceiling),
        _box((hx + t / 2, 0), (t, ROOM_Y), 0.0, ceiling),
        _box((0, -hy - t / 2), (ROOM_X + 2 * t, t), 0.0, ceiling),
        _box((0, hy + t / 2), (ROOM_X + 2 * t, t), 0.0, ceiling),
        _box(**TABLE),
        _box(**PLATFORM),
        _box(**CRATE),
    ]
    merged = trimesh.util.concatenate(parts)
    return TriangleMesh(np.asarray(merged.vertices), np.asarray(merged.faces))


def _in(box, xy, margin=0.0):
    (cx, cy), (sx, sy) = box["center"], box["size"]
    return (np.abs(xy[..., 0] - cx) <= sx / 2 + margin) & (np.abs(xy[..., 1] - cy) <= sy / 2 + margin)


@pytest.fixture(scope="module")
def room():
    return build_heightmap(room_mesh(), WalkableConfig())


def _cell_xy(hm):
    h, w = hm.heights.shape
    x = hm.origin[0] + hm.cell_size * np.arange(w)
    y = hm.origin[1] + hm.cell_size * np.arange(h)
    return np.stack(np.meshgrid(x, y), axis=-1)


def test_room_heights_are_the_top_surface_below_the_ceiling(room):
    xy = _cell_xy(room)
    inner = (np.abs(xy[..., 0]) < ROOM_X / 2 - 0.1) & (np.abs(xy[..., 1]) < ROOM_Y / 2 - 0.1)
    obstacles = _in(TABLE, xy, 0.06) | _in(PLATFORM, xy, 0.06) | _in(CRATE, xy, 0.06) | _in(HOLE, xy, 0.06)
    floor = inner & ~obstacles
    assert np.abs(room.heights[floor]).max() < 1e-3  # the floor, never the ceiling
    assert np.allclose(room.heights[_in(PLATFORM, xy, -0.06)], 0.15, atol=1e-3)
    assert np.allclose(room.heights[_in(CRATE, xy, -0.06)], 0.5, atol=1e-3)
    assert np.allclose(room.heights[_in(TABLE, xy, -0.06)], 0.75, atol=1e-3)  # table is solid in 2.5-D
    # the hole shows the ceiling slab's top (a closed slab over nothing is an exposed surface)
    assert not room.walkable[_in(HOLE, xy)].any()
    assert np.allclose(room.clearance[floor], CEILING, atol=1e-3)
    # walls stand as columns up to (just below) the ceiling
    wall = (np.abs(xy[..., 0] - ROOM_X / 2 - 0.05) < 0.02) & (np.abs(xy[..., 1]) < 3)
    assert wall.any() and (room.heights[wall] > CEILING - 0.05).all()


def test_room_walkable_mask(room):
    xy = _cell_xy(room)
    walk = room.walkable
    assert room.is_walkable(np.array([[0.0, 0.0], [-3.0, -2.0], [4.5, 3.5]])).all()  # floor, platform, corner
    for box in (TABLE, CRATE, HOLE):
        assert not walk[_in(box, xy)].any()  # under/on the table, on the crate, over the hole
    assert not walk[(np.abs(xy[..., 0]) > ROOM_X / 2) | (np.abs(xy[..., 1]) > ROOM_Y / 2)].any()  # walls, outside
    # area: the floor minus table, crate and hole footprints, minus a rim of about one cell at each edge
    expected = ROOM_X * ROOM_Y - 1.2 * 0.8 - 1.0 - 1.0
    area = heightmap_stats(room)["walkable_area_m2"]
    assert expected * 0.93 < area < expected


def test_spawn_and_goal_points(room):
    cfg = WalkableConfig(num_spawn_points=12, num_goal_points=40)
    spawn, goals = sample_points(room, cfg, np.random.default_rng(1))
    assert spawn.shape == (12, 4) and goals.shape == (40, 3)
    assert room.is_walkable(spawn[:, :2]).all() and room.is_walkable(goals[:, :2]).all()
    np.testing.assert_allclose(spawn[:, 2], room.height_at(spawn[:, :2]), atol=1e-6)
    # at least 0.5 m from walls, obstacles and the hole (exact geometry, one cell of grid tolerance)
    tol = room.cell_size
    assert (np.abs(spawn[:, 0]) <= ROOM_X / 2 - 0.5 + tol).all()
    assert (np.abs(spawn[:, 1]) <= ROOM_Y / 2 - 0.5 + tol).all()
    for box in (TABLE, CRATE, HOLE):
        assert not _in(box, spawn[:, :2], 0.5 - tol).any()
    # spread out: farthest-point sampling leaves no two spawns close together
    d = np.linalg.norm(spawn[:, None, :2] - spawn[None, :, :2], axis=-1)
    assert d[np.triu_indices(len(spawn), 1)].min() > 1.0
    assert (spawn[:, 3] >= -np.pi).all() and (spawn[:, 3] < np.pi).all()
    again, _ = sample_points(room, cfg, np.random.default_rng(1))
    np.testing.assert_array_equal(spawn, again)  # deterministic per seed


def test_open_space_yaw_faces_the_corridor():
    # a 12 m x 1.6 m corridor along x: from its middle, the longest free runs are along +-x
    t = 0.1
    parts = [_box((0, 0), (12, 1.6), -0.1, 0.0), _box((0, 0.8 + t / 2), (12, t), 0, 2.5),
             _box((0, -0.8 - t / 2), (12, t), 0, 2.5)]
    merged = trimesh.util.concatenate(parts)
    hm = build_heightmap(TriangleMesh(merged.vertices, merged.faces))
    spawn, _ = sample_points(hm, WalkableConfig(num_spawn_points=5, spawn_clearance=0.5), 0)
    assert np.all(np.abs(np.sin(spawn[:, 3])) < 0.2)  # facing along the corridor


def test_valley_world_matches_analytic_surface():
    hm = build_heightmap(worlds.make_collision_mesh(), WalkableConfig(cell_size=0.05))
    xy = _cell_xy(hm)
    # the step is sunk into the slope: where the terrain rises above its top, the terrain is the top surface
    truth = np.maximum(worlds.surface_height(xy[..., 0], xy[..., 1]), worlds.terrain_height(xy[..., 0], xy[..., 1]))
    inside = (np.abs(xy[..., 0]) < worlds.HALF_EXTENT - 0.05) & (np.abs(xy[..., 1]) < worlds.HALF_EXTENT - 0.05)
    # away from box and step edges (where a cell straddles two heights) the sample is exact
    edges = np.zeros_like(inside)
    for (cx, cy), size in ((worlds.BOX_CENTER, worlds.BOX_SIZE), (worlds.STEP_CENTER, worlds.STEP_SIZE)):
        edges |= (np.abs(np.abs(xy[..., 0] - cx) - size / 2) < 0.06) & (np.abs(xy[..., 1] - cy) < size / 2 + 0.06)
        edges |= (np.abs(np.abs(xy[..., 1] - cy) - size / 2) < 0.06) & (np.abs(xy[..., 0] - cx) < size / 2 + 0.06)
    ok = inside & ~edges
    assert np.abs(hm.heights[ok] - truth[ok]).max() < 2e-3
    # slopes of 14 deg are walkable; the floor strip and both slopes connect; the box top (0.5 m up) does not
    assert hm.is_walkable(np.array([[0.0, 0.0], [3.0, -2.0], [-3.0, 1.0]])).all()
    assert not hm.is_walkable(np.array([worlds.BOX_CENTER])).any()


def test_steep_slope_low_ceiling_and_empty_mesh_raise():
    ramp = trimesh.Trimesh(vertices=[[0, 0, 0], [4, 0, 4], [4, 4, 4], [0, 4, 0]], faces=[[0, 1, 2], [0, 2, 3]])
    with pytest.raises(ConversionError, match="no walkable area.*flat"):
        build_heightmap(TriangleMesh(ramp.vertices, ramp.faces))  # 45 deg everywhere
    low = build_heightmap(room_mesh(ceiling=1.5, hole=False))  # only the roof rim over the walls stays walkable
    xy = _cell_xy(low)
    interior = (np.abs(xy[..., 0]) < ROOM_X / 2 - 0.03) & (np.abs(xy[..., 1]) < ROOM_Y / 2 - 0.03)
    assert not low.walkable[interior].any()
    assert (low.heights[low.walkable] > 1.5).all()
    hx, hy = ROOM_X / 2, ROOM_Y / 2
    ceiling = trimesh.Trimesh(vertices=[[-hx, -hy, 1.5], [hx, -hy, 1.5], [hx, hy, 1.5], [-hx, hy, 1.5]],
                              faces=[[0, 2, 1], [0, 3, 2]])  # one-sided, facing down, like a reconstruction
    floor = _box((0, 0), (ROOM_X, ROOM_Y), -0.1, 0.0)
    merged = trimesh.util.concatenate([floor, ceiling])
    with pytest.raises(ConversionError, match="no walkable area.*0 have head clearance"):
        build_heightmap(TriangleMesh(merged.vertices, merged.faces))
    with pytest.raises(ConversionError, match="empty"):
        build_heightmap(TriangleMesh(np.zeros((0, 3)), np.zeros((0, 3))))
    broken = room_mesh()
    broken.vertices[3] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        build_heightmap(broken)


def test_narrow_area_has_no_spawn_clearance():
    strip = _box((0, 0), (6, 0.6), -0.1, 0.0)  # a 0.6 m wide plank: nowhere 0.5 m from an edge
    hm = build_heightmap(TriangleMesh(strip.vertices, strip.faces))
    with pytest.raises(ConversionError, match="spawn_clearance"):
        sample_points(hm, WalkableConfig(), 0)


def test_config_from_dict():
    cfg = from_dict(WalkableConfig, {"cell_size": 0.1, "spawn_yaw": "random", "num_spawn_points": 4})
    assert cfg.cell_size == 0.1 and cfg.spawn_yaw == "random" and cfg.num_spawn_points == 4


def test_widest_fan_of_equal_runs():
    from lyra_isaac.geometry.walkable import _middle_of_widest

    assert _middle_of_widest(np.array([1, 1, 0, 0, 1, 1, 1, 0], bool)) == 5
    assert _middle_of_widest(np.array([1, 0, 0, 0, 0, 1, 1, 1], bool)) in (6, 7)  # wraps around
    assert _middle_of_widest(np.array([0, 0, 1, 0], bool)) == 2


def test_noisy_reconstructed_floor_stays_walkable():
    """A 6 x 6 m floor with 1.5 cm vertex noise on a 5 cm grid (like a marching-cubes surface): many facets are
    steeper than 30 deg, yet the floor is walkable once normals are averaged and specks filled."""
    rng = np.random.default_rng(0)
    g = np.arange(-3.0, 3.0001, 0.05)
    gx, gy = np.meshgrid(g, g)
    vertices = np.stack([gx.ravel(), gy.ravel(), rng.normal(0, 0.015, gx.size)], axis=1)
    k = len(g)
    idx = np.arange(k * k).reshape(k, k)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel(), idx[1:, :-1].ravel()
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    mesh = TriangleMesh(vertices, faces)
    tri = vertices[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    steep = np.abs(normal[:, 2]) / np.linalg.norm(normal, axis=1) < np.cos(np.radians(30))
    assert steep.mean() > 0.05  # the noise is real
    inner = (np.abs(_cell_xy(build_heightmap(mesh))) < 2.5).all(axis=-1)
    smoothed = build_heightmap(mesh)
    raw = build_heightmap(mesh, WalkableConfig(slope_window=1, min_obstacle_area=0.0))
    assert smoothed.walkable[inner].mean() > 0.97
    assert raw.walkable[inner].mean() < smoothed.walkable[inner].mean() - 0.05
    spawn, _ = sample_points(smoothed, WalkableConfig(num_spawn_points=8), 0)
    assert len(spawn) == 8


def test_specks_are_filled_but_real_obstacles_stay():
    floor = _box((0, 0), (6, 6), -0.1, 0.0)
    pebble = _box((1.0, 1.0), (0.04, 0.04), 0.0, 0.5)  # 4 cm x 4 cm post: a speck, below min_obstacle_area
    crate = _box((-1.0, -1.0), (0.5, 0.5), 0.0, 0.5)  # a real obstacle
    merged = trimesh.util.concatenate([floor, pebble, crate])
    hm = build_heightmap(TriangleMesh(merged.vertices, merged.faces))
    assert not hm.is_walkable(np.array([[-1.0, -1.0]])).any()
    # the post rises 0.5 m: more than a step, so it stays an obstacle even though it is small
    assert not hm.is_walkable(np.array([[1.0, 1.0]])).any()
