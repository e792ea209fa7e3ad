"""The query router (`rtdp serve`): the OpenTSDB HTTP API that Grafana's OpenTSDB data source speaks.

Each query is routed by time range and downsample interval: recent and fine to the realtime TSDB's
raw points, old or coarse to the rollups in the history TSDB, split at the boundary where the history
data ends and merged from mergeable partial aggregates (count, sum, min, max, first, last), so a
bucket that straddles the boundary is exact and no timestamp appears twice.
"""
