"""Caches bounded in entries and in bytes, for a server that runs for days.

`ArrayCache` is an LRU map from a (precision, text) key to a numpy array, shared by threads. cachetools'
`LRUCache` does the LRU bookkeeping with each entry weighed in bytes (the array's `nbytes` plus its key's
text, UTF-8, plus a fixed per-entry overhead); the entry count is capped on top of that. An entry heavier
than the whole byte budget is not kept (cachetools refuses it; the caller still gets its value).
A cache with `max_entries` 0 keeps nothing.
"""

from __future__ import annotations

import threading
from typing import Hashable

import cachetools
import numpy as np

ENTRY_OVERHEAD = 200  # bytes: the dict slot, the key tuple and the array header, measured with tracemalloc


class ArrayCache:
    def __init__(self, max_entries: int, max_bytes: int):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        # cachetools weighs values only; the value stored is (key_bytes, array) so the key's text counts too
        self._lru: cachetools.LRUCache = cachetools.LRUCache(maxsize=max(1, max_bytes),
                                                            getsizeof=lambda v: v[0] + v[1].nbytes + ENTRY_OVERHEAD)
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> np.ndarray | None:
        if self.max_entries <= 0:
            return None
        with self._lock:
            hit = self._lru.get(key)  # a hit moves the entry to the recent end
        return None if hit is None else hit[1]

    def put(self, key: tuple, value: np.ndarray) -> None:
        if self.max_entries <= 0:
            return
        key_bytes = sum(len(part.encode("utf-8")) for part in key if isinstance(part, str))
        with self._lock:
            try:
                self._lru[key] = (key_bytes, value)
            except ValueError:  # heavier than the whole budget
                return
            while len(self._lru) > self.max_entries:
                self._lru.popitem()

    def __len__(self) -> int:
        return len(self._lru)

    @property
    def bytes(self) -> int:
        """What the entries weigh now, as counted against `max_bytes`."""
        return int(self._lru.currsize)
