"""The replay's Dagster definitions: the Kappa replay job (launched by hand, never scheduled)."""

import dagster as dg

from rtdp_dagster.replay.jobs import kappa_replay_job

defs = dg.Definitions(jobs=[kappa_replay_job])
