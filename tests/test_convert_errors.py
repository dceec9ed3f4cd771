"""convert(): bad input and bad output get one clear error, a non-zero exit, and leave nothing behind."""

from __future__ import annotations

import numpy as np
import pytest

from lyra_isaac.cli import main
from lyra_isaac.convert import convert, load_convert_config, resolve_source
from lyra_isaac.errors import ConfigError, InputError, OutputError
from lyra_isaac.splats.ply import write_ply
from lyra_isaac.splats.scene import GaussianScene


def _tiny_scene(n: int = 500) -> GaussianScene:
    rng = np.random.default_rng(0)
    quats = rng.normal(size=(n, 4)).astype(np.float32)
    return GaussianScene(
        means=rng.normal(size=(n, 3)).astype(np.float32),
        quats=quats / np.linalg.norm(quats, axis=1, keepdims=True),
        log_scales=np.full((n, 3), -4, np.float32),
        opacity_logits=np.full(n, 3, np.float32),
        sh_dc=np.zeros((n, 3), np.float32),
    )


def test_missing_source(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        convert(tmp_path / "nope.ply", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_folder_without_ply(tmp_path):
    with pytest.raises(InputError, match="reconstructed_scene.ply"):
        resolve_source(tmp_path)


def test_not_a_ply(tmp_path):
    bad = tmp_path / "scene.ply"
    bad.write_bytes(b"this is not a ply file at all\n" * 10)
    with pytest.raises(InputError, match="scene.ply"):
        convert(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert main(["convert", str(bad), "-o", str(tmp_path / "out"), "--no-progress"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.ply"]


def test_existing_output_is_refused_before_any_work(tmp_path):
    ply = tmp_path / "scene.ply"
    write_ply(ply, _tiny_scene(), format="lyra2")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="exists"):
        convert(ply, out)
    assert (out / "keep.txt").read_text() == "mine"


def test_unwritable_output(tmp_path):
    ply = tmp_path / "scene.ply"
    write_ply(ply, _tiny_scene(), format="lyra2")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        convert(ply, blocker / "out")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"preset": "turbo"}, "unknown preset"),
        ({"device": "tpu"}, "unknown device"),
        ({"scale": 2.0, "camera_height": 1.6}, "either scale or camera_height"),
        ({"scale": -1.0}, "scale must be a positive number"),
        ({"config": {"surface": {"no_such_key": 1}}}, "surface.no_such_key"),
    ],
)
def test_bad_settings(tmp_path, kwargs, fragment):
    ply = tmp_path / "scene.ply"
    write_ply(ply, _tiny_scene(), format="lyra2")
    with pytest.raises(ConfigError, match=fragment):
        convert(ply, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_presets_load():
    fast, quality = load_convert_config("fast"), load_convert_config("quality")
    assert fast != quality


@pytest.mark.parametrize("threads", ["1", "2"])
def test_source_hash_serial_and_beside_loading(tmp_path, monkeypatch, threads):
    """The source's SHA-256 is the file's, whether hashed serially (one thread) or on a worker while loading."""
    import hashlib

    from lyra_isaac.convert import _hashing

    path = tmp_path / "blob.bin"
    path.write_bytes(np.random.default_rng(0).bytes(3_000_000))
    monkeypatch.setenv("OMP_NUM_THREADS", threads)
    with _hashing(path) as source_hash:
        digest = source_hash()
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
