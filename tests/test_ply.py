"""Splat PLY reading and writing: formats, layouts, cleaning, bad input (lyra_isaac.splats.ply).

Files are built here byte by byte with numpy (independently of the writer) unless a test is about the writer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lyra_isaac import load_scene
from lyra_isaac.errors import InputError, OutputError
from lyra_isaac.splats import ply
from lyra_isaac.splats.ply import (
    LYRA1_PROPERTIES,
    LYRA2_PROPERTIES,
    MAX_ABS_LOG_SCALE,
    PlyStreamWriter,
    read_header,
    read_ply,
    resolve_scene_path,
    write_ply,
)
from lyra_isaac.splats.scene import GaussianScene

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
INRIA_SH3 = DATA / "loadersgl_train-1000_sh3.ply"
DONUT_SH0 = DATA / "gshairlod_donut_fused_sh0.ply"
ARRAYS = ("means", "quats", "log_scales", "opacity_logits", "sh_dc")


def random_scene(n: int, sh_degree: int = 0, seed: int = 0) -> GaussianScene:
    """Random Gaussians with unit quaternions (what a reader returns)."""
    rng = np.random.default_rng(seed)
    quats = rng.normal(size=(n, 4)).astype(np.float32)
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    k = {0: 0, 1: 3, 2: 8, 3: 15}[sh_degree]
    return GaussianScene(
        means=rng.normal(scale=5.0, size=(n, 3)).astype(np.float32),
        quats=quats,
        log_scales=rng.normal(-4.0, 1.0, size=(n, 3)).astype(np.float32),
        opacity_logits=rng.normal(0.0, 3.0, size=n).astype(np.float32),
        sh_dc=rng.normal(size=(n, 3)).astype(np.float32),
        sh_rest=rng.normal(size=(n, k, 3)).astype(np.float32) if k else None,
    )


def scene_record(scene: GaussianScene, names: list[str], dtypes: dict[str, str] | None = None,
                 byte_order: str = "<") -> np.ndarray:
    """Structured array of ``scene`` with the given property names (unknown names get a ramp 0, 1, 2...)."""
    dtypes = dtypes or {}
    dtype = np.dtype([(name, byte_order + dtypes.get(name, "f4")) for name in names])
    rec = np.zeros(len(scene), dtype=dtype)
    k = scene.sh_rest.shape[1] if scene.sh_rest is not None else 0
    source = {}
    for i, axis in enumerate("xyz"):
        source[axis] = scene.means[:, i]
    for i in range(3):
        source[f"f_dc_{i}"] = scene.sh_dc[:, i]
        source[f"scale_{i}"] = scene.log_scales[:, i]
    for i in range(4):
        source[f"rot_{i}"] = scene.quats[:, i]
    source["opacity"] = scene.opacity_logits
    for c in range(3):
        for j in range(k):
            source[f"f_rest_{c * k + j}"] = scene.sh_rest[:, j, c]
    for name in names:
        rec[name] = source.get(name, np.arange(len(scene)) % 200)
    return rec


def write_raw_ply(path: Path, rec: np.ndarray, fmt: str = "binary_little_endian", before: str = "",
                  before_bytes: bytes = b"", after: str = "", after_bytes: bytes = b"",
                  header_extra: str = "", type_names: dict[str, str] | None = None) -> Path:
    """Write a PLY by hand: optional elements before / after the vertex element."""
    names = {"f4": "float", "f8": "double", "u1": "uchar", "i4": "int", "i2": "short", "u4": "uint"}
    type_names = type_names or {}
    lines = ["ply", f"format {fmt} 1.0", "comment made by test_ply"] + ([header_extra] if header_extra else [])
    if before:
        lines.append(before)
    lines.append(f"element vertex {len(rec)}")
    for name in rec.dtype.names:
        code = rec.dtype[name].str[1:]
        lines.append(f"property {type_names.get(name, names[code])} {name}")
    if after:
        lines.append(after)
    lines.append("end_header")
    with open(path, "wb") as fh:
        fh.write(("\n".join(lines) + "\n").encode("ascii"))
        fh.write(before_bytes)
        if fmt == "ascii":
            for row in rec:
                fh.write((" ".join(repr(float(v)) for v in row) + "\n").encode("ascii"))
        else:
            fh.write(rec.tobytes())
        fh.write(after_bytes)
    return path


def assert_scene_equal(a: GaussianScene, b: GaussianScene) -> None:
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    if a.sh_rest is None or b.sh_rest is None:
        assert a.sh_rest is None and b.sh_rest is None
    else:
        np.testing.assert_array_equal(a.sh_rest, b.sh_rest)


# ------------------------------------------------------------------------------------------------ real files


@pytest.mark.skipif(not INRIA_SH3.exists(), reason=f"real data file {INRIA_SH3} absent")
def test_real_inria_sh3_matches_independent_parse():
    scene = read_ply(INRIA_SH3)
    assert len(scene) == 1000 and scene.sh_degree == 3 and scene.source_format == "inria"
    header = read_header(INRIA_SH3)
    names = [p.name for p in header.element("vertex").properties]
    assert len(names) == 62
    raw = np.fromfile(INRIA_SH3, dtype=np.dtype([(n, "<f4") for n in names]), offset=header.body_offset)
    assert raw.shape == (1000,)
    np.testing.assert_array_equal(scene.means, np.stack([raw["x"], raw["y"], raw["z"]], axis=1))
    # channel-major in the file: f_rest_0..14 red, 15..29 green, 30..44 blue
    assert scene.sh_rest[7, 4, 0] == raw["f_rest_4"][7]
    assert scene.sh_rest[7, 4, 1] == raw["f_rest_19"][7]
    assert scene.sh_rest[7, 14, 2] == raw["f_rest_44"][7]
    q = np.stack([raw[f"rot_{i}"] for i in range(4)], axis=1).astype(np.float64)
    np.testing.assert_allclose(scene.quats, q / np.linalg.norm(q, axis=1, keepdims=True), atol=2e-7)
    np.testing.assert_allclose(np.linalg.norm(scene.quats, axis=1), 1.0, atol=1e-6)
    assert scene.read_report.rows_in_file == 1000 and scene.extra["rows_in_file"] == 1000
    np.testing.assert_array_equal(scene.extra["row_index"], np.arange(1000))
    assert scene.extra["ply"]["ignored_properties"] == []


@pytest.mark.skipif(not DONUT_SH0.exists(), reason=f"real data file {DONUT_SH0} absent")
def test_real_sh0_without_normals():
    scene = load_scene(DONUT_SH0)
    assert len(scene) == 45624 and scene.sh_degree == 0
    assert scene.source_format == "lyra1"  # 14 floats, exactly Lyra 1's layout
    assert np.isfinite(scene.means).all()
    assert scene.read_report.non_finite_dropped + scene.read_report.zero_quaternion_dropped == 0


# ------------------------------------------------------------------------------------------------ formats


@pytest.mark.parametrize("fmt,sh_degree,expected", [
    ("lyra2", 0, "lyra2"), ("lyra1", 0, "lyra1"),
    ("inria", 1, "inria"), ("inria", 2, "inria"), ("inria", 3, "inria"),
])
def test_write_read_round_trip_exact(tmp_path, fmt, sh_degree, expected):
    scene = random_scene(1001, sh_degree, seed=sh_degree)
    path = write_ply(tmp_path / "s.ply", scene, fmt)
    back = read_ply(path)
    assert back.source_format == expected and len(back) == 1001
    assert_scene_equal(back, scene)
    # and a second generation is bit-identical (normalization does not drift)
    again = read_ply(write_ply(tmp_path / "t.ply", back, fmt))
    assert_scene_equal(again, scene)
    assert (tmp_path / "s.ply").read_bytes() == (tmp_path / "t.ply").read_bytes()


def test_lyra2_bytes_exact(tmp_path):
    scene = random_scene(5)
    path = write_ply(tmp_path / "reconstructed_scene.ply", scene, "lyra2")
    data = path.read_bytes()
    header = ("ply\nformat binary_little_endian 1.0\nelement vertex 5\n"
              + "".join(f"property float {n}\n" for n in LYRA2_PROPERTIES) + "end_header\n").encode()
    assert data.startswith(header) and len(data) == len(header) + 5 * 68
    body = np.frombuffer(data[len(header):], dtype="<f4").reshape(5, 17)
    np.testing.assert_array_equal(body[:, 3:6], 0.0)  # zero normals
    np.testing.assert_array_equal(body[:, 0:3], scene.means)
    np.testing.assert_array_equal(body[:, 9], scene.opacity_logits)
    np.testing.assert_array_equal(body[:, 13:17], scene.quats)


def test_inria_layout_order(tmp_path):
    scene = random_scene(3, sh_degree=1)
    path = write_ply(tmp_path / "p.ply", scene, "inria")
    names = [p.name for p in read_header(path).element("vertex").properties]
    assert names == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2",
                     *(f"f_rest_{i}" for i in range(9)), "opacity", "scale_0", "scale_1", "scale_2",
                     "rot_0", "rot_1", "rot_2", "rot_3"]
    body = np.fromfile(path, dtype="<f4", offset=read_header(path).body_offset).reshape(3, -1)
    # f_rest_1 is red coefficient 1; f_rest_3 is green coefficient 0
    np.testing.assert_array_equal(body[:, 9 + 1], scene.sh_rest[:, 1, 0])
    np.testing.assert_array_equal(body[:, 9 + 3], scene.sh_rest[:, 0, 1])


def test_generic_order_extra_properties_and_other_elements(tmp_path):
    scene = random_scene(50, sh_degree=2, seed=3)
    names = ["red", "rot_3", "scale_2", "x", "opacity", "f_dc_2", "y", "nz", "rot_0", "rot_1", "rot_2",
             "z", "scale_0", "f_dc_0", "f_dc_1", "scale_1", "green", "blue"] + [f"f_rest_{i}" for i in range(24)]
    rec = scene_record(scene, names, dtypes={"red": "u1", "green": "u1", "blue": "u1"})
    before = np.arange(4 * 2, dtype="<f4").tobytes()  # element "camera" of 4 rows, 2 floats
    faces = np.zeros(3, dtype=[("n", "u1"), ("i", "<i4", (3,))])
    faces["n"] = 3
    path = write_raw_ply(tmp_path / "g.ply", rec,
                         before="element camera 4\nproperty float a\nproperty float b", before_bytes=before,
                         after="element face 3\nproperty list uchar int vertex_indices", after_bytes=faces.tobytes())
    back = read_ply(path)
    assert back.source_format == "inria" and len(back) == 50 and back.sh_degree == 2
    assert_scene_equal(back, scene)
    assert back.extra["ply"]["ignored_properties"] == ["red", "green", "blue"]


def test_generic_without_rest(tmp_path):
    scene = random_scene(20)
    names = list(reversed(LYRA1_PROPERTIES))
    back = read_ply(write_raw_ply(tmp_path / "r.ply", scene_record(scene, names)))
    assert back.source_format == "generic"
    assert_scene_equal(back, scene)


def test_sh_degree4_truncated_to_3(tmp_path, caplog):
    rng = np.random.default_rng(5)
    scene = random_scene(25)
    names = list(LYRA2_PROPERTIES[:9]) + [f"f_rest_{i}" for i in range(72)] + list(LYRA2_PROPERTIES[9:])
    rec = scene_record(scene, names)
    rest = rng.normal(size=(25, 3, 24)).astype(np.float32)  # channel-major, 24 per channel (degree 4)
    for c in range(3):
        for j in range(24):
            rec[f"f_rest_{c * 24 + j}"] = rest[:, c, j]
    back = read_ply(write_raw_ply(tmp_path / "sh4.ply", rec))
    assert back.sh_degree == 3 and back.source_format == "inria"
    np.testing.assert_array_equal(back.sh_rest, rest[:, :, :15].transpose(0, 2, 1))
    assert "SH degree 4 in the file" in caplog.text
    assert_scene_equal(back, GaussianScene(**{a: getattr(scene, a) for a in ARRAYS}, sh_rest=back.sh_rest))


def test_big_endian(tmp_path):
    scene = random_scene(300, sh_degree=3)
    names = [p for p in ply.layout_properties("inria", 3)]
    rec = scene_record(scene, names, byte_order=">")
    back = read_ply(write_raw_ply(tmp_path / "be.ply", rec, fmt="binary_big_endian"))
    assert back.means.dtype == np.float32 and back.means.dtype.byteorder in "=<|"
    assert_scene_equal(back, scene)


def test_ascii(tmp_path):
    scene = random_scene(40)
    rec = scene_record(scene, list(LYRA2_PROPERTIES))
    back = read_ply(write_raw_ply(tmp_path / "a.ply", rec, fmt="ascii",
                                  before="element note 2\nproperty float v", before_bytes=b"1\n2\n"))
    assert len(back) == 40
    assert_scene_equal(back, scene)  # repr(float(f32)) round-trips exactly


def test_double_properties_converted(tmp_path):
    scene = random_scene(30)
    rec = scene_record(scene, list(LYRA1_PROPERTIES), dtypes={n: "f8" for n in LYRA1_PROPERTIES})
    back = read_ply(write_raw_ply(tmp_path / "d.ply", rec))
    assert back.source_format == "generic" and back.means.dtype == np.float32
    assert_scene_equal(back, scene)


# ------------------------------------------------------------------------------------------------ cleaning


def faulty_scene(n: int = 1000) -> tuple[GaussianScene, dict[str, list[int]]]:
    scene = random_scene(n, seed=7)
    faults = {"nan": [3, 500, 998], "inf_pos": [10], "nan_op": [11], "inf_op": [20, 21], "zero_q": [30, 999],
              "big_scale": [40], "tiny_scale": [41], "unnorm": [50]}
    scene.means[3, 1] = np.nan
    scene.sh_dc[500, 2] = np.inf
    scene.quats[998, 0] = np.nan
    scene.means[10, 0] = -np.inf
    scene.opacity_logits[11] = np.nan
    scene.opacity_logits[20] = np.inf
    scene.opacity_logits[21] = -np.inf
    scene.quats[30] = 0.0
    scene.quats[999] = 1e-12
    scene.log_scales[40, 1] = 100.0
    scene.log_scales[41, 0] = -95.0
    scene.quats[50] *= 7.0
    return scene, faults


def test_cleaning_counts_and_row_index(tmp_path, caplog):
    scene, faults = faulty_scene()
    path = write_ply(tmp_path / "f.ply", scene, "lyra2")
    back = read_ply(path)
    dropped = sorted(faults["nan"] + faults["inf_pos"] + faults["nan_op"] + faults["zero_q"])
    report = back.read_report
    assert report.rows_in_file == 1000
    assert report.non_finite_dropped == 5 and report.zero_quaternion_dropped == 2
    assert report.opacity_inf == 2 and report.scale_clamped == 2
    assert len(back) == 1000 - len(dropped)
    expected_rows = np.setdiff1d(np.arange(1000), dropped)
    np.testing.assert_array_equal(back.extra["row_index"], expected_rows)
    np.testing.assert_array_equal(back.means, scene.means[expected_rows])
    # +-inf opacity kept, scales clamped, quaternion normalized
    pos = {int(r): i for i, r in enumerate(back.extra["row_index"])}
    assert back.opacity_logits[pos[20]] == np.inf and back.opacity_logits[pos[21]] == -np.inf
    assert back.log_scales[pos[40], 1] == MAX_ABS_LOG_SCALE and back.log_scales[pos[41], 0] == -MAX_ABS_LOG_SCALE
    assert np.isfinite(back.scales()).all()
    np.testing.assert_allclose(back.quats[pos[50]], scene.quats[50] / np.linalg.norm(scene.quats[50]), atol=1e-7)
    untouched = np.setdiff1d(expected_rows, [50])  # unit quaternions keep their exact bits next to a fixed one
    np.testing.assert_array_equal(back.quats[[pos[r] for r in untouched]], scene.quats[untouched])
    assert "dropped 7 of 1000 rows" in caplog.text
    # subset keeps row_index aligned
    sub = back.subset(np.arange(len(back)) % 2 == 0)
    np.testing.assert_array_equal(sub.extra["row_index"], expected_rows[::2])


def test_cleaning_across_chunk_boundaries(tmp_path, monkeypatch):
    scene, _ = faulty_scene()
    path = write_ply(tmp_path / "f.ply", scene, "lyra2")
    whole = read_ply(path)
    monkeypatch.setattr(ply, "CHUNK_BYTES", 68 * 37)  # 37 rows per chunk: many chunks, drops in several
    chunked = read_ply(path)
    assert_scene_equal(chunked, whole)
    np.testing.assert_array_equal(chunked.extra["row_index"], whole.extra["row_index"])
    assert chunked.read_report == whole.read_report


def test_strict_rejects_bad_rows(tmp_path):
    scene, _ = faulty_scene()
    path = write_ply(tmp_path / "f.ply", scene, "lyra2")
    pattern = r"f\.ply: strict mode: 5 rows with NaN/inf .* 2 rows with zero-norm .*first bad row: 3\)"
    with pytest.raises(InputError, match=pattern):
        read_ply(path, strict=True)
    clean = random_scene(10)
    clean.opacity_logits[:] = np.inf  # legal
    assert len(read_ply(write_ply(tmp_path / "ok.ply", clean), strict=True)) == 10


def test_all_rows_dropped(tmp_path):
    scene = random_scene(4)
    scene.means[:] = np.nan
    with pytest.raises(InputError, match="zero usable Gaussians: all 4 rows were dropped"):
        read_ply(write_ply(tmp_path / "nan.ply", scene))


# ------------------------------------------------------------------------------------------------ bad input


def good_rec(n: int = 5, names=LYRA2_PROPERTIES, **kw) -> np.ndarray:
    return scene_record(random_scene(n), list(names), **kw)


def expect_error(path: Path, pattern: str) -> InputError:
    with pytest.raises(InputError) as info:
        read_ply(path)
    message = str(info.value)
    assert str(path) in message, message
    assert pattern in message, message
    return info.value


def test_resolve_scene_path_inria_model_folder(tmp_path):
    """An INRIA model folder resolves to the splats of its last saved iteration (numerically largest N)."""
    model = tmp_path / "model"
    for n in (7000, 30000, 9000):
        (model / "point_cloud" / f"iteration_{n}").mkdir(parents=True)
        (model / "point_cloud" / f"iteration_{n}" / "point_cloud.ply").write_bytes(b"ply")
    (model / "point_cloud" / "iteration_99999").mkdir()  # no PLY inside: skipped
    (model / "point_cloud" / "iteration_final").mkdir()  # not a number: skipped
    assert resolve_scene_path(model) == model / "point_cloud" / "iteration_30000" / "point_cloud.ply"
    ply_file = model / "point_cloud" / "iteration_7000" / "point_cloud.ply"
    assert resolve_scene_path(ply_file) == ply_file
    (model / "input.ply").write_bytes(b"ply")  # a folder's only top-level PLY still wins (as before)
    assert resolve_scene_path(model) == model / "input.ply"
    empty = tmp_path / "empty"
    (empty / "point_cloud" / "iteration_10").mkdir(parents=True)
    with pytest.raises(InputError, match="iteration_<N>"):
        resolve_scene_path(empty)


def test_error_missing_file_and_directory(tmp_path):
    expect_error(tmp_path / "nope.ply", "file does not exist")
    (tmp_path / "scene").mkdir()
    (tmp_path / "scene" / "reconstructed_scene.ply").write_bytes(b"")
    err = expect_error(tmp_path / "scene", "is a directory")
    assert "reconstructed_scene.ply" in str(err)


def test_error_bad_magic(tmp_path):
    path = tmp_path / "x.ply"
    path.write_bytes(b"solid ascii stl\n")
    expect_error(path, "not a PLY file (bad magic b'solid ascii stl'")
    path.write_bytes(b"")
    expect_error(path, "not a PLY file")


def test_lyra1_torch_tensor(tmp_path):
    """Lyra 1's sample.py saves gaussians/gaussians_<i>.ply with torch.save: (1, N, 14) activated values."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    n = 500
    quats = rng.normal(size=(n, 4))
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    values = np.concatenate([rng.normal(size=(n, 3)), rng.uniform(0.01, 0.99, (n, 1)),
                             rng.uniform(0.001, 0.1, (n, 3)), quats, rng.uniform(0, 1, (n, 3))], axis=1)
    values[5, 3] = 1.0  # saturated opacity: logit +inf, kept
    values[6, 7:11] = 0.0  # zero quaternion: dropped
    path = tmp_path / "gaussians_0.ply"
    torch.save(torch.from_numpy(values).float()[None], path)
    scene = read_ply(path)
    assert scene.source_format == "lyra1" and len(scene) == n - 1
    assert scene.extra["ply"]["format"].startswith("torch")
    assert scene.read_report.opacity_inf == 1 and scene.read_report.zero_quaternion_dropped == 1
    keep = np.setdiff1d(np.arange(n), [6])
    v = values[keep].astype(np.float32).astype(np.float64)
    # Lyra's save_ply_orig(compatible=True): inverse_sigmoid, log(s + 1e-8), (rgb - 0.5) / C0
    with np.errstate(divide="ignore"):
        logit = np.log(v[:, 3] / (1 - v[:, 3]))
    np.testing.assert_allclose(scene.opacity_logits, logit, rtol=1e-5)
    np.testing.assert_allclose(scene.log_scales, np.log(v[:, 4:7] + 1e-8), rtol=1e-5)
    np.testing.assert_allclose(scene.sh_dc, (v[:, 11:14] - 0.5) / 0.28209479177387814, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scene.means, v[:, :3], rtol=1e-6)
    np.testing.assert_allclose(scene.colors(), np.clip(v[:, 11:14], 0, 1), atol=1e-5)


def test_zip_that_is_not_a_lyra1_tensor(tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "arrays.ply"
    with open(path, "wb") as fh:
        np.savez(fh, a=np.zeros(3))
    expect_error(path, "not a PLY file (bad magic b'PK\\x03\\x04'")
    import torch
    torch.save(torch.zeros(4, 10), path)
    expect_error(path, "is a torch-saved object of shape (4, 10), not a Lyra 1 Gaussian tensor")


def test_error_header_truncated(tmp_path):
    path = tmp_path / "h.ply"
    path.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 5\nproperty float x\n")
    expect_error(path, "header is truncated: no 'end_header'")


def test_error_body_truncated(tmp_path):
    path = write_raw_ply(tmp_path / "t.ply", good_rec(10))
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    expect_error(path, "is truncated: the header declares 10 Gaussians (680 bytes) but only 580 bytes")


def test_error_huge_declared_count_is_truncation_not_allocation(tmp_path):
    path = write_raw_ply(tmp_path / "huge.ply", good_rec(10))
    data = path.read_bytes().replace(b"element vertex 10\n", b"element vertex 900000000000\n")
    path.write_bytes(data)
    expect_error(path, "is truncated: the header declares 900000000000 Gaussians")
    ascii_path = write_raw_ply(tmp_path / "huge_ascii.ply", good_rec(3), fmt="ascii")
    ascii_path.write_bytes(ascii_path.read_bytes().replace(b"element vertex 3\n", b"element vertex 5\n"))
    expect_error(ascii_path, "is truncated: the header declares 5 Gaussians but the ASCII body has 3 vertex lines")


def test_crlf_header(tmp_path):
    scene = random_scene(12)
    path = write_ply(tmp_path / "w.ply", scene, "lyra1")
    data = path.read_bytes()
    cut = data.index(b"end_header\n") + len(b"end_header\n")
    path.write_bytes(data[:cut].replace(b"\n", b"\r\n") + data[cut:])
    assert_scene_equal(read_ply(path), scene)


def test_stream_writer_dropped_without_close_leaves_nothing(tmp_path):
    writer = PlyStreamWriter(tmp_path / "x.ply", 5, "lyra2")
    writer.write(random_scene(2))
    del writer
    assert list(tmp_path.iterdir()) == []


def test_error_missing_properties(tmp_path):
    names = [n for n in LYRA2_PROPERTIES if n not in ("opacity", "rot_2")]
    expect_error(write_raw_ply(tmp_path / "m.ply", good_rec(names=names)),
                 "missing required vertex properties: opacity, rot_2")
    mesh = np.zeros(3, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1")])
    expect_error(write_raw_ply(tmp_path / "pc.ply", mesh), "not a Gaussian-splat PLY")


def encode_compressed_ply(path: Path, scene: GaussianScene, chunk_colors: bool = True) -> Path:
    """A PlayCanvas compressed PLY of ``scene``, encoded here from the format's description (independent of the
    reader): 256-splat chunks, 11-10-11 positions and log-scales, largest-component rotations, RGBA8 colours."""
    n = len(scene)
    n_chunks = -(-n // 256)
    ci = np.arange(n) // 256
    rgb = 0.5 + 0.28209479177387814 * scene.sh_dc.astype(np.float64)

    def bounds(values):
        lo = np.array([values[ci == c].min(axis=0) for c in range(n_chunks)])
        hi = np.array([values[ci == c].max(axis=0) for c in range(n_chunks)])
        return lo, hi

    def quantize(values, lo, hi, bits):
        span = np.where(hi - lo > 0, hi - lo, 1.0)
        return np.round((values - lo[ci]) / span[ci] * ((1 << bits) - 1)).astype(np.uint32)

    def pack_111011(values, lo, hi):
        return (quantize(values[:, 0:1], lo[:, 0:1], hi[:, 0:1], 11)[:, 0] << 21) | \
            (quantize(values[:, 1:2], lo[:, 1:2], hi[:, 1:2], 10)[:, 0] << 11) | \
            quantize(values[:, 2:3], lo[:, 2:3], hi[:, 2:3], 11)[:, 0]

    p_lo, p_hi = bounds(scene.means.astype(np.float64))
    s_lo, s_hi = bounds(scene.log_scales.astype(np.float64))
    c_lo, c_hi = bounds(rgb) if chunk_colors else (np.zeros((n_chunks, 3)), np.ones((n_chunks, 3)))
    q = scene.quats.astype(np.float64) / np.linalg.norm(scene.quats, axis=1, keepdims=True)
    which = np.abs(q).argmax(axis=1)
    q *= np.where(q[np.arange(n), which] < 0, -1.0, 1.0)[:, None]
    others = np.array([[j for j in range(4) if j != w] for w in which])
    abc = np.take_along_axis(q, others, axis=1) / np.sqrt(2.0) + 0.5
    abc = np.clip(np.round(abc * 1023), 0, 1023).astype(np.uint32)
    rot = (which.astype(np.uint32) << 30) | (abc[:, 0] << 20) | (abc[:, 1] << 10) | abc[:, 2]
    alpha = np.round(scene.opacities().astype(np.float64) * 255).astype(np.uint32)
    cq = [quantize(rgb[:, i:i + 1], c_lo[:, i:i + 1], c_hi[:, i:i + 1], 8)[:, 0] for i in range(3)]
    color = (cq[0] << 24) | (cq[1] << 16) | (cq[2] << 8) | alpha

    chunk_names = ["min_x", "min_y", "min_z", "max_x", "max_y", "max_z", "min_scale_x", "min_scale_y", "min_scale_z",
                   "max_scale_x", "max_scale_y", "max_scale_z"] + (
        ["min_r", "min_g", "min_b", "max_r", "max_g", "max_b"] if chunk_colors else [])
    chunk = np.concatenate([p_lo, p_hi, s_lo, s_hi] + ([c_lo, c_hi] if chunk_colors else []), axis=1)
    header = ["ply", "format binary_little_endian 1.0", f"element chunk {n_chunks}"]
    header += [f"property float {name}" for name in chunk_names]
    header += [f"element vertex {n}"] + [f"property uint packed_{k}" for k in ("position", "rotation", "scale",
                                                                                 "color")]
    k = 0 if scene.sh_rest is None else scene.sh_rest.shape[1]
    if k:
        header += [f"element sh {n}"] + [f"property uchar f_rest_{i}" for i in range(3 * k)]
    with open(path, "wb") as fh:
        fh.write(("\n".join(header) + "\nend_header\n").encode())
        fh.write(chunk.astype("<f4").tobytes())
        fh.write(np.stack([pack_111011(scene.means.astype(np.float64), p_lo, p_hi), rot,
                           pack_111011(scene.log_scales.astype(np.float64), s_lo, s_hi), color],
                          axis=1).astype("<u4").tobytes())
        if k:
            channel_major = scene.sh_rest.transpose(0, 2, 1).reshape(n, 3 * k).astype(np.float64)
            fh.write(np.clip(np.trunc((channel_major / 8 + 0.5) * 256), 0, 255).astype(np.uint8).tobytes())
    return path


@pytest.mark.parametrize("chunk_colors,sh_degree", [(True, 0), (False, 3)])
def test_compressed_ply_decodes_within_quantization(tmp_path, chunk_colors, sh_degree):
    scene = random_scene(1000, sh_degree=sh_degree, seed=11)  # 4 chunks, the last one partial
    scene.sh_dc[:] = np.clip(scene.sh_dc, -1.7, 1.7)  # colours inside [0, 1] (the 8-bit range without bounds)
    if scene.sh_rest is not None:
        scene.sh_rest[:] = np.clip(scene.sh_rest, -3.9, 3.9)
    back = read_ply(encode_compressed_ply(tmp_path / "s.compressed.ply", scene, chunk_colors))
    assert back.source_format == "compressed" and len(back) == 1000 and back.sh_degree == sh_degree
    extent = np.ptp(scene.means.reshape(-1), axis=0)
    np.testing.assert_allclose(back.means, scene.means, atol=extent / 1023)
    np.testing.assert_allclose(back.log_scales, scene.log_scales, atol=np.ptp(scene.log_scales) / 1023)
    dots = np.abs(np.einsum("ij,ij->i", back.quats, scene.quats))
    assert dots.min() > 0.999  # 10-bit components: under ~2.6 degrees
    np.testing.assert_allclose(back.colors(), scene.colors(), atol=1 / 255)
    np.testing.assert_allclose(back.opacities(), scene.opacities(), atol=1 / 255)
    if sh_degree:
        np.testing.assert_allclose(back.sh_rest, scene.sh_rest, atol=8 / 256)


def test_compressed_ply_exact_values(tmp_path):
    """One splat whose packed words decode to known numbers."""
    chunk = np.array([[0, 0, 0, 2, 4, 6, -3, -3, -3, -1, -1, -1]], dtype="<f4")
    position = (2047 << 21) | (0 << 11) | 1023  # x = max, y = min, z = 1023/2047 of the way
    rotation = (0 << 30) | (512 << 20) | (512 << 10) | 512  # w largest, others ~0: identity
    scale = (0 << 21) | (1023 << 11) | 2047
    color = (255 << 24) | (0 << 16) | (255 << 8) | 255  # rgb (1, 0, 1) (no colour bounds), alpha 1
    header = ("ply\nformat binary_little_endian 1.0\nelement chunk 1\n"
              + "".join(f"property float {n}\n" for n in ("min_x", "min_y", "min_z", "max_x", "max_y", "max_z",
                                                          "min_scale_x", "min_scale_y", "min_scale_z", "max_scale_x",
                                                          "max_scale_y", "max_scale_z"))
              + "element vertex 1\nproperty uint packed_position\nproperty uint packed_rotation\n"
              "property uint packed_scale\nproperty uint packed_color\nend_header\n")
    path = tmp_path / "one.ply"
    path.write_bytes(header.encode() + chunk.tobytes() + np.array([position, rotation, scale, color], "<u4").tobytes())
    scene = read_ply(path)
    np.testing.assert_allclose(scene.means[0], [2.0, 0.0, 6 * 1023 / 2047], rtol=1e-6)
    np.testing.assert_allclose(scene.log_scales[0], [-3.0, -1.0, -1.0], rtol=1e-6)
    np.testing.assert_allclose(scene.quats[0], [1.0, 0, 0, 0], atol=2e-3)
    np.testing.assert_allclose(scene.colors()[0], [1.0, 0.0, 1.0], atol=1e-6)
    assert scene.opacity_logits[0] == np.inf and scene.read_report.opacity_inf == 1


def test_error_compressed_ply_malformed(tmp_path):
    packed = np.zeros(3, dtype=[(n, "<u4") for n in ("packed_position", "packed_rotation", "packed_scale",
                                                      "packed_color")])
    path = write_raw_ply(tmp_path / "nochunk.ply", packed)
    expect_error(path, "packed_* vertex properties (PlayCanvas compressed layout) but no 'chunk'")
    chunk = np.zeros(1, dtype=[(n, "<f4") for n in ("min_x", "max_x")])
    path = write_raw_ply(tmp_path / "s.compressed.ply", packed, before="element chunk 1\nproperty float min_x\n"
                         "property float max_x", before_bytes=chunk.tobytes())
    expect_error(path, "compressed splat PLY lacks (or mistypes) min_y")


def test_error_zero_gaussians(tmp_path):
    expect_error(write_raw_ply(tmp_path / "z.ply", good_rec(0)), "zero Gaussians")


def test_error_duplicate_property(tmp_path):
    path = write_raw_ply(tmp_path / "d.ply", good_rec(3), header_extra="")
    text = path.read_bytes().replace(b"property float nz\n", b"property float x\n")
    path.write_bytes(text)
    expect_error(path, "duplicate vertex properties: x")


def test_error_integer_property(tmp_path):
    rec = good_rec(3, dtypes={"opacity": "u1", "x": "i4"})
    expect_error(write_raw_ply(tmp_path / "i.ply", rec), "must be float or double, found x (int), opacity (uchar)")


def test_error_unknown_format_and_lines(tmp_path):
    path = write_raw_ply(tmp_path / "f.ply", good_rec(3))
    data = path.read_bytes()
    path.write_bytes(data.replace(b"binary_little_endian", b"binary_middle_endian"))
    expect_error(path, "unknown format line 'format binary_middle_endian 1.0'")
    path.write_bytes(data.replace(b"comment made", b"wibble made"))
    expect_error(path, "unknown header line 'wibble made by test_ply'")
    path.write_bytes(data.replace(b"property float x\n", b"property quad x\n"))
    expect_error(path, "unknown-type property line 'property quad x'")


def test_error_vertex_list_property(tmp_path):
    path = write_raw_ply(tmp_path / "l.ply", good_rec(3))
    data = path.read_bytes().replace(b"property float nz\n", b"property list uchar float nz\n")
    path.write_bytes(data)
    expect_error(path, "vertex element has list properties (nz)")


def test_error_no_vertex_element(tmp_path):
    path = tmp_path / "nv.ply"
    path.write_bytes(b"ply\nformat ascii 1.0\nelement face 0\nproperty list uchar int vertex_indices\nend_header\n")
    expect_error(path, "has no 'vertex' element (elements: face)")


def test_error_bad_rest_count(tmp_path):
    names = list(LYRA2_PROPERTIES) + [f"f_rest_{i}" for i in range(10)]
    expect_error(write_raw_ply(tmp_path / "r.ply", good_rec(names=names)), "10 f_rest_* properties")


# ------------------------------------------------------------------------------------------------ writer


def test_stream_writer_matches_write_ply(tmp_path):
    scene = random_scene(1000, sh_degree=1)
    one = write_ply(tmp_path / "one.ply", scene, "inria")
    with PlyStreamWriter(tmp_path / "many.ply", 1000, "inria", sh_degree=1) as writer:
        for start in range(0, 1000, 333):
            writer.write(scene.subset(np.arange(start, min(start + 333, 1000))))
    assert one.read_bytes() == (tmp_path / "many.ply").read_bytes()


def test_stream_writer_is_atomic(tmp_path):
    scene = random_scene(10)
    target = tmp_path / "out.ply"
    with pytest.raises(OutputError, match="only 10 of the 20 declared rows"):
        with PlyStreamWriter(target, 20, "lyra2") as writer:
            writer.write(scene)
    with pytest.raises(RuntimeError):
        with PlyStreamWriter(target, 10, "lyra2") as writer:
            raise RuntimeError("generator failed")
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temp file
    write_ply(target, scene)
    before = target.read_bytes()
    with pytest.raises(OutputError):
        with PlyStreamWriter(target, 20, "lyra2") as writer:
            writer.write(scene)
    assert target.read_bytes() == before  # an existing file survives a failed rewrite
    with pytest.raises(OutputError, match="parent directory"):
        write_ply(tmp_path / "missing" / "x.ply", scene)
    (tmp_path / "adir").mkdir()
    with pytest.raises(OutputError, match="adir: cannot write"):
        write_ply(tmp_path / "adir", scene)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "out.ply"]  # no temp file left


MEMORY_PROBE = r"""
import sys
from lyra_isaac.splats.ply import read_ply
def status(key):
    with open("/proc/self/status") as fh:
        return int(next(line for line in fh if line.startswith(key)).split()[1]) * 1024
before = status("VmRSS:")
scene = read_ply(sys.argv[1])
print(status("VmHWM:") - before, len(scene))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc for peak RSS")
def test_read_memory_stays_near_output_size(tmp_path):
    """Peak memory of a read: the outputs (14/17 of a Lyra 2 file + row_index) plus one chunk, not file + outputs."""
    import subprocess
    import sys

    n = 1_500_000
    path = tmp_path / "big.ply"
    with PlyStreamWriter(path, n, "lyra2") as writer:
        for start in range(0, n, 500_000):
            writer.write(random_scene(500_000, seed=start))
    size = path.stat().st_size
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path)], capture_output=True, text=True,
                            timeout=120, check=True)
    growth, kept = map(int, result.stdout.split())
    assert kept == n
    outputs = n * (14 * 4 + 8)  # float32 columns + int64 row_index
    # outputs + one 64 MiB chunk + validation temporaries; a whole-file copy would add `size` on top
    assert growth < outputs + ply.CHUNK_BYTES + 0.35 * size, (growth / 1e6, outputs / 1e6, size / 1e6)
