"""Typed models, one module per area, re-exported here."""

from importlib import import_module

from .lists import Contact, ContactList, CustomField, Cycle
from .users import LoginThrottle, User, UserSession
from .workspace import Heartbeat, Suppression, WorkspaceSettings

__all__ = [
    "Contact",
    "ContactList",
    "CustomField",
    "Cycle",
    "Heartbeat",
    "LoginThrottle",
    "Suppression",
    "User",
    "UserSession",
    "WorkspaceSettings",
]

# Integrations and the import engine.
from .imports import (  # noqa: E402
    ConsentEvent,
    ImportRun,
    ImportRunSeen,
    OverageEntry,
    RecurringImport,
    RejectedRow,
    WorkspaceNotice,
)
from .integrations import Integration  # noqa: E402

__all__ += [
    "ConsentEvent",
    "ImportRun",
    "ImportRunSeen",
    "Integration",
    "OverageEntry",
    "RecurringImport",
    "RejectedRow",
    "WorkspaceNotice",
]

# OAuth app credentials per provider.
from .oauth_apps import OAuthApp  # noqa: E402

__all__ += ["OAuthApp"]

# Undo of an import run: the journal and the undo runs.
from .undo import ImportUndo, JournalEntry  # noqa: E402

__all__ += ["ImportUndo", "JournalEntry"]

# Plugin imports, e-commerce and privacy requests are loaded on first use: a worker that
# runs imports never maps them (about 2.5 MB less in every work horse). create_app loads
# them all for the web app, the CLI and the tests (load_all).
_LAZY = {
    "plugins": ("PluginEvent", "PluginKey", "PluginSource", "VisitorIdentity"),
    "commerce": ("Automation", "AutomationEntry", "Cart", "CartLine", "Order", "OrderLine",
                 "OrderRefund", "PageVisit", "Product", "ProductPair", "ProductVariant",
                 "Segment", "Shop", "WorkspaceApiKey"),
    "privacy": ("PrivacyRequest",),
    "history": ("OrderHistoryRun",),  # order history imports of plugin sources
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}
__all__ += list(_MODULE_OF)


def __getattr__(name: str):
    """`from webapp.models import Order` imports the commerce models on first use."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)


def load_all() -> None:
    """Map every model now (web app, CLI, migrations and tests need all the tables)."""
    for module in _LAZY:
        import_module(f"{__name__}.{module}")
