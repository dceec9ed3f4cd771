"""Spawn points stand on level ground: never across a stair riser, still on ramps and as a fallback on slopes."""

from __future__ import annotations

import numpy as np

from lyra_isaac.geometry.walkable import WalkableConfig, sample_points
from lyra_isaac.world import HeightMap

CELL = 0.05
RISE, TREAD = 0.15, 0.28


def _heightmap(heights: np.ndarray) -> HeightMap:
    return HeightMap(origin=(0.0, 0.0), cell_size=CELL, heights=heights.astype(np.float32),
                     walkable=np.ones(heights.shape, bool), clearance=np.full(heights.shape, np.inf, np.float32))


def _x(shape) -> np.ndarray:
    return np.broadcast_to(np.arange(shape[1]) * CELL, shape)


def _deviation(hm: HeightMap, xy: np.ndarray, z: np.ndarray, radius: float) -> np.ndarray:
    """Largest |height - z| over the cells within ``radius`` of each point."""
    rows, cols = np.mgrid[0:hm.heights.shape[0], 0:hm.heights.shape[1]]
    out = []
    for (x, y), zz in zip(xy, z, strict=True):
        near = np.hypot(cols * CELL - x, rows * CELL - y) <= radius
        out.append(np.abs(hm.heights[near] - zz).max())
    return np.asarray(out)


def test_spawns_avoid_stair_risers():
    """A floor, a flight of 8 steps (0.15 m rise, 0.28 m tread) and a landing, all walkable."""
    shape = (121, 161)  # 6 m x 8 m
    x = _x(shape)
    steps = np.clip(np.floor((x - 2.0) / TREAD) + 1, 0, 8)
    hm = _heightmap(RISE * steps)
    cfg = WalkableConfig(num_spawn_points=40, spawn_clearance=0.3)
    spawn, goals = sample_points(hm, cfg, rng=0)
    assert len(spawn) == 40
    assert np.all(_deviation(hm, spawn[:, :2], spawn[:, 2], cfg.spawn_level_radius) <= cfg.spawn_level_tolerance)
    assert set(np.round(spawn[:, 2], 3)) <= {0.0, round(8 * RISE, 3)}  # floor and landing only
    on_stairs = (goals[:, 0] > 2.0) & (goals[:, 0] < 2.0 + 8 * TREAD)
    assert on_stairs.any(), "goals may still lie on the stairs"


def test_spawns_on_a_ramp_and_fallback_on_a_slope():
    shape = (81, 81)
    x = _x(shape)
    ramp = _heightmap(np.tan(np.radians(14.0)) * x)  # a 14 degree ramp is level enough
    spawn, _ = sample_points(ramp, WalkableConfig(num_spawn_points=8), rng=0)
    assert len(spawn) == 8
    steep = _heightmap(np.tan(np.radians(25.0)) * x)  # nothing is level: spawns anyway, with a warning
    spawn, _ = sample_points(steep, WalkableConfig(num_spawn_points=8), rng=0)
    assert len(spawn) == 8


def test_spawns_avoid_a_riser_smoothed_into_a_steep_ramp():
    """A 0.15 m step that the mesh rounded into a two-cell ramp (0, 0.075, 0.15 m): its middle cell lies within the
    level tolerance of both sides, yet a robot standing there straddles the step. No spawn within
    ``spawn_level_radius`` of it; spawns on both levels, away from it, stay."""
    shape = (81, 121)  # 4 m x 6 m
    x = _x(shape)
    heights = np.where(x < 3.0, 0.0, 0.15)
    heights = np.where(np.isclose(x, 3.0), 0.075, heights)
    hm = _heightmap(heights)
    cfg = WalkableConfig(num_spawn_points=60, spawn_clearance=0.3)
    spawn, _ = sample_points(hm, cfg, rng=0)
    assert len(spawn) == 60
    assert np.all(np.abs(spawn[:, 0] - 3.0) > cfg.spawn_level_radius - 1e-9), np.sort(np.abs(spawn[:, 0] - 3.0))[:5]
    assert set(np.round(spawn[:, 2], 3)) == {0.0, 0.15}
