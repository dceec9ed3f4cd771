"""Re-scaling a world to the given camera height above its fused surface (lyra_isaac.geometry.camera_height)."""

from __future__ import annotations

import numpy as np
import pytest

from lyra_isaac.geometry.camera_height import camera_height_correction, camera_heights, weighted_median
from tests.planes import grid_mesh, merge_meshes


def _floor_and_walls(step_height: float = 0.0):
    """A 8 x 4 m room: floor at z = 0 for x < 4 and at ``step_height`` beyond, walls 2.5 m high."""
    x, y, z = np.eye(3)
    parts = [grid_mesh((0, 0, 0), x, y, 4, 4), grid_mesh((4, 0, step_height), x, y, 4, 4),
             grid_mesh((0, 0, 0), x, z, 8, 2.5), grid_mesh((0, 4, 0), z, x, 2.5, 8)]
    return merge_meshes(*parts)


def _path(n: int = 12, height: float = 1.5, x0: float = 0.5, x1: float = 3.5):
    """(n, 3) camera centres walking along y = 2 at ``height`` above z = 0."""
    return np.column_stack([np.linspace(x0, x1, n), np.full(n, 2.0), np.full(n, height)])


def test_weighted_median():
    assert weighted_median(np.array([3.0, 1.0, 2.0]), np.ones(3)) == 2.0
    assert weighted_median(np.array([0.0, 1.0]), np.array([1.0, 3.0])) == 1.0
    assert weighted_median(np.array([5.0]), np.array([2.0])) == 5.0


def test_heights_above_a_floor_and_a_step():
    verts, faces = _floor_and_walls(step_height=0.2)
    centers = np.array([[1.0, 2.0, 1.6], [6.0, 2.0, 1.6], [20.0, 2.0, 1.6]])  # over the floor, the step, nothing
    heights = camera_heights(verts, faces, centers, radius=0.3, min_drop=0.75)
    np.testing.assert_allclose(heights[:2], [1.6, 1.4], atol=1e-9)
    assert np.isnan(heights[2])


def test_a_shelf_at_head_height_is_not_the_ground():
    verts, faces = _floor_and_walls()
    shelf = grid_mesh((0.8, 1.8, 1.2), np.eye(3)[0], np.eye(3)[1], 0.4, 0.4, step=0.05)  # 0.3 m under the camera
    verts, faces = merge_meshes((verts, faces), shelf)
    heights = camera_heights(verts, faces, np.array([[1.0, 2.0, 1.5]]), radius=0.3, min_drop=0.75)
    assert heights[0] == pytest.approx(1.5, abs=1e-9)


def test_a_hole_under_the_camera_is_not_measured():
    verts, faces = _floor_and_walls()
    centroids = verts[faces].mean(axis=1)
    keep = ~((np.linalg.norm(centroids[:, :2] - [1.0, 2.0], axis=1) < 0.28) & (centroids[:, 2] < 0.01))
    heights = camera_heights(verts, faces[keep], np.array([[1.0, 2.0, 1.5], [3.0, 2.0, 1.5]]), radius=0.3,
                             min_drop=0.75)
    assert np.isnan(heights[0]) and heights[1] == pytest.approx(1.5)


@pytest.mark.parametrize("true_height", [1.44, 1.5, 1.58])
def test_correction_makes_the_given_height(true_height):
    """Cameras 1.44-1.58 m above the surface, 1.5 m given: the scale about the origin makes it 1.5 m, floor at 0."""
    verts, faces = _floor_and_walls()
    centers = _path(height=true_height)
    matrix, stats = camera_height_correction(verts, faces, centers, 1.5, radius=0.3, max_change=0.1)
    assert stats["applied"] and stats["cameras_measured"] == len(centers)
    assert stats["eye_height_before_m"] == pytest.approx(true_height)
    np.testing.assert_allclose(matrix, np.diag([1.5 / true_height] * 3 + [1.0]), atol=1e-12)
    moved_verts = verts @ matrix[:3, :3].T + matrix[:3, 3]
    moved_centers = centers @ matrix[:3, :3].T + matrix[:3, 3]
    after = camera_heights(moved_verts, faces, moved_centers, radius=0.3, min_drop=0.75)
    np.testing.assert_allclose(after, 1.5, atol=1e-9)
    assert np.abs(moved_verts[verts[:, 2] == 0, 2]).max() == 0.0  # the floor stays at z = 0


def test_correction_refused_when_too_large_or_too_few_cameras():
    verts, faces = _floor_and_walls()
    matrix, stats = camera_height_correction(verts, faces, _path(height=1.8), 1.5, radius=0.3, max_change=0.05)
    assert not stats["applied"] and np.array_equal(matrix, np.eye(4))
    assert stats["eye_height_before_m"] == pytest.approx(1.8)
    # 10 of 12 cameras walk beyond the mesh: 2 measured, fewer than a third
    centers = _path(x0=5.0, x1=27.0)
    matrix, stats = camera_height_correction(verts, faces, centers, 1.5, radius=0.3, max_change=0.05)
    assert not stats["applied"] and stats["cameras_measured"] == 2 and stats["eye_height_before_m"] is None
    assert np.array_equal(matrix, np.eye(4))


def test_the_median_ignores_a_few_cameras_over_a_step():
    verts, faces = _floor_and_walls(step_height=0.3)
    centers = np.concatenate([_path(n=9, height=1.52), _path(n=3, height=1.52, x0=5.0, x1=7.0)])
    matrix, stats = camera_height_correction(verts, faces, centers, 1.5, radius=0.3, max_change=0.05)
    assert stats["applied"] and matrix[0, 0] == pytest.approx(1.5 / 1.52)
