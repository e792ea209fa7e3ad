"""Running the router: `rtdp serve` in the foreground, or start_router() in a background thread."""

from __future__ import annotations

import signal
import socket
import threading
import time
from dataclasses import dataclass

import uvicorn

from rtdp_dagster.config import Settings
from rtdp_dagster.serving.app import create_app


@dataclass
class RouterHandle:
    """A router running in a background thread; ``url`` is its base URL."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, timeout_s: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout_s)


def start_router(settings: Settings, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 15.0) -> RouterHandle:
    """Start the router on host:port (0: a free port) in a daemon thread; returns once it accepts requests."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="rtdp-router", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the query router did not start on {host}:{bound_port}")
        time.sleep(0.02)
    url_host = f"[{host}]" if ":" in host else host
    return RouterHandle(f"http://{url_host}:{bound_port}", server, thread)


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Serve in the foreground until SIGINT or SIGTERM, then finish the requests in flight and return."""
    config = uvicorn.Config(
        create_app(settings),
        host=host or settings.serve.host,
        port=settings.serve.port if port is None else port,
        log_level="info",
        access_log=False,
    )
    # uvicorn shuts down gracefully on these signals and then raises them again; with a no-op handler
    # underneath, `rtdp serve` then exits 0 like the other long-running commands.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    uvicorn.Server(config).run()
