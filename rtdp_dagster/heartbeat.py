"""Heartbeat files of long-running services, written atomically so a reader never sees half a file."""

from __future__ import annotations

import json
from pathlib import Path

from rtdp_dagster.json_file import replace_json

# The stream's heartbeat: {"at": epoch s, "queries": {part: its latest progress row}, "totals":
# {"<part>.<figure>": since start}}, one part per sink of a micro-batch. Any service's heartbeat may
# carry "problem": what keeps it from working while it is alive (`rtdp stack status` shows it).
STREAM_BRONZE, STREAM_REALTIME = "bronze", "realtime"


def write_heartbeat(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_json(path, payload, indent=1)  # indented: operators read it


def read_heartbeat(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def stalled_sources(beat: dict, now: float) -> list[str]:
    """Sources of `rtdp ingest`'s heartbeat that logged no window for longer than their
    ``stalled_after_s``: the service is alive but not collecting (state store or broker away, a
    worker stuck). A heartbeat without those figures (an older ingest) shows nothing stalled."""
    stalled = []
    for source in beat.get("sources", []):
        last, after = source.get("last_window_at"), source.get("stalled_after_s")
        if last is not None and after is not None and now - float(last) > float(after):
            stalled.append(f"{source.get('source')}: no window logged for {now - float(last):.0f}s")
    return stalled
