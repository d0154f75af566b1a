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
labelled data by train/fit_answer.py and stored as plain arrays in JSON) or a linear score, and (a, c)
is a Platt fit of each (question, review)'s best candidate against whether it is right, so the
probability of the best candidate is calibrated: of the questions answered with confidence near c,
about a fraction c are right. A review addresses the question when its best candidate reaches the
threshold chosen on tuning data; the question is answered when any review does.

A model may add a reader stage (model version 4): the question is read against its few best candidates
(to_read: each review's READ_PER_REVIEW best by raw score, at most READ_LIMIT in all) by the reader of
qa/reader.py, and a second small tree ensemble judges each read candidate from READER_FEATURES:

    reader          the reader's logit: does this sentence answer the question, read word by word
    reader_margin   reader minus the best reader logit among the question's read candidates (<= 0)
    reader_rank     log(1 + rank of its reader logit among the read candidates, 0 the best)
    factoid, type_match, exact_type_match, unknown_terms, unseen_terms, sentence_idf_terms, sentence_cos
                    the candidate's own features (as above), except that sentence_idf_terms is 1, not 0,
                    when the question has no content term and the sentence holds the exact type it asks
                    for: "How long is the film?" asks for nothing but a duration, so "Running time: 1hr
                    34m" leaves none of it out (a share of no terms is vacuous; the training and tuning
                    sets hold no such question, so the trees never learned what a 0 there means)

The sentence stage's own score only chooses what is read: given to the reader stage as well, it
outweighed the reader (SubjQA opinion questions, most of the training data, are where it is strong) and
"Running time: 1hr 34m" stayed unanswered for "How long is the film?" however surely the reader read it
(docs/answers.md, version 4). The read candidates get sigmoid(a * reader_raw(r) + c), (a, c) a Platt fit as above on that score;
candidates not read get probability 0: they can neither answer nor lead the reply.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

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
READER_FEATURES = ("reader", "reader_margin", "reader_rank", "factoid", "type_match", "exact_type_match",
                   "unknown_terms", "unseen_terms", "sentence_idf_terms", "sentence_cos")
READ_PER_REVIEW = 3  # each review's best candidates by the sentence stage that the reader reads
READ_LIMIT = 12  # and at most this many in all: one batched forward pass over about a dozen sentences
MODEL_VERSION = 4
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
    """The sentence scorer, the optional reader stage's scorer (None: none) and the Platt (a, c) of the
    last stage; see the module docstring for the formulas."""

    features: tuple[str, ...]
    scorer: Linear | Trees
    a: float
    c: float
    threshold: float
    version: int = MODEL_VERSION
    reader_scorer: Linear | Trees | None = None

    def probabilities(self, rows: np.ndarray, reviews=None, read: Callable[[np.ndarray], np.ndarray] | None = None
                      ) -> np.ndarray:
        """Each candidate's calibrated probability. With a reader stage, `reviews` (a review label per
        row) and `read` (row indices -> the reader's logits for those candidates) are needed; rows not
        read get 0. An empty input gives an empty output."""
        rows = np.asarray(rows, float)
        if len(rows) == 0:
            return np.zeros(0)
        raw = self.scorer.raw(rows)
        if self.reader_scorer is None:
            return _sigmoid(self.a * raw + self.c)
        if reviews is None or read is None:
            raise ValueError("a model with a reader stage needs each candidate's review and the reader")
        chosen = to_read(raw, reviews)
        out = np.zeros(len(rows))
        out[chosen] = _sigmoid(self.a * self.reader_scorer.raw(reader_rows(rows, chosen, read(chosen))) + self.c)
        return out

    def to_json(self, **extra) -> dict:
        out = {"version": self.version, "features": list(self.features), "scorer": self.scorer.to_json(),
               "platt": {"a": self.a, "c": self.c}, "threshold": self.threshold}
        if self.reader_scorer is not None:
            out |= {"reader_features": list(READER_FEATURES), "reader_scorer": self.reader_scorer.to_json()}
        return out | extra

    @classmethod
    def from_json(cls, data: dict, where: str = "the answer model") -> "AnswerModel":
        if data.get("version") != MODEL_VERSION or tuple(data.get("features", ())) != FEATURES or (
                "reader_features" in data and tuple(data["reader_features"]) != READER_FEATURES):
            raise AnswerModelError(f"{where} was fitted for another feature set (version {data.get('version')}); "
                                   "refit it with train/fit_answer.py.")
        try:
            scorer = _scorer_from_json(data["scorer"], len(FEATURES))
            reader = (_scorer_from_json(data["reader_scorer"], len(READER_FEATURES))
                      if "reader_scorer" in data else None)
            return cls(FEATURES, scorer, float(data["platt"]["a"]), float(data["platt"]["c"]), float(data["threshold"]),
                       reader_scorer=reader)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AnswerModelError(f"{where} is incomplete or malformed ({exc}); refit it with train/fit_answer.py.") from exc


def _scorer_from_json(data: dict, width: int) -> Linear | Trees:
    kinds = {"linear": Linear, "trees": Trees}
    if data.get("kind") not in kinds:
        raise ValueError(f"unknown scorer kind {data.get('kind')!r}")
    return kinds[data["kind"]].from_json(data, width)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def to_read(raw: np.ndarray, reviews) -> np.ndarray:
    """Indices of the candidates the reader reads: in order of raw score (best first, the first on ties),
    each review's first READ_PER_REVIEW, at most READ_LIMIT in all. One function for training and serving."""
    taken: dict = {}
    out = []
    for i in np.argsort(-np.asarray(raw), kind="stable"):
        label = reviews[i]
        if taken.get(label, 0) < READ_PER_REVIEW:
            taken[label] = taken.get(label, 0) + 1
            out.append(int(i))
            if len(out) == READ_LIMIT:
                break
    return np.array(out, dtype=np.int64)


def reader_rows(rows: np.ndarray, chosen: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """The reader stage's input, one row of READER_FEATURES per chosen candidate (see the module
    docstring); `rows` are all of one question's candidates, `logits` the reader's for the chosen ones.
    One function for training and serving."""
    logits = np.asarray(logits, float)
    col = _COLUMN
    picked = rows[chosen]
    rank = np.empty(len(chosen))
    rank[np.argsort(-logits, kind="stable")] = np.arange(len(chosen))
    own = [col[f] for f in ("factoid", "type_match", "exact_type_match", "unknown_terms", "unseen_terms",
                            "sentence_idf_terms", "sentence_cos")]
    own_rows = picked[:, own].copy()
    # A question with no content term that asks only for an exact type ("How long is the film?") says
    # nothing a sentence holding that type leaves out: its term share is 1, not 0. (Other questions
    # without content terms, "What is this?", stay at 0: nothing in them says what would answer.)
    vacuous = (picked[:, col["question_terms"]] == 0) & (picked[:, col["exact_type_match"]] == 1)
    own_rows[vacuous, own.index(col["sentence_idf_terms"])] = 1.0
    return np.column_stack([logits, logits - logits.max(), np.log1p(rank), own_rows])


@lru_cache(maxsize=4)
def load_model(path: Path = MODEL_PATH) -> AnswerModel:
    """The fitted model; one plain sentence when the file is missing or does not fit this code."""
    data = read_fitted_json(path, "The answer model", "train/fit_answer.py", AnswerModelError)
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


def score(cands: list[Candidate], model: AnswerModel,
          read: Callable[[list[Candidate]], np.ndarray] | None = None) -> list[Candidate]:
    """The candidates with their calibrated probabilities, best first (ties: closer sentence first).
    `read` gives the reader's logits for a list of candidates (needed when the model has a reader stage)."""
    if not cands:
        return []
    reader = None if read is None else (lambda chosen: read([cands[i] for i in chosen]))
    probs = model.probabilities(np.array([c.features for c in cands], dtype=float), [c.review_id for c in cands],
                                reader)
    scored = [Candidate(c.position, c.review_id, c.sentence, c.features, c.answer_span, float(p))
              for c, p in zip(cands, probs)]
    return sorted(scored, key=lambda c: (-c.probability, -c.features[0], c.position, c.sentence))


def best_per_review(scored: list) -> dict:
    """Each review's best candidate (the input is sorted best first): Candidates here, opinion
    Judgements in qa/answer.py; anything with a `review_id`."""
    out: dict[str, Candidate] = {}
    for c in scored:
        out.setdefault(c.review_id, c)
    return out
