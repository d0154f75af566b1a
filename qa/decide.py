"""The answer decision: how likely each candidate sentence is to answer the question, calibrated.

Candidates are the sentences of the passages the retriever returned (the top hits and each review's best
passage). Each gets a few cheap features, all from what retrieval already computed or stored:

    sentence_cos    cosine of the question vector and the sentence's stored vector
    passage_cos     cosine of the question vector and the passage vector
    margin          sentence_cos minus the best sentence_cos among the question's candidates (<= 0)
    sentence_terms  share of the question's content terms (stemmed, as BM25 has them) in the sentence
    passage_terms   the same share over the whole passage
    unknown_terms   share of the question's content terms that no passage of the index contains (nor a
                    term sharing its first KNOWN_PREFIX letters: "compos"(ed) is known from "composit"(ions))
    unseen_terms    share of them that no candidate passage contains
    factoid         1 when the question asks for a typed answer (answer_types.question_type)
    type_match      factoid and the sentence holds a span of that type that the question does not
    type_miss       factoid and it holds none
    log_words       log(1 + words in the sentence)
    question_terms  log(1 + content terms in the question)
    exact_type_match  type_match for a duration, score, date or amount (a capitalised word is often no name)
    sentence_idf_terms  the idf-weighted share of the question's content terms in the sentence (BM25's idf;
                    a term the index lacks weighs most), so a rare word found counts for more than "film"
    passage_idf_terms   the same over the passage
    passage_rank    log(1 + the passage's rank in the retriever's order), the order's length for a passage
                    outside it (a typed-search extra): the learned ranker's judgement of the passage

P(answers) = sigmoid(a * raw(x) + c), where raw is a small boosted tree ensemble (LightGBM, fitted on
labelled data by bench/train_answer.py and stored as plain arrays in JSON) or a linear score, and (a, c)
is a Platt fit of each (question, review)'s best candidate against whether it is right, so the
probability of the best candidate is calibrated: of the questions answered with confidence near c,
about a fraction c are right. A review addresses the question when its best candidate reaches the
threshold chosen on tuning data; the question is answered when any review does.

A model may add a review stage (`bench/train_answer.py --stages 2`; measured and not shipped, see
docs/answers.md), which judges whether each review answers at all from that review's scores and what
the question's candidates hold (REVIEW_FEATURES):

    top_score       the review's best raw score
    top_gap         best minus second best raw score in the review (TOP_GAP_ALONE for a lone candidate)
    top3_mean       mean raw score of the review's three best
    max_idf_terms, max_terms, max_cos   the best sentence_idf_terms, sentence_terms, sentence_cos among
                    all the question's candidates (does any sentence hold the question's words)
    unknown_terms, unseen_terms, factoid, question_terms   the question's own features
    log_candidates  log(1 + the review's candidates)
    top_idf_terms, top_cos, top_type_match   the best sentence's own

Then the review's best sentence gets sigmoid(a * review_raw(r) + c), (a, c) fitted as above on the
review stage's score, and another sentence of the review that times sigmoid(raw) / sigmoid(best raw),
which keeps the sentence order inside the review.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .answer_types import best_candidate, question_type
from .errors import AnswerModelError
from .lexical import terms
from .trees import Trees

FEATURES = ("sentence_cos", "passage_cos", "margin", "sentence_terms", "passage_terms", "unknown_terms",
            "unseen_terms", "factoid", "type_match", "type_miss", "log_words", "question_terms", "exact_type_match",
            "sentence_idf_terms", "passage_idf_terms", "passage_rank")
EXACT_TYPES = ("duration", "score", "date", "quantity")  # patterns that rarely fire by accident, unlike names
# A sentence without a span of the asked-for type cannot answer "how long", "what score" or "when", so it
# is no candidate at all (in training too). Names, places and "how much" are left to the model: a
# capitalised word is often no name, and "how much did you like it" wants no number.
REQUIRED_TYPES = ("duration", "score", "date")
REVIEW_FEATURES = ("top_score", "top_gap", "top3_mean", "max_idf_terms", "max_terms", "max_cos", "unknown_terms",
                   "unseen_terms", "factoid", "question_terms", "log_candidates", "top_idf_terms", "top_cos",
                   "top_type_match")
TOP_GAP_ALONE = 5.0  # a lone candidate stands out like a clear winner (raw scores mostly span -6..2)
MODEL_VERSION = 3
_COLUMN = {f: i for i, f in enumerate(FEATURES)}
MODEL_PATH = Path(__file__).with_name("answer_model.json")
MIN_SENTENCE_WORDS = 2
TERM_CACHE_LIMIT = 50_000  # passages whose term sets are kept (a few KB each)
KNOWN_PREFIX = 5  # unknown_terms: a question term is known when an index term shares its first 5 letters
# Words that ask rather than name what is asked about; they say nothing about whether a passage answers.
QUESTION_WORDS = frozenset("""what which who whom whose when where why how does do did is are was were can could
would should shall may might must has have had any some much many about tell think say says said film films movie
movies review reviews reviewer critic critics good bad like really please know""".split())
# "How long" asks for a duration; "long" is not what the question is about.
_ASKING_PHRASES = re.compile(r"\bhow (long|old|often|far|big|large|tall)\b|\bwhat (year|kind|sort|type)\b", re.I)


@dataclass(frozen=True)
class Candidate:
    """One sentence that might answer the question; offsets are into the review text."""

    position: int  # passage position in the store
    review_id: str
    sentence: tuple[int, int]
    features: tuple[float, ...]
    answer_span: tuple[int, int] | None = None  # the typed answer inside the sentence, for factoids
    probability: float = 0.0


@dataclass(frozen=True)
class Linear:
    """raw(x) = w . (x - mean) / scale + b."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def raw(self, rows: np.ndarray) -> np.ndarray:
        return ((rows - self.mean) / self.scale) @ self.weights + self.bias

    def to_json(self) -> dict:
        return {"kind": "linear", "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "weights": self.weights.tolist(), "bias": self.bias}

    @classmethod
    def from_json(cls, data: dict, width: int = len(FEATURES)) -> "Linear":
        model = cls(np.asarray(data["mean"], float), np.asarray(data["scale"], float),
                    np.asarray(data["weights"], float), float(data["bias"]))
        if not model.mean.shape == model.scale.shape == model.weights.shape == (width,):
            raise ValueError("wrong number of weights")
        return model


@dataclass(frozen=True)
class AnswerModel:
    """The sentence scorer, the optional review stage's scorer (None: none) and the Platt (a, c) of the
    last stage; see the module docstring for the formulas."""

    features: tuple[str, ...]
    scorer: Linear | Trees
    a: float
    c: float
    threshold: float
    version: int = MODEL_VERSION
    review_scorer: Linear | Trees | None = None

    def probabilities(self, rows: np.ndarray, reviews: np.ndarray | None = None) -> np.ndarray:
        """Each candidate's calibrated probability; `reviews` (an id per row, any hashable labels) is
        needed when the model has a review stage. An empty input gives an empty output."""
        rows = np.asarray(rows, float)
        if len(rows) == 0:
            return np.zeros(0)
        raw = self.scorer.raw(rows)
        if self.review_scorer is None:
            return _sigmoid(self.a * raw + self.c)
        if reviews is None:
            raise ValueError("a model with a review stage needs each candidate's review")
        table, best, group = review_rows(rows, raw, reviews)
        review_p = _sigmoid(self.a * self.review_scorer.raw(table) + self.c)
        return review_p[group] * _sigmoid(raw) / _sigmoid(raw[best][group])

    def to_json(self, **extra) -> dict:
        out = {"version": self.version, "features": list(self.features), "scorer": self.scorer.to_json(),
               "platt": {"a": self.a, "c": self.c}, "threshold": self.threshold}
        if self.review_scorer is not None:
            out |= {"review_features": list(REVIEW_FEATURES), "review_scorer": self.review_scorer.to_json()}
        return out | extra

    @classmethod
    def from_json(cls, data: dict, where: str = "the answer model") -> "AnswerModel":
        if data.get("version") != MODEL_VERSION or tuple(data.get("features", ())) != FEATURES or (
                "review_features" in data and tuple(data["review_features"]) != REVIEW_FEATURES):
            raise AnswerModelError(f"{where} was fitted for another feature set (version {data.get('version')}); "
                                   "refit it with bench/train_answer.py.")
        try:
            scorer = _scorer_from_json(data["scorer"], len(FEATURES))
            review = (_scorer_from_json(data["review_scorer"], len(REVIEW_FEATURES))
                      if "review_scorer" in data else None)
            return cls(FEATURES, scorer, float(data["platt"]["a"]), float(data["platt"]["c"]), float(data["threshold"]),
                       review_scorer=review)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AnswerModelError(f"{where} is incomplete or malformed ({exc}); refit it with bench/train_answer.py.") from exc


def _scorer_from_json(data: dict, width: int) -> Linear | Trees:
    kinds = {"linear": Linear, "trees": Trees}
    if data.get("kind") not in kinds:
        raise ValueError(f"unknown scorer kind {data.get('kind')!r}")
    return kinds[data["kind"]].from_json(data, width)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def review_rows(rows: np.ndarray, raw: np.ndarray, reviews) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The review stage's input: (one row of REVIEW_FEATURES per distinct review, in order of first
    appearance; the row index of each review's best candidate (highest raw, the first on ties); each
    candidate's review number). `rows` are one question's candidates (FEATURES), `raw` their sentence
    scores, `reviews` their review ids. One function for training and serving."""
    col = _COLUMN
    _, first, group = np.unique(np.asarray(reviews), return_index=True, return_inverse=True)
    renumber = np.empty(len(first), dtype=np.int64)
    renumber[np.argsort(np.argsort(first))] = np.arange(len(first))  # number reviews by first appearance
    group = renumber[group.ravel()]
    question_wide = [rows[:, col["sentence_idf_terms"]].max(), rows[:, col["sentence_terms"]].max(),
                     rows[:, col["sentence_cos"]].max()]
    table = np.zeros((len(first), len(REVIEW_FEATURES)))
    best = np.zeros(len(first), dtype=np.int64)
    for g in range(len(first)):
        members = np.flatnonzero(group == g)
        ranked = members[np.argsort(-raw[members], kind="stable")]
        top = raw[ranked]
        b = rows[ranked[0]]
        best[g] = ranked[0]
        table[g] = [top[0], top[0] - top[1] if len(top) > 1 else TOP_GAP_ALONE, top[:3].mean(), *question_wide,
                    b[col["unknown_terms"]], b[col["unseen_terms"]], b[col["factoid"]], b[col["question_terms"]],
                    np.log1p(len(members)), b[col["sentence_idf_terms"]], b[col["sentence_cos"]], b[col["type_match"]]]
    return table, best, group


@lru_cache(maxsize=4)
def load_model(path: Path = MODEL_PATH) -> AnswerModel:
    """The fitted model; one plain sentence when the file is missing or does not fit this code."""
    data = read_fitted_json(path, "The answer model", "bench/train_answer.py", AnswerModelError)
    return AnswerModel.from_json(data, f"The answer model {path}")


def read_fitted_json(path: Path, name: str, script: str, error: type[Exception]) -> dict:
    """A fitted parameter file's JSON object; `error` with one plain sentence when it is missing,
    unreadable or not an object (`name` says what it is, `script` what recreates it)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{name} {path} is missing; reinstall, or run {script}.") from exc
    except (OSError, ValueError) as exc:
        raise error(f"{name} {path} cannot be read ({exc.__class__.__name__}).") from exc
    if not isinstance(data, dict):
        raise error(f"{name} {path} is not a JSON object.")
    return data


def share(wanted: set[str], have: set[str]) -> float:
    """|wanted ∩ have| / |wanted| (0 for no wanted terms)."""
    return len(wanted & have) / len(wanted) if wanted else 0.0


def _weighted_share(idf: dict[str, float], have: set[str], total: float | None = None) -> float:
    """sum of idf[t] over the terms t in `have` / sum of all idf (0 when that is 0); `total` may be given."""
    total = sum(idf.values()) if total is None else total
    return sum(w for t, w in idf.items() if t in have) / total if total > 0 else 0.0


def content_terms(text: str) -> set[str]:
    """The content terms of a question (tokenised and stemmed as BM25 does), its asking words dropped:
    what the term-share features of the answer decision and of the ranker count."""
    return set(terms(_ASKING_PHRASES.sub(" ", text), QUESTION_WORDS))


def content_words(text: str) -> str:
    """The question without its asking words ("how long is the film" -> ""), for a typed BM25 search."""
    words = re.findall(r"[\w'’-]+", _ASKING_PHRASES.sub(" ", text))
    return " ".join(w for w in words if w.casefold() not in QUESTION_WORDS)


def passage_terms(store, position: int, cache: dict | None = None) -> tuple[set[str], list[set[str]]]:
    """The content terms of a passage and of each of its sentences (cached: the store never changes)."""
    if cache is not None and position in cache:
        return cache[position]
    passage = store.passages[position]
    text = store.reviews[passage.review_id].text
    value = (set(terms(passage.text)), [set(terms(text[s:e])) for s, e in passage.sentences])
    if cache is not None:
        if len(cache) >= TERM_CACHE_LIMIT:  # a long-running server over a big corpus: start afresh
            cache.clear()
        cache[position] = value
    return value


def candidates(question: str, terms_text: str, vector: np.ndarray, positions: list[int], store,
               cache: dict | None = None, order: list[int] | tuple[int, ...] = ()) -> list[Candidate]:
    """Every sentence of the given passages (of at least MIN_SENTENCE_WORDS words, holding a span of
    the asked-for type when the type is one of REQUIRED_TYPES) with its features.

    `question` gives the answer type; `terms_text` (the question, with folded-in history for a
    follow-up) gives the content terms; `order` is the retriever's ranking of passages. One function for training and serving, so both see the same
    features.
    """
    wanted = content_terms(terms_text)
    kind = question_type(question)
    focus = [w.strip(".,;:!?'\"()") for w in terms_text.casefold().split()]
    focus = [w for w in focus if len(w) > 3 and w not in QUESTION_WORDS]
    term_sets = {i: passage_terms(store, i, cache) for i in positions}
    unseen = 1.0 - share(wanted, set().union(*(t[0] for t in term_sets.values()))) if wanted and positions else 0.0
    unknown = 1.0 - len(store.lexical.known(wanted, prefix=KNOWN_PREFIX)) / len(wanted) if wanted else 0.0
    idf = store.lexical.idf(wanted)
    idf_total = sum(idf.values())
    question_terms = math.log1p(len(wanted))
    factoid = 1.0 if kind else 0.0
    rank_of = {p: r for r, p in enumerate(order)}
    rows: list[tuple[int, str, tuple[int, int], list[float], tuple[int, int] | None]] = []
    passage_cos = (store.vectors.reconstruct_batch(np.asarray(positions, dtype=np.int64)) @ vector
                   if positions else np.zeros(0))
    for i, cos in zip(positions, passage_cos):
        passage = store.passages[i]
        if not passage.sentences:
            continue
        review = store.reviews[passage.review_id]
        sims = store.sentences_of(i).astype(np.float32) @ vector
        # The same for every sentence of the passage, so computed once per passage.
        passage_share = share(wanted, term_sets[i][0])
        passage_idf_share = _weighted_share(idf, term_sets[i][0], idf_total)
        rank = math.log1p(rank_of.get(i, len(order)))
        for (s, e), sim, sentence_terms in zip(passage.sentences, sims, term_sets[i][1]):
            text = review.text[s:e]
            words = len(text.split())
            if words < MIN_SENTENCE_WORDS:
                continue
            span = best_candidate(text, kind, question, focus) if kind else None
            if span is None and kind in REQUIRED_TYPES:
                continue
            rows.append((i, passage.review_id, (s, e), [
                float(sim), float(cos), 0.0, share(wanted, sentence_terms), passage_share,
                unknown, unseen, factoid, factoid * (span is not None), factoid * (span is None), math.log1p(words),
                question_terms, float(kind in EXACT_TYPES and span is not None),
                _weighted_share(idf, sentence_terms, idf_total), passage_idf_share, rank],
                None if span is None else (s + span[0], s + span[1])))
    best = max((r[3][0] for r in rows), default=0.0)
    out = []
    for i, review_id, sentence, feats, span in rows:
        feats[2] = feats[0] - best
        out.append(Candidate(i, review_id, sentence, tuple(feats), span))
    return out


def score(cands: list[Candidate], model: AnswerModel) -> list[Candidate]:
    """The candidates with their calibrated probabilities, best first (ties: closer sentence first)."""
    if not cands:
        return []
    probs = model.probabilities(np.array([c.features for c in cands], dtype=float), [c.review_id for c in cands])
    scored = [Candidate(c.position, c.review_id, c.sentence, c.features, c.answer_span, float(p))
              for c, p in zip(cands, probs)]
    return sorted(scored, key=lambda c: (-c.probability, -c.features[0], c.position, c.sentence))


def best_per_review(scored: list[Candidate]) -> dict[str, Candidate]:
    """Each review's best candidate (the input is sorted best first)."""
    out: dict[str, Candidate] = {}
    for c in scored:
        out.setdefault(c.review_id, c)
    return out
