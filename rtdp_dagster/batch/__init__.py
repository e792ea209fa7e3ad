"""The batch layer's computations: silver per day from bronze, and rollups from 1 minute to 1 year.

Pure Spark functions over DataFrames (``silver``, ``rollups``), the one definition of intervals
and bucket math (``intervals``), partition-exact Delta writes (``writes``) and the history TSDB
publishing (``history``) know nothing of Dagster; the Dagster side wires them: partitions,
assets, the coarse levels' automation, the late-data sensor and the definitions (``defs``).
"""
