"""One real stack (Kafka, VictoriaMetrics x2, Spark Connect) for the whole test session.

It runs in its own run folder on free ports, so it never collides with a `make demo` stack.
The RTDP_* variables are set before anything loads the configuration, so the CLI, the Dagster
definitions and the tests all see the same test stack.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rtdp_dagster.config import Settings, load_settings
from rtdp_dagster.config.stack import STACK_PORT_KEYS

PROJECT_ROOT = Path(__file__).resolve().parents[1]
_RUN_DIR = Path(tempfile.mkdtemp(prefix="rtdp-test-"))


def _worker_slot() -> tuple[int, int]:
    """(this pytest-xdist worker's index, the number of workers); (0, 1) in a run without workers."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker.removeprefix("gw")), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def _ephemeral_ports() -> tuple[int, int]:
    """The range the kernel picks ports from on its own (outgoing connections, binds to port 0)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


# Below the kernel's own range: a port chosen here long before its service binds it (the session
# stack's, chosen when pytest starts, bound when the first test needs the stack) cannot be taken
# meanwhile by an outgoing connection or a JVM's random port (a Spark Connect server once failed to
# bind its port for that, minutes after the drills' cluster started).
_PORTS_FLOOR = 20000
_handed_out: set[int] = set()


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """Free ports outside the kernel's ephemeral range, none handed out twice in this process, and each
    worker of a parallel run taking only its own residue: two workers can never get the same port."""
    index, workers = _worker_slot()
    ephemeral = _ephemeral_ports()
    low, high = _PORTS_FLOOR, ephemeral[0] - 1
    if high - low < 1000:  # a machine whose ephemeral range starts low: pick inside it instead
        low, high = ephemeral
    first = random.randrange(low, high + 1)
    ports: list[int] = []
    for step in range(high - low + 1):
        port = low + (first - low + step) % (high - low + 1)
        if port % workers == index and port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError(f"only {len(ports)} of {count} free ports between {low} and {high}")


def _test_environment() -> dict[str, str]:
    names = [*STACK_PORT_KEYS, "DAGSTER__WEBSERVER_PORT"]
    env = {f"RTDP_{name}": str(port) for name, port in zip(names, free_ports(len(names)), strict=True)}
    env["RTDP_RUN_DIR"] = str(_RUN_DIR)
    env["RTDP_JARS_DIR"] = str(PROJECT_ROOT / ".rtdp" / "jars")
    env["RTDP_SPARK__DRIVER_MEMORY"] = "2g"
    # The suite's streams live seconds to a minute: C2's compilations cost them more CPU than they repay
    # (the Spark Connect server lives through the session, and keeps it).
    env["RTDP_STREAM__JAVA_OPTIONS"] = '["-XX:TieredStopAtLevel=1"]'
    return env


def pytest_configure(config: pytest.Config) -> None:
    os.environ.update(_test_environment())
    os.environ.pop("RTDP_CONFIG", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    # The controller of a parallel run never starts a stack: its run folder stays empty.
    with contextlib.suppress(OSError):
        _RUN_DIR.rmdir()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`stack` on every test that uses the session stack, directly or through another fixture, or that is
    marked so (it starts services of its own); `unit` on the rest. The longest modules first, so that a
    parallel run (`make test`: one module at a time per worker) does not end waiting on one of them."""
    for item in items:
        if item.get_closest_marker("stack") is None and "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stack)
        if item.get_closest_marker("stack") is None:
            item.add_marker(pytest.mark.unit)
    items.sort(key=lambda item: item.get_closest_marker("long_running") is None)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[Settings]:
    """The running test stack; stopped and removed at the end of the session."""
    from rtdp_dagster.stack import manager

    try:
        manager.up(settings, log=lambda _: None)
        yield settings
    finally:
        # Also when a service failed to start: what did start must not outlive the session.
        manager.down(settings, log=lambda _: None)
    if not os.environ.get("KEEP_TEST_RUN_DIR"):
        shutil.rmtree(_RUN_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def spark(stack: Settings):
    from rtdp_dagster.spark.session import connect

    session = connect(stack)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def router(stack: Settings):
    """The query router (`rtdp serve`) on a free port over the test stack's TSDBs; ``router.url`` is its base URL."""
    from rtdp_dagster.serving.server import start_router

    handle = start_router(stack)
    yield handle
    handle.stop()
