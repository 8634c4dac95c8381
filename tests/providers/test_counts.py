"""The simulators' count endpoints answer like the real APIs, quirks included, and the
clients read every shape of answer they document (issue 9 item 6)."""

from __future__ import annotations

import pytest
from requests.structures import CaseInsensitiveDict

from simulators.salesforce import ApiError, parse_soql
from webapp.providers.base import SourceUnavailable
from webapp.providers.http import Response
from webapp.providers.zoho import Zoho


def test_soql_count_parses_with_filters_and_refuses_other_fields():
    query = parse_soql("SELECT COUNT() FROM Lead WHERE IsConverted = false AND "
                       "LeadSource = 'Web'")
    assert query.count and query.obj == "Lead" and query.select == []
    for bad in ("SELECT COUNT(), Id FROM Contact", "SELECT Id, COUNT() FROM Contact",
                "SELECT COUNT( FROM Contact"):
        with pytest.raises(ApiError) as info:
            parse_soql(bad)
        assert info.value.code in ("MALFORMED_QUERY", "INVALID_FIELD")
    assert not parse_soql("SELECT Id FROM Contact").count


class _Canned:
    """An HttpClient stand-in that answers every request with one JSON body."""

    def __init__(self, status: int, body: bytes):
        self.status, self.body = status, body

    def request(self, method, url, **kwargs):
        return Response(self.status, CaseInsensitiveDict({"Content-Type": "application/json"}),
                        self.body, url)


@pytest.mark.parametrize(("body", "total"), [(b'{"count": 42}', 42), (b'{"count": "7"}', 7)])
def test_zoho_reads_a_count_as_integer_or_digit_string(body, total):
    client = Zoho({"api_domain": "https://www.zohoapis.com"},
                  {"access_token": "t", "access_token_expires_at": 4102444800},
                  http=_Canned(200, body))
    assert client.count_records("Contacts", "all").total == total
    assert client.count_records("Contacts", "all", since=None).exact


def test_zoho_refuses_a_count_of_an_odd_shape():
    client = Zoho({"api_domain": "https://www.zohoapis.com"},
                  {"access_token": "t", "access_token_expires_at": 4102444800},
                  http=_Canned(200, b'{"count": -1}'))
    with pytest.raises(SourceUnavailable):
        client.count_records("Leads", "all")
