"""Locate the data folders that ship with lyra_isaac (config/, envs/, usd_templates/, extension.toml).

In a wheel they live inside the package as ``lyra_isaac/_data/<name>``; in a source checkout or an editable
install they live at the repository root. Both layouts are looked up, installed copy first.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
_CANDIDATE_ROOTS = (_PACKAGE_DIR / "_data", _PACKAGE_DIR.parent)


def data_path(name: str) -> Path:
    """Return the path of a shipped data folder or file, e.g. ``data_path("config")``.

    Raises:
        FileNotFoundError: when neither the installed nor the source layout holds it.
    """
    for root in _CANDIDATE_ROOTS:
        candidate = root / name
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"lyra_isaac data '{name}' not found in {', '.join(str(r) for r in _CANDIDATE_ROOTS)}; "
        "the installation is incomplete (reinstall lyra-isaac)"
    )


def config_dir() -> Path:
    """Folder of conversion configs and presets (``config/``)."""
    return data_path("config")


def envs_dir() -> Path:
    """Folder of environment definitions, one TOML per registered id (``envs/``)."""
    return data_path("envs")


def usd_templates_dir() -> Path:
    """Folder of reusable USD layers (``usd_templates/``)."""
    return data_path("usd_templates")
