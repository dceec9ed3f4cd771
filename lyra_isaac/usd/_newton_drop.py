"""Newton drop probe, run in a subprocess by :mod:`lyra_isaac.usd.validate`.

Reads one JSON object on stdin::

    {"usd": "/abs/world.usda", "points": [[x, y, z_start], ...], "radius": 0.1, "duration": 1.5,
     "dt": 0.002, "friction": 0.8, "rolling_friction": 0.03}

loads the stage with ``newton.ModelBuilder.add_usd`` on the CPU device, drops one sphere per point (centre at
``z_start``, metres, world frame) and prints one JSON object on stdout::

    {"rest": [[x, y, z], ...], "speed": [...], "shapes": n_static_shapes, "seconds": {"load": .., "simulate": ..}}

A separate process keeps Warp's initialisation and kernel compilation (30-40 s the first time, cached in Warp's
kernel cache afterwards) out of the caller, and a crash in native code cannot take the caller down.
"""

from __future__ import annotations

import json
import logging
import sys
import time

SPHERE_DENSITY = 500.0
"""kg/m^3 of the probe spheres (a 0.1 m sphere weighs ~2 kg)."""


def run(request: dict) -> dict:
    import warp as wp

    wp.config.quiet = True
    wp.set_device("cpu")
    import newton

    t0 = time.perf_counter()
    builder = newton.ModelBuilder(up_axis=newton.Axis.Z)
    builder.add_usd(request["usd"], load_visual_shapes=False, load_sites=False)
    n_static = builder.shape_count
    gravity = [float(g) for g in builder.gravity] if hasattr(builder, "gravity") else None
    radius = float(request["radius"])
    # Newton averages the friction of the two shapes in contact; the ground keeps its (USD) material, so the
    # sphere carries twice the requested rolling/torsional friction to reach about the requested value.
    rolling = float(request.get("rolling_friction", 0.0))
    cfg = newton.ModelBuilder.ShapeConfig(density=SPHERE_DENSITY, mu=float(request.get("friction", 0.8)),
                                          mu_rolling=2.0 * rolling, mu_torsional=2.0 * 0.02 if rolling else 0.005)
    bodies = []
    for x, y, z in request["points"]:
        body = builder.add_body(xform=wp.transform(wp.vec3(x, y, z), wp.quat_identity()))
        builder.add_shape_sphere(body, radius=radius, cfg=cfg)
        bodies.append(body)
    model = builder.finalize(device="cpu")
    solver = newton.solvers.SolverXPBD(model, iterations=10)
    state_0, state_1 = model.state(), model.state()
    control = model.control()
    pipeline = newton.CollisionPipeline(model)
    contacts = pipeline.contacts()
    t1 = time.perf_counter()
    dt = float(request.get("dt", 0.002))
    steps = int(round(float(request["duration"]) / dt))
    for _ in range(steps):
        state_0.clear_forces()
        pipeline.collide(state_0, contacts)
        solver.step(state_0, state_1, control, contacts, dt)
        state_0, state_1 = state_1, state_0
    body_q = state_0.body_q.numpy()
    body_qd = state_0.body_qd.numpy()
    t2 = time.perf_counter()
    rest = [[float(v) for v in body_q[b, :3]] for b in bodies]
    speed = [float(sum(float(v) ** 2 for v in body_qd[b, :3]) ** 0.5) for b in bodies]
    return {"rest": rest, "speed": speed, "shapes": int(n_static), "gravity": gravity,
            "seconds": {"load": round(t1 - t0, 3), "simulate": round(t2 - t1, 3)}}


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    request = json.loads(sys.stdin.read())
    result = run(request)
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
