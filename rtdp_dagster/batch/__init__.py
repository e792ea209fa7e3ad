"""The batch layer's computations: silver per day from bronze, and rollups from 1 minute to 1 year.

Pure Spark functions over DataFrames (``silver``, ``rollups``), the one definition of intervals
and bucket math (``intervals``) and partition-exact Delta writes (``writes``). Dagster assets wire
them; nothing here knows about Dagster.
"""
