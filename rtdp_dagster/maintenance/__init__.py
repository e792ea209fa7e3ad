"""Upkeep of the platform's stores, as Dagster jobs on schedules.

- ``tsdb_repair``: re-put the points the stream could not write to the realtime TSDB, from bronze;
- ``delta_upkeep``: OPTIMIZE, VACUUM and retention of the Delta tables, away from partitions in use;
- ``jobs``: the two jobs and their schedules.
"""
