"""Provider registry: an explicit dict, filled without import-time side effects.

Each provider is one package `webapp/providers/<name>/` (client, oauth, schema) whose class
derives from `base.Provider`; adding one is a line here (see docs/providers).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Provider

# registry key -> "module:Class"; modules are imported on first use.
_PATHS = {
    "shopify": "webapp.providers.shopify:Shopify",
    "zoho": "webapp.providers.zoho:Zoho",
    "magento": "webapp.providers.magento:Magento",
    "salesforce": "webapp.providers.salesforce:Salesforce",
}

PROVIDER_NAMES = tuple(_PATHS)


def get_provider_class(name: str) -> type[Provider]:
    """The provider class registered as `name` (KeyError for unknown names)."""
    module, _, cls = _PATHS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def find_provider(name: str) -> type[Provider] | None:
    """The provider class registered as `name`, None for unknown names."""
    return get_provider_class(name) if name in _PATHS else None


def provider_classes() -> list[type[Provider]]:
    """Every registered provider class, in registry order."""
    return [get_provider_class(name) for name in PROVIDER_NAMES]


def label_of(name: str) -> str:
    """How pages name the provider registered as `name` (the name itself when unknown)."""
    cls = find_provider(name)
    return cls.label if cls else name
