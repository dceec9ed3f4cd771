"""MuJoCo scene writer: a :class:`~lyra_isaac.world.World` -> ``scene.xml`` with its assets beside it.

MuJoCo collides every mesh geom as its convex hull, so the scene mesh is never one geom. Instead:

* the 2.5-D ground, sampled at the world's :class:`~lyra_isaac.world.HeightMap` cell centres, is a ``plane`` at
  the floor height plus ``hfield`` rectangles (merged from 0.8 m blocks) wherever the ground departs from the floor
  by more than ``flat_tolerance`` (vertical walls and steps are fine in a height field). Each tile is sampled 1x,
  2x or 4x coarser, whichever keeps every cell within ``resample_tolerance``. Holes (NaN cells) are filled from the
  nearest valid cell; per-cell noise smaller than ``smooth_tolerance`` is removed on locally flat ground.
  Why (benchmarks/mjcf_ground.py, Gymnasium's humanoid under random controls, RK4, one core): relative to a plane,
  a 14 m box runs at 0.86x, one 14 x 14 m height field of 5 cm cells at 0.21x, 10 cm 0.42x, 41 cm 0.74x; a height
  field costs by the cells under the touching geom, and every extra geom costs broad-phase time on every pass.
* what a height field cannot hold (overhangs: collision triangles clearly above the ground under them, such as a
  table top or a ceiling) becomes convex parts: each connected overhang component is cut into XY tiles whose
  thickened convex hulls are the parts (``MjcfConfig.overhang_method``; CoACD or one hull per component on
  request); every part is its own ``mesh`` geom (``mjcf_assets/part_NNN.obj``).
* every spawn point becomes a ``site`` named ``spawn_NNN`` (position on the floor, yaw about +Z).
* a light, a skybox and a checker ground material make the scene render sensibly on its own.

Robots are not baked in. :mod:`lyra_isaac.envs.backends.mujoco` loads scene.xml with ``mujoco.MjSpec`` and
attaches a robot's root body into a frame with ``MjSpec`` attach (``frame.attach_body(body, "robot/", "")``),
so one scene serves every robot. Open ``scene.xml`` in ``python -m mujoco.viewer`` to look at a world alone.

Height-field layout (verified against ``mj_ray`` and by the drop tests): MuJoCo's ``hfield_data`` row 0 is the
minimum y, column 0 the minimum x, as in :class:`HeightMap` (row i: y = origin_y + i * cell); the inline
``elevation`` attribute lists rows from +y down to -y. MuJoCo normalizes samples to 0..1 between their min and
max, and the geom spans ``z = pos_z + data * size[2]`` with a ``size[3]``-deep base below ``pos_z``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import quoteattr

import numpy as np

from ..errors import ConfigError, InputError
from ..world import MJCF_SCENE, HeightMap, TriangleMesh, World

logger = logging.getLogger(__name__)

TILE_PREFIX = "ground_tile_"
ASSETS_DIR = "mjcf_assets"
GROUND_GEOM = "ground"
SPAWN_SITE_PREFIX = "spawn_"
PART_PREFIX = "part_"
OVERHANG_METHODS = ("tiles", "coacd", "hull")


@dataclass
class MjcfConfig:
    """How :func:`write_mjcf_scene` represents a world in MuJoCo."""

    max_cells: int = 512
    """Largest height-field side in samples; finer height maps are resampled (block mean) to fit."""
    smooth_tolerance: float = 0.01
    """Metres. Cells whose 3x3 neighbourhood spans less than this are replaced by the neighbourhood median,
    removing sensor-level noise from flat ground (noisy fields slow contacts); 0 disables."""
    base_thickness: float = 0.3
    """Metres of solid height-field base below each tile's lowest point."""
    tile_cells: int = 16
    """Block edge in height-map cells (0.8 m at 5 cm) for the flat / not-flat decision. Neighbouring non-flat
    blocks with the same subsampling merge into one height-field rectangle: every geom costs broad-phase time on
    every collision pass even untouched (280 separate 0.8 m tiles doubled the humanoid's step time), and a
    touched height field costs by the cells under the touching geom, not by its size."""
    max_tile_blocks: int = 1 << 30
    """Longest height-field rectangle side, in blocks."""
    flat_tolerance: float = 0.02
    """Metres: blocks within this of the floor plane are left to the plane (converted floors are uneven by a few
    centimetres: with 1 cm the apartment fixture's whole floor became height field)."""
    resample_tolerance: float = 0.01
    """Metres: a tile is sampled 2x or 4x coarser when that changes no cell by more than this."""
    overhang_margin: float = 0.05
    """Metres: a collision triangle is an overhang when all its corners lie this far above the highest ground
    sample within ``overhang_dilate_cells`` cells."""
    overhang_dilate_cells: int = 2
    overhang_min_area: float = 0.01
    """m^2: overhang components smaller than this are dropped (splat noise)."""
    overhang_method: Literal["tiles", "coacd", "hull"] = "tiles"
    """How an overhang component becomes convex parts: ``"tiles"`` (cut into ``overhang_tile_size`` squares in XY,
    each the convex hull of its surface thickened by ``overhang_thickness`` against its normals: milliseconds),
    ``"coacd"`` (CoACD decomposition when the package is installed, else tiles; it took 12-116 s per component on
    the apartment fixture's open 69-897-face ceiling and lintel sheets, loaded 2-core box) or ``"hull"`` (one
    convex hull per component: fastest, but fills a concave overhang)."""
    overhang_tile_size: float = 0.5
    """Metres: XY edge of the squares an overhang is cut into by the ``tiles`` method."""
    overhang_thickness: float = 0.05
    """Metres: reconstructed overhangs are open sheets; each tile is made solid this far behind its surface."""
    coacd_threshold: float = 0.05
    """CoACD concavity threshold (``real_metric``, metres)."""
    coacd_min_faces: int = 64
    """With ``coacd``: components with fewer faces are one convex hull (CoACD would not help)."""
    max_parts: int = 256
    friction: tuple[float, float, float] = (1.0, 0.005, 0.0001)
    ground_rgba: tuple[float, float, float, float] = (0.55, 0.52, 0.45, 1.0)
    checker: bool = True
    """Checker texture on the ground (reads scale and motion in renders)."""


def write_mjcf_scene(world: World, directory: Path, cfg: MjcfConfig | None = None) -> dict[str, str]:
    """Write ``scene.xml`` (+ ``ground_hfield.bin`` and convex-part meshes) for ``world`` into ``directory``.

    Args:
        world: the world; uses ``world.heightmap`` (ground), ``world.collision`` (overhangs, (V, 3) metres,
            world frame, Z up) and ``world.spawn_points`` ((S, 4) [x, y, z, yaw]).
        directory: existing output folder; files are written into it (relative asset paths).
        cfg: representation settings; defaults to :class:`MjcfConfig`.

    Returns:
        Files written, relative to ``directory``: ``{"mjcf": "scene.xml", "mjcf_part_000": ...}``.

    Raises:
        InputError: the height map has no valid cell.
    """
    cfg = cfg or MjcfConfig()
    directory = Path(directory)
    files: dict[str, str] = {}
    heights, cell, origin = prepare_ground(world.heightmap, cfg)
    nrow, ncol = heights.shape
    hmin, hmax = float(heights.min()), float(heights.max())
    elevation = max(hmax - hmin, 1e-3)
    plane_z, tiles = ground_tiles(heights, cell, origin, cfg)
    rx, ry = max((ncol - 1) * cell / 2, cell / 2), max((nrow - 1) * cell / 2, cell / 2)
    cx, cy = origin[0] + (ncol - 1) * cell / 2, origin[1] + (nrow - 1) * cell / 2

    parts = overhang_parts(world.collision, heights, cell, origin, cfg)
    part_files = []
    if parts:
        (directory / ASSETS_DIR).mkdir(exist_ok=True)
    for i, part in enumerate(parts):
        rel = f"{ASSETS_DIR}/{PART_PREFIX}{i:03d}.obj"
        _write_obj(part, directory / rel)
        files[f"mjcf_{PART_PREFIX}{i:03d}"] = rel
        part_files.append(rel)

    friction = " ".join(f"{v:g}" for v in cfg.friction)
    rgba = " ".join(f"{v:g}" for v in cfg.ground_rgba)
    extent = float(max(rx, ry))
    lines = [
        '<mujoco model="lyra_world">',
        '  <compiler angle="radian"/>',
        f'  <statistic center="{cx:.4f} {cy:.4f} {hmin + elevation / 2:.4f}" extent="{2 * extent:.3f}"/>',
        '  <visual>',
        '    <headlight ambient="0.35 0.35 0.35" diffuse="0.5 0.5 0.5" specular="0.1 0.1 0.1"/>',
        f'    <map znear="0.01" zfar="{max(50.0, 8 * extent):.1f}" shadowclip="{max(4.0, extent):.1f}"/>',
        '    <quality shadowsize="2048"/>',
        '  </visual>',
        '  <asset>',
        '    <texture name="sky" type="skybox" builtin="gradient" rgb1="0.55 0.7 0.9" rgb2="0.1 0.15 0.25" '
        'width="256" height="256"/>',
        '    <texture name="ground_checker" type="2d" builtin="checker" rgb1="0.62 0.6 0.55" rgb2="0.45 0.43 0.4" '
        'width="256" height="256" mark="edge" markrgb="0.3 0.3 0.3"/>',
        ('    <material name="ground_mat" texture="ground_checker" texrepeat="1 1" '
         'texuniform="true" reflectance="0.05"/>') if cfg.checker else
        f'    <material name="ground_mat" rgba="{rgba}"/>',
        '    <material name="part_mat" rgba="0.6 0.45 0.35 1"/>',
    ]
    for i, t in enumerate(tiles):
        # inline elevation rows run from +y to -y (MuJoCo flips them into hfield_data, whose row 0 is -y)
        values = " ".join(f"{v:.4f}" for v in (t.heights[::-1] - t.z0).ravel())
        lines.append(f'    <hfield name="{TILE_PREFIX}{i:03d}" nrow="{t.heights.shape[0]}" ncol="{t.heights.shape[1]}" '
                     f'size="{t.rx:.6f} {t.ry:.6f} {t.elevation:.6f} {t.base:.6f}" elevation="{values}"/>')
    for i, rel in enumerate(part_files):
        lines.append(f'    <mesh name="{PART_PREFIX}{i:03d}" file={quoteattr(rel)}/>')
    lines += [
        '  </asset>',
        '  <worldbody>',
        f'    <light name="sun" directional="true" pos="{cx:.3f} {cy:.3f} {hmax + 10:.3f}" dir="0.3 0.2 -1" '
        'castshadow="true" diffuse="0.6 0.6 0.6"/>',
        # the flat floor is a plane (MuJoCo's cheapest contact). It is drawn by a visual-only copy 2 mm lower, so
        # height-field tiles lying on the floor do not flicker against it (z-fighting); physics is unchanged.
        f'    <geom name="{GROUND_GEOM}" type="plane" size="{rx + cell:.4f} {ry + cell:.4f} 0.1" '
        f'pos="{cx:.6f} {cy:.6f} {plane_z:.6f}" rgba="0 0 0 0" friction="{friction}" condim="3"/>',
        f'    <geom name="{GROUND_GEOM}_visual" type="plane" size="{rx + cell:.4f} {ry + cell:.4f} 0.1" '
        f'pos="{cx:.6f} {cy:.6f} {plane_z - 0.002:.6f}" material="ground_mat" contype="0" conaffinity="0"/>',
    ]
    for i, t in enumerate(tiles):
        # all tiles are worldbody geoms: one static body per tile measured 1.2-3.5x slower (broad phase)
        lines.append(f'    <geom name="{TILE_PREFIX}{i:03d}" type="hfield" hfield="{TILE_PREFIX}{i:03d}" '
                     f'pos="{t.cx:.6f} {t.cy:.6f} {t.z0:.6f}" material="ground_mat" friction="{friction}" '
                     'condim="3"/>')
    for i in range(len(part_files)):
        lines.append(f'    <geom name="{PART_PREFIX}{i:03d}" type="mesh" mesh="{PART_PREFIX}{i:03d}" '
                     f'material="part_mat" friction="{friction}" condim="3"/>')
    for i, (x, y, z, yaw) in enumerate(np.asarray(world.spawn_points, dtype=np.float64).reshape(-1, 4)):
        lines.append(f'    <site name="{SPAWN_SITE_PREFIX}{i:03d}" pos="{x:.4f} {y:.4f} {z:.4f}" '
                     f'euler="0 0 {yaw:.5f}" size="0.08" rgba="0.1 0.8 0.2 0.6" group="4"/>')
    lines += ['  </worldbody>', '</mujoco>', '']
    (directory / MJCF_SCENE).write_text("\n".join(lines))
    files["mjcf"] = MJCF_SCENE
    logger.info("MuJoCo scene: plane at z=%.3f + %d height-field tile(s) over a %dx%d grid (%.3f m cells, "
                "%.2f..%.2f m), %d convex overhang part(s), %d spawn sites", plane_z, len(tiles), nrow, ncol, cell,
                hmin, hmax, len(parts), len(world.spawn_points))
    return files


@dataclass
class GroundTile:
    """One height-field tile: samples (R, C) metres at spacing ``cell * factor``, centred at (cx, cy)."""

    heights: np.ndarray
    cx: float
    cy: float
    rx: float
    ry: float
    z0: float
    elevation: float
    base: float
    factor: int


def ground_tiles(heights: np.ndarray, cell: float, origin: tuple[float, float],
                 cfg: MjcfConfig) -> tuple[float, list[GroundTile]]:
    """Split the ground into a plane plus height-field tiles where the ground departs from it.

    The plane lies at the most common ground height (the floor) unless regions wider than two cells lie more than
    ``flat_tolerance`` below it, then at the lowest of them. Blocks of ``tile_cells`` cells whose samples all lie within
    ``flat_tolerance`` of the plane are left to the plane; every other block gets the coarsest of 1x, 2x, 4x
    subsampling whose bilinear reconstruction stays within ``resample_tolerance`` of every cell, and neighbouring
    blocks of equal subsampling merge into rectangles, each one ``hfield`` geom (neighbours share their edge
    samples, so the surface stays continuous). A plane contact costs a fraction of a height-field one, so the
    robot touches height fields only where the ground is not flat.

    Returns:
        (plane z in metres, tiles).
    """
    from scipy import ndimage

    values, counts = np.unique(np.round(heights / 0.01).astype(np.int64), return_counts=True)
    plane_z = float(values[np.argmax(counts)] * 0.01)
    # ground below the plane would be covered by it (a plane is infinite): then the plane goes down to the lowest
    # such region; specks of one or two cells (noise, filled holes) are ignored, a foot cannot sink into them
    deep = ndimage.binary_opening(heights < plane_z - cfg.flat_tolerance, structure=np.ones((3, 3), bool))
    if deep.any():
        plane_z = float(heights[deep].min())
    nrow, ncol = heights.shape
    step = max(int(cfg.tile_cells), 1)
    row_edges = list(range(0, max(nrow - 1, 1), step)) + [nrow - 1]
    col_edges = list(range(0, max(ncol - 1, 1), step)) + [ncol - 1]
    # off the plane: any cell more than 3 tolerances away (walls, steps, however thin), and regions wider than two
    # cells more than one tolerance away (isolated noisy cells on a floor are not worth a height field)
    deviation = np.abs(heights - plane_z)
    off = (deviation > 3 * cfg.flat_tolerance) | ndimage.binary_opening(deviation > cfg.flat_tolerance,
                                                                          structure=np.ones((3, 3), bool))
    # per block: 0 = flat (left to the plane), else the height-field subsampling factor it tolerates
    factors = np.zeros((len(row_edges) - 1, len(col_edges) - 1), dtype=np.int64)
    for bi, (r0, r1) in enumerate(zip(row_edges[:-1], row_edges[1:], strict=True)):
        for bj, (c0, c1) in enumerate(zip(col_edges[:-1], col_edges[1:], strict=True)):
            block = heights[r0:r1 + 1, c0:c1 + 1]
            if off[r0:r1 + 1, c0:c1 + 1].any():
                factors[bi, bj] = _tile_factor(block, cfg.resample_tolerance)
    tiles = []
    for (bi0, bi1, bj0, bj1), factor in _merge_blocks(factors, cfg.max_tile_blocks):
        r0, r1, c0, c1 = row_edges[bi0], row_edges[bi1], col_edges[bj0], col_edges[bj1]
        sub = heights[r0:r1 + 1:factor, c0:c1 + 1:factor]
        z0 = float(sub.min())  # MuJoCo normalizes samples to 0..1 between their min and max
        tiles.append(GroundTile(
            heights=sub, cx=origin[0] + (c0 + c1) / 2 * cell, cy=origin[1] + (r0 + r1) / 2 * cell,
            rx=max((c1 - c0) * cell / 2, cell / 2), ry=max((r1 - r0) * cell / 2, cell / 2), z0=z0,
            elevation=max(float(sub.max()) - z0, 1e-3), base=cfg.base_thickness, factor=factor))
    return plane_z, tiles


def _merge_blocks(factors: np.ndarray, max_blocks: int = 1 << 30) -> list[tuple[tuple[int, int, int, int], int]]:
    """Cover the non-zero blocks with few rectangles of equal factor: runs along rows, merged down columns,
    each at most ``max_blocks`` blocks long per side.

    Returns:
        ((row0, row1, col0, col1) block index bounds, end exclusive; factor) per rectangle.
    """
    open_rects: dict[tuple[int, int, int], int] = {}  # (col0, col1, factor) -> row0
    rects = []
    for bi in range(factors.shape[0] + 1):
        runs = set()
        if bi < factors.shape[0]:
            row = factors[bi]
            bj = 0
            while bj < len(row):
                if row[bj] == 0:
                    bj += 1
                    continue
                start = bj
                while bj < len(row) and row[bj] == row[start] and bj - start < max_blocks:
                    bj += 1
                runs.add((start, bj, int(row[start])))
        for key in list(open_rects):
            if key not in runs or bi - open_rects[key] >= max_blocks:
                rects.append(((open_rects.pop(key), bi, key[0], key[1]), key[2]))
        for key in runs:
            open_rects.setdefault(key, bi)
    return rects


def _tile_factor(block: np.ndarray, tolerance: float) -> int:
    """Coarsest subsampling (1, 2, 4) of a tile whose bilinear reconstruction is within ``tolerance``."""
    from scipy import ndimage

    best = 1
    for factor in (2, 4):
        if (block.shape[0] - 1) % factor or (block.shape[1] - 1) % factor or min(block.shape) <= factor:
            break
        sub = block[::factor, ::factor]
        rr, cc = np.meshgrid(np.arange(block.shape[0]) / factor, np.arange(block.shape[1]) / factor, indexing="ij")
        recon = ndimage.map_coordinates(sub, [rr, cc], order=1, mode="nearest")
        if np.abs(recon - block).max() > tolerance:
            break
        best = factor
    return best


def prepare_ground(heightmap: HeightMap, cfg: MjcfConfig) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Height-field samples from a height map: holes filled, flat-ground noise removed, size capped.

    Returns:
        heights: (R, C) float64 ground height per sample, metres (row = y, column = x).
        cell: sample spacing, metres.
        origin: (x, y) of sample [0, 0], metres.
    """
    from scipy import ndimage

    heights = np.asarray(heightmap.heights, dtype=np.float64)
    if heights.ndim != 2 or heights.size == 0:
        raise InputError(None, f"height map must be a non-empty 2-D grid, got shape {heights.shape}")
    valid = np.isfinite(heights)
    if not valid.any():
        raise InputError(None, "height map has no valid cell (all NaN): nothing to build a MuJoCo ground from")
    if not valid.all():
        # nearest valid cell: holes (unseen floor) continue the ground around them
        _, (ri, ci) = ndimage.distance_transform_edt(~valid, return_indices=True)
        heights = heights[ri, ci]
        logger.debug("filled %d height-map holes from nearest cells", int((~valid).sum()))
    cell = float(heightmap.cell_size)
    origin = (float(heightmap.origin[0]), float(heightmap.origin[1]))
    factor = int(np.ceil(max(heights.shape) / max(cfg.max_cells, 2)))
    if factor > 1:
        r, c = (heights.shape[0] // factor) * factor, (heights.shape[1] // factor) * factor
        heights = heights[:r, :c].reshape(r // factor, factor, c // factor, factor).max(axis=(1, 3))
        origin = (origin[0] + (factor - 1) * cell / 2, origin[1] + (factor - 1) * cell / 2)
        cell *= factor
        logger.info("height field resampled %dx coarser to %s (max_cells=%d)", factor, heights.shape, cfg.max_cells)
    if cfg.smooth_tolerance > 0 and min(heights.shape) >= 3:
        span = ndimage.maximum_filter(heights, 3, mode="nearest") - ndimage.minimum_filter(heights, 3, mode="nearest")
        flat = span < cfg.smooth_tolerance
        heights = np.where(flat, ndimage.median_filter(heights, 3, mode="nearest"), heights)
        # a second, wider pass flattens what is left of sub-tolerance ripples
        span5 = ndimage.maximum_filter(heights, 5, mode="nearest") - ndimage.minimum_filter(heights, 5, mode="nearest")
        heights = np.where(span5 < cfg.smooth_tolerance, ndimage.uniform_filter(heights, 5, mode="nearest"), heights)
    return heights, cell, origin


def overhang_parts(mesh: TriangleMesh, heights: np.ndarray, cell: float, origin: tuple[float, float],
                   cfg: MjcfConfig) -> list[TriangleMesh]:
    """Convex parts for the collision geometry the height field cannot represent.

    A triangle is an overhang when all three corners lie more than ``cfg.overhang_margin`` above the highest
    ground sample within ``cfg.overhang_dilate_cells`` of them (so walls and box tops captured by the height
    field are not duplicated). Connected overhang components become convex parts (``cfg.overhang_method``).

    Returns:
        Convex parts, each a closed TriangleMesh in world metres.
    """
    if mesh is None or mesh.n_triangles == 0:
        return []
    from scipy import ndimage

    size = 2 * cfg.overhang_dilate_cells + 1
    ground_max = ndimage.maximum_filter(heights, size, mode="nearest")
    v = mesh.vertices.astype(np.float64)
    cols = np.clip(np.round((v[:, 0] - origin[0]) / cell).astype(np.int64), 0, heights.shape[1] - 1)
    rows = np.clip(np.round((v[:, 1] - origin[1]) / cell).astype(np.int64), 0, heights.shape[0] - 1)
    above = v[:, 2] > ground_max[rows, cols] + cfg.overhang_margin
    face_mask = above[mesh.faces].all(axis=1)
    if not face_mask.any():
        return []
    import trimesh

    sub = trimesh.Trimesh(v, mesh.faces[face_mask], process=False)
    sub.remove_unreferenced_vertices()
    components = [c for c in sub.split(only_watertight=False) if c.area >= cfg.overhang_min_area]
    components.sort(key=lambda c: -c.area)
    parts: list[TriangleMesh] = []
    for comp in components:
        if len(parts) >= cfg.max_parts:
            logger.warning("overhang parts capped at max_parts=%d (%d components)", cfg.max_parts, len(components))
            break
        parts.extend(_convex_parts(comp, cfg))
    return parts[: cfg.max_parts]


def _convex_parts(component, cfg: MjcfConfig) -> list[TriangleMesh]:
    """Convex parts of one connected overhang component (a ``trimesh.Trimesh``), per ``cfg.overhang_method``."""
    if cfg.overhang_method not in OVERHANG_METHODS:
        raise ConfigError(f"mjcf.overhang_method must be one of {', '.join(OVERHANG_METHODS)}, "
                          f"not '{cfg.overhang_method}'")
    if cfg.overhang_method == "coacd" and len(component.faces) >= cfg.coacd_min_faces:
        try:
            import coacd
        except ImportError:
            coacd = None
        if coacd is not None:
            coacd.set_log_level("error")
            result = coacd.run_coacd(coacd.Mesh(np.asarray(component.vertices), np.asarray(component.faces)),
                                     threshold=cfg.coacd_threshold, real_metric=True)
            out = [TriangleMesh(np.asarray(vertices), np.asarray(faces)) for vertices, faces in result if len(faces)]
            if out:
                return out
    elif cfg.overhang_method == "coacd" or cfg.overhang_method == "hull":
        return [_thick_hull(np.asarray(component.vertices)[np.asarray(component.faces)],
                            np.asarray(component.face_normals), cfg.overhang_thickness)]
    return _tile_parts(component, cfg)


def _tile_parts(component, cfg: MjcfConfig) -> list[TriangleMesh]:
    """The ``tiles`` method: faces grouped by the XY square (``overhang_tile_size``) their centroid falls in; each
    group is one convex part (its thickened hull), largest groups first."""
    corners = np.asarray(component.vertices, dtype=np.float64)[np.asarray(component.faces)]  # (F, 3, 3)
    normals = np.asarray(component.face_normals, dtype=np.float64)
    keys = np.floor(corners.mean(axis=1)[:, :2] / max(cfg.overhang_tile_size, 1e-3)).astype(np.int64)
    _, group = np.unique(keys, axis=0, return_inverse=True)
    group = group.ravel()
    order = np.argsort(-np.bincount(group))
    return [_thick_hull(corners[group == g], normals[group == g], cfg.overhang_thickness) for g in order]


def _thick_hull(corners: np.ndarray, normals: np.ndarray, thickness: float) -> TriangleMesh:
    """Convex hull of triangles (K, 3, 3) and the same triangles moved ``thickness`` against their (K, 3) unit
    normals (into the solid behind a reconstructed surface): a closed part even for a flat sheet."""
    import trimesh

    moved = corners - thickness * normals[:, None, :]
    points = np.unique(np.concatenate([corners, moved]).reshape(-1, 3).round(6), axis=0)
    try:
        hull = trimesh.convex.convex_hull(points)
    except Exception:  # noqa: BLE001 - qhull on degenerate input (all points on a line): a small box instead
        hull = None
    if hull is None or hull.volume <= 1e-9:
        lo, hi = points.min(axis=0), points.max(axis=0)
        hull = trimesh.creation.box(bounds=np.stack([lo, np.maximum(hi, lo + thickness)]))
    return TriangleMesh(np.asarray(hull.vertices), np.asarray(hull.faces))


def _write_obj(mesh: TriangleMesh, path: Path) -> None:
    v = "\n".join(f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in mesh.vertices)
    f = "\n".join(f"f {a + 1} {b + 1} {c + 1}" for a, b, c in mesh.faces)
    path.write_text(f"# lyra_isaac convex part\n{v}\n{f}\n")
