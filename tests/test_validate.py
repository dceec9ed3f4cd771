"""lyra-isaac validate: real consumers (pxr, omni_asset_validate, Newton, MuJoCo) on the analytic valley world,
and worlds broken on purpose, one fault each."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from worlds import make_valley_world, surface_height

from lyra_isaac.cli import main as cli_main
from lyra_isaac.errors import InputError
from lyra_isaac.mjcf.scene import write_mjcf_scene
from lyra_isaac.usd.stage import write_usd_stage
from lyra_isaac.usd.validate import ENGINE_TOLERANCE, PROBE_RADIUS, validate_world
from lyra_isaac.world import COLLISION_PLY, HEIGHTMAP_NPZ, write_manifest, write_mesh_ply

FAST = ("newton",)
"""Most tests skip Newton (a subprocess, ~15 s warm); test_newton_and_mujoco_agree runs it."""


def write_world_dir(directory: Path) -> Path:
    """A complete world directory of the valley world, as convert writes it (minus previews)."""
    world = make_valley_world()
    directory.mkdir(parents=True, exist_ok=True)
    files = dict(write_usd_stage(world, directory))
    files.update(write_mjcf_scene(world, directory))
    write_mesh_ply(world.collision, directory / COLLISION_PLY)
    world.heightmap.save(directory / HEIGHTMAP_NPZ)
    files.update(collision=COLLISION_PLY, heightmap=HEIGHTMAP_NPZ)
    world.manifest.files = files
    write_manifest(world.manifest, directory)
    return directory


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory) -> Path:
    return write_world_dir(tmp_path_factory.mktemp("valley") / "world")


@pytest.fixture
def copy(world_dir, tmp_path) -> Path:
    """A private copy of the world to break."""
    return Path(shutil.copytree(world_dir, tmp_path / "world"))


def _problems(report, name: str) -> str:
    return "\n".join(report.check(name).problems)


def test_good_world_passes_without_newton(world_dir):
    report = validate_world(world_dir, skip=FAST)
    assert report.ok, "\n".join(report.summary_lines())
    statuses = {c.name: c.status for c in report.checks}
    assert statuses == {"files": "pass", "usd": "pass", "asset_validator": "pass", "spawns": "pass",
                        "newton": "skip", "mujoco": "pass"}
    usd = report.check("usd").data
    assert usd["splats"] == 20000 and usd["spawn_points"] == 4
    assert {"world.usda", "geometry.usdc", "splats.usdc", "physics_scene.usda"} <= set(usd["layers"])
    # omni_asset_validate: no errors; every warning is one we accept
    assert report.check("asset_validator").data["errors"] == 0
    assert all("expected on lyra_isaac worlds" in w for w in report.check("asset_validator").warnings)
    # MuJoCo spheres rest on the exact analytic surface
    mujoco = report.check("mujoco").data
    rest = np.asarray(mujoco["rest"])
    truth = surface_height(rest[:, 0], rest[:, 1]) + PROBE_RADIUS
    np.testing.assert_allclose(rest[:, 2], truth, atol=0.005)
    assert len(rest) >= 6 and "spawn_003" in mujoco["labels"]  # the step top is probed too


def test_newton_and_mujoco_agree(world_dir):
    """CI's Newton check: one world, ~10 spheres, CPU; warm Warp kernel cache makes it ~15 s (first run ~50 s)."""
    report = validate_world(world_dir, skip=("asset_validator",))
    assert report.ok, "\n".join(report.summary_lines())
    newton = np.asarray(report.check("newton").data["rest"])
    mujoco = np.asarray(report.check("mujoco").data["rest"])
    truth = surface_height(newton[:, 0], newton[:, 1]) + PROBE_RADIUS
    np.testing.assert_allclose(newton[:, 2], truth, atol=0.01)
    assert report.check("mujoco").data["max_gap_to_newton_m"] <= ENGINE_TOLERANCE
    np.testing.assert_allclose(mujoco[:, 2], newton[:, 2], atol=ENGINE_TOLERANCE)


@pytest.mark.slow
def test_newton_catches_a_displaced_collision_surface(copy):
    """Lift /World/ground by 10 cm in the USD only: the contract check and Newton's spheres both catch it."""
    text = (copy / "world.usda").read_text()
    text = text.replace('        uniform token physics:approximation = "none"',
                        '        uniform token physics:approximation = "none"\n'
                        '        double3 xformOp:translate = (0, 0, 0.1)\n'
                        '        uniform token[] xformOpOrder = ["xformOp:translate"]', 1)
    (copy / "world.usda").write_text(text)
    report = validate_world(copy, skip=("asset_validator",))
    assert report.check("newton").status == "fail"
    assert "collision surface says" in _problems(report, "newton")
    assert "is transformed" in _problems(report, "usd")
    assert report.check("mujoco").status == "pass"  # no Newton heights to compare with: surface only


def test_missing_splat_layer(copy):
    (copy / "splats.usdc").unlink()
    report = validate_world(copy, skip=FAST + ("mujoco",))
    assert not report.ok
    assert "splats.usdc" in _problems(report, "files")
    assert "splats.usdc" in _problems(report, "usd")


def test_wrong_collision_approximation(copy):
    path = copy / "world.usda"
    path.write_text(path.read_text().replace('physics:approximation = "none"', 'physics:approximation = "convexHull"'))
    report = validate_world(copy, skip=FAST + ("mujoco",))
    assert report.check("usd").status == "fail"
    assert "approximation is 'convexHull'" in _problems(report, "usd")


def test_world_json_disagrees_with_stage(copy):
    data = json.loads((copy / "world.json").read_text())
    data["scale_factor"] = 2.0
    data["spawn_points"][1][0] += 0.5
    (copy / "world.json").write_text(json.dumps(data))
    report = validate_world(copy, skip=FAST + ("asset_validator", "mujoco"))
    problems = _problems(report, "usd")
    assert "scale_factor" in problems
    assert "spawn_001" in problems
    # moved 0.5 m along x from the valley floor at x=0: still on the floor (x < 1 m), so still a valid spawn
    assert report.check("spawns").status == "pass"


def test_floating_and_unwalkable_spawns(copy):
    data = json.loads((copy / "world.json").read_text())
    data["spawn_points"][0][2] = 0.4  # 40 cm above the valley floor
    data["spawn_points"][1] = [2.5, 2.5, 0.875, 0.0]  # on top of the box: on the surface but not walkable
    (copy / "world.json").write_text(json.dumps(data))
    report = validate_world(copy, skip=("asset_validator", "newton", "mujoco"))
    problems = _problems(report, "spawns")
    assert "spawn_000 (0.00, 0.00) is at z=0.400 but the collision surface is at z=0.000" in problems
    assert "spawn_001 (2.50, 2.50) is not on a walkable height-map cell" in problems
    assert "spawn_001 (2.50, 2.50) is at" not in problems


def test_missing_mujoco_scene(copy):
    (copy / "scene.xml").unlink()
    report = validate_world(copy, skip=FAST + ("asset_validator",))
    assert report.check("mujoco").status == "fail"
    assert "scene.xml is not in the world directory" in _problems(report, "mujoco")


def test_mujoco_scene_with_wrong_ground_height(copy):
    """Sink MuJoCo's ground (height-field tiles and plane) by 5 cm: spheres no longer rest on the collision surface."""
    xml = (copy / "scene.xml").read_text()

    def sink(match: re.Match) -> str:
        tag = match.group(0)
        if "hfield=" not in tag and 'type="plane"' not in tag:
            return tag
        pos = re.search(r'pos="([^"]+)"', tag)
        x, y, z = (float(v) for v in pos.group(1).split())
        return tag[:pos.start(1)] + f"{x} {y} {z - 0.05}" + tag[pos.end(1):]

    xml, count = re.subn(r"<geom\b[^>]*>", sink, xml)
    assert "hfield=" in xml and count > 0
    (copy / "scene.xml").write_text(xml)
    report = validate_world(copy, skip=FAST + ("asset_validator",))
    assert report.check("mujoco").status == "fail"
    problems = _problems(report, "mujoco")
    assert problems.count("MuJoCo: sphere at") == len(report.check("mujoco").data["labels"])  # every sphere


@pytest.mark.parametrize("content", [None, "{not json", '{"format_version": 1}'])
def test_missing_or_corrupt_world_json(tmp_path, content):
    if content is not None:
        (tmp_path / "world.json").write_text(content)
    with pytest.raises(InputError, match="world.json"):
        validate_world(tmp_path)
    assert cli_main(["validate", str(tmp_path)]) == 1


def test_unknown_check_name(world_dir):
    with pytest.raises(InputError, match="unknown check"):
        validate_world(world_dir, skip=("physx",))


def test_cli_table_json_and_exit_codes(world_dir, copy, capsys):
    assert cli_main(["validate", str(world_dir), "--skip", "newton", "--skip", "asset_validator"]) == 0
    out = capsys.readouterr().out
    assert "usd" in out and "PASS" in out and "OK" in out.splitlines()[-1]
    assert cli_main(["validate", str(world_dir), "--skip", "newton", "--skip", "asset_validator", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and [c["name"] for c in data["checks"]][0] == "files"
    (copy / "scene.xml").unlink()
    assert cli_main(["validate", str(copy), "--skip", "newton", "--skip", "asset_validator"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_splat_layer_breaking_the_schema_rules(copy):
    """Log-space scales and logit opacities (the PLY encodings) and a missing SH stride: both the usd check and
    NVIDIA's GaussianSplatSchemaChecker (VG.035) must fail."""
    from pxr import Sdf, Vt

    layer = Sdf.Layer.FindOrOpen(str(copy / "splats.usdc"))
    spec = layer.GetPrimAtPath("/Splats")
    scales = np.asarray(spec.attributes["scales"].default)
    spec.attributes["scales"].default = Vt.Vec3fArray.FromNumpy(np.log(scales).astype(np.float32))
    opacities = np.asarray(spec.attributes["opacities"].default)
    spec.attributes["opacities"].default = Vt.FloatArray.FromNumpy(
        np.log(opacities / (1 - opacities)).astype(np.float32))
    spec.attributes["radiance:sphericalHarmonicsCoefficients"].ClearInfo("elementSize")
    layer.Save()
    report = validate_world(copy, skip=FAST + ("mujoco",))
    usd = _problems(report, "usd")
    assert "non-positive or non-finite scales" in usd
    assert "opacities outside [0, 1]" in usd
    assert "elementSize" in usd
    assert report.check("asset_validator").status == "fail"
    assert "GaussianSplatSchemaChecker" in _problems(report, "asset_validator")


def test_splats_not_brought_in(copy):
    path = copy / "world.usda"
    text = path.read_text()
    assert "prepend payload = @./splats.usdc@</Splats>" in text
    path.write_text(text.replace("prepend payload = @./splats.usdc@</Splats>", ""))
    report = validate_world(copy, skip=FAST + ("asset_validator", "mujoco"))
    problems = _problems(report, "usd")
    assert "not brought in by a payload or reference" in problems
    assert "/World/Splats.positions has no value" in problems


@pytest.mark.parametrize("fault", ["nan", "no_faces", "normal", "degenerate"])
def test_broken_ground_mesh(copy, fault):
    from pxr import Sdf, Vt

    layer = Sdf.Layer.FindOrOpen(str(copy / "geometry.usdc"))
    spec = layer.GetPrimAtPath("/World/ground")
    if fault == "nan":
        points = np.asarray(spec.attributes["points"].default).copy()
        points[7] = np.nan
        spec.attributes["points"].default = Vt.Vec3fArray.FromNumpy(points)
    elif fault == "no_faces":
        spec.attributes["faceVertexCounts"].default = Vt.IntArray()
        spec.attributes["faceVertexIndices"].default = Vt.IntArray()
    elif fault == "normal":
        normals = np.asarray(spec.attributes["normals"].default).copy()
        normals[3] *= 2.0
        spec.attributes["normals"].default = Vt.Vec3fArray.FromNumpy(normals)
    else:
        indices = np.asarray(spec.attributes["faceVertexIndices"].default).copy()
        indices[1] = indices[0]  # first triangle collapses to an edge
        spec.attributes["faceVertexIndices"].default = Vt.IntArray.FromNumpy(indices)
    layer.Save()
    report = validate_world(copy, skip=FAST + ("asset_validator", "mujoco", "spawns"))
    assert report.check("usd").status == "fail"
    expected = {"nan": "1 non-finite points", "no_faces": "zero faces", "normal": "1 non-unit normals",
                "degenerate": "1 zero-area triangles"}[fault]
    assert expected in _problems(report, "usd")


def _grid_mesh(height, half: float = 1.0, cells: int = 40, hole=None):
    """A height-field mesh z = height(x, y) over [-half, half]^2, optionally without the faces inside ``hole``
    (centre x, y, radius)."""
    xs = np.linspace(-half, half, cells + 1)
    gx, gy = np.meshgrid(xs, xs)
    vertices = np.column_stack([gx.ravel(), gy.ravel(), height(gx, gy).ravel()])
    i, j = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
    a = (i * (cells + 1) + j).ravel()
    faces = np.concatenate([np.stack([a, a + 1, a + cells + 2], 1), np.stack([a, a + cells + 2, a + cells + 1], 1)])
    if hole is not None:
        centre = vertices[faces].mean(axis=1)
        faces = faces[np.hypot(centre[:, 0] - hole[0], centre[:, 1] - hole[1]) > hole[2]]
    return vertices, faces


def test_sphere_rest_height_is_exact_on_known_surfaces():
    from lyra_isaac.usd.validate import _Surface

    r = PROBE_RADIUS
    flat = _Surface(*_grid_mesh(lambda x, y: 0.2 + 0 * x))
    assert flat.sphere_rest(0.1, -0.3, r, 1.0) == pytest.approx((0.2 + r, 0.0), abs=1e-6)  # float32 storage
    # inclined plane z = 0.25 x: the centre sits r / cos(theta) above the plane
    slope = _Surface(*_grid_mesh(lambda x, y: 0.25 * x))
    height, _ = slope.sphere_rest(0.3, 0.1, r, 2.0)
    assert height == pytest.approx(0.25 * 0.3 + r * np.sqrt(1 + 0.25**2), abs=1e-3)
    # a 0.3 m step: the plateau's edge is at x = 0.01 (grid spacing 1 cm; the mesh ramps up over 0..0.01); a
    # centre 0.06 m before the edge leans on the edge (within the ray grid's resolution)
    step = _Surface(*_grid_mesh(lambda x, y: np.where(x > 0, 0.3, 0.0), cells=200))
    height, _ = step.sphere_rest(-0.05, 0.0, r, 2.0)
    assert height == pytest.approx(0.3 + np.sqrt(r**2 - 0.06**2), abs=5e-3)
    assert height > 0.3 + r / 2  # on the edge, not on the lower floor (r) nor floating on the plateau (0.4)
    # a hole: a sphere half over it rests on the rim, dipping slightly below r; a hole wider than it swallows it
    holed = _Surface(*_grid_mesh(lambda x, y: 0 * x, hole=(0.2, 0.0, 0.3)))
    height, holes = holed.sphere_rest(-0.1, 0.0, r, 1.0)
    assert r - 0.01 < height <= r + 1e-6 and 0.25 < holes < 0.75
    height, holes = holed.sphere_rest(0.2, 0.0, r, 1.0)
    assert np.isnan(height) and holes == 1.0


def test_world_without_splats_or_heightmap(tmp_path):
    """Minimal worlds validate too: no splats layer, no height map (probes are the spawn points only)."""
    world = make_valley_world(with_splats=False)
    directory = tmp_path / "bare"
    directory.mkdir()
    files = dict(write_usd_stage(world, directory))
    files.update(write_mjcf_scene(world, directory))
    write_mesh_ply(world.collision, directory / COLLISION_PLY)
    files["collision"] = COLLISION_PLY
    world.manifest.files = files
    write_manifest(world.manifest, directory)
    report = validate_world(directory, skip=FAST)
    assert report.ok, "\n".join(report.summary_lines())
    assert report.check("usd").data.get("splats", 0) == 0
    assert all(label.startswith("spawn_") for label in report.check("mujoco").data["labels"])
