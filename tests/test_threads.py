"""cpu_threads respects the per-task thread limit a Ray batch task sets."""

from __future__ import annotations

import os

from lyra_isaac.threads import cpu_threads


def test_thread_limit_from_environment(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cpu_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads() == 3


def test_without_limit_all_usable_cpus(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "garbage")
    assert cpu_threads() == len(os.sched_getaffinity(0))
