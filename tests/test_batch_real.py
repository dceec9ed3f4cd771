"""The batch done-when scenarios with the real ``lyra_isaac.convert.convert`` on tiny synthetic Lyra scenes, on a
real local Ray instance (slow: each conversion runs the whole pipeline).

1. Three scenes, one a truncated PLY: two worlds complete, the failure is recorded with its message, exit code 3.
2. ``lyra-isaac batch`` killed with SIGKILL after the first world: the rerun does not redo it, completes the rest,
   and leaves no partial directory.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")

from lyra_isaac.cli import main  # noqa: E402
from lyra_isaac.world import load_world  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_batch import check_sigkill_then_rerun  # noqa: E402

FIXTURE_KW = {"n_views": 12, "width": 64, "height": 48, "seed": 0}
GOOD_SCENES = ("apartment", "corridor", "courtyard")
TINY_SCENE_CONFIG = "[walkable]\nspawn_clearance = 0.05\n"
"""64 x 48 views reconstruct little free floor: spawn points 5 cm from edges instead of 0.5 m (the batch's --config
reaches every task)."""


def _real_convert_available() -> str | None:
    """None if the real pipeline imports and its config loads, else why not."""
    try:
        from lyra_isaac.convert import load_convert_config

        load_convert_config("fast")
    except Exception as exc:  # ImportError of a stage, ConfigError of a missing file
        return f"lyra_isaac.convert is not usable in this checkout: {exc}"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_real_convert_available() is not None,
                                                   reason=str(_real_convert_available()))]


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from lyra_isaac.synthetic import make_fixture

    root = tmp_path_factory.mktemp("batch_real_fixtures")
    scenes = {name: Path(make_fixture(name, root / name, **FIXTURE_KW).ply_path).parent for name in GOOD_SCENES}
    (root / "tiny.toml").write_text(TINY_SCENE_CONFIG)
    return scenes


def _config(fixtures: dict[str, Path]) -> str:
    return str(fixtures["apartment"].parent / "tiny.toml")


def test_real_convert_partial_failure_exit_code_3(fixtures: dict[str, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = (fixtures["corridor"] / "reconstructed_scene.ply").read_bytes()
    broken = tmp_path / "broken.ply"
    broken.write_bytes(data[: len(data) // 2])
    out = tmp_path / "worlds"
    code = main(["-q", "batch", str(fixtures["apartment"]), str(fixtures["courtyard"]), str(broken), "-o", str(out),
                 "--workers", "2", "--no-progress", "--config", _config(fixtures)])
    captured = capsys.readouterr()
    assert code == 3, captured.err[-3000:]
    entries = {e["name"]: e for e in json.loads((out / "index.json").read_text())["scenes"]}
    assert {n: e["status"] for n, e in entries.items()} == {"apartment": "complete", "courtyard": "complete",
                                                           "broken": "failed"}
    assert "is truncated" in entries["broken"]["error"]["message"]
    assert "failed broken:" in captured.err and "is truncated" in captured.err
    for name in ("apartment", "courtyard"):
        world = load_world(out / name)
        stats = entries[name]["world"]
        assert stats["walkable_area_m2"] == pytest.approx(world.manifest.walkable_area_m2)
        assert stats["spawn_points"] == len(world.manifest.spawn_points) > 0
        assert stats["collision_triangles"] > 0
        assert world.manifest.source["sha256"] == entries[name]["source_sha256"]
    report = (out / "report.html").read_text()
    assert "is truncated" in report and report.count("data:image/png;base64,") == 2
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]


def test_real_cli_sigkill_then_rerun(fixtures: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "worlds"
    command = [sys.executable, "-m", "lyra_isaac", "-q", "batch", *(str(fixtures[n]) for n in GOOD_SCENES),
               "-o", str(out), "--workers", "1", "--no-progress", "--config", _config(fixtures)]
    check_sigkill_then_rerun(command, list(GOOD_SCENES), out, timeout_s=600)
