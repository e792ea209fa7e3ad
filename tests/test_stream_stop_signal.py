"""`rtdp stream`'s stop on SIGTERM: a clean stop when the loop honours it, and a kernel deadline
when the process is stuck where no Python code runs the stop (a hung py4j call, a deadlock)."""

import signal
import subprocess
import sys

import pytest

# The child installs the handlers, says so, then either honours the stop or ignores it forever.
CHILD = """
import sys, time
from rtdp_dagster.cli.stream import stop_on_signals
stop = stop_on_signals(grace_s=2)
print("ready", flush=True)
if sys.argv[1] == "honour":
    stop.wait()
    sys.exit(0)
while True:
    time.sleep(0.1)
"""


def run_then_terminate(mode: str) -> int:
    child = subprocess.Popen([sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGTERM)
        return child.wait(timeout=60)
    finally:
        child.kill()


@pytest.mark.parametrize(("mode", "returncode"), [("honour", 0), ("ignore", -signal.SIGALRM)])
def test_sigterm_stops_cleanly_or_the_deadline_terminates_the_process(mode: str, returncode: int) -> None:
    assert run_then_terminate(mode) == returncode
