"""config/*.toml: the shipped files load into the dataclasses and stay in step with them."""

from __future__ import annotations

import tomllib

from lyra_isaac.config_defaults import default_config_dict
from lyra_isaac.convert import PRESETS, load_convert_config
from lyra_isaac.resources import config_dir


def test_default_toml_mirrors_dataclass_defaults():
    shipped = tomllib.loads((config_dir() / "default.toml").read_text())
    assert shipped == default_config_dict(), "config/default.toml drifted: run python -m lyra_isaac.config_defaults"


def test_every_preset_loads_and_quality_is_finer():
    configs = {name: load_convert_config(name) for name in PRESETS}
    assert configs["quality"].surface.voxel_size < configs["fast"].surface.voxel_size
    assert configs["quality"].mesh.max_error <= configs["fast"].mesh.max_error
