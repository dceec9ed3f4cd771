"""write_previews and `lyra-isaac preview`: real PNGs whose content follows the world's geometry."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
import worlds
from PIL import Image

from lyra_isaac.cli import main
from lyra_isaac.geometry.walkable import build_heightmap
from lyra_isaac.preview import BACKGROUND, render_perspectives, write_previews
from lyra_isaac.world import (
    COLLISION_PLY,
    HEIGHTMAP_NPZ,
    TriangleMesh,
    World,
    load_world,
    write_manifest,
    write_mesh_ply,
)


@pytest.fixture(scope="module")
def valley():
    return worlds.make_valley_world(with_splats=False)


@pytest.fixture(scope="module")
def written(valley, tmp_path_factory):
    directory = tmp_path_factory.mktemp("previews")
    return directory, write_previews(valley, directory)


@pytest.fixture
def small_views(monkeypatch):
    """Smaller perspective images where resolution is not under test (keeps the suite fast)."""
    monkeypatch.setattr("lyra_isaac.preview.PERSPECTIVE_SIZE", (320, 240))


def test_write_previews_files(written):
    directory, files = written
    assert files["topdown"] == "previews/topdown.png"
    assert len([k for k in files if k.startswith("perspective_")]) == 3
    for rel in files.values():
        image = np.asarray(Image.open(directory / rel).convert("RGB"))
        assert image.ndim == 3 and min(image.shape[:2]) >= 400
        assert image.std() > 10  # not blank
    assert not list((directory / "previews").glob(".*tmp"))  # no temp files left


def test_topdown_marks_walkable_and_spawns(written):
    directory, _ = written
    image = np.asarray(Image.open(directory / "previews/topdown.png").convert("RGB")).astype(int)
    # obstacle tint (dark red) and spawn markers (white) are present
    reddish = (image[..., 0] > image[..., 1] + 40) & (image[..., 0] > image[..., 2] + 40)
    assert reddish.sum() > 500
    assert ((image == 255).all(axis=-1)).sum() > 200


def _overview_center(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return image[h // 2 - 5:h // 2 + 5, w // 2 - 5:w // 2 + 5].reshape(-1, 3).mean(axis=0)


def test_overview_cuts_away_the_ceiling(small_views):
    floor = trimesh.creation.box(extents=(8, 8, 0.1))
    floor.apply_translation((0, 0, -0.05))
    roof = trimesh.creation.box(extents=(8, 8, 0.1))
    roof.apply_translation((0, 0, 2.75))
    merged = trimesh.util.concatenate([floor, roof])
    colors = np.where(merged.vertices[:, 2:3] > 1.0, [[250, 0, 0]], [[0, 0, 250]]).astype(np.uint8)  # red roof
    mesh = TriangleMesh(merged.vertices, merged.faces, colors)
    hm = build_heightmap(TriangleMesh(merged.vertices, merged.faces))
    with_cut = dict(render_perspectives(mesh, None, hm))
    without = dict(render_perspectives(mesh, None, None))
    blue = _overview_center(with_cut["overview_sw"])
    red = _overview_center(without["overview_sw"])
    assert blue[2] > 2 * blue[0]  # the floor under the cut-away roof
    assert red[0] > 2 * red[2]  # the roof when nothing is cut


def test_spawn_view_sees_the_floor_ahead(small_views):
    plane = trimesh.creation.box(extents=(20, 20, 0.1))
    plane.apply_translation((0, 0, -0.05))
    mesh = TriangleMesh(plane.vertices, plane.faces)
    hm = build_heightmap(mesh)
    views = dict(render_perspectives(mesh, np.array([[0.0, 0.0, 0.0, 0.7]]), hm))
    image = views["spawn_0"].astype(float) / 255
    # the background is BACKGROUND under a slight vertical gradient: pale and unsaturated
    background = (image.max(axis=-1) - image.min(axis=-1) < 0.08) & (image.min(axis=-1) > 0.8 * BACKGROUND.min())
    assert background[: image.shape[0] // 4].mean() > 0.9  # sky above the horizon
    assert (~background[-image.shape[0] // 4:]).mean() > 0.9  # floor below it


def _write_world_dir(world: World, directory):
    directory.mkdir()
    write_mesh_ply(world.collision, directory / COLLISION_PLY)
    world.heightmap.save(directory / HEIGHTMAP_NPZ)
    world.manifest.files = {"collision": COLLISION_PLY, "heightmap": HEIGHTMAP_NPZ}
    write_manifest(world.manifest, directory)


def test_cli_preview_regenerates_and_updates_manifest(valley, tmp_path, capsys, small_views):
    world_dir = tmp_path / "valley"
    _write_world_dir(valley, world_dir)
    assert main(["preview", str(world_dir)]) == 0
    out = capsys.readouterr().out.split()
    assert any(line.endswith("topdown.png") for line in out)
    listed = load_world(world_dir).manifest.files["previews"]
    assert "previews/topdown.png" in listed and all((world_dir / p).is_file() for p in listed)
    other = tmp_path / "elsewhere"
    assert main(["preview", str(world_dir), "-o", str(other)]) == 0
    assert (other / "previews/topdown.png").is_file()
    assert json.loads((world_dir / "world.json").read_text())["files"]["previews"] == listed


def test_cli_preview_rejects_non_world(tmp_path, capsys):
    assert main(["preview", str(tmp_path)]) == 1
    assert "world.json missing" in capsys.readouterr().err


def test_detached_flat_ground_is_told_apart_from_obstacles():
    from lyra_isaac.preview import _detached_ground

    big = trimesh.creation.box(extents=(6, 6, 0.1))
    big.apply_translation((0, 0, -0.05))
    island = trimesh.creation.box(extents=(2, 2, 0.1))
    island.apply_translation((5.5, 0, -0.05))  # 1.5 m gap: flat, open, not connected
    crate = trimesh.creation.box(extents=(1, 1, 0.6))
    crate.apply_translation((-1.5, -1.5, 0.3))
    merged = trimesh.util.concatenate([big, island, crate])
    hm = build_heightmap(TriangleMesh(merged.vertices, merged.faces))
    detached = _detached_ground(hm) & ~hm.walkable
    rows, cols = hm.cell_of(np.array([[5.5, 0.0], [-1.5, -1.5], [-1.0, -1.5], [0.0, 0.0]]))
    assert detached[rows[0], cols[0]]  # the island
    assert detached[rows[1], cols[1]]  # the crate's top: a platform one cannot step onto
    assert not detached[rows[2], cols[2]] and not hm.walkable[rows[2], cols[2]]  # its 0.6 m edge: an obstacle
    assert hm.walkable[rows[3], cols[3]]


@pytest.mark.parametrize("size_xy", [(2.0, 14.0), (14.0, 2.0), (10.0, 10.0)])
def test_topdown_png_holds_every_label(size_xy, tmp_path):
    """A long corridor's narrow map had its title and the leading digits of its tick labels cut off at the image's
    left edge. Now the figure title, tick labels, colour bar and the legend below are all in the PNG, for any shape:
    it is saved to the bounding box of everything drawn."""
    from lyra_isaac.preview import _save_figure, render_topdown

    floor = trimesh.creation.box(extents=(*size_xy, 0.1))
    floor.apply_translation((size_xy[0] / 2 - 0.3, -size_xy[1] - 0.4, -0.05))  # two-digit negative y ticks
    heightmap = build_heightmap(TriangleMesh(floor.vertices, floor.faces))
    centre = np.array([[size_xy[0] / 2 - 0.3, -size_xy[1] / 2 - 0.4, 0.0, 0.3]])
    fig = render_topdown(heightmap, spawn_points=centre, goal_points=centre[:, :3] + [0.5, 0.5, 0.0])
    assert fig.get_suptitle() and fig.legends and any(t.get_text() == "goal" for t in fig.legends[0].get_texts())
    _save_figure(fig, tmp_path / "topdown.png")
    drawn = fig.get_tightbbox(fig.canvas.get_renderer())  # inches: everything drawn, title and legend included
    width, height = Image.open(tmp_path / "topdown.png").size
    assert abs(width - (drawn.width + 0.2) * fig.dpi) <= 3 and abs(height - (drawn.height + 0.2) * fig.dpi) <= 3
    assert height / width > 2 if size_xy[1] > size_xy[0] else True  # narrow maps make narrow images
