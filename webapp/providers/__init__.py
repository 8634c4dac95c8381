"""Provider registry: an explicit dict, filled without import-time side effects."""

from __future__ import annotations

import importlib

# registry key -> "module:Class"; modules are imported on first use.
_PATHS = {
    "shopify": "webapp.providers.shopify:Shopify",
    "zoho": "webapp.providers.zoho:Zoho",
    "magento": "webapp.providers.magento:Magento",
    "salesforce": "webapp.providers.salesforce:Salesforce",
}

PROVIDER_NAMES = tuple(_PATHS)


def get_provider_class(name: str):
    """The provider class registered as `name` (KeyError for unknown names)."""
    module, _, cls = _PATHS[name].partition(":")
    return getattr(importlib.import_module(module), cls)
