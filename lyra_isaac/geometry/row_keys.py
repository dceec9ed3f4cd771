"""One int64 key per row of an integer array (voxel cells, vertex pairs): equal rows get equal keys, in the rows'
lexicographic order, so ``np.unique`` on the keys groups and sorts the rows as ``np.unique(rows, axis=0)`` would,
several times faster than its row-wise sort."""

from __future__ import annotations

import numpy as np


def row_keys(rows: np.ndarray) -> np.ndarray | None:
    """(N,) int64 keys of (N, K) integer rows (the mixed-radix number of each row minus the column minimum); None
    when the rows are empty or their value ranges do not fit in 63 bits."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return None
    low = rows.min(axis=0)
    spans = (rows.max(axis=0) - low + 1).tolist()
    total = 1
    for span in spans:
        total *= int(span)
    if total >= 1 << 63:
        return None
    keys = rows[:, 0] - low[0]
    for k in range(1, rows.shape[1]):
        keys = keys * spans[k] + (rows[:, k] - low[k])
    return keys


def group_keys(rows: np.ndarray) -> np.ndarray:
    """(N,) int64 keys of (N, K) integer rows, equal exactly for equal rows and ordered as the rows are: the
    :func:`row_keys`, or where those do not fit, each row's index among the sorted unique rows."""
    keys = row_keys(rows)
    if keys is not None:
        return keys
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(rows, axis=0, return_inverse=True)[1].reshape(-1)
