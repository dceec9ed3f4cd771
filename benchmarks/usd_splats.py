"""Benchmark: writing and reading Gaussian splats as UsdVol.ParticleField3DGaussianSplat (splats.usdc).

Prints splats/s for DC-only and SH degree 3 layers at each size, the file size, the read-back time of
lyra_isaac.usd.splats.read_splats, and the process's peak memory. Goal (task brief): >= 500k splats/s and an
11M-splat layer (Lyra 2.0's default single-pass size) in <= 30 s.

    python benchmarks/usd_splats.py                  # 1M DC + SH3, 11M DC
    python benchmarks/usd_splats.py --n 11000000 --sh 3   # 11M SH3: ~7 GB peak memory
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from lyra_isaac.splats.scene import GaussianScene
from lyra_isaac.usd.splats import read_splats, write_splats_layer


def make_scene(n: int, degree: int, seed: int = 0) -> GaussianScene:
    rng = np.random.default_rng(seed)
    rest = {0: None, 3: rng.normal(0, 0.1, size=(n, 15, 3)).astype(np.float32)}[degree]
    return GaussianScene(
        means=rng.uniform(-20, 20, size=(n, 3)).astype(np.float32),
        quats=rng.normal(size=(n, 4)).astype(np.float32),
        log_scales=rng.normal(-4, 0.5, size=(n, 3)).astype(np.float32),
        opacity_logits=rng.normal(1, 2, size=n).astype(np.float32),
        sh_dc=rng.normal(0, 0.5, size=(n, 3)).astype(np.float32),
        sh_rest=rest,
        frame="world",
    )


def run(n: int, degree: int, directory: Path) -> dict:
    scene = make_scene(n, degree)
    path = directory / f"splats_{n}_{degree}.usdc"
    start = time.perf_counter()
    write_splats_layer(scene, path)
    write_s = time.perf_counter() - start
    start = time.perf_counter()
    back = read_splats(path)
    read_s = time.perf_counter() - start
    assert len(back) == n and np.array_equal(back.means, scene.means)
    size_mb = path.stat().st_size / 1e6
    path.unlink()
    return {"n": n, "degree": degree, "write_s": write_s, "read_s": read_s, "mb": size_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="splat count (repeatable)")
    parser.add_argument("--sh", type=int, action="append", choices=(0, 3), help="SH degree (repeatable)")
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a temp dir)")
    args = parser.parse_args()
    cases = ([(n, d) for n in args.n for d in (args.sh or [0, 3])] if args.n
             else [(1_000_000, 0), (1_000_000, 3), (11_000_000, 0)])
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        print(f"{'splats':>11} {'SH':>3} {'write s':>8} {'splats/s':>11} {'read s':>7} {'MB':>8}  vs goal")
        for n, degree in cases:
            r = run(n, degree, Path(scratch))
            rate = n / r["write_s"]
            print(f"{n:>11,} {degree:>3} {r['write_s']:>8.2f} {rate:>11,.0f} {r['read_s']:>7.2f} {r['mb']:>8.1f}  "
                  f"{rate / 500_000:.1f}x of 500k/s")
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"peak memory {peak_gb:.1f} GB")


if __name__ == "__main__":
    main()
