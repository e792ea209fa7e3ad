"""Headless Chromium (Debian's `chromium`) for what people see: page text and screenshots of the
Dagster UI while the demo runs. The flags keep Chromium off the network beyond localhost."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
_TAG = re.compile(r"<[^>]+>")


class BrowserError(Exception):
    """Chromium is missing or could not render the page."""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise BrowserError("chromium not found: install it (apt-get install chromium) for screenshots and UI checks")


def _run(args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="rtdp-chromium-") as profile:
        command = [chromium(), *_FLAGS, f"--user-data-dir={profile}", *args]
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise BrowserError(f"chromium did not finish {args[-1]} in {timeout_s:.0f} s") from None


def page_text(url: str, render_ms: int = 20_000, timeout_s: float = 120.0) -> str:
    """The visible text of a page after its scripts ran for render_ms (virtual time)."""
    result = _run([f"--virtual-time-budget={render_ms}", "--dump-dom", url], timeout_s)
    if result.returncode != 0 or not result.stdout:
        raise BrowserError(f"chromium could not render {url}: {result.stderr.strip()[-300:]}")
    return " ".join(_TAG.sub(" ", result.stdout).split())


def screenshot(
    url: str, path: Path, size: tuple[int, int] = (1600, 1000), render_ms: int = 20_000, timeout_s: float = 120.0
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    result = _run(
        [
            f"--virtual-time-budget={render_ms}",
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={path.resolve()}",
            url,
        ],
        timeout_s,
    )
    if result.returncode != 0 or not path.exists():
        raise BrowserError(f"chromium could not take a screenshot of {url}: {result.stderr.strip()[-300:]}")
    return path
