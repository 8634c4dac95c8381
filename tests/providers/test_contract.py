"""The contract every provider passes against its simulator (PROVIDERS.md, issue 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from simulators.dataset import generate
from tests.providers.cases import CASE_NAMES, load_case
from webapp.providers.base import AuthError, Page

N = 450  # several pages for every provider at its page size


@pytest.fixture(params=CASE_NAMES)
def case(request):
    people = generate(N, seed=7)
    c = load_case(request.param)(people)
    c.start()
    yield c
    c.stop()


def walk(provider, case, **kw) -> list[Page]:
    return list(provider.iter_pages(case.group, case.source, **kw))


def ids_of(pages: list[Page]) -> list[str]:
    return [r.source_id for page in pages for r in page.records]


def test_full_walk_yields_every_record_once(case):
    pages = walk(case.provider(), case)
    ids = ids_of(pages)
    assert len(ids) == len(set(ids)), "a record came twice"
    assert set(ids) == case.expected_ids()
    assert len(pages) > 1
    assert pages[-1].done
    for page in pages:
        for r in page.records:
            assert r.updated_at is not None and r.updated_at.tzinfo is not None


def test_incremental_returns_exactly_the_changed_ones(case):
    first = walk(case.provider(), case)
    mark = first[-1].high_water
    assert mark is not None
    changed_at = mark + timedelta(days=3)
    changed = [5, 77, 300, 449]
    case.touch(changed, changed_at)
    again = walk(case.provider(), case, since=mark + timedelta(seconds=1))
    assert sorted(ids_of(again)) == sorted(case.source_id(i) for i in changed)
    assert again[-1].high_water == changed_at


def test_resume_from_mid_walk_cursor_neither_skips_nor_repeats(case):
    provider = case.provider()
    pages = walk(provider, case)
    middle = len(pages) // 2
    head = ids_of(pages[: middle + 1])
    resumed = walk(case.provider(), case, cursor=pages[middle].cursor)
    tail = ids_of(resumed)
    assert not set(head) & set(tail)
    assert sorted(head + tail) == sorted(ids_of(pages))


@pytest.mark.parametrize("status", [429, 503])
def test_injected_errors_are_survived(case, status):
    case.inject_errors(every=3, status=status)
    ids = ids_of(walk(case.provider(), case))
    assert sorted(ids) == sorted(case.expected_ids())


def test_expired_access_token_is_refreshed_once(case):
    provider = case.provider()
    if not case.supports_refresh:
        # Magento integration tokens have no refresh: a 401 is a reconnect, not a retry loop.
        pages = provider.iter_pages(case.group, case.source)
        next(pages)
        case.expire_access_token()
        with pytest.raises(AuthError):
            list(pages)
        assert case.token_requests() == 0
        return
    pages = provider.iter_pages(case.group, case.source)
    seen = ids_of([next(pages)])
    before = case.token_requests()
    case.expire_access_token()
    seen += ids_of(list(pages))
    assert case.token_requests() - before == 1
    assert sorted(seen) == sorted(case.expected_ids())
    assert case.saved_credentials, "refreshed credentials were not handed back"


def test_dead_refresh_token_raises_auth_error_without_retry_storm(case):
    provider = case.provider()
    before = case.token_requests()
    case.kill_refresh_token()
    with pytest.raises(AuthError) as info:
        walk(provider, case)
    assert case.token_requests() - before <= 1
    assert info.value.reason


def test_field_discovery_lists_custom_fields(case):
    fields = case.provider().discover_fields(case.group)
    names = {f.name for f in fields}
    assert case.custom_field_names <= names
    assert all(f.custom for f in fields if f.name in case.custom_field_names)
    assert any(not f.custom for f in fields)


def test_consent_is_normalised(case):
    records = {r.source_id: r for p in walk(case.provider(), case) for r in p.records}
    for person in case.people:
        rec = records.get(case.source_id(person.id))
        if rec is None:
            continue
        assert rec.consent == case.expected_consent(person), person.kind


def test_updated_at_is_aware_utc_comparable(case):
    pages = walk(case.provider(), case)
    stamps = [r.updated_at for p in pages for r in p.records]
    assert all(s.tzinfo is not None for s in stamps)
    assert max(stamps) <= datetime(2030, 1, 1, tzinfo=UTC)


def test_the_source_counts_what_the_walk_yields(case):
    """The fee forecast and the progress percentage rely on the source's own count."""
    counted = case.provider().count_records(case.group, case.source)
    assert counted is not None and counted.exact
    assert counted.total == len(case.expected_ids()) == len(ids_of(walk(case.provider(), case)))


def test_the_count_since_a_mark_is_the_changed_ones_or_unknown(case):
    mark = walk(case.provider(), case)[-1].high_water
    changed_at = mark + timedelta(days=3)
    case.touch([5, 77, 300], changed_at)
    counted = case.provider().count_records(case.group, case.source,
                                            since=mark + timedelta(seconds=1))
    assert counted is None or counted.total == 3


def test_every_group_and_source_is_counted_as_walked_or_not_at_all(case):
    provider = case.provider()
    counted_some = 0
    for group in provider.groups():
        for source in provider.sources(group.id):
            counted = provider.count_records(group.id, source.id)
            if counted is None:
                continue
            walked = sum(len(p.records) for p in provider.iter_pages(group.id, source.id))
            assert counted.total == walked, (group.id, source.id)
            counted_some += 1
    assert counted_some >= 1
