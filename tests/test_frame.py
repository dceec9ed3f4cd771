"""estimate_frame / estimate_scale / source_to_world_matrix against scenes with a known source_to_world."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from splat_cases import Case, room_case, rotation, terrain_case

from lyra_isaac.config import from_dict
from lyra_isaac.errors import ConfigError, ConversionError
from lyra_isaac.geometry.frame import (
    FrameConfig,
    ScaleConfig,
    estimate_frame,
    estimate_scale,
    source_to_world_matrix,
    view_groups,
)

UP_TOLERANCE_DEG = 0.5


def _up_error_deg(case: Case, up_source: np.ndarray) -> float:
    true_up = case.source_to_world[2, :3] / np.linalg.norm(case.source_to_world[2, :3])
    return float(np.degrees(np.arccos(np.clip(true_up @ up_source, -1.0, 1.0))))


def _to_world(case: Case, matrix: np.ndarray) -> np.ndarray:
    return case.scene.means.astype(np.float64) @ matrix[:3, :3].T + matrix[:3, 3]


def _yaw_offset_deg(case: Case, matrix: np.ndarray) -> float:
    """Angle of the true world +X axis in the estimated world, modulo 90 deg, in (-45, 45]."""
    true_rot = case.source_to_world[:3, :3] / np.cbrt(np.linalg.det(case.source_to_world[:3, :3]))
    est_rot = matrix[:3, :3] / np.cbrt(np.linalg.det(matrix[:3, :3]))
    x = est_rot @ true_rot.T @ np.array([1.0, 0.0, 0.0])
    angle = np.degrees(np.arctan2(x[1], x[0]))
    return float(np.mod(angle + 45.0, 90.0) - 45.0)


@pytest.mark.parametrize("tilt, yaw, scale", [(0.0, 0.0, 1.0), (4.0, 25.0, 0.7), (10.0, -40.0, 1.3)])
def test_room_with_cameras(tilt, yaw, scale):
    case = room_case(tilt_deg=tilt, yaw_deg=yaw, scale=scale, sky=0, ceiling=True, seed=int(tilt))
    frame = estimate_frame(case.scene.means, case.cameras)
    assert frame.method == "cameras+plane"
    assert _up_error_deg(case, frame.up_source) <= UP_TOLERANCE_DEG
    assert np.allclose(frame.rotation @ frame.rotation.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(frame.rotation) == pytest.approx(1.0)
    scale_est = estimate_scale(frame, case.cameras, camera_height=case.eye_height)
    assert scale_est.method == "camera_height"
    assert scale_est.factor == pytest.approx(scale, rel=0.02)
    matrix = source_to_world_matrix(frame, scale_est)
    world = _to_world(case, matrix)
    floor = world[case.labels == "floor"]
    assert abs(np.median(floor[:, 2])) < 0.01  # floor at z = 0 within 1 cm
    assert np.percentile(np.abs(floor[:, 2]), 95) < 0.02  # and level
    ceiling = world[case.labels == "ceiling"]
    assert np.median(ceiling[:, 2]) == pytest.approx(2.6, abs=0.05)  # right way up
    assert frame.stats["yaw_source"] == "walls"
    assert abs(_yaw_offset_deg(case, matrix)) < 0.5


@pytest.mark.parametrize("tilt", [3.0, 10.0])
def test_room_without_cameras_prefers_floor_over_ceiling(tilt):
    case = room_case(tilt_deg=tilt, yaw_deg=15, ceiling=True, with_cameras=False, seed=3)
    frame = estimate_frame(case.scene.means, None)
    assert frame.method == "points+plane"
    assert _up_error_deg(case, frame.up_source) <= UP_TOLERANCE_DEG
    world = _to_world(case, source_to_world_matrix(frame, 1.0))
    assert abs(np.median(world[case.labels == "floor", 2])) < 0.01
    chosen = max(frame.stats["candidates"], key=lambda c: c["score"])
    assert chosen["prior"] == 1.0  # floor and ceiling cover the same area: the source -Y prior counts


def test_no_cameras_arbitrary_frame_picks_largest_low_plane():
    case = room_case(tilt_deg=0.0, with_cameras=False, seed=4)  # floor 48 m2 > each wall
    spin = rotation((0.3, 0.2, 1.0), 120.0)  # source frame unrelated to Lyra's camera frame
    case.scene.means[:] = (case.scene.means.astype(np.float64) @ spin.T).astype(np.float32)
    case.source_to_world[:3, :3] = case.source_to_world[:3, :3] @ spin.T
    frame = estimate_frame(case.scene.means, None)
    assert _up_error_deg(case, frame.up_source) <= UP_TOLERANCE_DEG
    chosen = max(frame.stats["candidates"], key=lambda c: c["score"])
    assert chosen["area_cells"] == max(c["area_cells"] for c in frame.stats["candidates"])
    assert chosen["prior"] == 0.0


def test_no_cameras_ranks_planes_by_area_not_point_count():
    """A wall seen from near holds more points than the larger floor seen from afar (optimized 3DGS: density
    follows the training cameras); without cameras the floor is the low plane of largest *area*."""
    rng = np.random.default_rng(0)
    floor = np.c_[rng.uniform(0, 10, (10_000, 2)), np.zeros(10_000)]  # 100 m2, 100 points / m2
    wall = np.c_[np.zeros(36_000), rng.uniform(0, 10, 36_000), rng.uniform(0, 3, 36_000)]  # 30 m2, 1200 / m2
    world = np.r_[floor, wall] + rng.normal(0, 0.003, (46_000, 3))
    spin = rotation((0.3, 0.2, 1.0), 120.0)  # a source frame unrelated to Lyra's camera frame
    frame = estimate_frame(world @ spin.T, None)
    true_up = spin @ np.array([0.0, 0.0, 1.0])
    assert np.degrees(np.arccos(np.clip(frame.up_source @ true_up, -1, 1))) <= UP_TOLERANCE_DEG
    chosen = max(frame.stats["candidates"], key=lambda c: c["area_cells"])
    assert chosen["inliers"] < max(c["inliers"] for c in frame.stats["candidates"])  # fewer points, larger area


def test_terrain_with_cameras():
    case = terrain_case(tilt_deg=8.0, scale=1.0)
    frame = estimate_frame(case.scene.means, case.cameras)
    assert _up_error_deg(case, frame.up_source) <= UP_TOLERANCE_DEG
    world = _to_world(case, source_to_world_matrix(frame, 1.0))
    # the floor is the ground level under the camera path: terrain spans +-0.4 m around it
    assert -0.5 < np.percentile(world[:, 2], 1) < 0.0 < np.percentile(world[:, 2], 99) < 0.9


def test_terrain_fallback_when_no_plane():
    case = terrain_case(tilt_deg=6.0, amplitude=1.2)
    frame = estimate_frame(case.scene.means, case.cameras)
    assert frame.method == "cameras+terrain"
    assert _up_error_deg(case, frame.up_source) <= 2.0
    heights = (case.cameras.centers() @ frame.rotation.T)[:, 2] - frame.floor_height
    assert np.median(heights) == pytest.approx(case.eye_height, abs=0.25)


def test_cameras_in_another_frame_raise():
    case = room_case(tilt_deg=5.0)
    far = np.eye(4)
    far[:3, 3] = (40.0, 0.0, 40.0)
    moved = replace(case.cameras, w2c=case.cameras.w2c @ np.linalg.inv(far))  # centres 56 units away
    with pytest.raises(ConversionError, match="camera centres lie inside"):
        estimate_frame(case.scene.means, moved)
    outdoor = terrain_case(tilt_deg=3.0)
    pitch = np.eye(4)
    pitch[:3, :3] = rotation((1.0, 0.0, 0.0), -100.0)  # every camera pitched up: sees only sky
    skyward = replace(outdoor.cameras, w2c=pitch @ outdoor.cameras.w2c)
    with pytest.raises(ConversionError, match="behind the cameras"):
        estimate_frame(outdoor.scene.means, skyward)
    swapped = replace(case.cameras, w2c=case.cameras.c2w())  # c2w stored where w2c belongs
    with pytest.raises(ConversionError, match="another frame|disagree with the points|under the camera path"):
        estimate_frame(case.scene.means, swapped)


def test_cameras_above_flat_ground_are_inside():
    """Flat ground spans a few cm of height: the cameras 1.6 m above it still share its frame (the box the camera
    centres must lie in is padded by a quarter of its largest extent, not of its height)."""
    case = terrain_case(tilt_deg=0.0, amplitude=0.02)
    frame = estimate_frame(case.scene.means, case.cameras)
    assert _up_error_deg(case, frame.up_source) <= UP_TOLERANCE_DEG


def test_no_floor_raises():
    rng = np.random.default_rng(0)
    blob = rng.normal(size=(20_000, 3))  # an isotropic cloud: no plane
    with pytest.raises(ConversionError, match="no floor"):
        estimate_frame(blob, None)
    with pytest.raises(ConversionError, match="too few"):
        estimate_frame(blob[:10], None)


def test_scale_modes_and_warnings():
    case = room_case(tilt_deg=3.0, scale=0.5, eye_height=1.5)  # file units are 2x too large: eye at 3.0 units
    frame = estimate_frame(case.scene.means, case.cameras)
    kept = estimate_scale(frame, case.cameras)
    assert kept.method == "file" and kept.factor == 1.0
    assert kept.eye_height_m == pytest.approx(3.0, rel=0.01)
    assert kept.warnings and "x0.50" in kept.warnings[0]
    user = estimate_scale(frame, case.cameras, scale=0.5)
    assert user.method == "user" and user.eye_height_m == pytest.approx(1.5, rel=0.01) and not user.warnings
    narrow = estimate_scale(frame, case.cameras, ScaleConfig(eye_height_range=(1.55, 1.8)), scale=0.5)
    assert narrow.warnings
    with pytest.raises(ConfigError, match="not both"):
        estimate_scale(frame, case.cameras, scale=1.0, camera_height=1.5)
    with pytest.raises(ConfigError, match="camera_height"):
        estimate_scale(frame, case.cameras, camera_height=-1.0)
    with pytest.raises(ConversionError, match="cameras"):
        estimate_scale(frame, None, camera_height=1.5)
    assert estimate_scale(frame, None).eye_height_m is None


def test_source_to_world_maps_floor_to_zero_and_scales():
    case = room_case(tilt_deg=6.0, scale=2.0)
    frame = estimate_frame(case.scene.means, case.cameras)
    matrix = source_to_world_matrix(frame, 2.0)
    assert matrix.shape == (4, 4) and np.allclose(matrix[3], [0, 0, 0, 1])
    assert np.cbrt(np.linalg.det(matrix[:3, :3])) == pytest.approx(2.0)
    world = _to_world(case, matrix)
    assert abs(np.median(world[case.labels == "floor", 2])) < 0.01
    # distances scale by the factor
    a, b = case.scene.means[0].astype(float), case.scene.means[-1].astype(float)
    assert np.linalg.norm(world[0] - world[-1]) == pytest.approx(2.0 * np.linalg.norm(a - b), rel=1e-9)


def test_config_from_dict():
    cfg = from_dict(FrameConfig, {"ransac_threshold": 0.02, "align_walls": False})
    assert cfg.ransac_threshold == 0.02 and cfg.align_walls is False
    assert from_dict(ScaleConfig, {"eye_height_range": [1.0, 2.0]}).eye_height_range == (1.0, 2.0)


def test_per_view_patches_undo_view_offsets():
    """Each 'view' (a 1 m band in x) sits 3 cm higher than the last, like per-view depth scale errors: a global
    plane fit tilts by ~1.5 deg, surface patches cut within each view do not."""
    case = room_case(tilt_deg=6.0, yaw_deg=10.0, table=False, seed=5)
    views = np.floor(case.world_points[:, 0] + 4.0).astype(np.int32)
    true_up_src = case.source_to_world[2, :3] / np.linalg.norm(case.source_to_world[2, :3])
    shift = 0.03 * views[:, None] * true_up_src[None, :] / np.linalg.norm(case.source_to_world[:3, 0])
    means = case.scene.means + shift.astype(np.float32)
    plain = estimate_frame(means, case.cameras, FrameConfig(patch_consensus=False))
    per_view = estimate_frame(means, case.cameras, views=views)
    assert _up_error_deg(case, plain.up_source) > 0.8
    assert _up_error_deg(case, per_view.up_source) <= 0.2
    assert per_view.stats["up_from"] == "surface patches"
    assert per_view.stats["patches_horizontal"] >= 20


def test_view_groups_from_row_index():
    case = room_case(spacing=0.1)
    n = len(case.scene)
    case.scene.extra["row_index"] = np.arange(n) + 0
    case.scene.extra["rows_in_file"] = len(case.cameras) * (n // len(case.cameras))
    groups = view_groups(case.scene, case.cameras)
    per_view = n // len(case.cameras)
    assert groups[0] == 0 and groups[per_view] == 1 and groups[-1] == (n - 1) // per_view
    case.scene.extra["rows_in_file"] += 1  # not divisible by the camera count: 64 equal blocks
    assert view_groups(case.scene, case.cameras).max() == 63
    # rows in no spatial order (optimized 3DGS, shuffled files): blocks of rows would be random subsets
    shuffled = replace(case.scene, means=case.scene.means[np.random.default_rng(0).permutation(n)])
    assert view_groups(shuffled, case.cameras) is None
    del case.scene.extra["row_index"]
    assert view_groups(case.scene, case.cameras) is None
