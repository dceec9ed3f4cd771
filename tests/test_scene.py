"""GaussianScene.subset: rows and row_index selected together; a selection of every row copies nothing; the parallel
row selection and the block-wise transform give the serial results."""

from __future__ import annotations

import numpy as np
import pytest

import lyra_isaac.splats.scene as scene_module
from lyra_isaac.splats.scene import GaussianScene, quat_to_rotation_matrix

FIELDS = ("means", "quats", "log_scales", "opacity_logits", "sh_dc", "sh_rest")


def _scene(n: int = 1000) -> GaussianScene:
    rng = np.random.default_rng(0)
    def f32(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    scene = GaussianScene(means=f32(n, 3), quats=f32(n, 4), log_scales=f32(n, 3), opacity_logits=f32(n),
                          sh_dc=f32(n, 3), sh_rest=f32(n, 3, 3))
    scene.extra["row_index"] = np.arange(n, dtype=np.int64) * 2 + 5
    return scene


@pytest.mark.parametrize("keep", ["mask", "indices", "int32 indices", "slice"])
def test_subset_of_every_row_shares_the_arrays(keep):
    scene = _scene()
    n = len(scene)
    keep = {"mask": np.ones(n, bool), "indices": np.arange(n), "int32 indices": np.arange(n, dtype=np.int32),
            "slice": slice(None)}[keep]
    sub = scene.subset(keep)
    assert sub is not scene and sub.extra is not scene.extra
    for name in FIELDS:
        assert getattr(sub, name) is getattr(scene, name)
    assert sub.extra["row_index"] is scene.extra["row_index"]
    sub.extra["note"] = 1  # the metadata dict is the subset's own
    assert "note" not in scene.extra


@pytest.mark.parametrize("keep", ["mask", "indices", "reordered", "near identity", "slice"])
@pytest.mark.parametrize("threads", [1, 2])
def test_subset_of_some_rows_copies_them(keep, threads, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", str(threads))
    monkeypatch.setattr(scene_module, "PARALLEL_TAKE_ROWS", 100)  # the thread pool for 1000 rows
    scene = _scene()
    n = len(scene)
    rng = np.random.default_rng(1)
    mask = rng.random(n) < 0.999
    mask[3] = False
    index = {"mask": np.flatnonzero(mask), "indices": np.flatnonzero(mask), "reordered": np.arange(n)[::-1],
             "near identity": np.r_[np.arange(n - 1), n - 1 - 1], "slice": np.arange(1, n)}[keep]
    sub = scene.subset({"mask": mask, "slice": slice(1, None)}.get(keep, index))
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(sub, name), getattr(scene, name)[index])
        assert not np.shares_memory(getattr(sub, name), getattr(scene, name))
    np.testing.assert_array_equal(sub.extra["row_index"], scene.extra["row_index"][index])


def test_subset_mask_of_wrong_shape_raises():
    with pytest.raises(IndexError):
        _scene().subset(np.ones(10, bool))


@pytest.mark.parametrize("chunk", [64, 1000, 1 << 20])
def test_transform_block_by_block_is_one_float64_pass(chunk, monkeypatch):
    monkeypatch.setattr(scene_module, "TRANSFORM_CHUNK_ROWS", chunk)
    scene = _scene()
    scene.means[:] *= 40.0  # metres far from the origin: float32 arithmetic would differ in the last bits
    angle = 0.7
    matrix = np.eye(4)
    matrix[:3, :3] = 1.3 * np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    matrix[:3, 3] = [100.25, -3.5, 7.0]
    moved = scene.transformed(matrix)
    expected = (scene.means.astype(np.float64) @ matrix[:3, :3].T + matrix[:3, 3]).astype(np.float32)
    np.testing.assert_array_equal(moved.means, expected)
    assert moved.means.dtype == np.float32 and moved.log_scales.dtype == np.float32
    np.testing.assert_allclose(moved.log_scales, scene.log_scales + np.log(1.3), rtol=0, atol=1e-6)
    # each Gaussian's orientation turned by the rotation: R(q') = R @ R(q)
    rotation = matrix[:3, :3] / 1.3
    before, after = scene.quats[::7], moved.quats[::7]
    np.testing.assert_allclose(quat_to_rotation_matrix(after), rotation @ quat_to_rotation_matrix(before), atol=1e-5)
