"""Each client names its account as the provider does (shop, org, store), against the
simulators' name endpoints, and falls back quietly where the API refuses (issue 9 item 16)."""

from __future__ import annotations

import pytest

from simulators.dataset import generate
from tests.providers.cases.magento import Case as MagentoCase
from tests.providers.cases.salesforce import Case as SalesforceCase
from tests.providers.cases.shopify import Case as ShopifyCase
from tests.providers.cases.zoho import Case as ZohoCase


@pytest.fixture
def started():
    cases = []

    def start(cls, **options):
        case = cls(generate(3, seed=5), **options)
        case.start()
        cases.append(case)
        return case

    yield start
    for case in cases:
        case.stop()


def test_shopify_names_the_shop_from_shop_json(started):
    case = started(ShopifyCase, shop_name="Acme Outdoor Gear")
    assert case.provider().account_name() == "Acme Outdoor Gear"


def test_shopify_shop_without_a_name_gives_none(started):
    case = started(ShopifyCase, shop_name="  ")
    assert case.provider().account_name() is None


def test_zoho_names_the_org_by_company_name(started):
    case = started(ZohoCase, org_name="Zylker Traders")
    assert case.provider().account_name() == "Zylker Traders"
    assert any(entry["path"] == "/crm/v8/org" for entry in case.state.log)


def test_zoho_grant_without_the_org_scope_gives_none(started):
    case = started(ZohoCase)
    narrow = tuple(s for s in case.state.refresh_tokens[case.credentials["refresh_token"]]
                   ["scopes"] if s != "ZohoCRM.org.READ")
    creds = case.state.issue_tokens(narrow)
    client = case.provider(credentials=creds)
    assert client.account_name() is None  # 401 OAUTH_SCOPE_MISMATCH, not an auth failure
    assert case.state.refresh_requests == 0  # the scope refusal costs no token refresh


def test_zoho_org_without_a_company_name_gives_none(started):
    case = started(ZohoCase, org_name=None)
    assert case.provider().account_name() is None


def test_magento_names_the_main_store(started):
    case = started(MagentoCase, store_name="Luma Outdoor Store")
    assert case.provider().account_name() == "Luma Outdoor Store"


def test_magento_store_code_names_the_store_and_its_view(started):
    case = started(MagentoCase, store_name="Luma Outdoor Store")
    assert case.provider(store_code="de").account_name() == "EU Store · Deutsch"
    assert "de" in case.state.store_codes_seen


def test_magento_integration_without_store_access_gives_none(started):
    case = started(MagentoCase, store_access=False)
    client = case.provider()
    client.test_connection()  # customers still readable
    assert client.account_name() is None


def test_salesforce_names_the_org(started):
    case = started(SalesforceCase, org_name="Acme Corporation")
    assert case.provider().account_name() == "Acme Corporation"


def test_salesforce_user_who_may_not_read_organization_gives_none(started):
    case = started(SalesforceCase, organization_readable=False)
    assert case.provider().account_name() is None
