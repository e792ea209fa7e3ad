"""The wall clock in epoch milliseconds, the unit of every timestamp in the platform."""

import time


def now_ms() -> int:
    return int(time.time() * 1000)
