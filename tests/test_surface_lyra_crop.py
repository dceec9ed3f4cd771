"""Lyra 2.0 crops a border off every view before writing its pixel-aligned Gaussians: the surface stage must still
recognise the pixel grid (rows = F x (H - 2 ch) x (W - 2 cw)) instead of falling back to rendering depth."""

from __future__ import annotations

import numpy as np

from lyra_isaac.geometry.depth_maps import LYRA_BORDER_CROP, pixel_grid_cameras
from lyra_isaac.geometry.surface import SurfaceConfig, make_depth_views
from lyra_isaac.splats.cameras import load_cameras
from lyra_isaac.splats.ply import load_scene, write_ply
from lyra_isaac.synthetic import make_fixture


def _crop_rows(n_views: int, height: int, width: int, crop_h: int, crop_w: int) -> np.ndarray:
    rows = np.arange(n_views * height * width).reshape(n_views, height, width)
    return rows[:, crop_h:height - crop_h, crop_w:width - crop_w].ravel()


def test_cropped_lyra_views_stay_pixel_aligned(tmp_path):
    views, height, width = 8, 72, 128
    fixture = make_fixture("corridor", tmp_path / "scene", n_views=views, width=width, height=height, seed=2)
    crop_h, crop_w = int(height * LYRA_BORDER_CROP), int(width * LYRA_BORDER_CROP)
    assert (crop_h, crop_w) == (2, 4)
    full = load_scene(fixture.ply_path)
    cropped_path = tmp_path / "cropped.ply"
    write_ply(cropped_path, full.subset(_crop_rows(views, height, width, crop_h, crop_w)), format="lyra2")
    scene = load_scene(cropped_path)
    cameras = load_cameras(fixture.cameras_path)
    assert scene.extra["rows_in_file"] == views * (height - 2 * crop_h) * (width - 2 * crop_w)

    grid = pixel_grid_cameras(scene, cameras)
    assert (grid.height, grid.width) == (height - 2 * crop_h, width - 2 * crop_w)
    np.testing.assert_allclose(grid.intrinsics[:, 0, 2], cameras.intrinsics[:, 0, 2] - crop_w)
    np.testing.assert_allclose(grid.intrinsics[:, 1, 2], cameras.intrinsics[:, 1, 2] - crop_h)

    stats: dict = {}
    depth_views = make_depth_views(scene, cameras, SurfaceConfig(), stats)
    assert stats["pixel_aligned"], stats["pixel_alignment"]
    assert depth_views.source == "pixels"
    assert depth_views.depth.shape == (views, height - 2 * crop_h, width - 2 * crop_w)


def test_full_frames_and_unrelated_counts_are_left_alone(tmp_path):
    fixture = make_fixture("corridor", tmp_path / "scene", n_views=4, width=64, height=48, seed=3)
    scene, cameras = load_scene(fixture.ply_path), load_cameras(fixture.cameras_path)
    assert pixel_grid_cameras(scene, cameras) is cameras
    odd = scene.subset(np.arange(len(scene) - 7))
    odd.extra["rows_in_file"] = len(scene) - 7  # not a multiple of the view count
    assert pixel_grid_cameras(odd, cameras) is cameras


def test_convert_extracts_the_surface_from_the_da3_views(tmp_path):
    """Lyra 2.0's cameras.npz: a render trajectory (w2c_render) and, apart from it, the DA3 views whose pixels
    became the Gaussians (w2c_da3). convert must build depth maps from the DA3 views."""
    from lyra_isaac.convert import convert

    fixture = make_fixture("corridor", tmp_path / "scene", n_views=12, width=96, height=54, seed=4)
    original = dict(np.load(fixture.cameras_path))
    w2c, intrinsics = original["w2c_render"], original["intrinsics_render"]
    np.savez(fixture.cameras_path, w2c_render=w2c[::3], intrinsics_vipe=intrinsics[::3], w2c_da3=w2c,
             intrinsics_da3=intrinsics, indices_da3=np.arange(len(w2c)))
    world = convert(fixture.ply_path, tmp_path / "world", camera_height=fixture.eye_height_m,
                    config={"walkable": {"spawn_clearance": 0.2}})
    surface = world.manifest.stats["surface"]
    assert surface["pixel_aligned"] and surface["depth_source"] == "pixels", surface.get("pixel_alignment")
    assert surface["views"] == len(w2c)
