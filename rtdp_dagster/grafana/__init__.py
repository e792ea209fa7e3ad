"""Grafana as code: the router data source, dashboards built with grafana-foundation-sdk, publishing
to a Grafana through its HTTP API, and verification of every panel against the query router."""
