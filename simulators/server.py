"""Run a simulator WSGI app on a free loopback port in a background thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from werkzeug.serving import make_server


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
    server = make_server(host, port, app, threaded=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="simulator")
    thread.start()
    real_port = server.server_port
    return Running(f"http://{host}:{real_port}", real_port, server, thread)
