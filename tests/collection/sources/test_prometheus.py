"""Prometheus text format: every tricky construct, the scrape window, and a real VictoriaMetrics."""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from rtdp_dagster.collection.sources.prometheus import PrometheusScrapeSource, ScrapeError
from rtdp_dagster.collection.sources.prometheus_text import BadLine, Sample, parse_exposition
from rtdp_dagster.config.sources import PrometheusSourceConfig
from rtdp_dagster.envelope.records import RawRecord
from rtdp_dagster.stack.process import wait_until

EXPOSITION = r"""# A free comment line.
# HELP http_requests_total Total requests, with a \\ backslash and a \n newline in the help.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000
# Escapes in label values; a trailing comma; blanks around the braces' content.
msdos_file_access_time_seconds{ path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\"", } 1.458255915e9
metric_without_timestamp_and_labels 12.47
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.5"} NaN
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
job:errors:rate5m{job="api",empty=""} -Inf
{"my.utf8.metric", "label with space"="v"} +Inf
broken{label="unterminated} 1
no_value_here{a="b"}
bad_number{a="b"} twelve
exemplar_total{a="b"} 5 # {trace_id="abc"} 1.0
"""


def samples(text: str) -> list[Sample | BadLine]:
    return list(parse_exposition(text))


def test_parser_reads_every_construct() -> None:
    parsed = {(item.name, tuple(sorted((item.labels or {}).items()))): item for item in samples(EXPOSITION)}
    post = parsed[("http_requests_total", (("code", "200"), ("method", "post")))]
    assert isinstance(post, Sample)
    assert (post.value, post.timestamp_ms, post.family_type) == (1027.0, 1395066363000, "counter")
    msdos = next(item for item in parsed.values() if item.name == "msdos_file_access_time_seconds")
    assert isinstance(msdos, Sample)
    assert msdos.labels == {"path": "C:\\DIR\\FILE.TXT", "error": 'Cannot find file:\n"FILE.TXT"'}
    assert msdos.value == 1.458255915e9 and msdos.timestamp_ms is None
    nan_quantile = parsed[("rpc_duration_seconds", (("quantile", "0.5"),))]
    assert isinstance(nan_quantile, Sample) and math.isnan(nan_quantile.value)
    assert nan_quantile.family_type == "summary"
    inf_bucket = parsed[("http_request_duration_seconds_bucket", (("le", "+Inf"),))]
    assert isinstance(inf_bucket, Sample) and inf_bucket.value == 144320 and inf_bucket.family_type == "histogram"
    histogram_count = parsed[("http_request_duration_seconds_count", ())]
    assert isinstance(histogram_count, Sample) and histogram_count.family_type == "histogram"
    recording_rule = parsed[("job:errors:rate5m", (("empty", ""), ("job", "api")))]
    assert isinstance(recording_rule, Sample) and recording_rule.value == -math.inf
    utf8 = parsed[("my.utf8.metric", (("label with space", "v"),))]
    assert isinstance(utf8, Sample) and utf8.value == math.inf
    exemplar = parsed[("exemplar_total", (("a", "b"),))]
    assert isinstance(exemplar, Sample) and (exemplar.value, exemplar.timestamp_ms) == (5.0, None)
    bad = [item for item in parsed.values() if isinstance(item, BadLine)]
    assert [(item.name, item.value_text) for item in bad] == [
        ("broken", None),
        ("no_value_here", None),
        ("bad_number", "twelve"),
    ]
    assert len([item for item in parsed.values() if isinstance(item, Sample)]) == 15


@pytest.fixture
def metrics_server() -> Iterator[dict[str, Any]]:
    """A local /metrics endpoint whose body and status a test sets."""
    state: dict[str, Any] = {"body": EXPOSITION, "status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = state["body"].encode()
            self.send_response(state["status"])
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def scraper(url: str, **options: Any) -> PrometheusScrapeSource:
    return PrometheusScrapeSource(
        PrometheusSourceConfig.model_validate(
            {"name": "prom", "namespace": "prometheus.local.app.metrics.v1.0.0", "url": url, **options}
        )
    )


def by_metric(records: list[RawRecord]) -> dict[str, list[RawRecord]]:
    grouped: dict[str, list[RawRecord]] = {}
    for record in records:
        grouped.setdefault(str(record.metric), []).append(record)
    return grouped


def test_scrape_maps_names_and_tags_and_keeps_the_original(metrics_server: dict[str, Any]) -> None:
    source = scraper(metrics_server["url"], extra_tags={"site": "lab"}, metric_prefix="prom.")
    port = metrics_server["url"].split(":")[2].split("/")[0]
    try:
        records = list(source.read_window(1_000, 2_000, now_ms=1_500))
    finally:
        source.close()
    grouped = by_metric(records)
    bucket = next(r for r in grouped["prom.http_request_duration_seconds_bucket"] if r.tags["le"] == "inf")
    assert bucket.tags == {"instance": f"127.0.0.1_{port}", "le": "inf", "site": "lab"}
    assert bucket.ts_ms == 1_500 and bucket.value == 144320
    assert bucket.raw["labels"] == {"le": "+Inf"} and bucket.raw["type"] == "histogram"
    # Own timestamps are kept; ":" becomes "."; empty labels are dropped.
    assert {r.ts_ms for r in grouped["prom.http_requests_total"]} == {1395066363000}
    (rule,) = grouped["prom.job.errors.rate5m"]
    assert rule.tags == {"instance": f"127.0.0.1_{port}", "job": "api", "site": "lab"}
    (msdos,) = grouped["prom.msdos_file_access_time_seconds"]
    assert msdos.tags["path"] == "C__DIR_FILE.TXT" and msdos.raw["labels"]["path"] == "C:\\DIR\\FILE.TXT"
    (utf8,) = grouped["prom.my.utf8.metric"]
    assert utf8.tags["label_with_space"] == "v"
    # Unparseable lines become records with what could be read, for the collector to dead-letter.
    (bad_number,) = grouped["prom.bad_number"]
    assert bad_number.value == "twelve" and "not a number" in bad_number.raw["error"]
    (broken,) = grouped["prom.broken"]
    assert broken.value is None and broken.raw["line"] == 'broken{label="unterminated} 1'
    assert len(records) == 18


def test_allow_and_deny_filter_on_the_prometheus_name(metrics_server: dict[str, Any]) -> None:
    source = scraper(metrics_server["url"], allow=r"http_.*|rpc_.*", deny=r".*_bucket|.*_sum")
    try:
        names = {r.raw["name"] for r in source.read_window(1_000, 2_000, now_ms=2_000)}
    finally:
        source.close()
    assert names == {
        "http_requests_total",
        "http_request_duration_seconds_count",
        "rpc_duration_seconds",
        "rpc_duration_seconds_count",
    }


def test_only_the_window_containing_now_or_just_closed_is_scraped(metrics_server: dict[str, Any]) -> None:
    source = scraper(metrics_server["url"])
    try:
        assert list(source.read_window(1_000, 2_000, now_ms=1_000)) == []
        assert list(source.read_window(1_000, 2_000, now_ms=3_001)) == []
        # Read just after it closed (as wave 1's worker does): the scrape is stamped at the end.
        late = list(source.read_window(1_000, 2_000, now_ms=2_500))
        stamps = {record.ts_ms for record in late}
        assert 2_000 in stamps and 2_500 not in stamps
        # A catch-up wave's hour-long window, read a minute after its end, is not scraped.
        assert list(source.read_window(0, 3_600_000, now_ms=3_660_000)) == []
        # A failed scrape is an error of the read, not an empty window.
        metrics_server["status"] = 500
        with pytest.raises(ScrapeError, match="500"):
            list(source.read_window(1_000, 2_000, now_ms=2_000))
    finally:
        source.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.stack  # starts a VictoriaMetrics of its own
@pytest.mark.skipif(shutil.which("victoria-metrics") is None, reason="victoria-metrics binary not installed")
def test_scrape_of_a_real_victoria_metrics(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "vm.log").open("w")
    process = subprocess.Popen(
        ["victoria-metrics", f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={tmp_path / 'data'}"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def healthy() -> bool:
        try:
            return requests.get(f"{base}/health", timeout=1).ok
        except requests.ConnectionError:
            return process.poll() is not None  # stop waiting if it died

    source = scraper(f"{base}/metrics")
    try:
        assert wait_until(healthy, timeout_s=20, interval_s=0.1), "victoria-metrics not healthy within 20 s"
        assert process.poll() is None, f"victoria-metrics exited: {(tmp_path / 'vm.log').read_text()[-2000:]}"
        now = 1_700_000_000_000
        records = list(source.read_window(now - 10_000, now, now_ms=now))
    finally:
        source.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
    grouped = by_metric(records)
    assert "vm_app_uptime_seconds" in grouped
    assert "process_cpu_seconds_total" in grouped
    (uptime,) = grouped["vm_app_uptime_seconds"]
    assert uptime.ts_ms == now and isinstance(uptime.value, float) and uptime.value >= 0
    assert uptime.tags == {"instance": f"127.0.0.1_{port}"}
    # Every record is either a parsed sample or carries the reason it is not.
    assert all(isinstance(r.value, float) or "error" in r.raw for r in records)
    assert len(records) > 100
