"""Tributary: keeps a marketing team's contact lists filled from its other systems."""

from __future__ import annotations

import logging
import os

from flask import Flask, g, render_template, request
from sqlalchemy import event
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config as config_module
from .extensions import csrf, db, htmx, login_manager

HSTS = "max-age=31536000; includeSubDomains"
log = logging.getLogger(__name__)


def create_app(config: dict | None = None) -> Flask:
    """Build the app: config, extensions, blueprints, CLI. Connects to nothing yet."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(config_module.load(app.instance_path, config))
    _install_transport_rules(app)  # first, so an oversized body is refused before CSRF reads it

    db.init_app(app)
    _install_sqlite_pragmas(app)
    if app.config["LOAD_MIGRATIONS"]:
        from flask_migrate import Migrate

        Migrate(app, db, render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"

    from . import models  # registers the tables on db.metadata

    if app.config["LOAD_VIEWS"] or app.config["LOAD_MIGRATIONS"]:
        models.load_all()  # workers map plugin and commerce models only when a job needs them

    if app.config["LOAD_VIEWS"]:
        _register_views(app)
    return app


def _register_views(app: Flask) -> None:
    """Pages, sign-in, authorization and the CLI: what a web process (not a worker) needs."""
    from . import user_sessions
    from .authz import register_authz
    from .blueprints import register_blueprints
    from .cli import register_cli
    from .hardening import register_hardening
    from .views_common import register_common

    register_hardening(app)  # before the blueprints: bounded id converters
    register_authz(app)
    login_manager.user_loader(user_sessions.load_user)
    register_blueprints(app)
    register_cli(app)
    register_common(app)


def _install_transport_rules(app: Flask) -> None:
    """Trusted proxy hops, a fresh user per request, the body limit (413) and HSTS."""
    hops = int(app.config["PROXY_HOPS"])
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops,
                                x_port=hops)

    @app.before_request
    def _fresh_identity():
        """User and CSRF token are per request, even when an app context outlives one (tests)."""
        g.pop("_login_user", None)
        g.pop("csrf_token", None)
        g.pop("user_session_id", None)

    @app.before_request
    def _refuse_large_bodies():
        limit = app.config["MAX_CONTENT_LENGTH"]
        if limit is not None and (request.content_length or 0) > limit:
            raise RequestEntityTooLarge()

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_error):
        limit = app.config["MAX_CONTENT_LENGTH"] or 0
        size = f"{limit / (1024 * 1024):g} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
        if (request.content_length or 0) > limit:
            message = f"That was too much to send at once: the limit is {size}."
        else:
            message = "That form held more than can be sent at once. Send less and try again."
        if htmx and not htmx.history_restore_request:
            return render_template("_request_too_large.html", message=message), 413
        return render_template("errors.html", code=413, message=message), 413

    @app.after_request
    def _hsts(response):
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response


def _install_sqlite_pragmas(app: Flask) -> None:
    """Set the pragmas on each new connection of this app's engines (made by init_app; an
    engine connects only when first used)."""
    with app.app_context():
        for engine in db.engines.values():
            event.listen(engine, "connect", _sqlite_pragmas)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite: files readable by the owner only, foreign keys, WAL for concurrent readers."""
    module = type(dbapi_connection).__module__
    if module.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        path = next((row[2] for row in cursor.execute("PRAGMA database_list")
                     if row[1] == "main"), "")
        _owner_only(path)  # before WAL: SQLite gives the -wal and -shm files the same mode
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        _owner_only(path)


def _owner_only(path: str) -> None:
    """chmod 600 the SQLite database and its WAL/SHM files (like the key files)."""
    if not path:  # in-memory database
        return
    for name in (path, path + "-wal", path + "-shm"):
        try:
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, 0o600)
        except FileNotFoundError:
            continue
        except OSError:
            log.warning("could not restrict the permissions of %s", name)
