"""The run's memory of emails already met, as 64-bit values in 8 bytes each.

A Python set of 100,000 ints costs about 9 MB; this keeps a sorted array('q') plus a small
dict of recent values, merged into the array when it fills, so a 100,000-contact run holds
under 1 MB and the lookups stay a binary search.

Each value is an email's hash with its lowest bit used as a flag: SETTLED (1) once the
run has applied an opt-out for that email, so a later opt-out duplicate still gets through
until then (an opt-out in any record wins) and is refused afterwards.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable

PENDING_LIMIT = 8192
SETTLED = 1
KEY_MASK = ~SETTLED


class SeenHashes:
    """An exact set of 63-bit keys (a value with its low bit cleared), each with a flag
    bit that only ever goes from 0 to 1: `in`, `flag`, `update` and `len`."""

    __slots__ = ("_sorted", "_pending")

    def __init__(self, hashes: Iterable[int] = ()):
        self._sorted = array("q")
        self._pending: dict[int, int] = {}  # key -> flag
        self.update(hashes)

    def _index(self, key: int) -> int | None:
        index = bisect_left(self._sorted, key)
        if index < len(self._sorted) and self._sorted[index] & KEY_MASK == key:
            return index
        return None

    def flag(self, value: int) -> int | None:
        """The flag stored for `value`'s key (0 or SETTLED), None when never met."""
        key = value & KEY_MASK
        if key in self._pending:
            return self._pending[key]
        index = self._index(key)
        return None if index is None else self._sorted[index] & SETTLED

    def __contains__(self, value: int) -> bool:
        return self.flag(value) is not None

    def __len__(self) -> int:
        return len(self._sorted) + len(self._pending)

    def update(self, hashes: Iterable[int]) -> None:
        """Add values; a value whose key is known already only sets its flag (OR)."""
        pending = self._pending
        for value in hashes:
            key, bit = value & KEY_MASK, value & SETTLED
            if key in pending:
                pending[key] |= bit
                continue
            index = self._index(key)
            if index is None:
                pending[key] = bit
            elif bit:
                self._sorted[index] |= bit  # same key, so the order is kept
        if len(pending) >= PENDING_LIMIT:
            self._merge()

    def _merge(self) -> None:
        """Insert the pending values into the sorted array by slices: the new array is
        built from C-level copies, never as a list of Python ints (36 bytes per value, 36 MB
        at a million emails, where the arrays take 8 bytes each)."""
        old = self._sorted
        merged = array("q")
        start = 0
        for value in sorted(key | bit for key, bit in self._pending.items()):
            at = bisect_left(old, value, start)
            merged.extend(old[start:at])
            merged.append(value)
            start = at
        merged.extend(old[start:])
        self._sorted = merged
        self._pending = {}
