"""Outbound HTTP for providers: strictly parsed, allow-listed hosts resolved once and
connected to at the checked address, timeouts, size caps, and retries that never repeat a
request the provider may already have processed."""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import random
import re
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import idna
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from .errors import ConfigurationError, OutcomeUnknown, RateLimited, SourceUnavailable

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Methods that may be sent twice without harm; the others are repeated only when they
# provably never reached the provider (or it said it did not process them).
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"https": 443, "http": 80}

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_AUTHORITY = re.compile(r"([a-z0-9.-]+)(?::([0-9]{1,5}))?")
# Path and query: RFC 3986 unreserved, sub-delims, ":", "@", "/", "?" and %-escapes.
_TAIL = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_LOOPBACK_IPS = frozenset({ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")})


@dataclass(slots=True)
class Response:
    status: int
    headers: requests.structures.CaseInsensitiveDict
    body: bytes
    url: str

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise SourceUnavailable(
                "The provider sent an answer that is not valid JSON.",
                detail=self.body[:200].decode("utf-8", "replace"),
            ) from exc

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def _refuse(message: str) -> ConfigurationError:
    return ConfigurationError(message)


def valid_hostname(host: str) -> bool:
    """A DNS host name of letters, digits and hyphens (A-labels must be valid IDNA), two
    labels or more, a top-level label that starts with a letter (so never a number)."""
    if not host or len(host) > 253 or not host.isascii():
        return False
    labels = host.split(".")
    if len(labels) < 2:
        return False
    for label in labels:
        if not _LABEL.fullmatch(label):
            return False
        if label[2:4] == "--":
            if not label.startswith("xn--"):
                return False
            try:
                if idna.encode(idna.decode(label)).decode("ascii") != label:
                    return False
            except (idna.IDNAError, UnicodeError, ValueError):
                return False
    return labels[-1][0].isalpha()


def is_ip_literal(host: str) -> bool:
    """Whether `host` is a canonical dotted-quad IPv4 address (the only literal allowed)."""
    return bool(_IPV4.fullmatch(host))


def is_public_address(addr: str) -> bool:
    """True for globally routable unicast addresses only (not private, CGNAT, loopback,
    link-local, metadata, multicast, nor IPv6 forms that embed an IPv4 address)."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    if ip.version == 6 and (
        ip.ipv4_mapped or ip.sixtofour or ip.teredo or any(ip in net for net in _NAT64)
    ):
        return False
    return ip.is_global and not ip.is_multicast


def _is_loopback(addr: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return ip in _LOOPBACK_IPS or (ip.version == 4 and ip.is_loopback)


@dataclass(frozen=True, slots=True)
class Target:
    """A URL split by the strict grammar: what is checked is what gets connected to."""

    scheme: str
    host: str
    port: int
    tail: str  # path and query, "" or starting with "/"

    @property
    def netloc(self) -> str:
        default = DEFAULT_PORTS[self.scheme]
        return self.host if self.port == default else f"{self.host}:{self.port}"

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    @property
    def url(self) -> str:
        return self.base + self.tail


def parse_target(url: str) -> Target:
    """Split `url` into scheme, host, port and path by a strict grammar, refusing anything
    two URL parsers could read differently; the URL is rebuilt from the checked parts."""
    if not isinstance(url, str) or not url or len(url) > 8192 or not url.isascii():
        raise _refuse("The address contains characters that are not allowed in a web "
                      "address.")
    if any(c <= " " or c in "\x7f\\" for c in url):
        raise _refuse("The address contains spaces, control characters or a backslash, "
                      "which are not allowed.")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS:
        raise _refuse("The address must start with https://.")
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut].lower(), rest[cut:]
    if any(c in authority for c in "@%[]"):
        raise _refuse("Addresses with a user name, a password, %-escapes or brackets in the "
                      "host part are not allowed.")
    match = _AUTHORITY.fullmatch(authority)
    if not match:
        raise _refuse("The address does not name a valid host.")
    host, port_text = match.groups()
    if not (is_ip_literal(host) or valid_hostname(host)):
        raise _refuse(f"{host} is not a valid host name: use letters, digits, hyphens and "
                      "dots (international names in their xn-- form), without a final dot.")
    port = int(port_text) if port_text is not None else DEFAULT_PORTS[scheme]
    if not 1 <= port <= 65535:
        raise _refuse("The address names a port that does not exist.")
    if tail.startswith("?"):
        tail = "/" + tail
    if "#" in tail or not _TAIL.fullmatch(tail):
        raise _refuse("The address contains characters that are not allowed in a web "
                      "address.")
    target = Target(scheme, host, port, tail)
    rebuilt = target.url
    split, parsed = urlsplit(rebuilt), urllib3.util.parse_url(rebuilt)
    seen = {
        (split.scheme, split.hostname, split.port or DEFAULT_PORTS[scheme]),
        (parsed.scheme, parsed.host, parsed.port or DEFAULT_PORTS[scheme]),
    }
    if seen != {(scheme, host, port)} or split.username or parsed.auth:
        raise _refuse("The address is ambiguous and was refused.")
    return target


class HostPolicy:
    """Which URLs a provider may call (SSRF guard).

    `patterns` are host globs (`*.myshopify.com`); `public_https=True` instead admits any
    valid https host (Magento stores). Host names are https on port 443 only and must
    resolve only to public addresses; the request then goes to the address checked
    (`resolve`). `allow_loopback` (tests and the demo, an explicit setting) also admits
    http(s)://127.0.0.1:<any port> and names resolving to loopback addresses.
    """

    def __init__(
        self,
        patterns: Iterable[str] = (),
        *,
        public_https: bool = False,
        allow_loopback: bool = False,
        resolver: Callable[[str], list[str]] | None = None,
    ):
        self.patterns = tuple(p.lower() for p in patterns)
        self.public_https = public_https
        self.allow_loopback = allow_loopback
        self._resolve = resolver or _resolve

    def check(self, url: str) -> Target:
        """Refuse a URL outside the policy without any DNS lookup; returns its parts."""
        target = parse_target(url)
        host = target.host
        if is_ip_literal(host):
            if self.allow_loopback and _is_loopback(host):
                return target
            if not is_public_address(host):
                raise _refuse(f"The host {host} is not allowed: it is a private or local "
                              "address.")
            if not self.public_https:
                raise _refuse(f"The host {host} is not allowed for this provider.")
        elif self.patterns or not self.public_https:
            if not any(fnmatch.fnmatchcase(host, p) for p in self.patterns):
                raise _refuse(f"The host {host} is not allowed for this provider.")
        if target.scheme != "https":
            raise _refuse("Only https addresses are allowed.")
        if target.port != DEFAULT_PORTS["https"]:
            raise _refuse("Only the standard https port (443) is allowed.")
        return target

    def resolve(self, target: Target) -> str:
        """Look the host up once and check every address; returns the one to connect to."""
        if is_ip_literal(target.host):
            addrs = [target.host]
        else:
            addrs = list(self._resolve(target.host))
        if not addrs:
            raise SourceUnavailable(f"The host {target.host} could not be found.")
        loopback = self.allow_loopback and all(_is_loopback(a) for a in addrs)
        if not loopback and not all(is_public_address(a) for a in addrs):
            raise _refuse(f"The host {target.host} is not allowed: it resolves to a private "
                          "or local address.")
        return sorted(addrs, key=lambda a: ":" in a)[0]  # IPv4 first


def _resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise SourceUnavailable(f"The host {host} could not be found.") from exc
    seen: list[str] = []
    for info in infos:
        addr = str(info[4][0])
        if addr not in seen:
            seen.append(addr)
    return seen


class PinnedAdapter(HTTPAdapter):
    """Connects to the address the policy checked for a host (no second DNS lookup),
    while TLS still sends the host name (SNI) and verifies the certificate against it."""

    def __init__(self) -> None:
        super().__init__(max_retries=0)
        self.pins: dict[tuple[str, str, int], str] = {}

    def pin(self, target: Target, address: str) -> None:
        self.pins[(target.scheme, target.host, target.port)] = address

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        parsed = urllib3.util.parse_url(request.url)
        scheme = (parsed.scheme or "").lower()
        key = (scheme, (parsed.host or "").lower(), parsed.port or DEFAULT_PORTS.get(scheme, 0))
        address = self.pins.get(key)
        if address is None:
            raise requests.exceptions.InvalidURL("The address was not checked before use.")
        _, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        pool_kwargs = dict(pool_kwargs)
        if scheme == "https":
            pool_kwargs["server_hostname"] = key[1]
            pool_kwargs["assert_hostname"] = key[1]
        return self.poolmanager.connection_from_host(
            address, port=key[2], scheme=scheme, pool_kwargs=pool_kwargs)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a (possibly float) number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def never_sent(exc: Exception) -> bool:
    """Whether a transport error happened before any byte of the request left (the
    connection was never made), so repeating it cannot process it twice."""
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError | ConnectTimeoutError | NameResolutionError)
    return False


def transport_problem(exc: Exception) -> str:
    """Plain words for a transport error (never the exception's own text)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return ("The provider's secure connection could not be verified (TLS certificate "
                "or handshake failed).")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "The provider did not accept a connection in time."
    if isinstance(exc, requests.Timeout):
        return "The provider did not answer in time."
    if never_sent(exc):
        return ("The provider could not be reached: nothing answers at that address (the "
                "connection was refused or the address is unreachable).")
    if isinstance(exc, requests.ConnectionError):
        return "The connection to the provider broke off before it answered."
    return "The provider sent an answer that could not be read."


def _retry_allowed(resp: Response) -> bool:
    """For a non-idempotent request: only answers saying it was not processed."""
    return resp.status == 429 or (resp.status == 503 and bool(resp.headers.get("Retry-After")))


class HttpClient:
    """A requests session with the shared rules. One per provider instance.

    `retry_budget` is the total seconds a single request may spend waiting between
    retries; past it the request raises RateLimited (429) or SourceUnavailable (5xx).
    `default_retry_after` is the wait after a 429 that names none (Zoho: about 60 s).
    GET is retried after timeouts and 5xx; POST/PATCH only when it provably never left
    or the answer says it was not processed (429, 503 with Retry-After).
    """

    def __init__(
        self,
        policy: HostPolicy,
        *,
        timeout: tuple[float, float] = (10.0, 60.0),
        max_bytes: int = 64 * 1024 * 1024,
        retry_budget: float = 120.0,
        max_attempts: int = 8,
        backoff_base: float = 1.0,
        default_retry_after: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ):
        self.policy = policy
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.retry_budget = retry_budget
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.default_retry_after = default_retry_after
        self.sleep = sleep
        self.session = session or requests.Session()
        self.session.trust_env = False  # no proxies or .netrc from the environment
        self.adapter = PinnedAdapter()
        self.session.mount("https://", self.adapter)
        self.session.mount("http://", self.adapter)
        self.requests_made = 0
        self.waited = 0.0

    def request(self, method: str, url: str, *, idempotent: bool | None = None,
                **kwargs: Any) -> Response:
        """Send with retries; returns any non-retryable response (the caller reads 4xx).
        `idempotent=True` marks a POST that only reads (a GraphQL query) as repeatable."""
        target = self.policy.check(url)
        self.adapter.pin(target, self.policy.resolve(target))
        repeatable = method.upper() in IDEMPOTENT if idempotent is None else idempotent
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self._send(method, target, **kwargs)
            except requests.RequestException as exc:
                resp = None
                error: Exception | None = exc
                if isinstance(exc, requests.exceptions.SSLError) or not (
                    never_sent(exc) or (repeatable and isinstance(
                        exc, requests.ConnectionError | requests.Timeout))
                ):
                    raise self._unsent_or_lost(exc, repeatable) from None
            else:
                error = None
                if resp.status not in RETRY_STATUSES:
                    return resp
                if not repeatable and not _retry_allowed(resp):
                    raise OutcomeUnknown(
                        f"The provider failed while handling the request (HTTP {resp.status}); "
                        "it is not repeated automatically, in case it was processed. The next "
                        "run tries again.", detail=resp.text[:300])
            delay = self._delay(resp, attempt)
            if attempt >= self.max_attempts or waited + delay > self.retry_budget:
                raise self._give_up(resp, error, delay)
            self.sleep(delay)
            waited += delay
            self.waited += delay

    def _send(self, method: str, target: Target, **kwargs: Any) -> Response:
        self.requests_made += 1
        kwargs.setdefault("timeout", self.timeout)
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Host"] = target.netloc
        with self.session.request(
            method, target.url, stream=True, allow_redirects=False, headers=headers, **kwargs
        ) as raw:
            declared = raw.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > self.max_bytes:
                raise SourceUnavailable("The provider's answer was too large to accept.")
            chunks: list[bytes] = []
            size = 0
            for chunk in raw.iter_content(64 * 1024):
                size += len(chunk)
                if size > self.max_bytes:
                    raise SourceUnavailable("The provider's answer was too large to accept.")
                chunks.append(chunk)
            return Response(raw.status_code, raw.headers, b"".join(chunks), raw.url)

    @staticmethod
    def _unsent_or_lost(exc: Exception, repeatable: bool) -> SourceUnavailable:
        words = transport_problem(exc)
        if not repeatable and not never_sent(exc):
            words += (" The request may have been processed, so it is not repeated "
                      "automatically; the next run tries again.")
            return OutcomeUnknown(words, detail=type(exc).__name__)
        return SourceUnavailable(words, detail=type(exc).__name__)

    def _delay(self, resp: Response | None, attempt: int) -> float:
        if resp is not None:
            after = parse_retry_after(resp.headers.get("Retry-After"))
            if after is not None:
                return after
            if resp.status == 429 and self.default_retry_after is not None:
                return self.default_retry_after
        base = self.backoff_base * (2 ** (attempt - 1))
        return min(60.0, base) * (0.5 + random.random() / 2)

    def _give_up(self, resp: Response | None, error: Exception | None, delay: float):
        if resp is not None and resp.status == 429:
            return RateLimited(
                "The provider kept answering 'too many requests' beyond the retry budget.",
                retry_after=delay,
                detail=resp.text[:300],
            )
        if resp is not None:
            return SourceUnavailable(
                f"The provider kept failing (HTTP {resp.status}).", detail=resp.text[:300]
            )
        return SourceUnavailable(transport_problem(error) if error else
                                 "The provider could not be reached.",
                                 detail=type(error).__name__ if error else "")


class Ahead:
    """One request sent from a background thread while the caller works on the previous
    answer (a walk's next page is fetched while this one is written). `result()` returns
    its answer or raises its error; an unused one finishes on its own and is dropped.

    The thread runs inside the caller's app context (a token renewal saves credentials),
    and only it uses the client until `result()`: the walk asks for nothing meanwhile."""

    def __init__(self, call: Callable[[], Any]):
        import threading

        from flask import current_app, has_app_context

        self._app = current_app._get_current_object() if has_app_context() else None
        self._call = call
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="provider-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            if self._app is None:
                self._value = self._call()
            else:
                with self._app.app_context():
                    self._value = self._call()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller in result()
            self._error = exc

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value
