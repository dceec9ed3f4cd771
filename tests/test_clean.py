"""clean_scene: each filter drops what it should and keeps the surfaces; counts and row indices are exact."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree
from splat_cases import room_case

from lyra_isaac.config import from_dict
from lyra_isaac.errors import ConfigError, ConversionError
from lyra_isaac.splats.clean import CleanConfig, clean_scene
from lyra_isaac.splats.scene import GaussianScene


def _faulty_case(seed: int = 0, with_cameras: bool = True):
    """Room (3 cm spacing) + sky + floaters, then low-opacity, oversize and NaN rows on known indices."""
    case = room_case(sky=4000, floaters=2000, tilt_deg=6, scale=0.8, spacing=0.03, seed=seed,
                     with_cameras=with_cameras)
    scene = case.scene
    n = len(scene)
    rng = np.random.default_rng(seed + 1)
    surface = np.flatnonzero(np.isin(case.labels, ["floor", "wall"]))
    picks = rng.choice(surface, 901, replace=False)
    faint, mid, huge, broken = picks[:300], picks[300:500], picks[500:700], picks[700:900]
    scene.opacity_logits[faint] = -6.0  # opacity 0.0025: dropped from both sets
    scene.opacity_logits[mid] = -3.0  # opacity 0.047: geometry drops, render keeps
    scene.log_scales[huge] = np.log(2.0)  # sigma 2 source units: oversize
    scene.means[broken[:100], 1] = np.nan
    scene.log_scales[broken[100:], 0] = np.inf
    scene.opacity_logits[picks[900]] = np.inf  # saturated opacity is valid
    scene.extra["row_index"] = np.arange(n, dtype=np.int64) * 3 + 7  # as if the reader had dropped rows
    scene.extra["rows_in_file"] = 3 * n + 7
    scene.source_path = Path("/data/scene.ply")
    return case, dict(faint=faint, mid=mid, huge=huge, broken=broken, saturated=picks[900:])


@pytest.mark.parametrize("with_cameras", [True, False])
def test_filters_drop_faults_and_keep_surfaces(with_cameras):
    case, faults = _faulty_case(with_cameras=with_cameras)
    n = len(case.scene)
    result = clean_scene(case.scene, case.cameras, CleanConfig())
    rows = (result.geometry.extra["row_index"] - 7) // 3  # back to our own indices
    assert np.all(result.geometry.extra["row_index"] == rows * 3 + 7)
    kept = Counter(case.labels[rows])
    total = Counter(case.labels)
    assert kept["sky"] == 0
    # floaters away from surfaces go; those inside a surface's voxel may stay (harmless to the surface)
    floaters = np.flatnonzero(case.labels == "floater")
    surface = cKDTree(case.world_points[np.isin(case.labels, ["floor", "wall", "table"])])
    far = floaters[surface.query(case.world_points[floaters])[0] > 0.2]
    assert np.isin(far, rows).sum() <= 0.02 * len(far)
    assert kept["floater"] <= 0.08 * total["floater"]
    bad = len(faults["faint"]) + len(faults["mid"]) + len(faults["huge"]) + len(faults["broken"])
    assert kept["floor"] + kept["wall"] >= 0.99 * (total["floor"] + total["wall"] - bad)
    for name in ("faint", "mid", "huge", "broken"):
        assert not np.isin(faults[name], rows).any(), name
    assert np.isin(faults["saturated"], rows).all()
    # exact bookkeeping
    stats = result.stats
    assert stats["input"] == n
    assert stats["geometry_kept"] == len(result.geometry) == n - sum(stats["dropped"].values())
    assert stats["dropped"]["non_finite"] == len(faults["broken"])
    assert stats["dropped"]["opacity"] == len(faults["faint"]) + len(faults["mid"])
    assert stats["dropped"]["oversize"] == len(faults["huge"])
    assert stats["dropped"]["sky"] == total["sky"]
    assert result.geometry.extra["rows_in_file"] == 3 * n + 7
    assert np.isfinite(result.geometry.means).all()
    # geometry rows really are the original rows
    np.testing.assert_array_equal(result.geometry.means, case.scene.means[rows])


def test_render_set_is_lenient():
    case, faults = _faulty_case()
    result = clean_scene(case.scene, case.cameras, CleanConfig())
    rows = (result.render.extra["row_index"] - 7) // 3
    assert np.isin(faults["mid"], rows).all()  # opacity 0.047 >= render threshold 0.01
    assert np.isin(faults["huge"], rows).all()  # oversize kept for rendering by default
    assert not np.isin(faults["faint"], rows).any()
    assert not np.isin(faults["broken"], rows).any()
    assert (case.labels[rows] == "sky").sum() == (case.labels == "sky").sum()  # sky kept for rendering
    strict = clean_scene(case.scene, case.cameras, CleanConfig(render_drop_sky=True, render_drop_oversize=True))
    rows = (strict.render.extra["row_index"] - 7) // 3
    assert (case.labels[rows] == "sky").sum() == 0 and not np.isin(faults["huge"], rows).any()
    assert strict.stats["render_dropped"]["sky"] == (case.labels == "sky").sum()


def test_identity_row_index_when_reader_gave_none():
    case = room_case(spacing=0.05)
    result = clean_scene(case.scene, case.cameras, CleanConfig(outliers=False))
    np.testing.assert_array_equal(result.geometry.extra["row_index"], np.arange(len(case.scene)))
    assert result.geometry.extra["rows_in_file"] == len(case.scene)


@pytest.mark.parametrize("row_index", [None, np.int64, np.int32])
def test_clean_scene_keeping_every_row_copies_nothing(row_index):
    """A scene with nothing to drop: both sets hold the input's arrays (no 11M-row copies); row_index is int64."""
    case = room_case(spacing=0.05)
    scene = case.scene
    if row_index is not None:
        scene.extra["row_index"] = np.arange(len(scene), dtype=row_index) * 3 + 7
    result = clean_scene(scene, case.cameras, CleanConfig(outliers=False))
    expected_rows = np.arange(len(scene)) if row_index is None else np.arange(len(scene)) * 3 + 7
    for part in (result.geometry, result.render):
        assert len(part) == len(scene)
        for name in ("means", "quats", "log_scales", "opacity_logits", "sh_dc"):
            assert getattr(part, name) is getattr(scene, name)
        assert part.extra["row_index"].dtype == np.int64
        np.testing.assert_array_equal(part.extra["row_index"], expected_rows)
        assert part.extra["rows_in_file"] == len(scene)


def test_all_sky_scene_raises_naming_file():
    rng = np.random.default_rng(0)
    n = 5000
    means = rng.normal(size=(n, 3))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    means *= rng.uniform(100, 200, (n, 1))
    means[:10] *= 0.001  # a handful of near points set a tiny reference depth
    scene = GaussianScene(means=means.astype(np.float32), quats=np.tile([1, 0, 0, 0], (n, 1)).astype(np.float32),
                          log_scales=np.full((n, 3), -3, np.float32), opacity_logits=np.full(n, 3, np.float32),
                          sh_dc=np.zeros((n, 3), np.float32), source_path=Path("/data/sky_only.ply"))
    with pytest.raises(ConversionError, match="sky_only.ply.*left for the geometry"):
        clean_scene(scene, None, CleanConfig(reference_depth=1.0))


def test_transparent_scene_raises():
    case = room_case(spacing=0.1, table=False)
    case.scene.opacity_logits[:] = -20
    case.scene.source_path = Path("/data/ghost.ply")
    with pytest.raises(ConversionError, match="ghost.ply"):
        clean_scene(case.scene, case.cameras, CleanConfig())


def test_config_from_dict():
    cfg = from_dict(CleanConfig, {"geometry_min_opacity": 0.2, "sky_factor": 5, "outlier_voxel_range": [0.01, 0.2]})
    assert cfg.geometry_min_opacity == 0.2 and cfg.sky_factor == 5.0 and cfg.outlier_voxel_range == (0.01, 0.2)
    with pytest.raises(ConfigError, match="sky_factr"):
        from_dict(CleanConfig, {"sky_factr": 3})


def test_row_tests_match_the_plain_formulas(monkeypatch):
    """The chunked, column-by-column finite-row test, row maximum and camera distance give what the one-shot
    formulas give, across chunk boundaries."""
    from lyra_isaac.splats import clean as clean_module

    monkeypatch.setattr(clean_module, "CHUNK", 97)
    case, _ = _faulty_case(seed=3)
    scene = case.scene
    scene.quats[5, 2] = np.nan
    scene.sh_dc[6, 0] = -np.inf
    scene.opacity_logits[7] = np.nan
    scene.opacity_logits[8] = -np.inf
    with np.errstate(over="ignore", invalid="ignore"):
        want = (np.isfinite(scene.means.sum(axis=1)) & np.isfinite(scene.log_scales.sum(axis=1))
                & np.isfinite(scene.quats.sum(axis=1)) & np.isfinite(scene.sh_dc.sum(axis=1))
                & ~np.isnan(scene.opacity_logits))
    np.testing.assert_array_equal(clean_module._finite_rows(scene), want)
    np.testing.assert_array_equal(clean_module._row_max(scene.log_scales), scene.log_scales.max(axis=1))

    anchors = case.cameras.centers()
    got = clean_module._nearest_distance(scene.means, anchors)
    exact = cKDTree(anchors[np.linspace(0, len(anchors) - 1, min(len(anchors), clean_module.MAX_ANCHORS))
                            .round().astype(int)]).query(np.nan_to_num(scene.means))[0]
    finite = np.isfinite(scene.means).all(axis=1)
    assert np.isinf(got[~finite]).all()
    span = np.percentile(scene.means[finite], 98, axis=0) - np.percentile(scene.means[finite], 2, axis=0)
    half_diagonal = np.sqrt(3) / 2 * 1.1 * span.max() / clean_module.DISTANCE_GRID
    np.testing.assert_allclose(got[finite], exact[finite], atol=half_diagonal + 1e-6)


def _textureless_floor_case(seed: int = 0):
    """The room of :func:`room_case` (small blobs every 5 cm, blob floaters) with a 3 x 2 m patch of its floor
    covered instead as an optimizer leaves a textureless floor: discs of 0.15-0.5 m sigma (thin along the floor
    normal) every 0.25 m, most larger than the oversize limit, all far sparser than the blobs around them; and
    isolated discs of the same size floating in the room. Returns (case, floor-disc rows, floating-disc rows)."""
    case = room_case(spacing=0.05, floaters=1000, seed=seed)
    scene, world = case.scene, case.world_points
    patch = (case.labels == "floor") & (np.abs(world[:, 0] + 1.5) < 1.5) & (np.abs(world[:, 1] - 1.0) < 1.0)
    keep = ~patch
    rng = np.random.default_rng(seed + 5)
    g = np.arange(-1.5, 1.5, 0.25) + 0.125
    gx, gy = np.meshgrid(g - 1.5, g[:8] + 1.5)  # the patch: x in (-3, 0), y in (0, 2)
    floor = np.column_stack([gx.ravel(), gy.ravel(), rng.normal(0, 0.003, gx.size)])
    floating = rng.uniform((-3.5, -2.5, 0.4), (3.5, 2.5, 2.2), (40, 3))
    new_world = np.concatenate([floor, floating])
    m = case.source_to_world
    new_src = (new_world - m[:3, 3]) @ m[:3, :3]  # room_case: scale 1, so M^-1 is the transpose
    n_new = len(new_world)
    sigma = rng.uniform(0.15, 0.5, (n_new, 1))
    # room_case's source frame has world +Z along source -Y: the thin axis is the source y axis
    log_scales = np.log(np.column_stack([sigma, np.full((n_new, 1), 0.01), sigma * rng.uniform(0.6, 1.0, (n_new, 1))]))
    quats = np.tile([1.0, 0.0, 0.0, 0.0], (n_new, 1))
    tilt = rng.normal(size=(40, 4))  # the floating discs face any way
    quats[len(floor):] = tilt / np.linalg.norm(tilt, axis=1, keepdims=True)
    merged = GaussianScene(
        means=np.concatenate([scene.means[keep], new_src]).astype(np.float32),
        quats=np.concatenate([scene.quats[keep], quats]).astype(np.float32),
        log_scales=np.concatenate([scene.log_scales[keep], log_scales]).astype(np.float32),
        opacity_logits=np.concatenate([scene.opacity_logits[keep], np.full(n_new, 3.0)]).astype(np.float32),
        sh_dc=np.zeros((int(keep.sum()) + n_new, 3), np.float32), source_format="inria")
    labels = np.concatenate([case.labels[keep], np.full(len(floor), "disc_floor", dtype=object),
                             np.full(len(floating), "disc_floater", dtype=object)])
    return merged, case.cameras, labels


def test_large_flat_floor_discs_are_kept_floating_discs_dropped():
    """A textureless floor covered by few large discs (optimized 3DGS) survives cleaning: the discs are larger
    than the oversize limit or sparser than the density filter asks, but each lies in the plane of its
    neighbours. Discs of the same size with no surface in their plane, and the blob floaters, still go. The old
    filters dropped every floor disc (an 8 m^2 hole in the floor)."""
    scene, cameras, labels = _textureless_floor_case()
    result = clean_scene(scene, cameras, CleanConfig())
    kept = np.zeros(len(scene), dtype=bool)
    kept[result.geometry.extra["row_index"]] = True
    assert kept[labels == "disc_floor"].mean() >= 0.95
    assert kept[labels == "disc_floater"].mean() <= 0.05
    assert kept[labels == "floater"].mean() <= 0.08
    assert kept[labels == "floor"].mean() >= 0.99
    rescued = result.stats["flat_supported"]
    assert rescued["oversize"] > 0 and rescued["outliers"] > 0  # both filters would have dropped some
    assert rescued["oversize"] + rescued["outliers"] >= 0.95 * (labels == "disc_floor").sum()
    assert result.stats["geometry_kept"] == len(scene) - sum(result.stats["dropped"].values())
    # pixel-aligned scenes (Lyra: one Gaussian per pixel, sized by it) keep the plain size limit
    aligned = clean_scene(scene, cameras, CleanConfig(), pixel_aligned=True)
    kept[:] = False
    kept[aligned.geometry.extra["row_index"]] = True
    oversize = scene.scales().max(axis=1) > CleanConfig().oversize_fraction * aligned.stats["reference_depth"]
    assert (oversize & (labels == "disc_floor")).any() and not kept[oversize & (labels == "disc_floor")].any()
    off = clean_scene(scene, cameras, CleanConfig(flat_support=False))
    assert off.stats["flat_supported"] == {"oversize": 0, "outliers": 0}
