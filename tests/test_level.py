"""Re-levelling a world from its fused surface (lyra_isaac.geometry.level): meshes with a known tilt."""

from __future__ import annotations

import numpy as np
import pytest

from lyra_isaac.geometry.level import (
    floor_pivot,
    level_rotation,
    surface_level_correction,
    surface_up,
)
from tests.planes import grid_mesh as _grid
from tests.planes import merge_meshes as _merge


def _room(floor=True, ceiling=True, walls=True):
    """A 6 x 4 x 2.5 m room (floor at z = 0) as separate planar grids."""
    x, y, z = np.eye(3)
    parts = []
    if floor:
        parts.append(_grid((0, 0, 0), x, y, 6, 4))
    if ceiling:
        parts.append(_grid((0, 0, 2.5), y, x, 4, 6))  # other winding: normal down
    if walls:
        parts += [_grid((0, 0, 0), x, z, 6, 2.5), _grid((0, 4, 0), x, z, 6, 2.5),
                  _grid((0, 0, 0), y, z, 4, 2.5), _grid((6, 0, 0), y, z, 4, 2.5)]
    return _merge(*parts)


def _rotation(axis, degrees):
    axis = np.asarray(axis, dtype=np.float64)
    axis /= np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.radians(degrees)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def _angle(a, b):
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


@pytest.mark.parametrize("parts", [dict(), dict(ceiling=False, walls=False), dict(floor=False, walls=False)])
def test_surface_up_recovers_a_known_tilt(parts):
    verts, faces = _room(**parts)
    tilt = _rotation((0.3, 1.0, 0.0), 1.7)  # the world as a frame estimate 1.7 deg off would give it
    found = surface_up(verts @ tilt.T, faces)
    true_up = tilt @ [0.0, 0.0, 1.0]
    assert _angle(found.up, true_up) < 0.01
    assert abs(found.change_deg - 1.7) < 0.01
    assert found.horizontal_area_m2 == pytest.approx(24.0 * (parts.get("floor", True) + parts.get("ceiling", True)),
                                                     rel=1e-6)


def test_surface_up_uses_walls_and_rejects_clutter():
    """Noisy faces, a sloped ramp (15 deg: outside the level selection) and tilted clutter leave the axis level."""
    rng = np.random.default_rng(0)
    verts, faces = _room(ceiling=False)
    ramp = _grid((1, 1, 0), _rotation((0, 1, 0), -15) @ [1, 0, 0], [0, 1, 0], 2, 1)
    clutter = [_grid(rng.uniform(1, 4, 3) * [1, 1, 0.3], _rotation(rng.normal(size=3), rng.uniform(4, 9)) @ [1, 0, 0],
                     _rotation(rng.normal(size=3), rng.uniform(4, 9)) @ [0, 1, 0], 0.5, 0.5) for _ in range(6)]
    verts, faces = _merge((verts, faces), ramp, *clutter)
    verts = verts + rng.normal(scale=0.004, size=verts.shape)
    tilt = _rotation((1.0, -0.4, 0.0), 0.8)
    found = surface_up(verts @ tilt.T, faces)
    assert _angle(found.up, tilt @ [0.0, 0.0, 1.0]) < 0.1  # 0.8 deg to begin with
    assert found.vertical_area_m2 > 40


def test_surface_up_subsample_matches_the_whole_mesh():
    verts, faces = _room()
    tilt = _rotation((0.0, 1.0, 0.2), 0.6)
    whole = surface_up(verts @ tilt.T, faces, max_faces=len(faces))
    part = surface_up(verts @ tilt.T, faces, max_faces=len(faces) // 5)
    assert _angle(whole.up, part.up) < 0.01
    assert part.horizontal_area_m2 == pytest.approx(whole.horizontal_area_m2, rel=0.05)


def test_no_level_surface_leaves_the_axis_and_the_correction_is_identity():
    verts, faces = _room(floor=False, ceiling=False)
    found = surface_up(verts, faces)
    assert found.horizontal_area_m2 == 0 and np.allclose(found.up, [0, 0, 1])
    correction, stats = surface_level_correction(verts, faces, cauchy_deg=2.0, max_change_deg=3.0,
                                                 min_horizontal_area_m2=1.0)
    assert np.array_equal(correction, np.eye(4)) and stats["applied"] is False


def test_level_rotation_turns_up_into_z_about_the_pivot_without_yaw():
    up = _rotation((1.0, 2.0, 0.0), 2.5) @ [0.0, 0.0, 1.0]
    pivot = np.array([3.0, -1.0, 0.0])
    m = level_rotation(up, pivot)
    r = m[:3, :3]
    assert np.allclose(r @ r.T, np.eye(3)) and np.linalg.det(r) == pytest.approx(1.0)
    assert np.allclose(r @ up, [0, 0, 1])
    assert np.allclose(m[:3, :3] @ pivot + m[:3, 3], pivot)
    side = np.cross(up, [0.0, 0.0, 1.0])  # the rotation axis itself does not move: no yaw
    assert np.allclose(r @ side, side)
    assert np.allclose(level_rotation([0, 0, 1.0], pivot), np.eye(4))


def test_correction_levels_the_floor_and_keeps_it_at_zero_near_the_pivot():
    verts, faces = _room()
    tilt = _rotation((0.0, 1.0, 0.0), 1.2)
    pivot = np.array([3.0, 2.0, 0.0])
    tilted = (verts - pivot) @ tilt.T + pivot
    correction, stats = surface_level_correction(tilted, faces, cauchy_deg=2.0, max_change_deg=3.0,
                                                 min_horizontal_area_m2=1.0)
    assert stats["applied"] and stats["change_deg"] == pytest.approx(1.2, abs=0.01)
    fixed = tilted @ correction[:3, :3].T + correction[:3, 3]
    floor = np.abs(verts[:, 2]) < 1e-9
    assert np.abs(fixed[floor, 2]).max() < 0.001  # was up to 6 cm at the room's ends
    assert np.abs(tilted[floor, 2]).max() > 0.05


def test_correction_beyond_the_limit_or_without_enough_level_area_is_not_applied():
    verts, faces = _room()
    tilted = verts @ _rotation((1.0, 0.0, 0.0), 4.0).T
    correction, stats = surface_level_correction(tilted, faces, cauchy_deg=2.0, max_change_deg=3.0,
                                                 min_horizontal_area_m2=1.0)
    assert not stats["applied"] and np.array_equal(correction, np.eye(4))
    assert stats["change_deg"] == pytest.approx(4.0, abs=0.05)  # found, reported, not applied
    _, stats = surface_level_correction(verts @ _rotation((1.0, 0.0, 0.0), 1.0).T, faces, cauchy_deg=2.0,
                                        max_change_deg=3.0, min_horizontal_area_m2=100.0)
    assert not stats["applied"]


def test_floor_pivot_is_the_median_floor_point():
    verts, faces = _room(ceiling=False)
    assert np.allclose(floor_pivot(verts + [0.0, 0.0, 0.03], faces), [3.0, 2.0, 0.03])  # walls do not count
    lifted = verts + [0.0, 0.0, 5.0]  # no floor near z = 0: the median vertex
    assert np.allclose(floor_pivot(lifted, faces), np.median(lifted, axis=0))
