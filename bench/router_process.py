"""The query router as operators run it, `rtdp serve` in a process of its own, for the benchmarks.

In the benchmark's own process the router would share the interpreter lock with the client that
times it, so each request would also pay the client's thread switches.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import requests

from rtdp_dagster.stack.process import wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_router_process(port: int, log_path: Path | None = None, **overrides: str) -> subprocess.Popen:
    """`rtdp serve` on 127.0.0.1:port with the current configuration and these ``RTDP_*`` overrides;
    returns once it answers."""
    env = {**os.environ, "RTDP_SERVE__PORT": str(port), "RTDP_SERVE__HOST": "127.0.0.1", **overrides}
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 (the child owns it)
    process = subprocess.Popen([sys.executable, "-m", "rtdp_dagster.cli", "serve"], env=env, stdout=log, stderr=log)

    def up() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/api/version", timeout=1).ok
        except requests.RequestException:
            return False

    if not wait_until(up, timeout_s=30, interval_s=0.2):
        process.terminate()
        raise RuntimeError(f"the router did not start on port {port} (log: {log_path or 'none'})")
    return process


def stop_router_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
