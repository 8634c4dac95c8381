"""The run's compact duplicate memory behaves as an exact set."""

from __future__ import annotations

import random

from webapp.imports import seen as seen_module
from webapp.imports.seen import SeenHashes


def test_seen_hashes_is_an_exact_set_across_merges(monkeypatch):
    monkeypatch.setattr(seen_module, "PENDING_LIMIT", 64)  # force many merges
    rng = random.Random(5)
    values = [rng.getrandbits(64) - 2**63 for _ in range(3000)]
    reference: set[int] = set()
    seen = SeenHashes()
    for start in range(0, len(values), 250):
        chunk = values[start:start + 250] + values[:10]  # repeats across pages
        seen.update(chunk)
        reference.update(chunk)
        assert len(seen) == len(reference)
    assert all(v in seen for v in values)
    assert all(v not in seen for v in (rng.getrandbits(64) - 2**63 for _ in range(3000))
               if v not in reference)
    assert -(2**63) not in seen and 2**63 - 1 not in seen
    seen.update([-(2**63), 2**63 - 1])
    assert -(2**63) in seen and 2**63 - 1 in seen


def test_the_settled_flag_is_kept_per_key_and_only_set(monkeypatch):
    from webapp.imports.rules import email_hash
    from webapp.imports.seen import SETTLED

    monkeypatch.setattr(seen_module, "PENDING_LIMIT", 4)
    keys = [email_hash(f"p{i}@example.com") for i in range(50)]
    assert all(k & SETTLED == 0 for k in keys)
    seen = SeenHashes(keys[:20])  # merged into the sorted array
    seen.update([k | SETTLED for k in keys[::3]] + keys[20:])
    seen.update(keys[::3])  # a later plain value never clears the flag
    assert len(seen) == 50
    for i, key in enumerate(keys):
        assert seen.flag(key) == (SETTLED if i % 3 == 0 else 0)
        assert key in seen and key | SETTLED in seen
    assert seen.flag(email_hash("other@example.com")) is None
