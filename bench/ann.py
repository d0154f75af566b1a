"""ANN at scale: FAISS index types on a synthetic set clustered like real embeddings.

Vectors are drawn around 2,000 random centres (spread 0.6) and L2-normalised, so nearest neighbours are
clustered as with sentence embeddings, not uniform noise; the 200 queries are drawn the same way and
held out from the set. Ground truth is exact inner-product search (Flat). Reported per index type: build
seconds, search p50 (one query at a time, as `ask` does), recall@10 against exact, and bytes per vector.
"""

import json
import sys
import time

import numpy as np

from _common import p50

INDEX_TYPES = {
    # name: (factory string, search-time parameters); "store" = built and tuned as qa.build builds it
    "Flat": ("Flat", {}),
    "store default (IVF,Flat)": ("store", {}),
    "IVF1024,SQ8": ("IVF1024,SQ8", {"nprobe": 16}),
    "HNSW32,Flat": ("HNSW32,Flat", {"efSearch": 256}),
}


def _store_index(data: np.ndarray):
    """The index `qa.build` builds above its threshold: IVF<sqrt(n)>,Flat fed in batches of 512 through
    IndexFeeder (trained on the first 40 vectors per list), with its search-time nprobe."""
    from qa.vectors import IndexFeeder, choose_factory, new_index, tune_for_search

    factory = choose_factory(len(data), None, ann_threshold=0)
    feeder = IndexFeeder(new_index(factory, data.shape[1]))
    for start in range(0, len(data), 512):
        feeder.add(data[start : start + 512], np.arange(start, min(start + 512, len(data)), dtype=np.int64))
    index = feeder.finish()
    tune_for_search(index)
    return index, factory


def clustered(n: int, d: int, seed: int, centres: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 100_000):  # in blocks: bounded temporary memory
        m = min(100_000, n - start)
        block = centres[rng.integers(0, len(centres), m)] + 0.6 * rng.standard_normal((m, d), dtype=np.float32)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def measure(n: int = 1_000_000, d: int = 384, queries: int = 200, types=None, hnsw_n: int | None = None) -> dict:
    import faiss

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((2000, d), dtype=np.float32)
    base = clustered(n, d, 1, centres)
    qs = clustered(queries, d, 2, centres)
    exact = faiss.IndexFlatIP(d)
    exact.add(base)
    _, truth = exact.search(qs, 10)
    results = {}
    for name in types or INDEX_TYPES:
        factory, params = INDEX_TYPES[name]
        size = n if not (name.startswith("HNSW") and hnsw_n) else hnsw_n
        data = base[:size]
        gt = truth if size == n else faiss.IndexFlatIP(d)
        if size != n:
            gt.add(data)
            _, gt = gt.search(qs, 10)
        t0 = time.perf_counter()
        if name == "Flat":
            index = exact
        elif factory == "store":
            index, factory = _store_index(data)
            params = {"nprobe": faiss.downcast_index(index.index).nprobe}
        else:
            index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
            if not index.is_trained:
                index.train(data[rng.choice(size, min(size, 40_000), replace=False)])
            index.add(data)
            space = faiss.ParameterSpace()
            for key, value in params.items():
                space.set_index_parameter(index, key, value)
        build_s = time.perf_counter() - t0
        times, found = [], []
        for q in qs[:50] if name == "Flat" else qs:  # exact search of 1M takes ~0.1 s a query
            t0 = time.perf_counter()
            _, ids = index.search(q.reshape(1, -1), 10)
            times.append(time.perf_counter() - t0)
            found.append(ids[0])
        recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, gt[: len(found)])]))
        results[name] = {"passages": size, "build_s": round(build_s, 1), "search_p50_ms": round(p50(times) * 1000, 3),
                         "recall_at_10": round(recall, 4),
                         "bytes_per_vector": round(len(faiss.serialize_index(index)) / size, 1), "params": params,
                         "factory": factory}
        if index is not exact:
            del index
    return results


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    smoke = "--smoke" in sys.argv  # a few thousand vectors: the script still runs
    out = measure(n=5_000, queries=20) if smoke else measure(n=20_000 if quick else 1_000_000)
    for name, r in out.items():
        print(f"{name:14} n={r['passages']:>9,} build {r['build_s']:>6.1f}s  p50 {r['search_p50_ms']:>7.3f} ms  "
              f"recall@10 {r['recall_at_10']:.3f}  {r['bytes_per_vector']:>7.1f} B/vector")
    if "--json" in sys.argv:
        print(json.dumps(out))
