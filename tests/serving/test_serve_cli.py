"""`rtdp serve` runs the router in the foreground and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests

from rtdp_dagster.config import Settings
from tests.conftest import PROJECT_ROOT, free_ports


def test_rtdp_serve_answers_and_stops_on_sigterm(stack: Settings):
    port = free_ports(1)[0]
    process = subprocess.Popen(
        [sys.executable, "-m", "rtdp_dagster.cli", "serve", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/api/aggregators", timeout=2)
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, "rtdp serve did not start"
                time.sleep(0.1)
        assert response.status_code == 200 and "sum" in response.json()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    assert f"http://127.0.0.1:{port}" in (process.stderr.read() if process.stderr else "")
