"""Configuration: defaults here, overridden by TRIBUTARY_* environment variables or a dict."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

ENV_PREFIX = "TRIBUTARY_"

DEFAULTS: dict[str, object] = {
    "ENV": "development",
    "DATABASE_URL": None,  # None: SQLite file in the instance folder
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "SECRET_KEY": None,
    "ENCRYPTION_KEY": None,  # Fernet key(s), comma-separated; the first encrypts
    "PASSWORD_HASH_METHOD": "scrypt:131072:8:1",  # OWASP: scrypt N=2^17, r=8, p=1
    # Sign-in throttling: failures per client address, and a slower limit per account that
    # only applies to addresses which already failed (a user elsewhere still gets in).
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_WINDOW_SECONDS": 900,
    "LOGIN_ACCOUNT_MAX_FAILURES": 10,
    "LOGIN_ACCOUNT_WINDOW_SECONDS": 3600,
    # Server-side sessions: signed out after this long idle, and this long after sign-in.
    "SESSION_IDLE_SECONDS": 12 * 3600,
    "SESSION_MAX_AGE_SECONDS": 7 * 24 * 3600,
    # Request bodies: larger ones get a 413 page before they are read.
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "MAX_FORM_MEMORY_SIZE": 500_000,
    "MAX_FORM_PARTS": 1000,
    # Reverse proxies in front of the app whose X-Forwarded-* headers are trusted (0: none).
    "PROXY_HOPS": 0,
    "ALLOW_LOOPBACK_PROVIDERS": False,
    # A worker serves `periodic` first; `plugins` (event processing) before long imports.
    "QUEUE_NAMES": "periodic,plugins,imports,default",
    # CPU priority of the workers (a nice value, 0-19): the web app gets the cores first.
    "WORKER_NICE": 3,
    "WORKER_TTL": 60,  # seconds; an idle worker reports in every WORKER_TTL - 15 s
    "JOB_TIMEOUT_SECONDS": 3600,
    # The import engine (webapp/imports/runs.py).
    "IMPORT_RUN_CAP": 10_000,  # contacts a recurring run writes before it stops as capped
    "IMPORT_STALE_SECONDS": 600,  # a running run without a heartbeat this long is dead
    "IMPORT_REQUEUE_GRACE_SECONDS": 60,  # a queued run this old without an RQ job is lost
    "IMPORT_MAX_ATTEMPTS": 5,  # re-enqueues by the sweep before a run is given up
    "IMPORT_QUEUE": "imports",
    "IMPORT_FAILURE_NOTICE_AFTER": 3,  # failed runs in a row before a workspace notice
    # Bind Flask-Migrate (`flask db …`); worker.py and wsgi.py turn it off to stay light.
    "LOAD_MIGRATIONS": True,
    # Register the pages (blueprints, their services, the CLI); worker.py turns it off: a job
    # renders nothing, and each work horse is ~4 MB lighter without them.
    "LOAD_VIEWS": True,
    # OAuth apps (client id / secret) per provider; the settings page may store them instead.
    "SHOPIFY_CLIENT_ID": "",
    "SHOPIFY_CLIENT_SECRET": "",
    "ZOHO_CLIENT_ID": "",
    "ZOHO_CLIENT_SECRET": "",
    "SALESFORCE_CLIENT_ID": "",
    "SALESFORCE_CLIENT_SECRET": "",
}

# Settings that must come from the environment in production, with the variable to set.
REQUIRED_IN_PRODUCTION = ("SECRET_KEY", "ENCRYPTION_KEY")
MIN_SECRET_KEY_BYTES = 32


class ConfigError(RuntimeError):
    """The configuration cannot run: says which variable is missing or wrong."""


def _coerce(default: object, raw: str) -> object:
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    return raw


def load(instance_path: str, overrides: dict | None = None) -> dict:
    """Build the Flask config mapping from defaults, the environment and `overrides`."""
    values: dict[str, object] = dict(DEFAULTS)
    for key, default in DEFAULTS.items():
        raw = os.environ.get(ENV_PREFIX + key)
        if raw is not None and raw != "":
            values[key] = _coerce(default, raw)
    values.update(overrides or {})

    env = str(values["ENV"])
    if env not in {"development", "production", "test"}:
        raise ConfigError(f"{ENV_PREFIX}ENV must be development, production or test, not {env!r}")

    instance = Path(instance_path)
    for key in REQUIRED_IN_PRODUCTION:
        if values.get(key):
            continue
        if env == "production":
            raise ConfigError(
                f"{ENV_PREFIX}{key} is not set; production refuses to start without it"
            )
        values[key] = _generated_key(instance, key)
    if env == "production":
        _check_production_keys(values)

    if not values["DATABASE_URL"]:
        instance.mkdir(parents=True, exist_ok=True)
        values["DATABASE_URL"] = f"sqlite:///{instance / 'tributary.sqlite'}"

    dev = env == "development"
    values.update(
        SQLALCHEMY_DATABASE_URI=values["DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(str(values["DATABASE_URL"])),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not dev and env != "test",
        # The cookie lives as long as the server-side session may; the server decides sooner.
        PERMANENT_SESSION_LIFETIME=int(values["SESSION_MAX_AGE_SECONDS"]),
        # Remember-me cookies are never set (they would outlive a revoked session).
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=not dev and env != "test",
        WTF_CSRF_TIME_LIMIT=None,
        TESTING=env == "test" or bool(values.get("TESTING")),
    )
    return values


def _check_production_keys(values: dict) -> None:
    """Refuse a short secret key and any encryption key that Fernet cannot use."""
    if len(str(values["SECRET_KEY"]).encode()) < MIN_SECRET_KEY_BYTES:
        raise ConfigError(
            f"{ENV_PREFIX}SECRET_KEY is shorter than {MIN_SECRET_KEY_BYTES} bytes; generate one "
            'with python -c "import secrets; print(secrets.token_hex(32))"'
        )
    keys = [k.strip() for k in str(values["ENCRYPTION_KEY"]).split(",") if k.strip()]
    if not keys:
        raise ConfigError(f"{ENV_PREFIX}ENCRYPTION_KEY holds no key")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            raise ConfigError(
                f"{ENV_PREFIX}ENCRYPTION_KEY: key {position} of {len(keys)} in the "
                "comma-separated list is not a valid Fernet key (32 url-safe base64 bytes)"
            ) from None


def _engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    return {"pool_pre_ping": True}


def _generated_key(instance: Path, key: str) -> str:
    """Development only: a key generated once and kept in the instance folder."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / key.lower()
    if path.exists():
        return path.read_text().strip()
    value = Fernet.generate_key().decode() if key == "ENCRYPTION_KEY" else secrets.token_hex(32)
    path.touch(mode=0o600)
    path.write_text(value)
    return value
