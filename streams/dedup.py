"""A bounded memory of recently seen question ids, so a repeated id is batched once.

This is the cheap first line; the worker's ownership rule in PostgreSQL (one row per
question_id, owned by the first batch) is the durable one that survives restarts.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class RecentIds:
    """Insertion-ordered set that forgets the oldest id beyond `capacity`."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[Hashable, None] = OrderedDict()

    def seen_before(self, key: Hashable) -> bool:
        """Record `key`; True when it was already there."""
        if key in self._ids:
            self._ids.move_to_end(key)
            return True
        self._ids[key] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._ids)
