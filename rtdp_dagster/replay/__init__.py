"""Kappa replay: re-read a time range from Kafka into bronze, through the stream's own parsing.

- ``offsets``: the offset range of every topic partition for a time range (Kafka's time index);
- ``bronze_replay``: read those records with Spark, validate and type them exactly as the stream
  does, and add to bronze/quarantine only records whose Kafka coordinates are not there yet;
- ``jobs``: the Dagster job. Days that get rows are re-run by the late-data sensor.
"""
