"""OpenTSDB put (telnet and HTTP) into both VictoriaMetrics instances, read back exactly."""

import time
import uuid

import pytest

from rtdp_dagster.config import Settings
from rtdp_dagster.stack.process import wait_until
from rtdp_dagster.tsdb.put import TelnetPutWriter, TsdbPoint, http_put
from rtdp_dagster.tsdb.query import export_series, force_flush


@pytest.mark.parametrize("role", ["realtime", "history"])
@pytest.mark.parametrize("protocol", ["telnet", "http"])
def test_put_and_read_back_exact_values(stack: Settings, role: str, protocol: str) -> None:
    endpoint = getattr(stack.tsdb, role)
    run = uuid.uuid4().hex[:10]
    now_s = int(time.time())
    # Telnet carries whole seconds; HTTP keeps milliseconds.
    offset_ms = 0 if protocol == "telnet" else 123
    points = [
        TsdbPoint(
            "rtdp.test.put",
            (now_s - 60 + i * 10) * 1000 + offset_ms,
            round(0.1 * i + 1e-3, 6),
            {"host": f"h{i % 2}", "run": run},
        )
        for i in range(6)
    ]
    if protocol == "telnet":
        with TelnetPutWriter(endpoint.put_host, endpoint.put_port) as writer:
            assert writer.write(points) == 6
    else:
        assert http_put(endpoint.put_http_url, points) == 6

    def visible() -> list[dict]:
        force_flush(endpoint.url)
        series = export_series(endpoint.url, "rtdp.test.put", {"run": run})
        return series if sum(len(s["points"]) for s in series) == 6 else []

    assert wait_until(lambda: bool(visible()), timeout_s=15), "points not queryable within 15 s"
    got = {s["tags"]["host"]: s["points"] for s in visible()}
    expected: dict[str, list[tuple[int, float]]] = {}
    for point in points:
        expected.setdefault(point.tags["host"], []).append((point.timestamp_ms, point.value))
    assert {host: [tuple(p) for p in pts] for host, pts in got.items()} == expected


def test_telnet_refuses_sub_second_timestamps(stack: Settings) -> None:
    with (
        TelnetPutWriter(stack.tsdb.realtime.put_host, stack.tsdb.realtime.put_port) as writer,
        pytest.raises(ValueError, match="whole seconds"),
    ):
        writer.write([TsdbPoint("rtdp.test.put", 1_700_000_000_123, 1.0, {"host": "h"})])


def test_invalid_points_are_refused_before_sending(stack: Settings) -> None:
    with pytest.raises(ValueError, match="characters"):
        http_put(stack.tsdb.realtime.put_http_url, [TsdbPoint("bad metric", 1_700_000_000_000, 1.0, {"host": "h"})])
    with pytest.raises(ValueError, match="finite"):
        http_put(
            stack.tsdb.realtime.put_http_url, [TsdbPoint("ok.metric", 1_700_000_000_000, float("nan"), {"host": "h"})]
        )
