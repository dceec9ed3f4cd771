"""extend_floor_frontiers: open floor borders grow by frontier_extension; walls, drops and specks do not."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from test_mesh import grid_plane

from lyra_isaac.geometry.mesh import MeshConfig, finish_mesh
from lyra_isaac.geometry.raycast import vertical_layers
from lyra_isaac.world import TriangleMesh

EXT = 0.1


def vertical_hits(mesh: TriangleMesh, xy: np.ndarray) -> np.ndarray:
    """(N,) bool: a downward ray from z = 5 at each xy hits the mesh."""
    z = np.array([vertical_layers(mesh.vertices, mesh.faces, np.array([x]), np.array([y]), 5.0, 1)[0][0, 0]
                  for x, y in xy])
    return np.isfinite(z)


def _finish(verts, faces, **kw):
    return finish_mesh(TriangleMesh(verts, faces), MeshConfig(decimate=False, frontier_extension=EXT, **kw))


def test_open_floor_border_extended_flat_and_upward():
    verts, faces = grid_plane(size=2.0, cells=40)  # [-1, 1]^2 at z = 0
    out, stats = _finish(verts, faces)
    assert stats["frontier_area_added_m2"] == pytest.approx(4 * 2.0 * EXT, rel=0.1)
    inside = np.array([[1.0 + 0.8 * EXT, 0.3], [-0.2, -1.0 - 0.8 * EXT], [1.0 + 0.6 * EXT, 1.0 + 0.6 * EXT]])
    outside = np.array([[1.0 + 1.3 * EXT, 0.3], [-0.2, -1.0 - 1.3 * EXT]])
    assert vertical_hits(out, inside).all() and not vertical_hits(out, outside).any()
    assert np.abs(out.vertices[:, 2]).max() < 1e-9
    n = np.cross(out.vertices[out.faces[:, 1]] - out.vertices[out.faces[:, 0]],
                 out.vertices[out.faces[:, 2]] - out.vertices[out.faces[:, 0]])
    assert (n[:, 2] > 0).all()


def test_ramp_border_follows_the_slope():
    verts, faces = grid_plane(size=2.0, cells=40)
    verts = verts.copy()
    verts[:, 2] = np.tan(np.radians(10.0)) * verts[:, 0]
    out, _ = _finish(verts, faces)
    far = out.vertices[:, 0] > 1.0 + 0.5 * EXT
    assert far.any()
    assert np.allclose(out.vertices[far, 2], np.tan(np.radians(10.0)) * out.vertices[far, 0], atol=2e-3)


def test_walls_drops_and_specks_not_extended():
    """A platform (closed box: its top's border turns down into its sides), a wall panel and a small floor speck."""
    platform = trimesh.creation.box(extents=(2.0, 2.0, 0.6))
    platform.apply_translation((0.0, 0.0, 0.3))
    wall = trimesh.creation.box(extents=(0.1, 2.0, 2.5))  # closed: no border at all
    wall.apply_translation((3.0, 0.0, 1.25))
    panel = trimesh.Trimesh([[5, -1, 0], [5, 1, 0], [5, 1, 2], [5, -1, 2]], [[0, 1, 2], [0, 2, 3]])  # open, vertical
    speck_v, speck_f = grid_plane(size=0.5, cells=5)
    speck = trimesh.Trimesh(speck_v + [8.0, 0.0, 0.0], speck_f)
    merged = trimesh.util.concatenate([platform, wall, panel, speck])
    out, stats = _finish(np.asarray(merged.vertices), np.asarray(merged.faces), min_component_area=0.0)
    assert stats["frontier_edges_extended"] == 0
    assert out.n_triangles == len(merged.faces)
    assert not vertical_hits(out, np.array([[1.0 + 0.5 * EXT, 0.0], [8.25 + 0.5 * EXT, 0.0]])).any()


def test_curled_border_fringe_still_counts_as_floor():
    """A fused floor's border curls up in a thin fringe (steep faces along the edge): judged by the surface around
    it, the floor is still extended."""
    verts, faces = grid_plane(size=2.0, cells=40)
    verts = verts.copy()
    edge = verts[:, 0] >= 1.0 - 1e-9
    verts[edge, 2] = 0.025  # the last row of faces (5 cm wide) rises 2.5 cm: 27 degrees
    out, stats = _finish(verts, faces)
    assert stats["frontier_edges_extended"] > 0
    assert vertical_hits(out, np.array([[1.0 + 0.5 * EXT, 0.0]])).all()


def test_ledge_over_seen_lower_surface_not_extended():
    """An open table top 0.45 m above a floor the views saw: its border is the top's edge (a drop), not the edge of
    what was seen, and stays; the floor's own open border is extended; the same top alone (nothing seen below it)
    is a frontier and grows."""
    floor_v, floor_f = grid_plane(size=3.0, cells=60)  # [-1.5, 1.5]^2 at z = 0
    top_v, top_f = grid_plane(size=1.2, cells=24)
    top_v = top_v + [0.0, 0.0, 0.45]
    verts = np.concatenate([floor_v, top_v])
    faces = np.concatenate([floor_f, top_f + len(floor_v)])
    out, stats = _finish(verts, faces)
    assert stats["frontier_ledge_vertices"] > 0
    beyond_top = np.array([[0.6 + 0.5 * EXT, 0.0], [0.0, -0.6 - 0.5 * EXT]])
    beyond_floor = np.array([[1.5 + 0.5 * EXT, 0.0], [0.0, -1.5 - 0.5 * EXT]])
    assert vertical_hits(out, beyond_floor).all()
    z_top = [vertical_layers(out.vertices, out.faces, np.array([x]), np.array([y]), 5.0, 1)[0][0, 0]
             for x, y in beyond_top]
    assert np.allclose(z_top, 0.0, atol=1e-4)  # the floor under it, not an extended top
    alone, alone_stats = _finish(top_v, top_f)
    assert alone_stats["frontier_ledge_vertices"] == 0 and vertical_hits(alone, beyond_top).all()


def test_step_down_seen_from_above_not_bridged():
    """An upper floor (z = 0.15) whose open border faces a lower floor the views saw: not extended over the step."""
    upper_v, upper_f = grid_plane(size=2.0, cells=40)
    upper_v = upper_v + [0.0, 0.0, 0.15]
    lower_v, lower_f = grid_plane(size=2.0, cells=40)
    lower_v = lower_v + [2.5, 0.0, 0.0]  # x in [1.5, 3.5]: the step's riser at x = 1 .. 1.5 unseen
    verts = np.concatenate([upper_v, lower_v])
    faces = np.concatenate([upper_f, lower_f + len(upper_v)])
    out, _ = _finish(verts, faces)
    # toward the lower floor (+x, 0.5 m of gap) the upper border grows, since nothing lies below within EXT of it;
    # the lower floor's -x border lies under nothing: it grows too
    assert vertical_hits(out, np.array([[1.0 + 0.5 * EXT, 0.0], [1.5 - 0.5 * EXT, 0.0]])).all()
    # the upper floor extended over the lower one where they overlap in XY instead
    lower_v2 = lower_v - [1.6, 0.0, 0.0]  # x in [-0.1, 1.9]: under the upper floor's +x border
    out2, stats2 = _finish(np.concatenate([upper_v, lower_v2]), np.concatenate([upper_f, lower_f + len(upper_v)]))
    assert stats2["frontier_ledge_vertices"] > 0
    z = vertical_layers(out2.vertices, out2.faces, np.array([1.0 + 0.5 * EXT]), np.array([0.0]), 5.0, 1)[0][0, 0]
    assert z == pytest.approx(0.0, abs=1e-4)
