"""The run's memory of emails already met, as 64-bit hashes in 8 bytes each.

A Python set of 100,000 ints costs about 9 MB; this keeps a sorted array('q') plus a small
set of recent hashes, merged into the array when it fills, so a 100,000-contact run holds
under 1 MB and the lookups stay a binary search.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable
from itertools import chain

PENDING_LIMIT = 8192


class SeenHashes:
    """An exact set of signed 64-bit hashes with `in`, `update` and `len`."""

    __slots__ = ("_sorted", "_pending")

    def __init__(self, hashes: Iterable[int] = ()):
        self._sorted = array("q")
        self._pending: set[int] = set()
        self.update(hashes)

    def __contains__(self, value: int) -> bool:
        if value in self._pending:
            return True
        index = bisect_left(self._sorted, value)
        return index < len(self._sorted) and self._sorted[index] == value

    def __len__(self) -> int:
        return len(self._sorted) + len(self._pending)

    def update(self, hashes: Iterable[int]) -> None:
        for value in hashes:
            if value not in self:
                self._pending.add(value)
        if len(self._pending) >= PENDING_LIMIT:
            self._merge()

    def _merge(self) -> None:
        # Two sorted runs: timsort merges them in linear time.
        self._sorted = array("q", sorted(chain(self._sorted, self._pending)))
        self._pending = set()
