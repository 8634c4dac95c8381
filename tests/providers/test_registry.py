"""Adding a provider is one package plus its connect template, simulator and contract case
(docs/providers/adding-a-provider.md): this walks the registry and checks each one."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from tests.providers.cases import CASE_NAMES, SimulatorCase
from webapp.providers import PROVIDER_NAMES, get_provider_class, label_of
from webapp.providers.base import Provider

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ("host_policy", "sign_in_origins", "settings_from_form", "identity", "display_name",
         "authorize", "complete", "test_connection", "account_name", "groups", "sources",
         "discover_fields", "iter_pages", "count_records")
METADATA = ("label", "account_word", "consent_words", "field_words")


def test_the_base_declares_every_hook_abstract_and_documented():
    assert set(HOOKS) <= Provider.__abstractmethods__
    for hook in HOOKS:
        doc = inspect.getdoc(getattr(Provider, hook)) or ""
        assert doc and len(doc.splitlines()) <= 4, hook


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_provider_implements_every_hook(name):
    cls = get_provider_class(name)
    assert issubclass(cls, Provider) and not inspect.isabstract(cls)
    assert cls.name == name
    for hook in HOOKS:  # defined below the base, and documented there
        owner = next(k for k in cls.__mro__ if hook in vars(k))
        assert owner is not Provider and inspect.getdoc(getattr(cls, hook)), hook
    for attr in METADATA:
        assert isinstance(getattr(cls, attr), str) and getattr(cls, attr), attr
    assert cls.group_words and cls.connect_kinds and cls.connect_kinds <= {"form", "oauth"}
    assert label_of(name) == cls.label
    if "oauth" in cls.connect_kinds:
        assert cls.sign_in_origins()


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_provider_is_one_package_of_small_modules(name):
    package = ROOT / "webapp" / "providers" / name
    for module in ("__init__.py", "client.py", "oauth.py", "schema.py"):
        assert (package / module).is_file(), module
    for path in package.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path.name


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_provider_has_template_simulator_and_contract_case(name):
    assert (ROOT / "webapp" / "templates" / "integrations" / "connect" / f"_{name}.html").is_file()
    simulator = importlib.import_module(f"simulators.{name}")
    assert callable(getattr(simulator, "create_app", None))
    assert name in CASE_NAMES
    case = importlib.import_module(f"tests.providers.cases.{name}").Case
    assert issubclass(case, SimulatorCase) and case.name == name


def test_no_provider_branches_outside_the_providers():
    """Services, views and templates stay generic: no `provider == "…"` outside providers/."""
    hits = []
    for path in (ROOT / "webapp").rglob("*"):
        if path.suffix not in (".py", ".html") or "providers" in path.relative_to(ROOT).parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "provider ==" in line or "provider_name ==" in line:
                hits.append(f"{path.relative_to(ROOT)}:{number}")
    assert hits == []
