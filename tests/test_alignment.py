"""Per-view depth corrections (lyra_isaac.geometry.alignment)."""

from __future__ import annotations

import numpy as np

from lyra_isaac.geometry.alignment import apply_correction


def test_scale_correction_over_the_whole_image_equals_the_per_pixel_design():
    """The scale model's whole-image product gives the same float32 depths as the general per-pixel design path
    (scale_offset with a zero offset: the same float64 products), zeros stay zero."""
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.3, 40.0, (72, 128)).astype(np.float32)
    depth[rng.random(depth.shape) < 0.2] = 0
    k = np.array([[100.0, 0, 64], [0, 100.0, 36], [0, 0, 1]])
    for scale in (0.9731234567, 1.0, 1.0412345):
        fast = apply_correction(depth, np.array([scale]), "scale", 0.5, k)
        general = apply_correction(depth, np.array([scale, 0.0]), "scale_offset", 0.5, k)
        assert fast.dtype == np.float32 and np.array_equal(fast, general)
        assert np.array_equal(fast == 0, depth == 0)
