"""Outbound HTTP for providers: allow-listed hosts, timeouts, size caps, and retries of
429/5xx with backoff that honours Retry-After within a total wait budget."""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import random
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from .base import ConfigurationError, RateLimited, SourceUnavailable

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


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


def _is_public_ip(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    return not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
        or ip.is_reserved or ip.is_unspecified
        or str(ip) in {"169.254.169.254", "fd00:ec2::254"}
    )


class HostPolicy:
    """Which URLs a provider may call (SSRF guard).

    `patterns` are host globs (`*.myshopify.com`); `public_https=True` instead admits any
    https host that resolves only to public addresses (Magento stores). `allow_loopback`
    (tests and the demo, an explicit setting) also admits `http(s)://127.0.0.1:<port>`.
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

    def check(self, url: str) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if self.allow_loopback and host == "127.0.0.1" and parts.scheme in {"http", "https"}:
            return
        if parts.scheme != "https":
            raise ConfigurationError(f"Only https addresses are allowed, not {url!r}.")
        if parts.username or parts.password:
            raise ConfigurationError("Addresses with a user name or password are not allowed.")
        if any(fnmatch.fnmatchcase(host, p) for p in self.patterns):
            return
        if self.public_https and host:
            try:
                ipaddress.ip_address(host)
                addrs = [host]
            except ValueError:
                addrs = self._resolve(host)
            if addrs and all(_is_public_ip(a) for a in addrs):
                return
            raise ConfigurationError(
                f"The host {host} is not allowed: it resolves to a private or local address."
            )
        raise ConfigurationError(f"The host {host or url!r} is not allowed for this provider.")


def _resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise SourceUnavailable(f"The host {host} could not be found.") from exc
    return sorted({info[4][0] for info in infos})


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


class HttpClient:
    """A requests session with the shared rules. One per provider instance.

    `retry_budget` is the total seconds a single request may spend waiting between
    retries; past it the request raises RateLimited (429) or SourceUnavailable (5xx).
    `default_retry_after` is the wait after a 429 that names none (Zoho: about 60 s).
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
        self.requests_made = 0
        self.waited = 0.0

    def request(self, method: str, url: str, **kwargs: Any) -> Response:
        """Send with retries; returns any non-retryable response (the caller reads 4xx)."""
        self.policy.check(url)
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self._send(method, url, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                resp = None
                error: Exception | None = exc
            else:
                error = None
                if resp.status not in RETRY_STATUSES:
                    return resp
            delay = self._delay(resp, attempt)
            if attempt >= self.max_attempts or waited + delay > self.retry_budget:
                raise self._give_up(resp, error, delay)
            self.sleep(delay)
            waited += delay
            self.waited += delay

    def _send(self, method: str, url: str, **kwargs: Any) -> Response:
        self.requests_made += 1
        kwargs.setdefault("timeout", self.timeout)
        with self.session.request(
            method, url, stream=True, allow_redirects=False, **kwargs
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
        return SourceUnavailable(f"The provider could not be reached ({error}).")
