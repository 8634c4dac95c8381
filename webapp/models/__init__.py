"""Typed models, one module per area, re-exported here."""

from .lists import Contact, ContactList, CustomField, Cycle
from .users import LoginFailure, User
from .workspace import Heartbeat, Suppression, WorkspaceSettings

__all__ = [
    "Contact",
    "ContactList",
    "CustomField",
    "Cycle",
    "Heartbeat",
    "LoginFailure",
    "Suppression",
    "User",
    "WorkspaceSettings",
]
