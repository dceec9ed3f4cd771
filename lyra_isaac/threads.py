"""How many CPU threads library code may use: :func:`cpu_threads`.

A batch task on Ray asks for one CPU and gets ``OMP_NUM_THREADS=1`` (and the other BLAS variables); code that
starts its own thread pools (scipy's ``cKDTree.query(workers=...)``) must respect the same limit, or two tasks on a
2-core machine each run two threads and slow each other down.
"""

from __future__ import annotations

import os

THREAD_LIMIT_VAR = "OMP_NUM_THREADS"
"""The variable whose value (a positive integer) caps the threads; Ray batch tasks and many schedulers set it."""


def cpu_threads() -> int:
    """Threads to use: ``OMP_NUM_THREADS`` when set to a positive integer, else the CPUs this process may run on."""
    value = os.environ.get(THREAD_LIMIT_VAR, "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
