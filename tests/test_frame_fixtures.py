"""Clean + frame + scale on Lyra-exact truth fixtures (lyra_isaac.synthetic) with Lyra-harsh faults: per-view depth
scale and warp errors, depth noise, flying pixels, floaters, sky; the PLY frame tilted like a first camera."""

from __future__ import annotations

import numpy as np
import pytest

from lyra_isaac.geometry.frame import estimate_frame, estimate_scale, source_to_world_matrix
from lyra_isaac.splats.cameras import load_cameras
from lyra_isaac.splats.clean import clean_scene
from lyra_isaac.splats.ply import load_scene
from lyra_isaac.synthetic import CameraConfig, make_fixture

# Tolerances from measurements (benchmark-style runs over 3 tilts per scene, 32 views): apartment up error
# 0.35-0.67 deg, courtyard 0.07-0.27 deg, terrain 0.17-1.63 deg, corridor 1.2-3.2 deg (its floor is seen only far
# away and at grazing angles; a global-plane fit of the truly-floor points in the truth frame is itself 0.6-2.2 deg
# off). Scale error with the eye height given: within 3 % except terrain (up to 4.7 %).
CASES = [
    # scene, first-camera pitch, roll (deg), up tolerance (deg), scale tolerance, floor tolerance (m)
    pytest.param("apartment", -7.0, 4.0, 0.8, 0.04, 0.05, id="apartment"),
    pytest.param("courtyard", 3.0, -8.0, 0.5, 0.03, 0.04, id="courtyard", marks=pytest.mark.slow),
    pytest.param("terrain", -10.0, 0.0, 2.0, 0.06, 0.06, id="terrain", marks=pytest.mark.slow),
    pytest.param("corridor", -7.0, 4.0, 3.5, 0.03, 0.06, id="corridor", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name, pitch, roll, up_tol, scale_tol, floor_tol", CASES)
def test_fixture_frame_and_scale(tmp_path, name, pitch, roll, up_tol, scale_tol, floor_tol):
    fixture = make_fixture(name, tmp_path / name, n_views=24, seed=1,
                           camera=CameraConfig(first_pitch_deg=pitch, first_roll_deg=roll))
    scene = load_scene(fixture.ply_path)
    cameras = load_cameras(fixture.cameras_path)
    cleaned = clean_scene(scene, cameras)
    assert cleaned.stats["dropped"]["sky"] > 0 or not fixture.sky
    frame = estimate_frame(cleaned.geometry.means, cameras)
    truth = fixture.source_to_world
    true_up = truth[2, :3] / np.linalg.norm(truth[2, :3])
    up_error = np.degrees(np.arccos(np.clip(true_up @ frame.up_source, -1.0, 1.0)))
    assert up_error <= up_tol
    scale = estimate_scale(frame, cameras, camera_height=fixture.eye_height_m)
    assert scale.factor * fixture.scale == pytest.approx(1.0, abs=scale_tol)  # true factor is 1 / fixture.scale
    # walkable floor probes (truth world) land near z = 0 in the estimated world
    matrix = source_to_world_matrix(frame, scale)
    probes_src = np.c_[fixture.probes, np.ones(len(fixture.probes))] @ np.linalg.inv(truth).T
    z = (probes_src @ matrix.T)[:, 2]
    assert abs(np.median(z)) <= floor_tol
