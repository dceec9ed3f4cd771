"""Fidelity metrics: a converted world against the truth of a synthetic fixture (DESIGN.md section 7).

A converted world lives in its own frame (Z up, metres, floor at 0, with a yaw and an origin the converter chose).
Both are tied to the PLY frame: the prediction by its estimated ``source_to_world`` (M_pred), the truth by the true
one (M_true). Predicted geometry is therefore mapped ``pred world -> PLY (M_pred^-1) -> truth world (M_true)``:

- surface errors (Chamfer, precision / recall / F-score at 2 and 5 cm, floor height at probes, holes) measure
  the mesh the converter built, *in the scale and orientation it chose from the source*, so a converter that
  gets every surface right but the global scale wrong still scores well on them;
- frame errors (up axis in degrees, scale in percent, floor offset in metres) measure M_pred itself;
- spawn points are checked where they land in the truth: on walkable floor, with support, head room and space.

The truth surface used for recall and completeness is the **visible** part: the truth mesh ray cast from the
fixture's own cameras (within ``max_view_depth_m``), so no converter is blamed for surfaces nobody saw.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..world import TriangleMesh
from .lyra_fixture import Fixture
from .render import Raycaster, pixel_rays

logger = logging.getLogger(__name__)

F_THRESHOLDS_M = (0.02, 0.05)
"""Distance thresholds of precision, recall and F-score, metres (the report's ``*_2cm`` and ``*_5cm`` fields)."""
MAIN_FLOOR_TOLERANCE_M = 0.02
"""Probes within this height of z = 0 lie on the main floor (used for the floor offset)."""
# Physics probes: spheres of DROP_RADIUS_M dropped from DROP_HEIGHT_M above the true floor at (at most
# DROP_MAX_SPHERES, mutually separated) probes, simulated DROP_SECONDS in MuJoCo; a sphere that ends farther than
# DROP_ROLL_M sideways rolled (tilted, bumpy or broken collision).
DROP_RADIUS_M = 0.08
DROP_HEIGHT_M = 0.3
DROP_SECONDS = 2.0
DROP_MAX_SPHERES = 64
DROP_ROLL_M = 0.3
DROP_ROLLING_FRICTION_M = DROP_RADIUS_M * 0.36
"""Rolling friction of the probe spheres (MuJoCo condim 6, length units): holds a sphere still on slopes up to
about atan(0.36) = 20 degrees, so true hills do not count as rolling while tilted or broken collision does."""

@dataclass
class MetricsConfig:
    """Settings of :func:`evaluate`.

    Attributes:
        sample_spacing_m: voxel size for thinning the visible truth samples to an even density, metres.
        max_view_depth_m: truth surface farther than this from every camera is not counted as seen, metres.
        max_render_rays: cap on rays cast to find the visible truth (views are rendered at reduced resolution).
        pred_samples: points sampled on the predicted mesh (area weighted).
        truth_samples: cap on visible truth samples.
        hole_distance_m: a probe with no predicted surface within this height is a hole, metres.
        spawn_support_m: a spawn point's truth floor must lie within this height of it, metres.
        spawn_clearance_m: free height required above a spawn point, metres.
        robot_radius_m: free horizontal radius (and flat support radius) required around a spawn point, metres.
        max_slope_deg: steepest walkable truth floor, degrees.
        seed: seeds the random samplings.
    """

    sample_spacing_m: float = 0.02
    max_view_depth_m: float = 8.0
    max_render_rays: int = 2_000_000
    pred_samples: int = 200_000
    truth_samples: int = 200_000
    hole_distance_m: float = 0.5
    spawn_support_m: float = 0.1
    spawn_clearance_m: float = 1.8
    robot_radius_m: float = 0.25
    max_slope_deg: float = 30.0
    seed: int = 0


@dataclass
class FidelityReport:
    """Errors of a converted world against its fixture's truth. Distances in metres, angles in degrees.

    Surface (prediction mapped into the truth frame through the PLY frame):
        chamfer_m: mean of ``accuracy_m`` and ``completeness_m``.
        accuracy_m: mean distance from predicted surface samples to the truth mesh.
        completeness_m: mean distance from visible truth samples to the predicted mesh.
        precision_2cm, recall_2cm, fscore_2cm, precision_5cm, recall_5cm, fscore_5cm: fractions in [0, 1].
    Floor (probes on walkable truth floor):
        floor_error_mean_m, floor_error_median_m, floor_error_p95_m: absolute height error where not a hole.
        floor_bias_m: signed mean (predicted - true) height.
        floor_hole_fraction: probes with no predicted surface within ``hole_distance_m``.
    Frame:
        up_error_deg: angle between the predicted world's +Z and the true up.
        scale_error_pct: 100 * (predicted metres per source unit / true - 1).
        floor_offset_m: height of the predicted world's z = 0 plane above the true floor (main-floor probes).
    Spawns:
        spawn_valid_fraction: spawn points on walkable truth floor with support, head room and space (NaN: none).
    Counts: n_probes, n_spawn, n_pred_triangles, n_pred_samples, n_truth_samples, seconds.
    """

    chamfer_m: float
    accuracy_m: float
    completeness_m: float
    precision_2cm: float
    recall_2cm: float
    fscore_2cm: float
    precision_5cm: float
    recall_5cm: float
    fscore_5cm: float
    floor_error_mean_m: float
    floor_error_median_m: float
    floor_error_p95_m: float
    floor_bias_m: float
    floor_hole_fraction: float
    up_error_deg: float
    scale_error_pct: float
    floor_offset_m: float
    spawn_valid_fraction: float
    n_probes: int
    n_spawn: int
    n_pred_triangles: int
    n_pred_samples: int
    n_truth_samples: int
    seconds: float
    drop_error_mean_m: float = float("nan")
    """Physics probes (:func:`drop_test`, when run): mean |rest height - true floor - radius| of spheres that
    did not fall through, truth metres."""
    drop_fell_fraction: float = float("nan")
    """Spheres that ended more than ``hole_distance_m`` below the true floor (fell through)."""
    drop_rolled_fraction: float = float("nan")
    """Spheres that came to rest more than ``DROP_ROLL_M`` sideways from where they were dropped."""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (floats and ints), e.g. for JSON or a table row."""
        return {k: (float(v) if isinstance(v, float | np.floating) else v) for k, v in asdict(self).items()}


def prediction_to_truth(pred_source_to_world: np.ndarray, fixture: Fixture) -> np.ndarray:
    """(4, 4) similarity mapping predicted-world points to the truth world: ``M_true @ inv(M_pred)``."""
    m_pred = np.asarray(pred_source_to_world, dtype=np.float64)
    if m_pred.shape != (4, 4) or not np.isfinite(m_pred).all():
        raise InputError(None, f"predicted source_to_world must be a finite 4x4 matrix, got shape {m_pred.shape}")
    det = np.linalg.det(m_pred[:3, :3])
    if not det > 0:
        raise InputError(None, f"predicted source_to_world is not a proper similarity (det {det:.3g})")
    return fixture.source_to_world @ np.linalg.inv(m_pred)


def _transform(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return np.asarray(points, dtype=np.float64) @ matrix[:3, :3].T + matrix[:3, 3]


def sample_mesh(vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) float64 points sampled uniformly by area on a triangle mesh ((V, 3) vertices, (F, 3) faces)."""
    v = np.asarray(vertices, dtype=np.float64)
    tri = v[np.asarray(faces)]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    total = area.sum()
    if not total > 0:
        raise InputError(None, "predicted mesh has zero surface area")
    idx = rng.choice(len(tri), size=n, p=area / total)
    r1, r2 = rng.random((2, n))
    s = np.sqrt(r1)
    a, b, c = 1 - s, s * (1 - r2), s * r2
    t = tri[idx]
    return a[:, None] * t[:, 0] + b[:, None] * t[:, 1] + c[:, None] * t[:, 2]


def visible_truth_points(fixture: Fixture, cfg: MetricsConfig | None = None,
                         raycaster: Raycaster | None = None) -> np.ndarray:
    """(N, 3) float64 points on the truth surface seen by the fixture's cameras, truth world frame, metres.

    Views are ray cast at reduced resolution when the fixture has more than ``max_render_rays`` pixels; hits
    beyond ``max_view_depth_m`` are dropped; points are thinned to one per ``sample_spacing_m`` voxel and capped
    at ``truth_samples``.
    """
    cfg = cfg or MetricsConfig()
    rc = raycaster or fixture.raycaster()
    total = fixture.n_views * fixture.width * fixture.height
    factor = max(1.0, float(np.sqrt(total / cfg.max_render_rays)))
    w, h = max(8, int(fixture.width / factor)), max(8, int(fixture.height / factor))
    k = fixture.intrinsics.copy()
    k[0] *= w / fixture.width
    k[1] *= h / fixture.height
    rays = pixel_rays(k, w, h).reshape(-1, 3)
    chunks = []
    for c2w in fixture.c2w_world:
        depth = rc.render(c2w, k, w, h).depth.reshape(-1)
        ok = depth < cfg.max_view_depth_m
        chunks.append((rays[ok] * depth[ok, None]) @ c2w[:3, :3].T + c2w[:3, 3])
    points = np.concatenate(chunks) if chunks else np.zeros((0, 3))
    keys = np.floor(points / cfg.sample_spacing_m).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    points = points[np.sort(first)]
    if len(points) > cfg.truth_samples:
        rng = np.random.default_rng([cfg.seed, 11])
        points = points[np.sort(rng.choice(len(points), cfg.truth_samples, replace=False))]
    return points


def check_spawns(spawns_truth: np.ndarray, truth_rc: Raycaster, cfg: MetricsConfig) -> np.ndarray:
    """(S,) bool: each spawn point (S, 3) (truth frame, feet position) stands on walkable truth floor.

    A spawn is valid when the truth floor lies within ``spawn_support_m`` of it with a walkable slope, points at
    ``robot_radius_m`` around it are supported within ``spawn_support_m``, the space above is free for
    ``spawn_clearance_m`` and no wall is within ``robot_radius_m`` horizontally at knee and chest height.
    """
    p = np.asarray(spawns_truth, dtype=np.float64).reshape(-1, 3)
    if len(p) == 0:
        return np.zeros(0, dtype=bool)
    reach = cfg.spawn_support_m
    z, normal = truth_rc.heights_below(p[:, :2], p[:, 2] + reach, max_drop=2 * reach)
    # the slope whichever way the truth face is wound (the terrain's has faces wound both ways)
    ok = np.isfinite(z) & (np.abs(normal[:, 2]) >= np.cos(np.radians(cfg.max_slope_deg)))
    floor = np.where(np.isfinite(z), z, p[:, 2])
    up = np.tile([0.0, 0.0, 1.0], (len(p), 1))
    ok &= truth_rc.free_distance(np.column_stack([p[:, :2], floor + 0.02]), up) > cfg.spawn_clearance_m
    for a in np.linspace(0, 2 * np.pi, 8, endpoint=False):
        d = np.array([np.cos(a), np.sin(a)])
        zz, _ = truth_rc.heights_below(p[:, :2] + cfg.robot_radius_m * d, floor + reach, max_drop=2 * reach)
        ok &= np.isfinite(zz)
        dirs = np.tile([d[0], d[1], 0.0], (len(p), 1))
        for height in (0.5, 1.2):
            origins = np.column_stack([p[:, :2], floor + height])
            ok &= truth_rc.free_distance(origins, dirs) > cfg.robot_radius_m
    return ok


def evaluate(pred_mesh: TriangleMesh, pred_source_to_world: np.ndarray, fixture: Fixture, *,
             spawn_points: np.ndarray | None = None, cfg: MetricsConfig | None = None,
             truth_points: np.ndarray | None = None) -> FidelityReport:
    """Compare a predicted collision mesh and frame with a fixture's truth.

    Args:
        pred_mesh: the converter's collision mesh, metres, **predicted** world frame.
        pred_source_to_world: (4, 4) the converter's PLY-to-world similarity (world.json ``source_to_world``).
        fixture: the truth (:func:`~lyra_isaac.synthetic.make_fixture` / :func:`load_fixture`).
        spawn_points: (S, 3) or (S, 4) ``[x, y, z(, yaw)]`` spawn points in the predicted world, or None.
        cfg: sampling and threshold settings.
        truth_points: precomputed :func:`visible_truth_points` (reuse across evaluations of one fixture).

    Returns:
        A :class:`FidelityReport`.

    Raises:
        InputError: the mesh is empty or invalid, or the matrix is not a proper similarity.
    """
    started = time.perf_counter()
    cfg = cfg or MetricsConfig()
    pred_mesh.validate("predicted collision mesh")
    rng = np.random.default_rng([cfg.seed, 13])
    to_truth = prediction_to_truth(pred_source_to_world, fixture)
    truth_rc = fixture.raycaster()
    pred_vertices = _transform(pred_mesh.vertices, to_truth)
    pred_rc = Raycaster(pred_vertices, pred_mesh.faces)
    # surface: both directions, point-to-mesh distances
    if truth_points is None:
        truth_points = visible_truth_points(fixture, cfg, truth_rc)
    pred_points = sample_mesh(pred_vertices, pred_mesh.faces, cfg.pred_samples, rng)
    d_pred = truth_rc.distance(pred_points).astype(np.float64)
    d_truth = pred_rc.distance(truth_points).astype(np.float64)
    scores: dict[str, float] = {}
    for tau in F_THRESHOLDS_M:
        name = f"{round(tau * 100)}cm"
        precision = float(np.mean(d_pred <= tau))
        recall = float(np.mean(d_truth <= tau)) if len(d_truth) else float("nan")
        denom = precision + recall
        scores[f"precision_{name}"] = precision
        scores[f"recall_{name}"] = recall
        scores[f"fscore_{name}"] = 2 * precision * recall / denom if denom > 0 else 0.0
    accuracy = float(d_pred.mean())
    completeness = float(d_truth.mean()) if len(d_truth) else float("nan")
    # floor height at probes: the topmost predicted surface within +-hole_distance of the true floor
    probes = fixture.probes
    hd = cfg.hole_distance_m
    z_pred, _ = pred_rc.heights_below(probes[:, :2], probes[:, 2] + hd, max_drop=2 * hd)
    err = z_pred - probes[:, 2]
    found = np.isfinite(err)
    abs_err = np.abs(err[found])
    # frame
    linear = to_truth[:3, :3]
    a = float(np.cbrt(np.linalg.det(linear)))
    up_truth = linear @ [0.0, 0.0, 1.0]
    up_error = float(np.degrees(np.arccos(np.clip(up_truth[2] / np.linalg.norm(up_truth), -1.0, 1.0))))
    # the predicted z = 0 plane, seen in the truth frame, at the main-floor probes
    origin = to_truth[:3, 3]
    main = np.abs(probes[:, 2]) < MAIN_FLOOR_TOLERANCE_M
    if main.any() and abs(up_truth[2]) > 1e-9:
        xy = probes[main, :2]
        slope = up_truth[0] * (xy[:, 0] - origin[0]) + up_truth[1] * (xy[:, 1] - origin[1])
        plane_z = origin[2] - slope / up_truth[2]
        floor_offset = float(np.mean(plane_z))
    else:
        floor_offset = float("nan")
    # spawns
    n_spawn = 0
    spawn_valid = float("nan")
    if spawn_points is not None and len(spawn_points):
        sp = np.asarray(spawn_points, dtype=np.float64)
        sp_truth = _transform(sp[:, :3], to_truth)
        valid = check_spawns(sp_truth, truth_rc, cfg)
        n_spawn, spawn_valid = len(sp), float(valid.mean())

    def stat(fn, values):
        return float(fn(values)) if len(values) else float("nan")

    report = FidelityReport(
        chamfer_m=0.5 * (accuracy + completeness), accuracy_m=accuracy, completeness_m=completeness,
        **scores,
        floor_error_mean_m=stat(np.mean, abs_err), floor_error_median_m=stat(np.median, abs_err),
        floor_error_p95_m=stat(lambda x: np.percentile(x, 95), abs_err), floor_bias_m=stat(np.mean, err[found]),
        floor_hole_fraction=float(1.0 - found.mean()) if len(found) else float("nan"),
        up_error_deg=up_error, scale_error_pct=100.0 * (1.0 / a - 1.0), floor_offset_m=floor_offset,
        spawn_valid_fraction=spawn_valid, n_probes=len(probes), n_spawn=n_spawn,
        n_pred_triangles=pred_mesh.n_triangles, n_pred_samples=len(pred_points), n_truth_samples=len(truth_points),
        seconds=round(time.perf_counter() - started, 3),
    )
    logger.info("fidelity on %s: chamfer %.3f m, F@2cm %.3f, F@5cm %.3f, floor |err| %.3f m (holes %.0f%%), "
                "up %.2f deg, scale %+.1f%%", fixture.scene_name, report.chamfer_m, report.fscore_2cm,
                report.fscore_5cm, report.floor_error_mean_m, 100 * report.floor_hole_fraction, up_error,
                report.scale_error_pct)
    return report


def _separated(points: np.ndarray, min_distance: float, limit: int) -> np.ndarray:
    """Indices of up to ``limit`` of (N, 3) points, greedily chosen at least ``min_distance`` apart."""
    chosen: list[int] = []
    for i, p in enumerate(points):
        if all(np.linalg.norm(p - points[j]) >= min_distance for j in chosen):
            chosen.append(i)
            if len(chosen) == limit:
                break
    return np.asarray(chosen, dtype=np.int64)


def drop_test(mjcf_path: str | Path, pred_source_to_world: np.ndarray, fixture: Fixture, *,
              hole_distance_m: float = 0.5) -> dict[str, Any]:
    """Physics probes: drop spheres on the fixture's probes in a converted world's MuJoCo scene.

    Probes (truth frame) are mapped into the predicted world, spheres (radius ``DROP_RADIUS_M``) are dropped from
    ``DROP_HEIGHT_M`` above them and simulated for ``DROP_SECONDS``; rest positions are mapped back to the truth
    frame and compared with the true floor height plus the sphere radius (in truth metres).

    Args:
        mjcf_path: the world's ``scene.xml``.
        pred_source_to_world: (4, 4) the world's ``source_to_world``.
        fixture: the truth.
        hole_distance_m: a sphere ending this far below the true floor fell through.

    Returns:
        ``drop_error_mean_m``, ``drop_fell_fraction``, ``drop_rolled_fraction``, ``n_drops``, and per-sphere
        ``errors_m`` (list, NaN for fallen spheres).

    Raises:
        InputError: the scene cannot be read or compiled by MuJoCo.
    """
    import mujoco

    to_truth = prediction_to_truth(pred_source_to_world, fixture)
    to_pred = np.linalg.inv(to_truth)
    scale_truth_per_pred = float(np.cbrt(np.linalg.det(to_truth[:3, :3])))
    probes = fixture.probes[_separated(fixture.probes, 3 * DROP_RADIUS_M, DROP_MAX_SPHERES)]
    up_pred = to_pred[:3, :3] @ [0.0, 0.0, 1.0]
    up_pred /= np.linalg.norm(up_pred)
    start_pred = _transform(probes, to_pred) + up_pred * (DROP_HEIGHT_M / scale_truth_per_pred)
    try:
        spec = mujoco.MjSpec.from_file(str(mjcf_path))
        for i, p in enumerate(start_pred):
            body = spec.worldbody.add_body(name=f"lyra_fidelity_drop_{i}", pos=p.tolist())
            body.add_freejoint()
            body.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[DROP_RADIUS_M, 0, 0], density=500.0,
                          condim=6, friction=[1.0, 0.005, DROP_ROLLING_FRICTION_M])
        model = spec.compile()
    except Exception as exc:  # MuJoCo raises ValueError with the compiler's message
        raise InputError(mjcf_path, f"MuJoCo cannot load the scene with drop probes: {exc}") from None
    data = mujoco.MjData(model)
    mujoco.mj_step(model, data, nstep=int(round(DROP_SECONDS / model.opt.timestep)))
    ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"lyra_fidelity_drop_{i}") for i in range(len(probes))]
    rest = _transform(data.xpos[ids].astype(np.float64), to_truth)
    start = _transform(start_pred, to_truth)
    fell = rest[:, 2] < probes[:, 2] - hole_distance_m
    rolled = np.linalg.norm(rest[:, :2] - start[:, :2], axis=1) > DROP_ROLL_M
    errors = np.where(fell, np.nan, rest[:, 2] - probes[:, 2] - DROP_RADIUS_M * scale_truth_per_pred)
    settled = ~fell & ~rolled
    result = {
        "drop_error_mean_m": float(np.mean(np.abs(errors[settled]))) if settled.any() else float("nan"),
        "drop_fell_fraction": float(fell.mean()) if len(fell) else float("nan"),
        "drop_rolled_fraction": float(rolled.mean()) if len(rolled) else float("nan"),
        "n_drops": len(probes),
        "errors_m": errors.tolist(),
    }
    logger.info("drop test in %s: %d spheres, %.1f%% fell through, %.1f%% rolled, mean rest error %.3f m",
                Path(mjcf_path).name, len(probes), 100 * result["drop_fell_fraction"],
                100 * result["drop_rolled_fraction"], result["drop_error_mean_m"])
    return result


def evaluate_world(world_dir: str | Path, fixture: Fixture | str | Path, *, cfg: MetricsConfig | None = None,
                   truth_points: np.ndarray | None = None, physics: bool = True) -> FidelityReport:
    """:func:`evaluate` a converted world directory (world.json, collision mesh, spawn points) against a fixture.

    Args:
        world_dir: the output of ``lyra_isaac.convert.convert``.
        fixture: a :class:`Fixture` or the folder it was written to.
        cfg: metric settings.
        truth_points: precomputed :func:`visible_truth_points`.
        physics: also run :func:`drop_test` on the world's MuJoCo scene (when world.json lists one).
    """
    from ..world import load_world
    from .lyra_fixture import load_fixture

    if not isinstance(fixture, Fixture):
        fixture = load_fixture(fixture)
    world = load_world(world_dir)
    matrix = np.asarray(world.manifest.source_to_world, dtype=np.float64).reshape(4, 4)
    mesh = world.collision_mesh()
    spawns = world.spawn_points
    report = evaluate(mesh, matrix, fixture, spawn_points=spawns, cfg=cfg, truth_points=truth_points)
    if physics and "mjcf" in world.manifest.files:
        drops = drop_test(world.file("mjcf"), matrix, fixture, hole_distance_m=(cfg or MetricsConfig()).hole_distance_m)
        report.drop_error_mean_m = drops["drop_error_mean_m"]
        report.drop_fell_fraction = drops["drop_fell_fraction"]
        report.drop_rolled_fraction = drops["drop_rolled_fraction"]
    return report
