"""Typed models, one module per area, re-exported here."""

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

# Plugin imports: sources, keys, stored events, stitched visitor ids.
from .plugins import PluginEvent, PluginKey, PluginSource, VisitorIdentity  # noqa: E402

__all__ += ["PluginEvent", "PluginKey", "PluginSource", "VisitorIdentity"]

# E-commerce, segments and automations.
from .commerce import (  # noqa: E402
    Automation,
    AutomationEntry,
    Cart,
    CartLine,
    Order,
    OrderLine,
    OrderRefund,
    PageVisit,
    Product,
    ProductPair,
    ProductVariant,
    Segment,
    Shop,
    WorkspaceApiKey,
)

__all__ += [
    "Automation",
    "AutomationEntry",
    "Cart",
    "CartLine",
    "Order",
    "OrderLine",
    "OrderRefund",
    "PageVisit",
    "Product",
    "ProductPair",
    "ProductVariant",
    "Segment",
    "Shop",
    "WorkspaceApiKey",
]

# Undo of an import run: the journal and the undo runs.
from .undo import ImportUndo, JournalEntry  # noqa: E402

__all__ += ["ImportUndo", "JournalEntry"]

# Privacy requests: erasures (anonymised audit lines) and exports of one person.
from .privacy import PrivacyRequest  # noqa: E402

__all__ += ["PrivacyRequest"]

# Order history imports of plugin sources.
from .history import OrderHistoryRun  # noqa: E402

__all__ += ["OrderHistoryRun"]
