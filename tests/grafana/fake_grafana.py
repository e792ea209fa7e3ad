"""A tiny in-process stand-in for the few Grafana HTTP API endpoints `rtdp grafana publish` calls.

For unit tests of the publish logic only (no Grafana server can run here): it keeps data sources,
folders and dashboards by uid, checks the bearer token, and records every request.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GOOD_TOKEN = "good-token"
VIEWER_TOKEN = "viewer-token"


class FakeGrafana:
    def __init__(self) -> None:
        self.datasources: dict[str, dict[str, Any]] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeGrafana:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def writes(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path, _ in self.requests if method != "GET"]

    def route(self, method: str, path: str, body: Any, token: str | None) -> tuple[int, Any]:
        self.requests.append((method, path, body))
        if token not in (GOOD_TOKEN, VIEWER_TOKEN):
            return 401, {"message": "Unauthorized"}
        if method != "GET" and token == VIEWER_TOKEN:
            return 403, {"message": "You'll need additional permissions to perform this action."}
        if match := re.fullmatch(r"/api/datasources/uid/([\w-]+)", path):
            uid = match.group(1)
            if method == "GET":
                return (200, self.datasources[uid]) if uid in self.datasources else (404, {"message": "not found"})
            if method == "PUT" and uid in self.datasources:
                self.datasources[uid] = {**body, "id": self.datasources[uid]["id"]}
                return 200, {"message": "Datasource updated", "datasource": self.datasources[uid]}
        if path == "/api/datasources" and method == "POST":
            if body["uid"] in self.datasources:
                return 409, {"message": "data source with the same uid already exists"}
            self.datasources[body["uid"]] = {**body, "id": len(self.datasources) + 1}
            return 200, {"message": "Datasource added", "datasource": self.datasources[body["uid"]]}
        if match := re.fullmatch(r"/api/folders/([\w-]+)", path):
            uid = match.group(1)
            if method == "GET":
                return (200, self.folders[uid]) if uid in self.folders else (404, {"message": "folder not found"})
            if method == "PUT" and uid in self.folders:
                self.folders[uid]["title"] = body["title"]
                return 200, self.folders[uid]
        if path == "/api/folders" and method == "POST":
            self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "id": len(self.folders) + 1}
            return 200, self.folders[body["uid"]]
        if match := re.fullmatch(r"/api/dashboards/uid/([\w-]+)", path):
            uid = match.group(1)
            if uid not in self.dashboards:
                return 404, {"message": "Dashboard not found"}
            stored = self.dashboards[uid]
            return 200, {"dashboard": stored["dashboard"], "meta": {"folderUid": stored["folderUid"]}}
        if path == "/api/dashboards/db" and method == "POST":
            dashboard = body["dashboard"]
            if body.get("folderUid") not in self.folders:
                return 400, {"message": "folder not found"}
            previous = self.dashboards.get(dashboard["uid"])
            if previous and not body.get("overwrite"):
                return 412, {"message": "The dashboard has been changed by someone else", "status": "version-mismatch"}
            version = previous["dashboard"]["version"] + 1 if previous else 1
            stored_model = {**dashboard, "id": 7, "version": version}
            self.dashboards[dashboard["uid"]] = {"dashboard": stored_model, "folderUid": body["folderUid"]}
            return 200, {"status": "success", "uid": dashboard["uid"], "version": version}
        return 404, {"message": f"no route {method} {path}"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
                status, payload = fake.route(self.command, self.path.split("?")[0], body, token)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
