"""Ingest benchmark: load + validate a Lyra 2.0-sized splat PLY.

Generates an N-Gaussian file in Lyra 2.0's exact layout (17 float32, 68 bytes a row; default N = 11M, ~760 MB,
what Lyra's single-pass writer produces), streamed to disk in chunks, then loads it with
``lyra_isaac.splats.ply.read_ply`` in a fresh subprocess and prints wall time, Gaussians/s and peak RSS
(``ru_maxrss``) against the file size. A baseline in the same conditions reads the whole body with ``np.fromfile``
and copies out the columns (the obvious numpy reader, without any validation) for comparison.

The file contains a few faulty rows (NaN positions, zero quaternions, +-inf opacity logits, huge log-scales) at
the rate of a real Lyra scene, so validation does real work.

Usage::

    python benchmarks/ingest.py                 # 11M Gaussians in a temp dir
    python benchmarks/ingest.py --small         # 1M Gaussians
    python benchmarks/ingest.py --n 21000000 --out /data/big.ply --keep
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lyra_isaac.splats.ply import PlyStreamWriter
from lyra_isaac.splats.scene import GaussianScene

GEN_CHUNK = 1 << 20
VIEW_PIXELS = 87_000  # Lyra: ~87k pixel-aligned Gaussians per view

# Peak RSS is the kernel's high-water mark of this process's own address space (VmHWM). ru_maxrss is printed too: on
# Linux it also carries the parent's RSS across fork+exec, so it is only meaningful when the parent is small
# (the file is generated in a separate process for that reason).
MEMORY = r"""
import resource
def hwm():
    with open("/proc/self/status") as fh:
        fields = dict(line.split(":", 1) for line in fh)
    return int(fields["VmHWM"].split()[0]) * 1024, int(fields["VmRSS"].split()[0]) * 1024
def maxrss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
"""

LOAD_SNIPPET = MEMORY + r"""
import json, sys, time
import numpy as np
from lyra_isaac.splats.ply import read_ply
before = hwm()[1]
c0, t0 = cpu(), time.perf_counter()
scene = read_ply(sys.argv[1])
seconds, cpu_seconds = time.perf_counter() - t0, cpu() - c0
peak = hwm()[0]
arrays = (scene.means, scene.quats, scene.log_scales, scene.opacity_logits, scene.sh_dc, scene.sh_rest)
out_bytes = sum(a.nbytes for a in arrays if a is not None)
out_bytes += scene.extra["row_index"].nbytes
print(json.dumps({"seconds": seconds, "peak_rss": peak, "rss_before": before, "kept": len(scene),
                  "report": scene.read_report.as_dict(), "output_bytes": out_bytes, "ru_maxrss": maxrss(),
                  "cpu": cpu_seconds}))
"""

BASELINE_SNIPPET = MEMORY + r"""
import json, sys, time
import numpy as np
path = sys.argv[1]
before = hwm()[1]
c0, t0 = cpu(), time.perf_counter()
with open(path, "rb") as fh:
    head = fh.read(8192)
offset = head.index(b"end_header\n") + len(b"end_header\n")
names = [line.split()[-1] for line in head[:offset].decode().splitlines() if line.startswith("property")]
rec = np.fromfile(path, dtype=np.dtype([(n, "<f4") for n in names]), offset=offset)
groups = {"means": ["x", "y", "z"], "dc": ["f_dc_0", "f_dc_1", "f_dc_2"], "scales": ["scale_0", "scale_1", "scale_2"],
          "rot": ["rot_0", "rot_1", "rot_2", "rot_3"], "rest": [n for n in names if n.startswith("f_rest_")]}
cols = {k: np.stack([rec[n] for n in v], axis=1) for k, v in groups.items() if v}
opacity = rec["opacity"].copy()
del rec
seconds, cpu_seconds = time.perf_counter() - t0, cpu() - c0
peak = hwm()[0]
print(json.dumps({"seconds": seconds, "peak_rss": peak, "rss_before": before, "cpu": cpu_seconds}))
"""


def generate(path: Path, n: int, fmt: str = "lyra2", seed: int = 0) -> float:
    """Stream a file of ``n`` Gaussians to ``path`` (Lyra 2.0 layout, or INRIA with SH degree 3); returns seconds."""
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    sh_degree = 3 if fmt == "inria" else 0
    with PlyStreamWriter(path, n, fmt, sh_degree=sh_degree) as writer:
        for start in range(0, n, GEN_CHUNK):
            m = min(GEN_CHUNK, n - start)
            # pixel-aligned depth maps: points along rays of a view, a few metres away
            rows = np.arange(start, start + m)
            view = rows // VIEW_PIXELS
            pixel = rows % VIEW_PIXELS
            u = (pixel % 340) / 340.0 - 0.5
            v = (pixel // 340) / 256.0 - 0.5
            depth = rng.uniform(1.0, 8.0, m)
            yaw = view * 0.05
            means = np.stack([u * depth + np.sin(yaw), v * depth, depth + np.cos(yaw)], axis=1).astype(np.float32)
            quats = rng.normal(size=(m, 4)).astype(np.float32)
            quats /= np.linalg.norm(quats, axis=1, keepdims=True)
            log_scales = (np.log(depth * 0.003)[:, None] + rng.normal(0, 0.3, (m, 3))).astype(np.float32)
            opacity = rng.normal(3.0, 2.0, m).astype(np.float32)
            sh_dc = rng.normal(0, 1.0, (m, 3)).astype(np.float32)
            # faults at a realistic rate (~1e-5 each)
            faults = rng.choice(m, size=max(4, m // 100_000), replace=False)
            q = len(faults) // 4
            means[faults[:q], 2] = np.nan
            quats[faults[q:2 * q]] = 0.0
            opacity[faults[2 * q:3 * q]] = np.inf
            log_scales[faults[3 * q:], 0] = 120.0
            sh_rest = rng.normal(0, 0.1, (m, 15, 3)).astype(np.float32) if sh_degree else None
            writer.write(GaussianScene(means, quats, log_scales, opacity, sh_dc, sh_rest))
    return time.perf_counter() - started


def measure(snippet: str, path: Path) -> dict:
    result = subprocess.run([sys.executable, "-c", snippet, str(path)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"measurement failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=11_000_000, help="Gaussians in the generated file (default 11M)")
    parser.add_argument("--small", action="store_true", help="1M Gaussians (a quick check)")
    parser.add_argument("--out", type=Path, help="write the file here (default: a temp dir, removed afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    parser.add_argument("--format", choices=("lyra2", "inria"), default="lyra2",
                        help="lyra2 (17 floats, default) or inria (SH degree 3, 62 floats, 248 B/row)")
    parser.add_argument("--repeat", type=int, default=2, help="load runs (the best is reported; default 2)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the np.fromfile baseline")
    parser.add_argument("--generate-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_only:
        generate(args.generate_only, args.n, args.format)
        return
    n = 1_000_000 if args.small else args.n

    tmpdir = None
    if args.out is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="lyra_ingest_")
        path = Path(tmpdir.name) / "reconstructed_scene.ply"
    else:
        path = args.out
    try:
        if path.exists() and path.stat().st_size == 0:
            path.unlink()
        if not path.exists():
            # in a child process, so this process stays small (see MEMORY)
            started = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--generate-only", str(path), "--n", str(n), "--format",
                            args.format], check=True)
            print(f"generated {n:,} Gaussians in {time.perf_counter() - started:.1f} s -> {path}")
        size = path.stat().st_size
        runs = [measure(LOAD_SNIPPET, path) for _ in range(max(1, args.repeat))]
        best = min(runs, key=lambda r: r["seconds"])
        peak = max(r["peak_rss"] for r in runs)
        row_bytes = 68 if args.format == "lyra2" else 248
        print(f"file:            {size / 1e6:,.1f} MB, {n:,} Gaussians ({args.format}, {row_bytes} B/row)")
        times = ", ".join(f"{r['seconds']:.2f}" for r in runs)
        print(f"read_ply:        {best['seconds']:.2f} s (runs: {times}), "
              f"{n / best['seconds'] / 1e6:.1f} M Gaussians/s, kept {best['kept']:,}")
        print(f"  CPU time:      {best['cpu']:.2f} s (user + sys of the best run; wall time above includes waiting "
              f"for the CPU on a shared machine, load average {os.getloadavg()[0]:.1f})")
        print(f"  report:        {best['report']}")
        print(f"  peak RSS:      {peak / 1e6:,.0f} MB (interpreter before load {best['rss_before'] / 1e6:.0f} MB; "
              f"output arrays {best['output_bytes'] / 1e6:,.0f} MB)")
        print(f"  RSS/file size: {peak / size:.2f} (limit 2.0); ru_maxrss {best['ru_maxrss'] / 1e6:,.0f} MB")
        if not args.no_baseline:
            base = measure(BASELINE_SNIPPET, path)
            print(f"baseline (np.fromfile + column copies, no validation): {base['seconds']:.2f} s "
                  f"(CPU {base['cpu']:.2f} s), "
                  f"peak RSS {base['peak_rss'] / 1e6:,.0f} MB ({base['peak_rss'] / size:.2f} x file)")
            print(f"  ratio read_ply/baseline: time {best['seconds'] / base['seconds']:.2f}, "
                  f"CPU {best['cpu'] / base['cpu']:.2f}, "
                  f"peak RSS {peak / base['peak_rss']:.2f}")
    finally:
        if tmpdir is not None and not args.keep:
            tmpdir.cleanup()
        elif args.out is None and args.keep:
            print(f"kept {path}")
            tmpdir._finalizer.detach()  # noqa: SLF001


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
