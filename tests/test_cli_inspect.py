"""``lyra-isaac inspect``: the summary against known truth, table and JSON output, bad input, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lyra_isaac.cli import main
from lyra_isaac.splats.cameras import CameraPath
from lyra_isaac.splats.inspect import camera_coverage, inspect_scene
from lyra_isaac.splats.ply import write_ply
from lyra_isaac.splats.scene import GaussianScene

N = 2001


def known_scene() -> GaussianScene:
    """Gaussians whose statistics are known in closed form (opacity and scale evenly spread, known bounds)."""
    rng = np.random.default_rng(1)
    opacity = np.linspace(0.01, 0.99, N)
    scale = np.linspace(0.001, 0.201, N)  # largest axis; the other two are smaller
    log_scales = np.log(np.stack([scale, scale * 0.5, scale * 0.25], axis=1))
    means = rng.uniform([-1.0, -2.0, 0.5], [3.0, 1.0, 9.0], size=(N, 3))
    means[0] = [-1.0, -2.0, 0.5]
    means[1] = [3.0, 1.0, 9.0]
    quats = np.tile([1.0, 0.0, 0.0, 0.0], (N, 1))
    return GaussianScene(
        means=means.astype(np.float32),
        quats=quats.astype(np.float32),
        log_scales=rng.permutation(log_scales).astype(np.float32),
        opacity_logits=rng.permutation(np.log(opacity / (1 - opacity))).astype(np.float32),
        sh_dc=np.zeros((N, 3), np.float32),
    )


@pytest.fixture
def lyra_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "lyra_out"
    folder.mkdir()
    scene = known_scene()
    scene.means[7, 0] = np.nan  # one faulty row
    write_ply(folder / "reconstructed_scene.ply", scene, "lyra2")
    w2c = np.tile(np.eye(4), (10, 1, 1))
    w2c[:, 0, 3] = -np.arange(10) * 0.5  # camera centres at x = 0, 0.5, ... 4.5: path length 4.5
    k = np.array([[[500.0, 0, 416], [0, 500.0, 240], [0, 0, 1]]])
    np.savez(folder / "cameras.npz", w2c_render=w2c, intrinsics_render=k)
    return folder


def test_summary_known_truth(lyra_folder):
    summary = inspect_scene(lyra_folder / "reconstructed_scene.ply", cameras="auto")
    assert summary["format"] == "lyra2" and summary["encoding"] == "binary_little_endian"
    assert summary["gaussians_in_file"] == N and summary["gaussians_kept"] == N - 1
    assert summary["dropped_non_finite"] == 1 and summary["dropped_zero_quaternion"] == 0
    assert summary["sh_degree"] == 0
    assert summary["file_bytes"] == (lyra_folder / "reconstructed_scene.ply").stat().st_size
    np.testing.assert_allclose(summary["bounds"], [[-1.0, -2.0, 0.5], [3.0, 1.0, 9.0]], atol=1e-4)
    # evenly spread values: percentile p of linspace(a, b) is a + p/100 (b - a) (one row dropped: small slack)
    for p in (1, 50, 99):
        assert summary["opacity"][f"p{p}"] == pytest.approx(0.01 + p / 100 * 0.98, abs=2e-3)
        assert summary["scale"][f"p{p}"] == pytest.approx(0.001 + p / 100 * 0.2, abs=5e-4)
    assert summary["opacity"]["fraction_below_0.05"] == pytest.approx(0.04 / 0.98, abs=2e-3)
    cams = summary["cameras"]
    assert cams["count"] == 10 and (cams["width"], cams["height"]) == (832, 480)
    assert cams["image_size_from"] == "principal point"
    assert cams["path_length"] == pytest.approx(4.5)
    assert "da3_views" not in cams
    assert 0.2 < cams["gaussians_seen_fraction"] <= 1.0


def test_summary_lyra2_da3_views(lyra_folder, capsys):
    w2c = np.tile(np.eye(4, dtype=np.float32), (12, 1, 1))
    k = np.tile(np.array([[500.0, 0, 416], [0, 500.0, 240], [0, 0, 1]], np.float32), (12, 1, 1))
    np.savez(lyra_folder / "cameras.npz", w2c_render=w2c, intrinsics_vipe=k, w2c_da3=w2c[:3], intrinsics_da3=k[:3],
             indices_da3=np.array([0, 5, 11]))
    summary = inspect_scene(lyra_folder, cameras="auto")
    assert summary["cameras"]["da3_views"] == 3 and summary["cameras"]["gaussians_per_da3_view"] == round(N / 3, 1)
    assert summary["cameras"]["available_views"] == ["render", "da3"]
    assert main(["inspect", str(lyra_folder)]) == 0
    assert f"DA3 views         3 ({N / 3:,.0f} Gaussians in the file per view)" in capsys.readouterr().out
    assert main(["inspect", "--json", "--views", "da3", str(lyra_folder)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cameras"]["count"] == 3 and data["cameras"]["views"] == "da3"
    assert data["cameras"]["pose_key"] == "w2c_da3"


def test_camera_coverage_known_truth():
    k = np.array([[100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]])
    cams = CameraPath(w2c=np.eye(4)[None], intrinsics=k[None], width=100, height=100)
    # frustum at depth z: |x|, |y| < z / 2. 300 in view, 100 behind, 100 beside, 100 above
    rng = np.random.default_rng(0)
    z = rng.uniform(1, 10, 600)
    x = rng.uniform(-0.49, 0.49, 600) * z
    y = rng.uniform(-0.49, 0.49, 600) * z
    z[300:400] *= -1
    x[400:500] = z[400:500] * 0.6
    y[500:600] = -z[500:600] * 0.8
    scene = GaussianScene(means=np.stack([x, y, z], 1).astype(np.float32), quats=np.tile([1.0, 0, 0, 0], (600, 1)),
                          log_scales=np.zeros((600, 3)), opacity_logits=np.zeros(600), sh_dc=np.zeros((600, 3)))
    assert camera_coverage(scene, cams) == pytest.approx(0.5)
    turned = np.diag([-1.0, 1.0, -1.0, 1.0])  # 180 deg about Y: now sees only the 100 behind
    cams_turned = CameraPath(w2c=turned[None], intrinsics=k[None], width=100, height=100)
    assert camera_coverage(scene, cams_turned) == pytest.approx(100 / 600)
    both = CameraPath(w2c=np.stack([np.eye(4), turned]), intrinsics=k[None], width=100, height=100)
    assert camera_coverage(scene, both) == pytest.approx(400 / 600)


def test_cli_table_and_folder_input(lyra_folder, capsys):
    assert main(["inspect", str(lyra_folder)]) == 0
    out = capsys.readouterr().out
    assert f"{N - 1:,} kept of {N:,} in the file" in out
    assert "lyra2 (binary_little_endian)" in out
    assert "10 render views from" in out and "832 x 480 px (estimated from the principal point)" in out


def test_cli_json_and_camera_options(lyra_folder, tmp_path, capsys):
    ply_path = lyra_folder / "reconstructed_scene.ply"
    assert main(["inspect", "--json", "--no-cameras", str(ply_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cameras"] is None and data["gaussians_kept"] == N - 1
    other = tmp_path / "traj.npz"
    w2c = np.tile(np.eye(4), (3, 1, 1))
    np.savez(other, w2c=w2c, intrinsics=np.eye(3)[None] * [100, 100, 1], image_width=64, image_height=48)
    assert main(["inspect", "--json", "--cameras", str(other), str(ply_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cameras"]["count"] == 3 and data["cameras"]["width"] == 64


def test_low_camera_coverage_warns(lyra_folder, tmp_path, caplog):
    away = tmp_path / "away.npz"  # cameras looking along -Z: the scene (z in 0.5..9) is behind them
    np.savez(away, w2c=np.diag([-1.0, 1.0, -1.0, 1.0])[None], intrinsics=np.array([[[500.0, 0, 416], [0, 500, 240],
                                                                                    [0, 0, 1]]]))
    summary = inspect_scene(lyra_folder, cameras=away)
    assert summary["cameras"]["gaussians_seen_fraction"] == 0.0
    assert "may belong to another scene or frame" in caplog.text


def test_cli_bad_input_exit_code(lyra_folder, tmp_path, capsys):
    bad = tmp_path / "bad.ply"
    bad.write_bytes(b"solid cube\n")
    assert main(["inspect", str(bad)]) == 1
    assert f"error: {bad}: not a PLY file" in capsys.readouterr().err
    assert main(["inspect", "--strict", str(lyra_folder)]) == 1
    assert "strict mode: 1 rows with NaN/inf values" in capsys.readouterr().err
    corrupt = tmp_path / "cams.npz"
    corrupt.write_bytes(b"not a zip")
    assert main(["inspect", "--cameras", str(corrupt), str(lyra_folder)]) == 1
    assert f"error: {corrupt}: not a readable .npz archive" in capsys.readouterr().err


def test_cli_lyra1_torch_tensor(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    values = torch.zeros(1, 10, 14)
    values[0, :, 3] = 0.5  # opacity
    values[0, :, 4:7] = 0.01  # scales
    values[0, :, 7] = 1.0  # identity rotation
    values[0, :, 0] = torch.arange(10.0)
    torch.save(values, tmp_path / "gaussians_0.ply")
    assert main(["inspect", "--json", str(tmp_path / "gaussians_0.ply")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "lyra1" and data["encoding"].startswith("torch")
    assert data["gaussians_kept"] == 10 and data["bounds"][1][0] == 9.0
    assert data["opacity"]["p50"] == pytest.approx(0.5) and data["scale"]["p50"] == pytest.approx(0.01, rel=1e-4)


def test_cli_help_lists_options(capsys):
    with pytest.raises(SystemExit) as info:
        main(["inspect", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--cameras", "--no-cameras", "--views", "--json", "--strict"):
        assert option in out


def test_cli_subprocess(lyra_folder, tmp_path):
    ok = subprocess.run([sys.executable, "-m", "lyra_isaac", "inspect", "--json", str(lyra_folder)],
                        capture_output=True, text=True, timeout=120, check=False)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["gaussians_in_file"] == N
    missing = tmp_path / "missing.ply"
    bad = subprocess.run([sys.executable, "-m", "lyra_isaac", "inspect", str(missing)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 1
    assert bad.stderr.strip().endswith(f"error: {missing}: file does not exist")
