"""Tributary: keeps a marketing team's contact lists filled from its other systems."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from . import config as config_module
from .extensions import csrf, db, htmx, login_manager


def create_app(config: dict | None = None) -> Flask:
    """Build the app: config, extensions, blueprints, CLI. Connects to nothing yet."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(config_module.load(app.instance_path, config))

    db.init_app(app)
    if app.config["LOAD_MIGRATIONS"]:
        from flask_migrate import Migrate

        Migrate(app, db, render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"

    from . import models  # noqa: F401  (registers the tables on db.metadata)
    from .authz import register_authz
    from .blueprints import register_blueprints
    from .cli import register_cli
    from .hardening import register_hardening
    from .views_common import register_common

    register_hardening(app)  # before the blueprints: bounded id converters
    register_authz(app)
    register_blueprints(app)
    register_cli(app)
    register_common(app)
    return app


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite: enforce foreign keys, WAL for concurrent readers while a worker writes."""
    module = type(dbapi_connection).__module__
    if module.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
