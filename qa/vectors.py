"""The FAISS side of an index: which index type, how an IVF index is trained as vectors arrive, and
the search-time settings FAISS does not save (HNSW's efSearch, IVF's nprobe)."""

from __future__ import annotations

import numpy as np

ANN_THRESHOLD = 200_000  # passages; below it exact search is fast enough (see bench/run.py)
HNSW_EF_SEARCH = 256  # recall@10 0.84 / 0.89 / 0.92 at 64 / 128 / 256 on 1M clustered vectors (bench/ann.py)
IVF_PROBE_SHARE = 64  # an IVF search visits at least 1/64 of its lists (and at least 8)...
IVF_MIN_SCAN = 16_384  # ...and at least this many vectors: ~2-3 ms here (1M: 16 of 1024 lists, recall@10 1.0)
IVF_TRAIN_PER_LIST = 40  # k-means training points per list (FAISS warns below 39)


def ivf_lists(passages: int) -> int:
    """IVF list count for n passages: the power of two nearest sqrt(n), at most 65536 and at most
    n / IVF_TRAIN_PER_LIST, so k-means has enough points per list.

    A search scans about n / IVF_PROBE_SHARE vectors whatever the list count, so more lists buy little
    here and cost k-means time: at 1M, 4096 lists took ~300 s to build on 2 cores, 1024 lists ~40 s,
    both at recall@10 1.0 (bench/ann.py)."""
    import math

    lists = 2 ** round(math.log2(math.sqrt(max(passages, 1))))
    return int(max(1, min(65536, lists, passages // IVF_TRAIN_PER_LIST)))


def choose_factory(passages: int, factory: str | None, ann_threshold: int) -> str:
    """The FAISS index_factory string: the configured one, else exact "Flat" below `ann_threshold`
    passages and an inverted file over exact vectors ("IVF<sqrt(n)>,Flat") at or above it."""
    if factory:
        return factory
    return "Flat" if passages < ann_threshold else f"IVF{ivf_lists(passages)},Flat"


def new_index(factory: str, dim: int):
    """An empty IndexIDMap2 over the factory's index, inner product. Only kinds that keep exact vectors
    (Flat, HNSW<M>,Flat, IVF<lists>,Flat) are accepted, so stored vectors can be reused on update and
    rescored exactly at query time; IVF indexes are trained by `IndexFeeder` as vectors arrive."""
    import faiss

    try:
        inner = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ValueError(f"'{factory}' is not a FAISS index_factory string FAISS can build") from exc
    if not isinstance(inner, (faiss.IndexFlat, faiss.IndexHNSWFlat, faiss.IndexIVFFlat)):
        raise ValueError(f"index factory '{factory}' must keep exact vectors (Flat, HNSW32,Flat or "
                         "IVF1024,Flat); compressed kinds (PQ, SQ) cannot give back the stored vectors")
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efConstruction = 40
    if isinstance(inner, faiss.IndexIVF):
        inner.make_direct_map()  # reconstruct() by position, for rescoring and reuse on update
    return faiss.IndexIDMap2(inner)


class IndexFeeder:
    """Adds vectors to a new index batch by batch. An index that needs training (IVF) holds back the
    first vectors until it has enough k-means training points (IVF_TRAIN_PER_LIST per list), trains,
    then adds them; memory beyond the index is bounded by that sample."""

    def __init__(self, index):
        import faiss

        self.index = index
        inner = faiss.downcast_index(index.index)
        self.train_size = inner.nlist * IVF_TRAIN_PER_LIST if isinstance(inner, faiss.IndexIVF) else 0
        self._held: list[tuple[np.ndarray, np.ndarray]] = []
        self._held_count = 0

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        if self.index.is_trained:
            self.index.add_with_ids(vectors, ids)
            return
        self._held.append((np.ascontiguousarray(vectors, dtype=np.float32), ids))
        self._held_count += len(ids)
        if self._held_count >= self.train_size:
            self._train_and_flush()

    def finish(self):
        if not self.index.is_trained:
            self._train_and_flush()
        return self.index

    def _train_and_flush(self) -> None:
        import faiss

        lists = faiss.downcast_index(self.index.index).nlist
        if self._held_count < lists:
            raise ValueError(f"an IVF index with {lists} lists needs at least {lists} passages to train; "
                             f"this corpus has {self._held_count}: use Flat (the default below the threshold)")
        sample = np.vstack([v for v, _ in self._held])
        self.index.train(sample)
        del sample
        for vectors, ids in self._held:
            self.index.add_with_ids(vectors, ids)
        self._held, self._held_count = [], 0


def tune_for_search(index) -> None:
    """Search-time settings that are not saved in the FAISS file (HNSW's efSearch, IVF's nprobe)."""
    import faiss

    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efSearch = HNSW_EF_SEARCH
    if isinstance(inner, faiss.IndexIVF):
        by_share = inner.nlist // IVF_PROBE_SHARE
        by_scan = -(-inner.nlist * IVF_MIN_SCAN // max(inner.ntotal, 1))  # ceil
        inner.nprobe = min(inner.nlist, max(8, by_share, by_scan))


def search_parameters(index, selector):
    """FAISS search parameters restricting a search to `selector`, of the kind the index needs (IVF
    rejects the generic kind) and carrying its tuned efSearch / nprobe (a fresh parameter object
    would otherwise reset them to FAISS's defaults)."""
    import faiss

    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    if isinstance(inner, faiss.IndexIVF):
        return faiss.SearchParametersIVF(sel=selector, nprobe=inner.nprobe)
    if isinstance(inner, faiss.IndexHNSW):
        return faiss.SearchParametersHNSW(sel=selector, efSearch=inner.hnsw.efSearch)
    return faiss.SearchParameters(sel=selector)
