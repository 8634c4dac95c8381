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
    from . import imports_setup  # B1: set-up and mapping pages
    app.register_blueprint(imports_setup.bp)
    from . import recurring, runs  # B2: per-list actions, import statistics
    app.register_blueprint(runs.bp)
    app.register_blueprint(recurring.bp)
    from . import team  # issue 8: roles and the Team page
    app.register_blueprint(team.bp)
    from . import account  # the signed-in user's sessions and password
    app.register_blueprint(account.bp)
    from ..commerce import automation_views, segment_views  # issue 12: segments, automations
    app.register_blueprint(segment_views.bp)
    app.register_blueprint(automation_views.bp)
