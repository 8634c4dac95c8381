"""A tiny HTTP server that records every request as it arrived (raw body, headers, time) and
answers what the test tells it to: stands in for Tributary's receivers in emitter and
snippet tests, which run before the receiving side is merged."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

from werkzeug.wrappers import Request, Response

from simulators.server import serve


@dataclass
class Captured:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self):
        return json.loads(self.body.decode("utf-8"))


@dataclass
class CaptureServer:
    """Records requests; `answer(captured) -> (status, delay_seconds)` decides the reply.
    `files` maps a path to (content type, bytes) served on GET (the snippet, a page)."""

    files: dict[str, tuple[str, bytes]] = field(default_factory=dict, repr=False)
    answer: object = field(default=None, repr=False)
    requests: list[Captured] = field(default_factory=list, repr=False)

    def __post_init__(self):
        self._lock = threading.Lock()
        self._running = serve(self._app)
        self.url = self._running.url

    def stop(self) -> None:
        self._running.stop()

    def posts(self, path: str | None = None) -> list[Captured]:
        with self._lock:
            return [r for r in self.requests
                    if r.method == "POST" and (path is None or r.path == path)]

    def wait_for(self, predicate, timeout: float = 10.0):
        """Poll until predicate(self) is truthy; returns its value or fails the test."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate(self)
            if value:
                return value
            time.sleep(0.05)
        seen = [(r.method, r.path, r.headers.get("Sec-Fetch-Mode"), r.body[:200])
                for r in self.requests]
        raise AssertionError(f"not seen in {timeout} s; got {len(seen)} requests: {seen!r}")

    def _cors(self, request: Request, response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Vary"] = "Origin"
        return response

    def _app(self, environ, start_response):
        request = Request(environ)
        captured = Captured(request.method, request.path, dict(request.headers),
                            request.get_data(cache=False), time.time())
        if request.method == "GET" and request.path in self.files:
            ctype, data = self.files[request.path]
            return Response(data, content_type=ctype)(environ, start_response)
        with self._lock:
            self.requests.append(captured)
        if request.method == "OPTIONS":
            return self._cors(request, Response(status=204))(environ, start_response)
        status, delay = self.answer(captured) if self.answer else (200, 0.0)
        if delay:
            time.sleep(delay)
        response = Response(json.dumps({"success": status < 300}), status=status,
                            content_type="application/json")
        return self._cors(request, response)(environ, start_response)
