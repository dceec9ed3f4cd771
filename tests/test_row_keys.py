"""One int64 key per integer row (lyra_isaac.geometry.row_keys), as the frame and mesh stages group cells by."""

from __future__ import annotations

import numpy as np

from lyra_isaac.geometry.row_keys import group_keys, row_keys


def test_keys_group_and_order_rows_as_unique_does():
    rows = np.random.default_rng(0).integers(-50, 50, size=(5000, 3))
    keys = row_keys(rows)
    unique_rows, inverse = np.unique(rows, axis=0, return_inverse=True)
    unique_keys, key_inverse = np.unique(keys, return_inverse=True)
    np.testing.assert_array_equal(key_inverse.reshape(-1), inverse.reshape(-1))
    assert len(unique_keys) == len(unique_rows)
    # the mixed-radix number of each row: what np.ravel_multi_index gives over the rows' ranges
    shifted = rows - rows.min(axis=0)
    np.testing.assert_array_equal(keys, np.ravel_multi_index(shifted.T, shifted.max(axis=0) + 1))


def test_ranges_beyond_63_bits_fall_back_to_the_rank_of_each_row():
    rows = np.array([[0, 0, 0], [2**40, 2**40, 1], [0, 0, 0], [5, 2**40, 0]], dtype=np.int64)
    assert row_keys(rows) is None
    np.testing.assert_array_equal(group_keys(rows), [0, 2, 0, 1])


def test_empty_rows():
    assert row_keys(np.zeros((0, 3), np.int64)) is None
    assert group_keys(np.zeros((0, 3), np.int64)).shape == (0,)
