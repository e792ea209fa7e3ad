"""The router is closed to browsers by default and open only to the origins named in `serve.cors_origins`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
import uvicorn

from rtdp_dagster.config import ConfigError, load_settings
from rtdp_dagster.serving.app import create_app
from tests.conftest import free_ports

GRAFANA = "https://grafana.example.com"
ELSEWHERE = "https://evil.example.net"


@contextmanager
def router(environ: dict[str, str]) -> Iterator[str]:
    """A router on a free port with these RTDP_* overrides; only endpoints that need no TSDB are called."""
    settings = load_settings(environ=environ)
    port = free_ports(1)[0]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the router did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def preflight(url: str, origin: str) -> requests.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    return requests.options(f"{url}/api/query", headers=headers, timeout=5)


def test_no_origin_may_read_the_router_by_default():
    assert load_settings(environ={}).serve.cors_origins == []
    with router({}) as url:
        answer = requests.get(f"{url}/api/aggregators", headers={"Origin": GRAFANA}, timeout=5)
        assert answer.status_code == 200  # the API answers; the browser just may not hand it to the page
        assert "access-control-allow-origin" not in answer.headers
        assert "access-control-allow-origin" not in preflight(url, GRAFANA).headers


def test_a_named_origin_may_and_no_other():
    with router({"RTDP_SERVE__CORS_ORIGINS": f'["{GRAFANA}"]'}) as url:
        allowed = preflight(url, GRAFANA)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == GRAFANA
        simple = requests.get(f"{url}/api/aggregators", headers={"Origin": GRAFANA}, timeout=5)
        assert simple.headers["access-control-allow-origin"] == GRAFANA
        assert "X-Rtdp-Route" in simple.headers["access-control-expose-headers"]

        refused = preflight(url, ELSEWHERE)
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        other = requests.get(f"{url}/api/aggregators", headers={"Origin": ELSEWHERE}, timeout=5)
        assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize("origin", ["grafana.example.com", "https://grafana.example.com/", "https://*.example.com"])
def test_an_origin_that_is_not_one_names_the_key(origin: str):
    with pytest.raises(ConfigError, match=r"serve\.cors_origins"):
        load_settings(environ={"RTDP_SERVE__CORS_ORIGINS": f'["{origin}"]'})
