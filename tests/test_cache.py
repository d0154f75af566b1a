"""The byte- and entry-bounded cache behind the question and reader caches."""

import numpy as np

from qa.cache import ENTRY_OVERHEAD, ArrayCache


def test_entries_bound_evicts_the_least_recently_used():
    cache = ArrayCache(max_entries=2, max_bytes=10**6)
    for name in "abc":
        if name == "c":
            assert cache.get(("fp32", "a")) is not None  # "a" is used again, so "b" is the oldest
        cache.put(("fp32", name), np.zeros(4, np.float32))
    assert len(cache) == 2
    assert cache.get(("fp32", "b")) is None and cache.get(("fp32", "a")) is not None


def test_bytes_bound_counts_array_key_and_overhead():
    entry = 1000 * 4 + len("fp32") + len("q0") + ENTRY_OVERHEAD  # the key's texts count
    cache = ArrayCache(max_entries=100, max_bytes=3 * entry)
    for i in range(10):
        cache.put(("fp32", f"q{i}"), np.zeros(1000, np.float32))
    assert len(cache) == 3 and cache.bytes == 3 * entry <= cache.max_bytes
    assert cache.get(("fp32", "q9")) is not None and cache.get(("fp32", "q0")) is None


def test_an_entry_over_the_whole_budget_is_not_kept_and_zero_entries_keeps_nothing():
    cache = ArrayCache(max_entries=10, max_bytes=100)
    cache.put(("fp32", "big"), np.zeros(1000, np.float32))
    assert len(cache) == 0
    off = ArrayCache(max_entries=0, max_bytes=10**6)
    off.put(("fp32", "q"), np.zeros(4, np.float32))
    assert off.get(("fp32", "q")) is None
