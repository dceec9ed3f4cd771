"""lyra_isaac.config: TOML -> typed dataclasses, with errors that name the field."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from lyra_isaac.config import from_dict, load_toml, merge, to_dict
from lyra_isaac.errors import ConfigError


@dataclass
class Inner:
    voxel_size: float = 0.02
    iterations: int = 3
    mode: str = "median"


@dataclass
class Outer:
    name: str = "x"
    enabled: bool = True
    inner: Inner = field(default_factory=Inner)
    grid: tuple[int, int] = (17, 11)
    weights: dict[str, float] = field(default_factory=dict)
    limit: float | None = None


def test_defaults_and_nested_override():
    cfg = from_dict(Outer, {"inner": {"voxel_size": 1}, "grid": [3, 4], "weights": {"a": 2}})
    assert cfg.inner.voxel_size == 1.0 and isinstance(cfg.inner.voxel_size, float)
    assert cfg.inner.iterations == 3
    assert cfg.grid == (3, 4)
    assert cfg.weights == {"a": 2.0}
    assert cfg.limit is None


def test_unknown_key_names_dotted_path():
    with pytest.raises(ConfigError, match=r"inner\.voxelsize"):
        from_dict(Outer, {"inner": {"voxelsize": 1.0}})


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"inner": {"voxel_size": "abc"}}, "inner.voxel_size: expected a number"),
        ({"inner": {"iterations": 2.5}}, "inner.iterations: expected an integer"),
        ({"enabled": "yes"}, "enabled: expected true or false"),
        ({"grid": [1, 2, 3]}, "grid: expected 2 values"),
        ({"inner": 5}, "inner: expected a table"),
    ],
)
def test_wrong_types_are_named(data, fragment):
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        from_dict(Outer, data)


def test_round_trip_through_dict():
    cfg = from_dict(Outer, {"limit": 2.0, "inner": {"mode": "mean"}})
    assert from_dict(Outer, to_dict(cfg)) == cfg


def test_merge_overlays_tables():
    assert merge({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"b": 5}}) == {"a": {"b": 5, "c": 2}, "d": 1}


def test_load_toml_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("a = [1,\n")
    with pytest.raises(ConfigError, match="bad.toml: invalid TOML"):
        load_toml(bad)
