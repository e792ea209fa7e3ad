"""Data quality: Great Expectations suites as Dagster asset checks, reconciliation along the path,
freshness, and rtdp.dq.* metrics. Kept free of heavy imports: rtdp_dagster.config imports names."""
