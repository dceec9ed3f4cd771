"""PNG previews of a world: :func:`write_previews`.

- ``previews/topdown.png``: the height map (hill-shaded, coloured by height), the walkable area (green), obstacles
  and other non-walkable surfaces (red tint), cells without a surface (grey), numbered spawn points with their
  heading, goal candidates, axes in metres and a scale bar.
- ``previews/perspective_*.png``: the collision mesh ray-cast (:mod:`.geometry.raycast`: open3d, or numpy without
  it) and shaded: two overviews from opposite corners above the world and, when there are spawn points, the view
  from the first spawn at eye height. Back faces are skipped, so single-sided reconstructed rooms open up like a
  doll's house, and the overviews cut away what lies more than ``CUTAWAY_HEIGHT`` above the nearest walkable
  ground (ceilings). Vertex colours are used when the mesh has them, otherwise colour follows height.

Headless: matplotlib's Agg canvas (no pyplot state) and Pillow. Files are written to a temp name and renamed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from .errors import OutputError
from .geometry.raycast import first_visible, pinhole_rays
from .world import PREVIEWS_DIR, HeightMap, TriangleMesh, World

logger = logging.getLogger(__name__)

TOPDOWN_PNG = "topdown.png"
PERSPECTIVE_SIZE = (960, 640)
"""Width, height of the perspective images, pixels."""
PERSPECTIVE_FOV_DEG = 60.0
"""Horizontal field of view of the perspective cameras."""
EYE_HEIGHT = 1.6
"""Height of the spawn-point camera above the ground, metres."""
MAX_SKIPS = 8
"""Back faces and cut-away surfaces a perspective ray passes through before it gives up."""
TOPDOWN_MAX_INCHES = 12.0
"""Longest side of the top-down figure, inches (at 150 dpi)."""
BACKGROUND = np.array([0.93, 0.95, 0.98])
"""Perspective background colour (RGB, 0..1)."""
NO_SURFACE_RGB = (0.86, 0.86, 0.86)
"""Top-down colour of cells without a surface."""
DETACHED_RGB = (0.55, 0.62, 0.78)
"""Top-down tint of flat open ground that is not connected to the walkable region."""
CUTAWAY_HEIGHT = 2.0
"""Overviews hide surfaces more than this (metres) above the nearest walkable ground: ceilings and wall tops."""
PNG_COMPRESS_LEVEL = 1
"""zlib level of the PNG files (lossless at any level): 1 encodes the three 960 x 640 views 3x faster than 6
(0.08 vs 0.27 s) for 11 % larger files."""


def write_previews(world: World, directory: Path) -> dict[str, str]:
    """Write the top-down map and perspective views of ``world`` into ``directory/previews/``.

    Args:
        world: the converted world (collision mesh, height map, spawn and goal points).
        directory: the world directory; images go to its ``previews/`` folder (created).

    Returns:
        dict name -> path relative to ``directory`` (``topdown``, ``perspective_0``...), in writing order.

    Raises:
        OutputError: the folder cannot be created or written.
    """
    files: dict[str, str] = {}
    for job in preview_jobs(world, directory):
        files.update(job())
    logger.info("previews: wrote %s", ", ".join(files.values()))
    return files


def preview_jobs(world: World, directory: Path) -> list[Callable[[], dict[str, str]]]:
    """The previews of :func:`write_previews` as independent jobs, in its order (top-down map, then each perspective
    view): each renders and writes one PNG and returns {name: path relative to ``directory``}. They share no state,
    so they may run on separate threads (:func:`lyra_isaac.convert.write_world_files` does: each perspective view
    costs seconds without open3d). The ``previews/`` folder is created here.

    Raises:
        OutputError: the folder cannot be created (the jobs raise it when a file cannot be written).
    """
    folder = Path(directory) / PREVIEWS_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(folder, f"cannot create previews folder: {exc.strerror or exc}") from None

    def topdown() -> dict[str, str]:
        _save_figure(render_topdown(world.heightmap, world.spawn_points, world.goal_points), folder / TOPDOWN_PNG)
        return {"topdown": f"{PREVIEWS_DIR}/{TOPDOWN_PNG}"}

    def perspective(index: int, filename: str, render: Callable[[], np.ndarray]) -> dict[str, str]:
        _save_image(render(), folder / filename)
        return {f"perspective_{index}": f"{PREVIEWS_DIR}/{filename}"}

    mesh = world.collision
    if mesh.colors is None and world.visual is not None and world.visual.colors is not None \
            and len(world.visual.vertices) == len(mesh.vertices):
        mesh = TriangleMesh(mesh.vertices, mesh.faces, world.visual.colors)  # same geometry, coloured
    views = perspective_jobs(mesh, world.spawn_points, world.heightmap)
    return [topdown, *(partial(perspective, i, f"perspective_{i}_{name}.png", render)
                       for i, (name, render) in enumerate(views))]


# ----------------------------------------------------------------------------------------------------------------
# top-down map


def render_topdown(heightmap: HeightMap, spawn_points: np.ndarray | None = None,
                   goal_points: np.ndarray | None = None, title: str | None = None):
    """A matplotlib Figure (Agg) of the height map with walkable area, obstacles, spawns, goals and a scale bar.

    Args:
        heightmap: the world's height map (metres, Z up).
        spawn_points: (S, 4) [x, y, z, yaw] or None.
        goal_points: (G, 3) or None.
        title: figure title (default: walkable area and counts).
    """
    from matplotlib import colors as mcolors
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    heights = np.asarray(heightmap.heights, dtype=np.float64)
    walkable = np.asarray(heightmap.walkable, dtype=bool)
    has_surface = np.isfinite(heights)
    rows, cols = heights.shape
    cell = heightmap.cell_size
    x0, y0 = heightmap.origin
    extent = (x0 - cell / 2, x0 + (cols - 0.5) * cell, y0 - cell / 2, y0 + (rows - 0.5) * cell)

    # colour range from the walkable surfaces (plus a margin), so walls and roofs don't flatten the floor's colours
    finite = heights[walkable] if walkable.any() else heights[has_surface]
    if finite.size:
        low, high = np.percentile(finite, [1, 99])
        high += 0.5
    else:
        low, high = 0.0, 1.0
    if high - low < 1e-3:
        low, high = low - 0.5, high + 0.5
    norm = mcolors.Normalize(vmin=low, vmax=high)
    cmap = _colormap()
    filled = np.where(has_surface, heights, low)
    light = mcolors.LightSource(azdeg=315, altdeg=45)
    # LightSource takes row 0 as the top of the image; our row 0 is y min: shade flipped, then flip back
    rgb = light.shade(filled[::-1], cmap=cmap, norm=norm, blend_mode="soft", vert_exag=1.0, dx=cell,
                      dy=cell)[::-1, :, :3]
    # walkable cells keep their height colour; flat open ground outside the connected walkable region is pale
    # blue-grey; other surfaces turn grey-red (darker = higher); holes light grey
    detached = _detached_ground(heightmap) & ~walkable
    blocked = has_surface & ~walkable & ~detached
    gray = rgb[blocked].mean(axis=1, keepdims=True)
    rgb[blocked] = 0.35 * gray + 0.65 * np.array([0.55, 0.22, 0.2]) * (0.6 + 0.4 * gray)
    rgb[detached] = 0.45 * rgb[detached] + 0.55 * np.array(DETACHED_RGB)
    rgb[~has_surface] = NO_SURFACE_RGB

    width_m, height_m = extent[1] - extent[0], extent[3] - extent[2]
    aspect = height_m / max(width_m, 1e-9)
    fig_w = TOPDOWN_MAX_INCHES if aspect <= 1 else max(TOPDOWN_MAX_INCHES / aspect + 1.0, 4.5)
    fig_h = max(fig_w * aspect, 4.0) if aspect <= 1 else TOPDOWN_MAX_INCHES
    # constrained layout keeps the colour bar, the figure title and the legend below inside the figure whatever the
    # map's shape (a long corridor's narrow axes had the title and the tick labels cut off at the image's edge)
    fig = Figure(figsize=(fig_w + 1.5, fig_h + 0.8), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(rgb, origin="lower", extent=extent, interpolation="nearest")
    if walkable.any():
        xs = x0 + cell * np.arange(cols)
        ys = y0 + cell * np.arange(rows)
        ax.contour(xs, ys, walkable.astype(float), levels=[0.5], colors=["#0b5d1e"], linewidths=0.8)
    mappable = _scalar_mappable(cmap, norm)
    colorbar = fig.colorbar(mappable, ax=ax, fraction=0.04, pad=0.02)
    colorbar.set_label("surface height [m]")

    marker_scale = max(width_m, height_m)
    if goal_points is not None and len(goal_points):
        goals = np.asarray(goal_points).reshape(-1, 3)
        ax.scatter(goals[:, 0], goals[:, 1], marker="*", s=40, c="#ffd21f", edgecolors="black", linewidths=0.4,
                   zorder=4)
    if spawn_points is not None and len(spawn_points):
        spawns = np.asarray(spawn_points).reshape(-1, 4)
        arrow = 0.035 * marker_scale
        ax.quiver(spawns[:, 0], spawns[:, 1], np.cos(spawns[:, 3]) * arrow, np.sin(spawns[:, 3]) * arrow,
                  angles="xy", scale_units="xy", scale=1, color="black", width=0.003, zorder=5)
        ax.scatter(spawns[:, 0], spawns[:, 1], s=70, c="white", edgecolors="black", linewidths=1.0, zorder=6)
        for i, (x, y) in enumerate(spawns[:, :2]):
            ax.annotate(str(i), (x, y), xytext=(5, 5), textcoords="offset points", fontsize=8, weight="bold",
                        color="black", zorder=7,
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    _scale_bar(ax, extent)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    area = float(walkable.sum()) * cell * cell
    n_spawn = 0 if spawn_points is None else len(spawn_points)
    n_goal = 0 if goal_points is None else len(goal_points)
    narrow = fig_w < 9.0
    fig.suptitle(title or f"walkable {area:.1f} m²  ·  {n_spawn} spawn points{chr(10) if narrow else '  ·  '}"
                          f"{n_goal} goals  ·  cell {100 * cell:.0f} cm")
    legend = [Patch(facecolor=cmap(0.3), edgecolor="#0b5d1e", label="walkable (coloured by height)"),
              Patch(color=(0.45, 0.2, 0.18), label="obstacle / not walkable"),
              Patch(color=DETACHED_RGB, label="flat, not connected"),
              Patch(color=NO_SURFACE_RGB, label="no surface")]
    if n_spawn:
        legend.append(ax.scatter([], [], s=50, c="white", edgecolors="black", label="spawn (heading)"))
    if n_goal:
        legend.append(ax.scatter([], [], marker="*", s=50, c="#ffd21f", edgecolors="black", label="goal"))
    fig.legend(handles=legend, loc="outside lower center", ncol=3 if narrow else len(legend), fontsize=8,
               frameon=False)
    return fig


def _detached_ground(heightmap: HeightMap) -> np.ndarray:
    """(H, W) bool: level, open cells (head clearance, neighbours within a step) whether or not they are connected
    to the walkable region; the thresholds are :class:`~lyra_isaac.geometry.walkable.WalkableConfig`'s defaults."""
    from .geometry.walkable import WalkableConfig

    defaults = WalkableConfig()
    heights = np.asarray(heightmap.heights, dtype=np.float64)
    clearance = heightmap.clearance if heightmap.clearance is not None else np.full(heights.shape, np.inf)
    open_cells = np.isfinite(heights) & (np.nan_to_num(clearance, nan=0.0) >= defaults.clearance_height)
    padded = np.pad(heights, 1, constant_values=np.nan)
    level = open_cells.copy()
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        neighbour = padded[1 + dr:padded.shape[0] - 1 + dr, 1 + dc:padded.shape[1] - 1 + dc]
        with np.errstate(invalid="ignore"):
            level &= np.abs(neighbour - heights) <= defaults.max_step_height
    return level


def _scale_bar(ax, extent: tuple[float, float, float, float]) -> None:
    """A black-and-white bar of a round length (1, 2 or 5 x 10^k m, about a fifth of the width), bottom right."""
    width = extent[1] - extent[0]
    target = width / 5.0
    power = 10.0 ** np.floor(np.log10(target))
    length = max(m * power for m in (1, 2, 5) if m * power <= target) if target > 0 else 1.0
    height = extent[3] - extent[2]
    x1 = extent[1] - 0.04 * width
    x0 = x1 - length
    y = extent[2] + 0.05 * height
    thick = 0.012 * height
    ax.fill_between([x0, x1], y, y + thick, color="white", zorder=8, linewidth=0)
    ax.fill_between([x0, x0 + length / 2], y, y + thick, color="black", zorder=9, linewidth=0)
    ax.plot([x0, x1, x1, x0, x0], [y, y, y + thick, y + thick, y], color="black", linewidth=0.8, zorder=9)
    label = f"{length:g} m" if length >= 1 else f"{100 * length:g} cm"
    ax.text((x0 + x1) / 2, y + 1.6 * thick, label, ha="center", va="bottom", fontsize=9, weight="bold", zorder=9,
            bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))


def _colormap(name: str = "terrain"):
    """The height colormap: matplotlib's ``terrain`` without its sea-blue lower quarter."""
    import matplotlib
    from matplotlib.colors import ListedColormap

    base = matplotlib.colormaps[name]
    return ListedColormap(base(np.linspace(0.25, 1.0, 256)), name=f"{name}_land")


def _scalar_mappable(cmap, norm):
    from matplotlib.cm import ScalarMappable

    mappable = ScalarMappable(norm=norm, cmap=cmap)
    mappable.set_array(np.array([]))
    return mappable


# ----------------------------------------------------------------------------------------------------------------
# perspective views


def render_perspectives(mesh: TriangleMesh, spawn_points: np.ndarray | None,
                        heightmap: HeightMap | None = None) -> list[tuple[str, np.ndarray]]:
    """Shaded ray-cast views of ``mesh``: [(name, (H, W, 3) uint8 image)], see the module docstring."""
    return [(name, render()) for name, render in perspective_jobs(mesh, spawn_points, heightmap)]


def perspective_jobs(mesh: TriangleMesh, spawn_points: np.ndarray | None,
                     heightmap: HeightMap | None = None) -> list[tuple[str, Callable[[], np.ndarray]]]:
    """The views of :func:`render_perspectives` not yet rendered: [(name, call returning the (H, W, 3) uint8
    image)]. The calls are independent of each other."""
    lo, hi = mesh.bounds()
    center = 0.5 * (lo + hi)
    radius = max(float(np.linalg.norm(hi - lo)) / 2, 1e-3)
    distance = radius / np.tan(np.radians(PERSPECTIVE_FOV_DEG) / 2) * 0.95
    views = []
    for name, azimuth in (("overview_sw", 225.0), ("overview_ne", 45.0)):
        elevation = np.radians(40.0)
        direction = np.array([np.cos(np.radians(azimuth)) * np.cos(elevation),
                              np.sin(np.radians(azimuth)) * np.cos(elevation), np.sin(elevation)])
        target = center.copy()
        target[2] = lo[2] + 0.3 * (hi[2] - lo[2])
        views.append((name, target + direction * distance, target))
    if spawn_points is not None and len(spawn_points):
        x, y, z, yaw = np.asarray(spawn_points, dtype=np.float64).reshape(-1, 4)[0]
        eye = np.array([x, y, z + EYE_HEIGHT])
        views.append(("spawn_0", eye, eye + np.array([np.cos(yaw), np.sin(yaw), -0.25])))
    colors = None if mesh.colors is None else mesh.colors.astype(np.float32) / 255.0
    ceiling = _cutaway(heightmap) if heightmap is not None else None
    z_range = (lo[2], hi[2])
    if heightmap is not None and heightmap.walkable.any():
        walk = heightmap.heights[heightmap.walkable]
        z_range = (float(np.percentile(walk, 1)), float(np.percentile(walk, 99)) + 0.5)
    return [(name, partial(_render_view, mesh, colors, eye, target, z_range,
                           ceiling if name.startswith("overview") else None))
            for name, eye, target in views]


def _cutaway(heightmap: HeightMap):
    """A function (N, 3) points -> (N,) bool: True above CUTAWAY_HEIGHT over the nearest walkable cell's ground."""
    from scipy import ndimage

    walkable = np.asarray(heightmap.walkable, dtype=bool)
    if not walkable.any():
        return None
    _, (rows, cols) = ndimage.distance_transform_edt(~walkable, return_indices=True)
    ground = heightmap.heights[rows, cols]

    def above(points: np.ndarray) -> np.ndarray:
        r, c = heightmap.cell_of(points[:, :2])
        h, w = ground.shape
        r, c = np.clip(r, 0, h - 1), np.clip(c, 0, w - 1)
        return points[:, 2] > ground[r, c] + CUTAWAY_HEIGHT

    return above


def _render_view(mesh: TriangleMesh, colors: np.ndarray | None, eye: np.ndarray, target: np.ndarray,
                 z_range: tuple[float, float], hidden=None) -> np.ndarray:
    """(H, W, 3) uint8 shaded image of the mesh from a pinhole camera at ``eye`` looking at ``target`` (Z up).

    Rays pass through back faces and through points for which ``hidden(points)`` is True (ray casting:
    :func:`lyra_isaac.geometry.raycast.first_visible`, open3d or numpy)."""
    width, height = PERSPECTIVE_SIZE
    lo, hi = mesh.bounds()
    fog_distance = 3.0 * max(float(np.linalg.norm(hi - lo)), 1.0)
    dirs, project = pinhole_rays(eye, target, width, height, PERSPECTIVE_FOV_DEG)
    n = len(dirs)
    hit_t, prim, uvs, normals = first_visible(mesh.vertices, mesh.faces, eye, dirs, width, height, project=project,
                                              hidden=hidden, max_skips=MAX_SKIPS)
    found = prim >= 0
    image = np.tile(BACKGROUND, (n, 1))
    # vertical background gradient
    image *= (0.92 + 0.08 * (1 - np.repeat(np.arange(height) / height, width)))[:, None]
    if found.any():
        points = eye[None] + dirs[found] * hit_t[found, None]
        faces = mesh.faces[prim[found]]
        if colors is not None:
            w = np.concatenate([1 - uvs[found].sum(axis=1, keepdims=True), uvs[found]], axis=1)
            base = np.einsum("ik,ikc->ic", w, colors[faces])
        else:
            span = max(z_range[1] - z_range[0], 1e-6)
            base = _colormap()(np.clip((points[:, 2] - z_range[0]) / span, 0, 1))[:, :3]
        sun = np.array([0.4, 0.3, 0.85])
        sun /= np.linalg.norm(sun)
        lambert = np.abs(normals[found] @ sun)
        head = np.abs(np.einsum("ij,ij->i", normals[found], dirs[found]))
        shade = 0.25 + 0.45 * lambert + 0.3 * head
        fog = np.exp(-hit_t[found] / fog_distance)
        image[found] = (base * shade[:, None]) * fog[:, None] + BACKGROUND * (1 - fog[:, None])
    return (np.clip(image, 0, 1).reshape(height, width, 3) * 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------------------------
# writing


def _save_figure(fig, path: Path) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    try:
        fig.savefig(temp, format="png", dpi=fig.dpi, bbox_inches="tight", pad_inches=0.1,
                    pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL})
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise OutputError(path, f"cannot write preview: {exc.strerror or exc}") from None


def _save_image(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    temp = path.with_name(f".{path.name}.tmp")
    try:
        Image.fromarray(image).save(temp, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise OutputError(path, f"cannot write preview: {exc.strerror or exc}") from None
