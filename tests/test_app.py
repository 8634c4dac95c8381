"""App factory, migrations and static files."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from webapp.extensions import db


def test_migrations_match_the_models(app):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_htmx_2_is_served_from_our_static_files(signed_in):
    resp = signed_in.get("/static/vendor/htmx.min.js")
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert 'version:"2.0.' in body.replace(" ", "")
    page = signed_in.get("/").get_data(as_text=True)
    assert 'src="/static/vendor/htmx.min.js"' in page
    assert "unpkg" not in page and "cdn" not in page.lower()


def test_security_headers_and_vary(signed_in):
    resp = signed_in.get("/")
    assert "HX-Request" in resp.headers["Vary"]
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]


def test_encryption_round_trip_and_rotation(app):
    from cryptography.fernet import Fernet

    from webapp.security import decrypt, encrypt, mask, rotate

    token = encrypt("shpat_secret_1234")
    assert "shpat" not in token
    assert decrypt(token) == "shpat_secret_1234"
    old_key = app.config["ENCRYPTION_KEY"]
    app.config["ENCRYPTION_KEY"] = f"{Fernet.generate_key().decode()},{old_key}"
    rotated = rotate(token)
    assert decrypt(rotated) == "shpat_secret_1234"
    app.config["ENCRYPTION_KEY"] = app.config["ENCRYPTION_KEY"].split(",")[0]
    assert decrypt(rotated) == "shpat_secret_1234"
    app.config["ENCRYPTION_KEY"] = old_key
    assert mask("shpat_secret_1234") == "••••1234"
    assert mask("short") == "••••"


def test_engine_settings_have_defaults_in_the_config_and_come_from_the_environment(
        app_config, monkeypatch):
    from webapp import create_app
    from webapp.imports.runs import setting

    monkeypatch.setenv("TRIBUTARY_IMPORT_RUN_CAP", "7")
    monkeypatch.setenv("TRIBUTARY_IMPORT_QUEUE", "bulk")
    built = create_app({k: v for k, v in app_config.items() if not k.startswith("IMPORT_")})
    assert built.config["IMPORT_RUN_CAP"] == 7
    assert built.config["IMPORT_QUEUE"] == "bulk"
    assert built.config["IMPORT_STALE_SECONDS"] == 600  # the default, from config.py
    with built.app_context():
        assert setting("IMPORT_RUN_CAP") == 7
    monkeypatch.setenv("TRIBUTARY_IMPORT_RUN_CAP", "9")  # read once, when the app is built
    with built.app_context():
        assert setting("IMPORT_RUN_CAP") == 7


def test_status_choices_generate_the_check_constraints(app):
    import pytest
    from sqlalchemy import CheckConstraint, text
    from sqlalchemy.exc import IntegrityError

    from webapp.models import ImportRun, Integration
    from webapp.models.imports import LIVE_STATUSES, RUN_STATUSES, RunStatus

    checks = {c.name: str(c.sqltext) for c in ImportRun.__table__.constraints
              if isinstance(c, CheckConstraint)}
    assert checks["ck_import_runs_status"] == ("status IN ('queued', 'running', 'completed', "
                                "'completed_with_errors', 'capped', 'failed', 'canceled')")
    assert RUN_STATUSES == tuple(RunStatus) and RunStatus.QUEUED == "queued"
    assert LIVE_STATUSES == ("queued", "running")
    row = {"provider": "shopify", "name": "x", "settings": {}, "status_reason": "",
           "created_at": text("CURRENT_TIMESTAMP")}
    with db.engine.begin() as conn:
        conn.execute(Integration.__table__.insert().values(status="connected", **row))
    with pytest.raises(IntegrityError):  # the database keeps the column to the members
        with db.engine.begin() as conn:
            conn.execute(Integration.__table__.insert().values(status="sleeping", **row))
