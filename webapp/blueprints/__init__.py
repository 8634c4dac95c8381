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
    from . import imports_setup  # set-up and mapping pages
    app.register_blueprint(imports_setup.bp)
    from . import recurring, runs  # per-list actions, import statistics
    app.register_blueprint(runs.bp)
    app.register_blueprint(recurring.bp)
    from . import team  # roles and the Team page
    app.register_blueprint(team.bp)
    from . import account  # the signed-in user's sessions and password
    app.register_blueprint(account.bp)
    from . import undo  # undo of an import run
    app.register_blueprint(undo.bp)
    from ..plugins import receivers, views  # plugin sources and receivers
    app.register_blueprint(receivers.bp)  # its routes build URLs; Receivers serves them
    receivers.install(app)
    app.register_blueprint(views.bp)
    from ..plugins import log_views  # the plugin event log and privacy actions
    app.register_blueprint(log_views.bp)
    from ..plugins import try_views  # the snippet's "try it" page
    app.register_blueprint(try_views.bp)
    from ..plugins import history_views  # a Shopify source's order history import
    app.register_blueprint(history_views.bp)
    from ..commerce import api as commerce_api  # the shop pages and JSON API
    from ..commerce import views as commerce_views
    app.register_blueprint(commerce_views.bp)
    app.register_blueprint(commerce_api.bp)
    from ..commerce import automation_views, segment_views  # segments, automations
    app.register_blueprint(segment_views.bp)
    app.register_blueprint(automation_views.bp)
