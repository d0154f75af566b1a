"""Retriever: dense (FAISS inner product) and lexical (BM25) lists, fused.

Fusion is a convex combination of normalised scores by default (it measured better than reciprocal
rank fusion on evals/escape-dev); RRF remains available (`fusion="rrf"`).

Filters (film, outlet, review ids) restrict both lists before ranking. A per-review cap re-ranks the
fused list so one review cannot fill the top k while other reviews have candidates. Each hit's
highlight is its best-matching sentence, scored against the sentence vectors stored at build time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .chat import searched_text
from .records import Hit, Review
from .store import Store
from .vectors import search_parameters

MODES = ("dense", "bm25", "hybrid", "ranked")  # ranked: the hybrid candidates re-ranked by qa/rank.py
FUSIONS = ("convex", "rrf")


def score_key(mode: str) -> str:
    """The score a hit shows: a single-list mode shows that list's own score, hybrid the fused one."""
    return {"dense": "dense", "bm25": "bm25", "ranked": "ranked"}.get(mode, "fused")
MIN_HIGHLIGHT_WORDS = 5


@dataclass(frozen=True)
class RetrievalSettings:
    mode: str = "ranked"  # beat hybrid on the SubjQA dev sets (p < 0.05) without losing on evals/escape
    k: int = 5
    depth: int = 50  # candidates taken from each list before fusion
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    per_review_cap: int | None = 2  # None switches diversity off: the ranking is pure fusion
    fusion: str = "convex"  # "convex" (normalised scores; measured better on evals/escape-dev) or "rrf"
    alpha: float = 0.6  # convex fusion: weight of the dense score, chosen on evals/escape-dev

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"retriever must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.k < 1:
            raise ValueError("k must be at least 1")
        if self.fusion not in FUSIONS:  # a typo must not silently switch the fusion
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, not {self.fusion!r}")


@dataclass(frozen=True)
class Filters:
    film: str | None = None
    outlet: str | None = None
    review_ids: tuple[str, ...] | None = None
    metadata: dict = field(default_factory=dict)  # {field: value} matched against review metadata/source

    def active(self) -> bool:
        return bool(self.film or self.outlet or self.review_ids or self.metadata)


@dataclass(frozen=True)
class Query:
    """What is searched: a dense vector and a lexical text (both may carry folded-in history)."""

    text: str
    vector: np.ndarray
    lexical_text: str

    @property
    def folded(self) -> bool:
        """True for a follow-up whose history was folded in."""
        return self.lexical_text != self.text


def rrf(rankings: list[list[int]], k: int = 60, weights: list[float] | None = None) -> dict[int, float]:
    """Reciprocal rank fusion: score(d) = sum over lists l of w_l / (k + rank_l(d)), ranks from 1.

    A document missing from a list gets nothing from it. Equal weights give Cormack et al.'s RRF.
    """
    weights = weights or [1.0] * len(rankings)
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, doc in enumerate(ranking, 1):
            scores[doc] = scores.get(doc, 0.0) + weight / (k + rank)
    return scores


def convex(candidates: list[int], dense: dict[int, float], bm25: dict[int, float], alpha: float) -> dict[int, float]:
    """score(d) = alpha * (dense(d) - min dense) / (max dense - min dense) + (1 - alpha) * bm25(d) / max bm25,
    over the candidates; a list with no spread (or no BM25 match at all) contributes 0."""
    d_values = [dense[i] for i in candidates]
    lo, hi = (min(d_values), max(d_values)) if d_values else (0.0, 0.0)
    b_max = max((bm25[i] for i in candidates), default=0.0)
    out = {}
    for i in candidates:
        d = (dense[i] - lo) / (hi - lo) if hi > lo else 0.0
        b = bm25[i] / b_max if b_max > 0 else 0.0
        out[i] = alpha * d + (1 - alpha) * b
    return out


def cap_per_review(ranked: list[int], review_of: list[str], cap: int | None, k: int) -> list[int]:
    """The first k of `ranked`, taking at most `cap` per review; if that leaves fewer than k, the
    skipped candidates fill the rest in their original order. cap=None returns ranked[:k]."""
    if cap is None:
        return ranked[:k]
    taken: list[int] = []
    skipped: list[int] = []
    per_review: dict[str, int] = {}
    for doc in ranked:
        if len(taken) == k:
            break
        review = review_of[doc]
        if per_review.get(review, 0) < cap:
            per_review[review] = per_review.get(review, 0) + 1
            taken.append(doc)
        else:
            skipped.append(doc)
    return taken + skipped[: k - len(taken)]


class ReviewIndex:
    """Which reviews and passages a filter lets through, from arrays built once per store, so the cost
    of a filtered question grows with what it lets through, not with the corpus.

    Reviews are numbered 0..R-1 in store order; `passages_of` is a CSR layout of each review's passage
    positions. A field's values (film, outlet, or any metadata/source field a filter names) are indexed
    on the first filter that uses the field: casefolded str(value) -> review numbers."""

    def __init__(self, store: Store):
        self.store = store
        self.review_ids = list(store.reviews)
        number = {rid: n for n, rid in enumerate(self.review_ids)}
        self.review_of = np.fromiter((number[p.review_id] for p in store.passages), dtype=np.int64,
                                     count=len(store.passages))
        self.order = np.argsort(self.review_of, kind="stable")  # passage positions grouped by review
        self.starts = np.searchsorted(self.review_of[self.order], np.arange(len(self.review_ids) + 1))
        self.number = number
        self._fields: dict[str, dict[str, np.ndarray]] = {}

    def _value(self, review: Review, field_name: str):
        if field_name == "film":
            return review.film
        if field_name == "outlet":
            return review.source.outlet
        return review.metadata.get(field_name, getattr(review.source, field_name, None))

    def _field(self, field_name: str) -> dict[str, np.ndarray]:
        if field_name not in self._fields:
            groups: dict[str, list[int]] = {}
            for n, rid in enumerate(self.review_ids):
                value = self._value(self.store.reviews[rid], field_name)
                if value is not None:
                    groups.setdefault(str(value).casefold(), []).append(n)
            self._fields[field_name] = {v: np.asarray(ns, dtype=np.int64) for v, ns in groups.items()}
        return self._fields[field_name]

    def reviews(self, filters: Filters) -> np.ndarray | None:
        """Sorted numbers of the reviews the filters let through; None when nothing is filtered."""
        if not filters.active():
            return None
        wanted = {"film": filters.film, "outlet": filters.outlet, **(filters.metadata or {})}
        if filters.film and "film" in (filters.metadata or {}):  # both name a film: both must hold
            wanted["film"] = filters.film
            if str(filters.metadata["film"]).casefold() != str(filters.film).casefold():
                return np.zeros(0, dtype=np.int64)
        keep: np.ndarray | None = None
        for field_name, value in wanted.items():
            if value is None or value == "":
                continue
            hit = self._field(field_name).get(str(value).casefold(), np.zeros(0, dtype=np.int64))
            keep = hit if keep is None else np.intersect1d(keep, hit, assume_unique=True)
        if filters.review_ids:
            ids = np.asarray(sorted({self.number[r] for r in filters.review_ids if r in self.number}), dtype=np.int64)
            keep = ids if keep is None else np.intersect1d(keep, ids, assume_unique=True)
        return keep if keep is not None else np.arange(len(self.review_ids), dtype=np.int64)

    def passages(self, reviews: np.ndarray) -> np.ndarray:
        """Sorted positions of the given reviews' passages."""
        if len(reviews) == 0:
            return np.zeros(0, dtype=np.int64)
        counts = self.starts[reviews + 1] - self.starts[reviews]
        first_at = np.concatenate([[0], np.cumsum(counts)[:-1]])
        slots = np.arange(counts.sum()) - np.repeat(first_at - self.starts[reviews], counts)
        return np.sort(self.order[slots])


class Retriever:
    """Searches one Store. Stateless between calls, so one instance serves every user."""

    def __init__(self, store: Store, embedder, ranker=None):
        self.store = store
        self.embedder = embedder
        self._review_of = [p.review_id for p in store.passages]
        self._ranker = ranker  # loaded on first use of mode "ranked"
        self.terms: dict = {}  # passage -> its and its sentences' content terms (decide.passage_terms), shared
        self._index: ReviewIndex | None = None  # built on first use

    @property
    def ranker(self):
        if self._ranker is None:
            from .rank import check_index, load_ranker

            ranker = load_ranker()
            check_index(ranker, self.store.manifest)
            self._ranker = ranker
        return self._ranker

    @property
    def index(self) -> ReviewIndex:
        if self._index is None:
            self._index = ReviewIndex(self.store)
        return self._index

    def reviews_in_scope(self, filters: Filters) -> list[str] | int:
        """The ids of the reviews the filters let through, or, when nothing is filtered, their number
        (listing every review of a large corpus per question is what this avoids)."""
        numbers = self.index.reviews(filters)
        if numbers is None:
            return len(self.index.review_ids)
        return [self.index.review_ids[n] for n in numbers]

    def scope(self, filters: Filters) -> np.ndarray | None:
        """Sorted positions of the passages the filters let through; None when nothing is filtered."""
        numbers = self.index.reviews(filters)
        return None if numbers is None else self.index.passages(numbers)

    def query(self, text: str, history_text: str | None = None, history_weight: float = 0.35) -> Query:
        """Embed the question; a follow-up's vector is blended with its history's vector."""
        vector = self.embedder.encode_query(text)
        if history_text:
            blended = (1 - history_weight) * vector + history_weight * self.embedder.encode_query(history_text)
            vector = (blended / np.linalg.norm(blended)).astype(np.float32)
        return Query(text, vector, searched_text(text, history_text))

    def _dense(self, vector: np.ndarray, depth: int, scope: np.ndarray | None) -> tuple[list[int], np.ndarray]:
        import faiss

        n = len(self.store.passages)
        if n == 0:
            return [], np.zeros(0, dtype=np.float32)
        params = None
        if scope is not None:
            if len(scope) == 0:
                return [], np.zeros(0, dtype=np.float32)
            if len(scope) <= depth:  # every passage in scope is a candidate: score them directly
                scores = self.dense_scores(scope.tolist(), vector)
                best = np.argsort(-scores, kind="stable")
                return scope[best].tolist(), scores[best]
            params = search_parameters(self.store.vectors, faiss.IDSelectorBatch(scope.astype(np.int64)))
        scores, ids = self.store.vectors.search(vector.reshape(1, -1), min(depth, n), params=params)
        keep = ids[0] >= 0
        return ids[0][keep].tolist(), scores[0][keep]

    def _bm25(self, text: str, depth: int, scope: np.ndarray | None) -> tuple[list[int], np.ndarray]:
        """The `depth` best BM25 passages within the scope, and every passage's BM25 score (only those
        in scope are read)."""
        scores = self.store.lexical.scores(text)
        candidates = np.flatnonzero(scores) if scope is None else scope[scores[scope] > 0]  # BM25 >= 0
        if len(candidates) > depth:  # keep those at or above the depth-th best score, without sorting every match
            values = scores[candidates]
            candidates = candidates[values >= np.partition(values, len(values) - depth)[len(values) - depth]]
        order = candidates[np.argsort(-scores[candidates], kind="stable")][:depth]  # ties: earlier passage first
        return order.tolist(), scores

    def ranked(self, query: Query, settings: RetrievalSettings, filters: Filters = Filters()
               ) -> tuple[list[int], dict[int, dict[str, float]]]:
        """All fused candidates, best first, with their per-list scores; before the per-review cap."""
        scope = self.scope(filters)
        depth = max(settings.depth, settings.k)
        lists: list[list[int]] = []
        weights: list[float] = []
        detail: dict[int, dict[str, float]] = {}
        fuses = settings.mode in ("hybrid", "ranked")
        if settings.mode == "dense" or fuses:
            ids, scores = self._dense(query.vector, depth, scope)
            lists.append(ids)
            weights.append(settings.dense_weight)
            for i, s in zip(ids, scores):
                detail.setdefault(i, {})["dense"] = float(s)
        ids, bm25_scores = self._bm25(query.lexical_text, depth, scope)  # also shown in dense mode
        if settings.mode == "bm25" or fuses:
            lists.append(ids)
            weights.append(settings.bm25_weight)
        if len(lists) == 1:
            order = lists[0]
            fused = {d: 1.0 / (settings.rrf_k + r) for r, d in enumerate(order, 1)}
        elif settings.fusion == "convex" or settings.mode == "ranked":  # the ranker was fitted on convex fusion
            candidates = list(dict.fromkeys(lists[0] + lists[1]))
            self._fill_dense(candidates, detail, query.vector)
            fused = convex(candidates, {i: detail[i]["dense"] for i in candidates},
                           {i: float(bm25_scores[i]) for i in candidates}, settings.alpha)
            order = sorted(fused, key=lambda d: (-fused[d], d))
        else:
            fused = rrf(lists, settings.rrf_k, weights)
            order = sorted(fused, key=lambda d: (-fused[d], d))
        self._fill_dense(order, detail, query.vector)
        for i in order:
            entry = detail[i]
            entry["fused"] = fused[i]
            entry["bm25"] = float(bm25_scores[i])
        if settings.mode == "ranked" and order:
            if query.folded:  # the ranker learned from self-contained questions; a folded follow-up keeps fusion
                for i in order:
                    detail[i]["ranked"] = detail[i]["fused"]
            else:
                from .rank import features

                rows = features(query.text, query.lexical_text, query.vector, order, detail, self.store, self.terms)
                for i, value in zip(order, self.ranker.scores(rows)):
                    detail[i]["ranked"] = float(value)
                order = sorted(order, key=lambda d: (-detail[d]["ranked"], d))
        return order, detail

    def lexical_top(self, text: str, depth: int, filters: Filters = Filters()) -> list[int]:
        """The `depth` best BM25 passages for `text` within the filters."""
        return self._bm25(text, depth, self.scope(filters))[0]

    def dense_scores(self, positions: list[int], vector: np.ndarray) -> np.ndarray:
        """Cosine similarity of the query to the given passages' stored vectors, in one batch."""
        if not positions:
            return np.zeros(0, dtype=np.float32)
        return self.store.vectors.reconstruct_batch(np.asarray(positions, dtype=np.int64)) @ vector

    def _fill_dense(self, positions: list[int], detail: dict[int, dict[str, float]], vector: np.ndarray) -> None:
        missing = [i for i in positions if "dense" not in detail.get(i, {})]
        for i, score in zip(missing, self.dense_scores(missing, vector)):
            detail.setdefault(i, {})["dense"] = float(score)

    def highlight(self, position: int, vector: np.ndarray) -> tuple[tuple[int, int], float]:
        """Review offsets of the passage sentence whose stored vector best matches the query, and its
        cosine similarity to the query."""
        passage = self.store.passages[position]
        if not passage.sentences:
            return (passage.start, passage.end), 0.0
        sims = self.store.sentences_of(position).astype(np.float32) @ vector
        # Headings and list dashes ("-", "Plot Summary") pool to vague vectors; prefer real sentences.
        words = np.array([len(passage.text[s - passage.start : e - passage.start].split()) for s, e in passage.sentences])
        if (words >= MIN_HIGHLIGHT_WORDS).any():
            sims = np.where(words >= MIN_HIGHLIGHT_WORDS, sims, -np.inf)
        best = int(np.argmax(sims))
        return passage.sentences[best], float(sims[best])

    def hits(self, order: list[int], detail: dict[int, dict[str, float]], query: Query,
             settings: RetrievalSettings) -> list[Hit]:
        """The top k of the fused order. With diversity on, the per-review cap applies and a passage
        whose best sentence is the one already highlighted in a higher hit (neighbouring passages share
        a sentence) is left out."""
        key = score_key(settings.mode)
        if settings.per_review_cap is None:
            return [self.hit(i, rank, detail[i], key, query.vector)
                    for rank, i in enumerate(order[: settings.k], 1)]
        chosen: list[Hit] = []
        shown: set[tuple[str, tuple[int, int]]] = set()
        for i in cap_per_review(order, self._review_of, settings.per_review_cap, len(order)):
            hit = self.hit(i, len(chosen) + 1, detail[i], key, query.vector)
            key = (hit.passage.review_id, hit.highlight)
            if key in shown:
                continue
            shown.add(key)
            chosen.append(hit)
            if len(chosen) == settings.k:
                break
        return chosen

    def hit(self, position: int, rank: int, scores: dict[str, float], score_key: str, vector: np.ndarray) -> Hit:
        span, sentence_score = self.highlight(position, vector)
        scores = {**scores, "sentence": sentence_score}
        return Hit(self.store.passages[position], scores.get(score_key, 0.0), rank, span, scores)
