"""Small local servers for the outbound tests (no tests here): answers on demand, a port that
answers nothing, a TLS server with a certificate for a chosen name, and a socket guard."""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import ssl
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from werkzeug.wrappers import Request, Response

from simulators.server import lose_answer, serve

# ------------------------------------------------------------------ socket guard


class SocketGuard:
    """Fails the test on any DNS lookup or connection, except to 127.0.0.1 on `allowed`
    ports (the database, Redis and simulators the test itself runs)."""

    def __init__(self, monkeypatch, allowed: set[int]):
        self.allowed = set(allowed)
        self.lookups: list[object] = []
        self.connects: list[object] = []
        real_gai, real_cc = socket.getaddrinfo, socket.create_connection
        real_connect = socket.socket.connect
        guard = self

        def ok(host, port) -> bool:
            try:
                return host in ("127.0.0.1", b"127.0.0.1") and int(port) in guard.allowed
            except (TypeError, ValueError):
                return False

        def getaddrinfo(host, port, *args, **kwargs):
            if ok(host, port) or (host == "127.0.0.1" and port in (0, "0")):  # binding
                return real_gai(host, port, *args, **kwargs)
            guard.lookups.append((host, port))
            pytest.fail(f"a DNS lookup was attempted: {host!r}:{port}")

        def create_connection(address, *args, **kwargs):
            if ok(*address[:2]):
                return real_cc(address, *args, **kwargs)
            guard.connects.append(address)
            pytest.fail(f"a connection was attempted: {address!r}")

        def connect(sock, address):
            if isinstance(address, tuple) and ok(*address[:2]):
                return real_connect(sock, address)
            if sock.family == socket.AF_UNIX:
                return real_connect(sock, address)
            guard.connects.append(address)
            pytest.fail(f"a connection was attempted: {address!r}")

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket, "create_connection", create_connection)
        monkeypatch.setattr(socket.socket, "connect", connect)

    def allow(self, url_or_port) -> None:
        port = url_or_port if isinstance(url_or_port, int) else urlsplit(url_or_port).port
        self.allowed.add(int(port))


def service_ports(app) -> set[int]:
    """Ports of the database and Redis the app under test uses (allowed by the guard)."""
    ports = set()
    for key in ("DATABASE_URL", "REDIS_URL", "SQLALCHEMY_DATABASE_URI"):
        value = str(app.config.get(key) or "")
        if "://" in value:
            try:
                port = urlsplit(value).port
            except ValueError:
                port = None
            if port:
                ports.add(port)
    return ports


# --------------------------------------------------------------- fake providers


@dataclass
class Answer:
    """What the fake provider answers next: status, body, headers, or a lost answer."""

    status: int = 200
    body: str = "{}"
    headers: dict[str, str] = field(default_factory=dict)
    lose: str = ""  # "close", "slow" (see simulators.server.lose_answer)


class FakeProvider:
    """A local HTTP server answering every request with `answer`; counts requests."""

    def __init__(self):
        self.answer = Answer()
        self.requests: list[tuple[str, str]] = []
        self.running = serve(self._app)
        self.url = self.running.url

    def _app(self, environ, start_response):
        request = Request(environ)
        self.requests.append((request.method, request.path))
        a = self.answer
        response = Response(a.body, status=a.status, headers=a.headers,
                            content_type="application/json")
        if a.lose:
            response = lose_answer(request, response, a.lose, delay=1.5)
        return response(environ, start_response)

    def stop(self) -> None:
        self.running.stop()


class Listener:
    """A port that accepts connections; `mode` "silent" never answers, "hangup" closes each
    connection after reading the request. Closed ports come from `dead_port()`."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.mode == "hangup":
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                except OSError:
                    pass
                conn.close()
            else:
                self.held.append(conn)

    def stop(self) -> None:
        self._stop = True
        self.sock.close()
        for conn in self.held:
            conn.close()


def dead_port() -> int:
    """A loopback port nothing listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


# ------------------------------------------------------------------------ TLS


def make_certificates(tmp_path, hostname: str) -> tuple[str, str, str]:
    """A throwaway CA and a server certificate for `hostname`: (ca, cert, key) file paths."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tributary test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = (tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return tuple(str(p) for p in paths)


class TLSServer:
    """An https server on a loopback port; records the SNI names and Host headers seen."""

    def __init__(self, cert: str, key: str):
        self.sni: list[str | None] = []
        self.hosts: list[str | None] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                outer.hosts.append(self.headers.get("Host"))
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.sni_callback = lambda sock, name, ctx: self.sni.append(name)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
