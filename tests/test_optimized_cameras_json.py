"""INRIA 3DGS ``cameras.json``: reading, discovery in a model folder, bad input (lyra_isaac.splats.cameras)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lyra_isaac import load_cameras
from lyra_isaac.errors import InputError
from lyra_isaac.splats.cameras import find_cameras, load_inria_cameras


def rotation_about(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    skew = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * skew + (1 - np.cos(angle)) * skew @ skew


def inria_entry(index: int, w2c: np.ndarray, width: int, height: int, fx: float, fy: float) -> dict:
    """What INRIA's ``camera_to_JSON`` writes for a camera whose world-to-camera is ``w2c`` (4, 4).

    The reference code: ``Rt = [R^T | T]`` (= world-to-camera, COLMAP), ``W2C = inv(Rt)`` (= camera-to-world despite
    its name), ``position = W2C[:3, 3]``, ``rotation = W2C[:3, :3]`` as a list of rows.
    """
    rt = np.asarray(w2c, dtype=np.float64)
    inverse = np.linalg.inv(rt)
    return {"id": index, "img_name": f"{index:05d}", "width": width, "height": height,
            "position": inverse[:3, 3].tolist(), "rotation": [row.tolist() for row in inverse[:3, :3]],
            "fy": fy, "fx": fx}


def known_cameras(count: int = 3) -> list[np.ndarray]:
    w2cs = []
    for i in range(count):
        w2c = np.eye(4)
        w2c[:3, :3] = rotation_about([0.3, 1.0, -0.2 + 0.1 * i], 0.4 + 0.5 * i)
        w2c[:3, 3] = [0.5 - i, 1.5, 2.0 + 0.3 * i]
        w2cs.append(w2c)
    return w2cs


def write_json(path: Path, entries: list) -> Path:
    path.write_text(json.dumps(entries))
    return path


def test_round_trip_of_known_cameras(tmp_path):
    w2cs = known_cameras(3)
    entries = [inria_entry(i, w2c, 800, 600, 700.0 + i, 710.0) for i, w2c in enumerate(w2cs)]
    cams = load_cameras(write_json(tmp_path / "cameras.json", entries))
    assert len(cams) == 3 and (cams.width, cams.height) == (800, 600)
    np.testing.assert_allclose(cams.w2c, np.stack(w2cs), atol=1e-12)
    assert cams.intrinsics[1, 0, 0] == 701.0 and cams.intrinsics[1, 1, 1] == 710.0
    np.testing.assert_allclose(cams.intrinsics[:, :2, 2], [[400.0, 300.0]] * 3)
    # a world point lands where the pinhole model of the original camera puts it
    point = np.array([0.2, -0.1, 5.0])
    cam = w2cs[2][:3, :3] @ point + w2cs[2][:3, 3]
    expected = [702.0 * cam[0] / cam[2] + 400.0, 710.0 * cam[1] / cam[2] + 300.0]
    projected = cams.intrinsics[2] @ (cams.w2c[2, :3, :3] @ point + cams.w2c[2, :3, 3])
    np.testing.assert_allclose(projected[:2] / projected[2], expected, atol=1e-9)
    # position is the camera centre, rotation's columns are the camera axes in the world
    np.testing.assert_allclose(cams.centers()[0], entries[0]["position"], atol=1e-12)
    np.testing.assert_allclose(cams.axes()[2][0], np.asarray(entries[0]["rotation"])[:, 2], atol=1e-12)
    assert cams.meta["format"] == "inria_json" and cams.meta["image_names"] == ["00000", "00001", "00002"]
    assert cams.meta["available_views"] == ["render"]


def test_other_image_sizes_are_rescaled_to_the_first(tmp_path):
    w2cs = known_cameras(2)
    entries = [inria_entry(0, w2cs[0], 800, 600, 700.0, 700.0), inria_entry(1, w2cs[1], 400, 300, 350.0, 350.0)]
    cams = load_inria_cameras(write_json(tmp_path / "cameras.json", entries))
    np.testing.assert_allclose(cams.intrinsics[1], cams.intrinsics[0])


def test_da3_views_are_refused(tmp_path):
    path = write_json(tmp_path / "cameras.json", [inria_entry(0, known_cameras(1)[0], 64, 48, 50.0, 50.0)])
    with pytest.raises(InputError, match="only the training views"):
        load_cameras(path, views="da3")


def test_find_cameras_in_an_inria_model_folder(tmp_path):
    model = tmp_path / "model"
    ply = model / "point_cloud" / "iteration_30000" / "point_cloud.ply"
    ply.parent.mkdir(parents=True)
    ply.write_bytes(b"ply\n")
    assert find_cameras(ply) is None
    write_json(model / "cameras.json", [])
    assert find_cameras(ply) == model / "cameras.json"
    # a cameras.json beside the PLY wins over the model root's
    write_json(ply.parent / "cameras.json", [])
    assert find_cameras(ply) == ply.parent / "cameras.json"
    # and cameras.npz beside the PLY wins over both
    np.savez(ply.parent / "cameras.npz", w2c=np.eye(4)[None])
    assert find_cameras(ply) == ply.parent / "cameras.npz"
    # a PLY that is not in point_cloud/iteration_N does not look two folders up
    other = tmp_path / "a" / "b" / "scene.ply"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"ply\n")
    write_json(tmp_path / "cameras.json", [])
    assert find_cameras(other) is None


def good_entry() -> dict:
    return inria_entry(0, known_cameras(1)[0], 64, 48, 50.0, 50.0)


BAD_INPUTS = {
    "empty list": ([], "no cameras"),
    "not a list": ({"cameras": []}, "expected a JSON list"),
    "entry not an object": ([[1, 2, 3]], "camera 0 is a list"),
    "missing key": ([{k: v for k, v in good_entry().items() if k != "fx"}], "lacks the key.*fx"),
    "missing position": ([{k: v for k, v in good_entry().items() if k != "position"}], "lacks the key.*position"),
    "nan position": ([{**good_entry(), "position": [0.0, float("nan"), 1.0]}], "position has NaN/inf"),
    "inf focal": ([{**good_entry(), "fy": float("inf")}], "fy has NaN/inf"),
    "rotation shape": ([{**good_entry(), "rotation": [[1, 0, 0], [0, 1, 0]]}], r"rotation has shape \(2, 3\)"),
    "scaled rotation": ([{**good_entry(), "rotation": (2 * np.eye(3)).tolist()}], "not a rotation matrix"),
    "reflection": ([{**good_entry(), "rotation": np.diag([1.0, 1.0, -1.0]).tolist()}], "not a rotation matrix"),
    "text value": ([{**good_entry(), "fx": "wide"}], "fx is not numeric|fx has shape"),
    "zero width": ([{**good_entry(), "width": 0}], "width = 0.0"),
    "negative focal": ([{**good_entry(), "fx": -3.0}], "fx = -3.0"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_file_and_fault(tmp_path, case):
    content, message = BAD_INPUTS[case]
    path = write_json(tmp_path / "cameras.json", content)
    with pytest.raises(InputError, match=message) as info:
        load_cameras(path)
    assert info.value.path == path


def test_unreadable_json(tmp_path):
    path = tmp_path / "cameras.json"
    path.write_text("[{\"id\": 0,")
    with pytest.raises(InputError, match="not a readable JSON"):
        load_cameras(path)
    with pytest.raises(InputError, match="does not exist"):
        load_cameras(tmp_path / "missing.json")
