"""Blueprint registration: one module per area, each defining its own `bp`."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from . import (
        auth,
        contacts,
        cycles,
        dashboard,
        fields,
        integrations,
        lists,
        settings,
        status,
        suppression,
    )

    for module in (auth, dashboard, lists, contacts, cycles, fields, suppression, integrations,
                   settings, status):
        app.register_blueprint(module.bp)
