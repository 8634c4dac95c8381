"""Run a simulator WSGI app on a free loopback port in a background thread."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass

from werkzeug.serving import WSGIRequestHandler, make_server


class QuietHandler(WSGIRequestHandler):
    """No access log line per request (noisy in tests, benchmarks and the sampler)."""

    def log_request(self, *args, **kwargs) -> None:
        pass


@dataclass
class Running:
    url: str
    port: int
    _server: object
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


def serve(app, host: str = "127.0.0.1", port: int = 0) -> Running:
    """Start `app` threaded on host:port (0 picks a free port); returns its base URL."""
    server = make_server(host, port, app, threaded=True, request_handler=QuietHandler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
        name="simulator",
    )
    thread.start()
    real_port = server.server_port
    return Running(f"http://{host}:{real_port}", real_port, server, thread)


def lose_answer(request, response, mode: str, delay: float = 2.0):
    """Lose the answer to a request the simulator already processed (a rotated token):
    "close" drops the connection unanswered, "slow" answers only after `delay` seconds
    (past a short client read timeout), "500" answers a server error instead."""
    if mode == "close":
        sock = request.environ.get("werkzeug.socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        return response
    if mode == "slow":
        time.sleep(delay)
        return response
    if mode == "500":
        return type(response)('{"error": "server_error"}', status=500,
                              content_type="application/json")
    raise ValueError(f"unknown mode {mode!r}")
