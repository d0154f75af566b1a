"""The learned re-ranker: cheap features of each fused candidate passage, scored by LightGBM trees.

The candidates are the union of the dense and BM25 lists (the hybrid retriever's fused order). Every
feature comes from what the index already stores (passage and sentence vectors, BM25 statistics, the
passage records), so ranking costs no model call. `features` is the one function both training
(train/fit_ranker.py) and serving call, so they cannot drift apart.

Features, per candidate passage d of question q (over the candidate set C):
    dense               cos(q, d)
    dense_gap           cos(q, d) - max over C of cos(q, c)
    bm25_norm           bm25(q, d) / max over C of bm25 (0 when nothing in C matches a term)
    bm25_log            log(1 + bm25(q, d))
    fused               the convex fusion score the hybrid retriever ranks by
    sentence_best       the best cosine of q with d's stored sentence vectors (sentence-level MaxSim)
    sentence_second     the second best (the best again for a one-sentence passage)
    sentence_idf_terms  the best, over d's sentences, idf-weighted share of q's content terms present
    passage_idf_terms   the idf-weighted share of q's content terms present in d
    passage_terms       the plain share of q's content terms present in d
    type_match          1 when q asks for a typed answer (a name, duration, score, ...) and d holds one
    asks_type           1 when q asks for a typed answer
    log_words           log(1 + words in d)
    position            d's start / its review's length (0 = the review's opening)
    dense_rank          log(1 + rank of d among C by dense score)
    bm25_rank           log(1 + rank of d among C by BM25 score)
    review_share        share of C that comes from d's review
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .answer_types import question_type, typed_spans
from .decide import content_terms, passage_terms, read_fitted_json, share
from .errors import QAError
from .trees import Trees

RANKER_VERSION = 1
RANKER_PATH = Path(__file__).with_name("ranker_model.json")
FEATURES = ("dense", "dense_gap", "bm25_norm", "bm25_log", "fused", "sentence_best", "sentence_second",
            "sentence_idf_terms", "passage_idf_terms", "passage_terms", "type_match", "asks_type", "log_words",
            "position", "dense_rank", "bm25_rank", "review_share")


class RankerError(QAError):
    """The ranker file is missing, unreadable, or was fitted for other features."""


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based rank of each value, highest first (ties: earlier first)."""
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), dtype=float)
    ranks[order] = np.arange(1, len(values) + 1)
    return ranks


def features(question: str, terms_text: str, vector: np.ndarray, order: list[int],
             detail: dict[int, dict[str, float]], store, cache: dict | None = None) -> np.ndarray:
    """The feature matrix (len(order), len(FEATURES)) of the candidates `order`, whose `detail` holds
    their dense, bm25 and fused scores (Retriever.ranked). `question` gives the answer type, `terms_text`
    (the question with any folded-in history) the content terms. An empty order gives an empty matrix."""
    n = len(order)
    out = np.zeros((n, len(FEATURES)), dtype=float)
    if n == 0:
        return out
    dense = np.array([detail[i]["dense"] for i in order], dtype=float)
    bm25 = np.array([detail[i].get("bm25", 0.0) for i in order], dtype=float)
    fused = np.array([detail[i].get("fused", 0.0) for i in order], dtype=float)
    wanted = content_terms(terms_text)
    idf = store.lexical.idf(wanted)
    kind = question_type(question)
    reviews = [store.passages[i].review_id for i in order]
    per_review = {r: reviews.count(r) for r in set(reviews)}
    b_max = bm25.max()
    out[:, 0] = dense
    out[:, 1] = dense - dense.max()
    out[:, 2] = bm25 / b_max if b_max > 0 else 0.0
    out[:, 3] = np.log1p(np.maximum(bm25, 0.0))
    out[:, 4] = fused
    out[:, 11] = float(kind is not None)
    out[:, 14] = np.log1p(_ranks(dense))
    out[:, 15] = np.log1p(_ranks(bm25))
    best, second = _top_two_sentences(store, order, vector, dense)
    out[:, 5] = best
    out[:, 6] = second
    weights = list(idf.items())
    total = sum(w for _, w in weights)
    for row, i in enumerate(order):
        passage_set, sentence_sets = passage_terms(store, i, cache)
        if total > 0:
            out[row, 7] = max((sum(w for t, w in weights if t in s) for s in sentence_sets), default=0.0) / total
            out[row, 8] = sum(w for t, w in weights if t in passage_set) / total
        out[row, 9] = share(wanted, passage_set)
        out[row, 10] = float(kind is not None and _holds_type(store, i, kind, question, cache))
        out[row, 12], out[row, 13] = _shape(store, i, cache)
        out[row, 16] = per_review[reviews[row]] / n
    return out


def _top_two_sentences(store, order: list[int], vector: np.ndarray, dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate, the best and second-best cosine of the query with its stored sentence vectors, in
    one matrix product (a passage without sentences takes its passage cosine; with one, the best twice)."""
    starts = store.sentence_start[np.asarray(order)]
    counts = store.sentence_start[np.asarray(order) + 1] - starts
    best, second = dense.copy(), dense.copy()
    if counts.sum() == 0:
        return best, second
    first_at = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rows = np.arange(counts.sum()) - np.repeat(first_at - starts, counts)  # each candidate's sentence rows
    sims = store.sentence_vectors[rows].astype(np.float32) @ vector
    grid = np.full((len(order), max(2, int(counts.max()))), -np.inf, dtype=np.float32)
    grid[np.repeat(np.arange(len(order)), counts), np.arange(len(rows)) - np.repeat(first_at, counts)] = sims
    top = np.sort(grid, axis=1)[:, -2:]  # (second best, best) per candidate
    has, two = counts > 0, counts > 1
    best[has] = top[has, 1]
    second[has] = top[has, 1]
    second[two] = top[two, 0]
    return best, second


def _shape(store, position: int, cache: dict | None) -> tuple[float, float]:
    """(log(1 + words), start / review length) of a passage; cached, as the store never changes."""
    key = ("shape", position)
    if cache is not None and key in cache:
        return cache[key]
    passage = store.passages[position]
    value = (math.log1p(len(passage.text.split())), passage.start / max(1, len(store.reviews[passage.review_id].text)))
    if cache is not None:
        cache[key] = value
    return value


def _holds_type(store, position: int, kind: str, question: str, cache: dict | None) -> bool:
    """Whether the passage holds a span of the asked-for type that is not part of the question (the
    same rule as answer_candidates; the spans are cached per passage and type)."""
    key = ("type", position, kind)
    text = store.passages[position].text
    spans = cache.get(key) if cache is not None else None
    if spans is None:
        spans = typed_spans(text, kind)
        if cache is not None:
            cache[key] = spans
    asked = question.casefold()
    return any(text[s:e].casefold() not in asked for s, e in spans)


class Ranker:
    """LightGBM lambdarank trees over FEATURES, stored and scored as arrays (qa.trees.Trees; inside an ask
    that measured faster than `Booster.predict`, docs/ranking.md, Cost); a higher score ranks a passage
    higher. Serving needs no LightGBM: the fitted file holds the arrays."""

    def __init__(self, trees: Trees, version: int = RANKER_VERSION):
        self.trees = trees
        self.version = version

    def scores(self, rows: np.ndarray) -> np.ndarray:
        if not len(rows):
            return np.zeros(0)
        return self.trees.raw(rows)


def load_ranker(path: Path = RANKER_PATH) -> Ranker:
    """The fitted ranker; one plain sentence when the file is missing or was fitted for other features.

    The file is a small JSON object: version, features and the trees as arrays (`trees`, Trees.to_json);
    train/fit_ranker.py also keeps LightGBM's own text model there (`lightgbm_model`) for the tests
    that check the arrays against it."""
    data = read_fitted_json(path, "The ranker", "train/fit_ranker.py", RankerError)
    if data.get("version") != RANKER_VERSION or data.get("features") != list(FEATURES):
        raise RankerError(f"The ranker {path} was fitted for another version or other features; "
                          "run train/fit_ranker.py.")
    try:
        return Ranker(Trees.from_json(data["trees"], len(FEATURES)))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RankerError(f"The ranker {path} holds no usable trees ({exc.__class__.__name__}); "
                          "run train/fit_ranker.py.") from exc


def check_index(ranker: Ranker, manifest: dict) -> None:
    """An index whose manifest names another ranker version was built for other features: one sentence.
    An index built before rankers were recorded serves any ranker (its stored arrays are the same)."""
    built_for = (manifest.get("ranker") or {}).get("version")
    if built_for is not None and built_for != ranker.version:
        raise RankerError(f"The index was built for ranker version {built_for}, but this ranker is version "
                          f"{ranker.version}; rebuild it with `qa index --rebuild`.")
