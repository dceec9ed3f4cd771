"""estimate_frame without cameras on box scenes whose largest low plane is not the floor.

A corridor's walls cover more area than its floor, and a ceiling seen in full covers more than a floor hidden under
furniture: ranking low planes by area alone stands such scenes on a wall or on their head. The scenes are points on
surfaces (5 cm apart, metres) in a source frame unrelated to Lyra's camera frame, so the source -Y prior does not
help; the contents (boxes resting on the floor) and the open space above the floor must decide.
"""

from __future__ import annotations

import numpy as np
import pytest
from splat_cases import rotation

from lyra_isaac.geometry.frame import estimate_frame

SPACING = 0.05
UP_TOLERANCE_DEG = 0.5


def _rect(rng: np.random.Generator, corner, u, v, spacing: float = SPACING) -> np.ndarray:
    """(M, 3) jittered grid on the rectangle ``corner + [0, 1] u + [0, 1] v`` (metres)."""
    corner, u, v = (np.asarray(a, dtype=np.float64) for a in (corner, u, v))
    a, b = np.meshgrid(np.arange(0, 1, spacing / np.linalg.norm(u)), np.arange(0, 1, spacing / np.linalg.norm(v)))
    pts = corner + a.reshape(-1, 1) * u + b.reshape(-1, 1) * v
    return pts + rng.normal(0, 0.003, pts.shape)


def _box(rng: np.random.Generator, lo, hi) -> np.ndarray:
    """(M, 3) points on the visible faces of a box standing on the floor: its top and four sides."""
    (x0, y0, z0), (x1, y1, z1) = lo, hi
    return np.concatenate([
        _rect(rng, (x0, y0, z1), (x1 - x0, 0, 0), (0, y1 - y0, 0)),
        _rect(rng, (x0, y0, z0), (x1 - x0, 0, 0), (0, 0, z1 - z0)),
        _rect(rng, (x0, y1, z0), (x1 - x0, 0, 0), (0, 0, z1 - z0)),
        _rect(rng, (x0, y0, z0), (0, y1 - y0, 0), (0, 0, z1 - z0)),
        _rect(rng, (x1, y0, z0), (0, y1 - y0, 0), (0, 0, z1 - z0)),
    ])


def _corridor(rng: np.random.Generator) -> np.ndarray:
    """12 x 2 m corridor, 2.6 m high (world, Z up): walls 31 m2 each, floor 24 m2, a third of the ceiling seen (the
    cameras look level or down), crates along both walls."""
    length, width, height = 12.0, 2.0, 2.6
    parts = [
        _rect(rng, (0, 0, 0), (length, 0, 0), (0, width, 0)),
        _rect(rng, (0, 0, 0), (length, 0, 0), (0, 0, height)),
        _rect(rng, (0, width, 0), (length, 0, 0), (0, 0, height)),
        _rect(rng, (0, 0, 0), (0, width, 0), (0, 0, height)),
        _rect(rng, (length, 0, 0), (0, width, 0), (0, 0, height)),
        _rect(rng, (0, 0.7, height), (length, 0, 0), (0, 0.6, 0)),
    ]
    for i, x in enumerate((1.0, 3.5, 6.5, 9.5)):
        y0 = 0.02 if i % 2 == 0 else width - 0.47
        parts.append(_box(rng, (x, y0, 0.0), (x + 0.6, y0 + 0.45, 0.5 + 0.1 * i)))
    return np.concatenate(parts)


def _furnished_room(rng: np.random.Generator) -> np.ndarray:
    """6 x 5 m room, 2.6 m high (world, Z up), with its whole ceiling seen and a third of its floor hidden under
    furniture (cabinets, beds, a table), so the ceiling is the largest low plane."""
    size_x, size_y, height = 6.0, 5.0, 2.6
    floor = _rect(rng, (0, 0, 0), (size_x, 0, 0), (0, size_y, 0))
    furniture = [((0.0, 0.0, 0.0), (2.0, 2.0, 0.6)), ((4.0, 0.0, 0.0), (6.0, 2.0, 0.9)),
                 ((0.0, 3.5, 0.0), (3.0, 5.0, 0.5)), ((3.5, 3.0, 0.0), (5.0, 4.0, 0.75))]
    hidden = np.zeros(len(floor), dtype=bool)
    for lo, hi in furniture:
        hidden |= np.all((floor[:, :2] > np.array(lo[:2])) & (floor[:, :2] < np.array(hi[:2])), axis=1)
    parts = [floor[~hidden], _rect(rng, (0, 0, height), (size_x, 0, 0), (0, size_y, 0))]
    parts += [_rect(rng, (0, 0, 0), (size_x, 0, 0), (0, 0, height)), _rect(rng, (0, size_y, 0), (size_x, 0, 0),
                                                                             (0, 0, height)),
              _rect(rng, (0, 0, 0), (0, size_y, 0), (0, 0, height)), _rect(rng, (size_x, 0, 0), (0, size_y, 0),
                                                                             (0, 0, height))]
    parts += [_box(rng, lo, hi) for lo, hi in furniture]
    return np.concatenate(parts)


def _up_error_deg(world: np.ndarray, spin: np.ndarray) -> float:
    """Up error of ``estimate_frame`` on ``world`` (N, 3) seen in the source frame ``p_src = spin @ p_world``."""
    frame = estimate_frame(world @ spin.T, None)
    true_up = spin @ np.array([0.0, 0.0, 1.0])
    return float(np.degrees(np.arccos(np.clip(frame.up_source @ true_up, -1.0, 1.0))))


@pytest.mark.parametrize("axis, angle", [((0.3, 0.2, 1.0), 120.0), ((1.0, -0.4, 0.2), 75.0)])
def test_corridor_stands_on_its_floor_not_on_a_wall(axis, angle):
    rng = np.random.default_rng(0)
    assert _up_error_deg(_corridor(rng), rotation(axis, angle)) <= UP_TOLERANCE_DEG


def test_furnished_room_stands_on_its_floor_not_on_its_ceiling():
    rng = np.random.default_rng(1)
    assert _up_error_deg(_furnished_room(rng), rotation((0.5, 1.0, -0.3), 140.0)) <= UP_TOLERANCE_DEG


def test_candidates_record_their_cues():
    rng = np.random.default_rng(0)
    spin = rotation((0.3, 0.2, 1.0), 120.0)
    frame = estimate_frame(_corridor(rng) @ spin.T, None)
    true_up = spin @ np.array([0.0, 0.0, 1.0])
    chosen = max(frame.stats["candidates"], key=lambda c: c["score"])
    assert np.degrees(np.arccos(np.clip(np.array(chosen["normal"]) @ true_up, -1, 1))) < 2.0
    walls = [c for c in frame.stats["candidates"] if abs(np.array(c["normal"]) @ true_up) < 0.1]
    assert walls and max(c["area_cells"] for c in walls) > chosen["area_cells"]  # area alone picks a wall
    assert all(chosen["contents"] > c["contents"] and chosen["open"] > c["open"] for c in walls)
    assert frame.stats["no_camera_margin"] > 0
