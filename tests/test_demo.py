"""The README's main job: `lyra-isaac demo` runs the whole mission and says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lyra_isaac.world import load_world


def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    script = Path(sys.executable).parent / "lyra-isaac"
    result = subprocess.run([str(script), "demo", "-o", str(out), "--steps", "60", "--skip-newton"],
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for step in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]", "world " + str(out / "world") + ": OK"):
        assert step in result.stdout, step
    world = load_world(out / "world")
    assert (out / "scene" / "reconstructed_scene.ply").is_file() and (out / "scene" / "cameras.npz").is_file()
    assert (out / "world" / "world.usda").is_file() and (out / "world" / "previews" / "topdown.png").is_file()
    assert len(world.manifest.spawn_points) > 0
