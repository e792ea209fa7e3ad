"""Great Expectations is imported in the background from the start of a run whose checks use it."""

import subprocess
import sys

# A fresh interpreter (this one may have imported GX already): a job whose first op does not use GX and
# whose second does; the first sees the import under way (or done) before GX's op is reached.
_JOB = """
import sys, threading
import dagster as dg
from rtdp_dagster.quality.resources import GreatExpectationsResource

assert "great_expectations" not in sys.modules

@dg.op
def first() -> bool:
    names = {thread.name for thread in threading.enumerate()}
    return "gx-import" in names or "great_expectations" in sys.modules

@dg.op
def judge(started: bool, great_expectations: GreatExpectationsResource) -> None:
    great_expectations.ready()
    assert started, "the import had not started before the first step"
    assert "great_expectations.data_context.types.base" in sys.modules

@dg.job(executor_def=dg.in_process_executor, resource_defs={"great_expectations": GreatExpectationsResource()})
def checks():
    judge(first())

assert checks.execute_in_process().success
print("ok")
"""


def test_a_run_starts_importing_great_expectations_before_its_first_step() -> None:
    done = subprocess.run([sys.executable, "-c", _JOB], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
