"""OUTROOT/report.html and OUTROOT/report.md: one row per world of a batch.

Each row: top-down thumbnail, status, walkable area, spawn points, collision triangles, up axis and scale decisions,
timings, or the error. report.html is self-contained (thumbnails embedded as base64 PNG, shrunk to
:data:`THUMBNAIL_PX`); report.md links the previews relative to OUTROOT.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from .index import BatchIndex, SceneEntry, current_umask, utc_now

logger = logging.getLogger(__name__)

REPORT_HTML = "report.html"
REPORT_MD = "report.md"
THUMBNAIL_PX = 160
COLUMNS = ("preview", "world", "status", "walkable m²", "spawns", "triangles", "up (source)", "scale", "time",
           "error")


def write_reports(index: BatchIndex) -> tuple[Path, Path]:
    """Write report.html and report.md for every scene in the index (atomically); returns their paths."""
    rows = [_row(entry) for entry in index.entries.values()]
    counts = index.counts()
    html_path = _write_atomic(index.out_root / REPORT_HTML, _html(index, rows, counts))
    md_path = _write_atomic(index.out_root / REPORT_MD, _markdown(rows, counts))
    return html_path, md_path


def _row(entry: SceneEntry) -> dict[str, Any]:
    world = entry.world or {}
    up = world.get("up_source")
    up_text = "" if up is None else "[" + ", ".join(f"{v:.2f}" for v in up) + "]"
    if world.get("frame_method"):
        up_text += f" ({world['frame_method']})"
    scale = world.get("scale_factor")
    scale_text = "" if scale is None else f"x{scale:.3g}" + (f" ({world['scale_method']})"
                                                             if world.get("scale_method") else "")
    area = world.get("walkable_area_m2")
    return {
        "name": entry.name,
        "world_dir": entry.world_dir,
        "status": entry.status,
        "topdown": world.get("topdown"),
        "walkable": "" if area is None else f"{area:.1f}",
        "spawns": "" if not world else str(world.get("spawn_points", "")),
        "triangles": "" if world.get("collision_triangles") is None else f"{world['collision_triangles']:,}",
        "up": up_text,
        "scale": scale_text,
        "time": "" if entry.duration_s is None else f"{entry.duration_s:.1f} s",
        "error": (entry.error or {}).get("message", "") if entry.status == "failed" else "",
        "source": entry.source,
    }


def _thumbnail_data_uri(path: Path) -> str | None:
    try:
        from PIL import Image

        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", optimize=True)
    except Exception as exc:  # a broken preview must not break the report
        logger.warning("cannot embed %s: %s", path, exc)
        return None
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _html(index: BatchIndex, rows: list[dict[str, Any]], counts: dict[str, int]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in COLUMNS)
    body = []
    for row in rows:
        uri = _thumbnail_data_uri(index.out_root / row["topdown"]) if row["topdown"] else None
        thumb = f'<img src="{uri}" alt="top-down map of {e(row["name"])}">' if uri else ""
        link = f'<a href="{e(row["world_dir"])}/">{e(row["name"])}</a>' if row["status"] == "complete" else e(
            row["name"])
        cells = [thumb, f'{link}<br><small>{e(row["source"])}</small>',
                 f'<span class="{e(row["status"])}">{e(row["status"])}</span>', e(row["walkable"]),
                 e(row["spawns"]), e(row["triangles"]), e(row["up"]), e(row["scale"]), e(row["time"]),
                 f'<pre>{e(row["error"])}</pre>' if row["error"] else ""]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lyra_isaac batch: {e(index.out_root.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; text-align: left; }}
.complete {{ color: #17702a; }} .failed {{ color: #b00020; font-weight: bold; }}
.pending, .running {{ color: #8a6d00; }}
pre {{ white-space: pre-wrap; max-width: 40em; margin: 0; }}
</style></head><body>
<h1>Batch {e(str(index.out_root))}</h1>
<p>{e(summary)}. Updated {e(utc_now())}. Index: <a href="index.json">index.json</a>.</p>
<table><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table></body></html>
"""


def _markdown(rows: list[dict[str, Any]], counts: dict[str, int]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["# lyra_isaac batch report", "",
             ", ".join(f"{n} {status}" for status, n in counts.items() if n) + f". Updated {utc_now()}.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        thumb = f"![{row['name']}]({row['topdown']})" if row["topdown"] else ""
        name = f"[{row['name']}]({row['world_dir']}/)" if row["status"] == "complete" else row["name"]
        values = [thumb, name, row["status"], row["walkable"], row["spawns"], row["triangles"], row["up"],
                  row["scale"], row["time"], row["error"]]
        lines.append("| " + " | ".join(cell(v) for v in values) + " |")
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str) -> Path:
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(handle, 0o666 & ~current_umask())
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path
