"""Camera files: Lyra cameras.npz variants, trajectory npz, chunked keys, bad input (lyra_isaac.splats.cameras)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lyra_isaac import load_cameras
from lyra_isaac.errors import InputError
from lyra_isaac.splats.cameras import find_cameras

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TRAJECTORY = DATA / "lyra2_example0_trajectory.npz"


def orbit_w2c(frames: int, radius: float = 2.0, height: float = -1.5) -> tuple[np.ndarray, np.ndarray]:
    """(F, 4, 4) w2c of cameras on a circle (OpenCV axes, -Y up), looking at the origin; and their centres."""
    w2c = np.zeros((frames, 4, 4))
    centers = np.zeros((frames, 3))
    for i, angle in enumerate(np.linspace(0, np.pi, frames)):
        center = np.array([radius * np.sin(angle), height, -radius * np.cos(angle)])
        forward = -center / np.linalg.norm(center)
        right = np.cross([0.0, 1.0, 0.0], forward)  # x = y cross z with +Y (down) = world down
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        rotation = np.stack([right, down, forward])  # rows: camera axes in world -> world-to-camera rotation
        w2c[i, :3, :3] = rotation
        w2c[i, :3, 3] = -rotation @ center
        w2c[i, 3, 3] = 1.0
        centers[i] = center
    return w2c, centers


def intrinsics(frames: int = 1, width: int = 832, height: int = 480, focal: float = 600.0) -> np.ndarray:
    k = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
    return np.repeat(k[None], frames, axis=0)


@pytest.mark.skipif(not TRAJECTORY.exists(), reason=f"real data file {TRAJECTORY} absent")
def test_real_trajectory_file():
    cams = load_cameras(TRAJECTORY)
    assert len(cams) == 500 and (cams.width, cams.height) == (1280, 720)
    assert cams.meta == {"pose_key": "w2c", "intrinsics_key": "intrinsics", "image_size_from": "keys",
                         "inverted_c2w": False, "views": "render", "available_views": ["render"]}
    raw = np.load(TRAJECTORY)
    np.testing.assert_allclose(cams.w2c, raw["w2c"].astype(np.float64))
    np.testing.assert_allclose(cams.centers()[0], 0.0, atol=1e-3)  # first pose ~ identity
    assert cams.w2c.dtype == np.float64 and cams.intrinsics.shape == (500, 3, 3)
    assert cams.path_length() > 0


def test_lyra_cameras_npz_render_keys(tmp_path):
    w2c, centers = orbit_w2c(24)
    path = tmp_path / "cameras.npz"
    np.savez(path, w2c_render=w2c.astype(np.float32), intrinsics_render=intrinsics(1),
             intrinsics_vipe=intrinsics(24, focal=999.0), extra_thing=np.arange(3))
    cams = load_cameras(path)
    assert len(cams) == 24 and cams.meta["pose_key"] == "w2c_render"
    assert cams.meta["intrinsics_key"] == "intrinsics_render"  # preferred over vipe
    assert cams.intrinsics.shape == (24, 3, 3) and cams.intrinsics[5, 0, 0] == 600.0
    # no size keys: 2 x principal point
    assert (cams.width, cams.height) == (832, 480) and cams.meta["image_size_from"] == "principal point"
    np.testing.assert_allclose(cams.centers(), centers, atol=1e-5)
    up = cams.up_vectors()
    pitch_cos = np.sqrt(1 - (1.5 / np.hypot(2.0, 1.5)) ** 2)  # cameras look down at the origin
    np.testing.assert_allclose(up[:, 1], -pitch_cos, atol=1e-6)  # mostly -Y (world up), no roll
    np.testing.assert_allclose(cams.axes()[0][:, 1], 0.0, atol=1e-6)  # right axis level: no roll
    expected_length = np.linalg.norm(np.diff(centers, axis=0), axis=1).sum()
    assert cams.path_length() == pytest.approx(expected_length, rel=1e-6)


def lyra2_cameras_npz(path: Path, frames: int = 40, views: int = 8, vipe: bool = True) -> tuple[np.ndarray, ...]:
    """A cameras.npz with exactly the keys Lyra 2.0's vipe_da3_gs_recon.py writes (ViPE mode or not)."""
    w2c, _ = orbit_w2c(frames)
    w2c = w2c.astype(np.float32)
    k_all = intrinsics(frames, 1280, 704, focal=700.0).astype(np.float32)
    k_all[:, 0, 2] += 3.2  # ViPE principal points are not exactly centred
    idx = np.floor(np.linspace(0, frames - 1, views)).astype(np.int64)
    data = {"w2c_render": w2c, "indices_da3": idx, "fps": np.asarray([16.0], np.float32),
            "no_vipe": np.asarray([int(not vipe)], np.int32)}
    if vipe:
        data.update(w2c_vipe=w2c, intrinsics_vipe=k_all, w2c_da3=w2c[idx], intrinsics_da3=k_all[idx],
                    indices_vipe=np.arange(frames), use_da3_render_pose=np.asarray([1], np.int32))
    else:
        data.update(w2c_da3_pred=w2c[idx], intrinsics_da3_pred=k_all[idx][:1].repeat(views, 0),
                    intrinsics_render=k_all[:1].repeat(frames, 0))
    np.savez(path, **data)
    return w2c, k_all, idx


@pytest.mark.parametrize("vipe", [True, False])
def test_lyra2_cameras_npz_exact_keys(tmp_path, vipe):
    path = tmp_path / "cameras.npz"
    w2c, k_all, idx = lyra2_cameras_npz(path, vipe=vipe)
    render = load_cameras(path)
    assert len(render) == 40 and render.meta["pose_key"] == "w2c_render"
    assert render.meta["intrinsics_key"] == ("intrinsics_vipe" if vipe else "intrinsics_render")
    assert (render.width, render.height) == (1286, 704)  # 2 x principal point: an estimate, logged
    np.testing.assert_array_equal(render.meta["indices_da3"], idx)
    assert render.meta["fps"] == 16.0
    assert render.meta["available_views"] == (["render", "da3", "vipe"] if vipe else ["render", "da3"])
    da3 = load_cameras(path, views="da3")
    assert len(da3) == 8 and da3.meta["pose_key"] == ("w2c_da3" if vipe else "w2c_da3_pred")
    np.testing.assert_allclose(da3.w2c, w2c[idx].astype(np.float64))
    np.testing.assert_allclose(da3.centers(), render.centers()[idx])
    if vipe:
        assert len(load_cameras(path, views="vipe")) == 40
    else:
        with pytest.raises(InputError, match="has no vipe camera poses"):
            load_cameras(path, views="vipe")
    with pytest.raises(ValueError, match="unknown camera views"):
        load_cameras(path, views="video")


def test_intrinsics_with_wrong_count_are_skipped(tmp_path):
    w2c, _ = orbit_w2c(12)
    np.savez(tmp_path / "c.npz", w2c_render=w2c, intrinsics_da3=intrinsics(4), intrinsics_vipe=intrinsics(12))
    assert load_cameras(tmp_path / "c.npz").meta["intrinsics_key"] == "intrinsics_vipe"


@pytest.mark.parametrize("key", ["intrinsics_vipe", "intrinsics_da3"])
def test_other_intrinsics_keys(tmp_path, key):
    w2c, _ = orbit_w2c(5)
    np.savez(tmp_path / "c.npz", w2c_render=w2c, **{key: intrinsics(5, 640, 360)}, image_height=360,
             image_width=640)
    cams = load_cameras(tmp_path / "c.npz")
    assert cams.meta["intrinsics_key"] == key and (cams.width, cams.height) == (640, 360)


def test_chunked_keys_numeric_order(tmp_path):
    w2c, centers = orbit_w2c(36)
    chunks = np.array_split(np.arange(36), 12)  # 12 chunks: _10 and _11 must come after _9
    arrays = {f"w2c_render_{i}": w2c[idx] for i, idx in enumerate(chunks)}
    arrays.update({f"intrinsics_render_{i}": intrinsics(1, focal=100.0 + i) for i in range(12)})
    np.savez(tmp_path / "cameras.npz", **arrays)
    cams = load_cameras(tmp_path / "cameras.npz")
    assert len(cams) == 36 and cams.meta["pose_key"] == "w2c_render_0..11"
    np.testing.assert_allclose(cams.centers(), centers, atol=1e-9)
    # one matrix per chunk, repeated over that chunk's frames
    expected_focal = np.concatenate([np.full(len(idx), 100.0 + i) for i, idx in enumerate(chunks)])
    np.testing.assert_array_equal(cams.intrinsics[:, 0, 0], expected_focal)


def test_c2w_and_3x4_forms(tmp_path):
    w2c, centers = orbit_w2c(6)
    np.savez(tmp_path / "a.npz", c2w=np.linalg.inv(w2c), intrinsics=intrinsics(1)[0])
    cams = load_cameras(tmp_path / "a.npz")
    assert cams.meta["inverted_c2w"] is True
    np.testing.assert_allclose(cams.w2c, w2c, atol=1e-12)
    np.savez(tmp_path / "b.npz", w2c=w2c[:, :3, :], K=np.array([[600.0, 600.0, 416.0, 240.0]] * 6))
    cams = load_cameras(tmp_path / "b.npz")
    np.testing.assert_allclose(cams.w2c, w2c)
    np.testing.assert_allclose(cams.intrinsics, intrinsics(6))


def test_normalized_and_homogeneous_intrinsics(tmp_path):
    w2c, _ = orbit_w2c(4)
    k_norm = np.array([[0.9, 0, 0.5], [0, 1.6, 0.5], [0, 0, 1]])
    np.savez(tmp_path / "n.npz", w2c=w2c, intrinsics=k_norm, image_width=640, image_height=360)
    cams = load_cameras(tmp_path / "n.npz")
    np.testing.assert_allclose(cams.intrinsics[0], [[576.0, 0, 320], [0, 576.0, 180], [0, 0, 1]])
    np.savez(tmp_path / "m.npz", w2c=w2c, intrinsics=k_norm)
    with pytest.raises(InputError, match="looks normalized"):
        load_cameras(tmp_path / "m.npz")
    k4 = np.eye(4)
    k4[:3, :3] = intrinsics(1)[0] * 2.0  # homogeneous 4x4 with a projective factor of 2
    np.savez(tmp_path / "h.npz", w2c=w2c, intrinsics=np.repeat(k4[None], 4, 0))
    np.testing.assert_allclose(load_cameras(tmp_path / "h.npz").intrinsics, intrinsics(4))


def test_find_cameras(tmp_path):
    ply_path = tmp_path / "reconstructed_scene.ply"
    ply_path.write_bytes(b"ply\n")
    assert find_cameras(ply_path) is None
    (tmp_path / "reconstructed_scene_cameras.npz").write_bytes(b"x")
    assert find_cameras(ply_path) == tmp_path / "reconstructed_scene_cameras.npz"
    (tmp_path / "cameras.npz").write_bytes(b"x")
    assert find_cameras(ply_path) == tmp_path / "cameras.npz"
    assert find_cameras(tmp_path) == tmp_path / "cameras.npz"


# ------------------------------------------------------------------------------------------------ bad input


def expect_error(path: Path, pattern: str) -> None:
    with pytest.raises(InputError) as info:
        load_cameras(path)
    message = str(info.value)
    assert str(path) in message and pattern in message, message


def test_error_missing_and_corrupt(tmp_path):
    expect_error(tmp_path / "none.npz", "camera file does not exist")
    expect_error(tmp_path, "is a directory")
    (tmp_path / "junk.npz").write_bytes(b"\x00\x01garbage" * 10)
    expect_error(tmp_path / "junk.npz", "not a readable .npz archive")
    good = tmp_path / "good.npz"
    np.savez(good, w2c=orbit_w2c(3)[0], intrinsics=intrinsics(3))
    data = good.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    expect_error(tmp_path / "cut.npz", "not a readable .npz archive")
    np.save(tmp_path / "single.npy", np.eye(4))
    expect_error(tmp_path / "single.npy", "single .npy array")


def test_error_pickled_objects(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, w2c=np.array([{"pose": 1}], dtype=object), intrinsics=intrinsics(1))
    expect_error(path, "key 'w2c' cannot be read without pickle")


def test_error_no_known_keys(tmp_path):
    path = tmp_path / "k.npz"
    np.savez(path, poses=orbit_w2c(3)[0], focal=np.ones(3))
    expect_error(path, "has no render camera poses")
    expect_error(path, "keys found: poses, focal")
    np.savez(path, w2c=orbit_w2c(3)[0], focal=np.ones(3))
    expect_error(path, "has no intrinsics")


def test_error_shape_mismatch(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, w2c_render=orbit_w2c(10)[0], intrinsics_render=intrinsics(7))
    expect_error(path, "w2c_render has 10 frames but intrinsics_render has 7 intrinsics")
    np.savez(path, w2c_render=np.zeros((10, 4, 3)), intrinsics_render=intrinsics(1))
    expect_error(path, "w2c_render has shape (10, 4, 3)")
    np.savez(path, w2c_render=orbit_w2c(2)[0], intrinsics_render=np.ones((2, 2, 2)))
    expect_error(path, "intrinsics_render has shape (2, 2, 2)")


def test_error_non_finite_and_non_rigid(tmp_path):
    path = tmp_path / "r.npz"
    w2c = orbit_w2c(8)[0]
    bad = w2c.copy()
    bad[4, 0, 3] = np.nan
    np.savez(path, w2c_render=bad, intrinsics_render=intrinsics(1))
    expect_error(path, "w2c_render has NaN/inf values in 1 frames (first: frame 4)")
    bad = w2c.copy()
    bad[6, :3, :3] *= 1.5  # scaled, not rigid
    np.savez(path, w2c_render=bad, intrinsics_render=intrinsics(1))
    expect_error(path, "w2c_render is not a rigid transform in 1 frames (first: frame 6")
    bad = w2c.copy()
    bad[2, :3, 0] *= -1  # reflection
    np.savez(path, w2c_render=bad, intrinsics_render=intrinsics(1))
    expect_error(path, "(first: frame 2")
    k = intrinsics(1)
    k[0, 1, 1] = 0.0
    np.savez(path, w2c_render=w2c, intrinsics_render=k)
    expect_error(path, "intrinsics_render[0] has a non-positive focal length")
    np.savez(path, w2c_render=w2c, intrinsics_render=intrinsics(1), image_width=-3, image_height=480)
    expect_error(path, "image_width must be one positive number")
