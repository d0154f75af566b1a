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

FEATURES = ("sentence_cos", "passage_cos", "margin", "sentence_terms", "passage_terms", "unknown_terms",
            "unseen_terms", "factoid", "type_match", "type_miss", "log_words", "question_terms", "exact_type_match",
            "sentence_idf_terms", "passage_idf_terms", "passage_rank")
EXACT_TYPES = ("duration", "score", "date", "quantity")  # patterns that rarely fire by accident, unlike names
# A sentence without a span of the asked-for type cannot answer "how long", "what score" or "when", so it
# is no candidate at all (in training too). Names, places and "how much" are left to the model: a
# capitalised word is often no name, and "how much did you like it" wants no number.
REQUIRED_TYPES = ("duration", "score", "date")
MODEL_VERSION = 3
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
    def from_json(cls, data: dict) -> "Linear":
        model = cls(np.asarray(data["mean"], float), np.asarray(data["scale"], float),
                    np.asarray(data["weights"], float), float(data["bias"]))
        if not model.mean.shape == model.scale.shape == model.weights.shape == (len(FEATURES),):
            raise ValueError("wrong number of weights")
        return model


@dataclass(frozen=True)
class Trees:
    """A sum of regression trees (LightGBM's, rewritten as arrays so serving needs no LightGBM):
    raw(x) = sum over trees t of value[t, leaf_t(x)], where a node n of tree t sends x left when
    x[feature[t, n]] <= threshold[t, n] and a node with feature -1 is a leaf. All trees are walked
    at once, one level per step, so a question's hundred candidates cost a few array operations."""

    feature: np.ndarray  # (trees, nodes) int, -1 for leaves
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    depth: int

    def __post_init__(self):
        # The same trees as flat arrays indexed by t * nodes + n, where a leaf sends x to itself on both
        # sides: each level of the walk is then four gathers and one comparison, with no leaf test.
        trees, nodes = self.feature.shape
        base = (np.arange(trees) * nodes)[:, None]
        leaf = self.feature < 0
        here = base + np.arange(nodes)[None, :]
        object.__setattr__(self, "_flat", (
            np.where(leaf, 0, self.feature).ravel(), np.where(leaf, np.inf, self.threshold).ravel(),
            np.where(leaf, here, base + self.left).ravel(), np.where(leaf, here, base + self.right).ravel(),
            self.value.ravel(), base.ravel()))

    def raw(self, rows: np.ndarray) -> np.ndarray:
        feature, threshold, left, right, value, roots = self._flat
        rows = np.ascontiguousarray(rows, dtype=float)
        n, width = rows.shape
        flat_rows = rows.ravel()
        row_base = (np.arange(n) * width)[:, None]
        node = np.broadcast_to(roots, (n, len(roots)))
        for _ in range(self.depth):
            goes_left = flat_rows[row_base + feature[node]] <= threshold[node]
            node = np.where(goes_left, left[node], right[node])
        return value[node].sum(axis=1)

    @classmethod
    def from_lightgbm(cls, dump: dict) -> "Trees":
        """From `Booster.dump_model()` of a model on numerical features without missing values."""
        tables = []
        for info in dump["tree_info"]:
            rows: list[list] = []  # feature, threshold, left, right, value

            def add(node: dict) -> int:
                at = len(rows)
                rows.append([-1, 0.0, 0, 0, float(node.get("leaf_value", 0.0))])
                if "split_feature" in node:
                    if node.get("decision_type", "<=") != "<=":
                        raise ValueError(f"unsupported split {node.get('decision_type')}")
                    left, right = add(node["left_child"]), add(node["right_child"])
                    rows[at] = [int(node["split_feature"]), float(node["threshold"]), left, right, 0.0]
                return at

            add(info["tree_structure"])
            tables.append(rows)
        width = max(len(r) for r in tables)
        padded = [r + [[-1, 0.0, 0, 0, 0.0]] * (width - len(r)) for r in tables]
        arr = np.array(padded, dtype=float)
        depth = max(_depth(info["tree_structure"]) for info in dump["tree_info"])
        return cls(arr[:, :, 0].astype(np.int64), arr[:, :, 1], arr[:, :, 2].astype(np.int64),
                   arr[:, :, 3].astype(np.int64), arr[:, :, 4], depth)

    def to_json(self) -> dict:
        return {"kind": "trees", "depth": self.depth, "feature": self.feature.tolist(),
                "threshold": self.threshold.tolist(), "left": self.left.tolist(), "right": self.right.tolist(),
                "value": self.value.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> "Trees":
        model = cls(np.asarray(data["feature"], np.int64), np.asarray(data["threshold"], float),
                    np.asarray(data["left"], np.int64), np.asarray(data["right"], np.int64),
                    np.asarray(data["value"], float), int(data["depth"]))
        shapes = {a.shape for a in (model.feature, model.threshold, model.left, model.right, model.value)}
        if len(shapes) != 1 or model.feature.ndim != 2 or model.feature.max() >= len(FEATURES):
            raise ValueError("tree arrays of mismatched shapes or features")
        return model


def _depth(node: dict) -> int:
    if "split_feature" not in node:
        return 0
    return 1 + max(_depth(node["left_child"]), _depth(node["right_child"]))


@dataclass(frozen=True)
class AnswerModel:
    """P(answers) = sigmoid(a * raw(x) + c): a scorer's raw output, Platt-calibrated."""

    features: tuple[str, ...]
    scorer: Linear | Trees
    a: float
    c: float
    threshold: float
    version: int = MODEL_VERSION

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """sigmoid(a * raw + c) per row; an empty input gives an empty output."""
        if len(rows) == 0:
            return np.zeros(0)
        return 1.0 / (1.0 + np.exp(-(self.a * self.scorer.raw(np.asarray(rows, float)) + self.c)))

    def to_json(self, **extra) -> dict:
        return {"version": self.version, "features": list(self.features), "scorer": self.scorer.to_json(),
                "platt": {"a": self.a, "c": self.c}, "threshold": self.threshold, **extra}

    @classmethod
    def from_json(cls, data: dict, where: str = "the answer model") -> "AnswerModel":
        if data.get("version") != MODEL_VERSION or tuple(data.get("features", ())) != FEATURES:
            raise AnswerModelError(f"{where} was fitted for another feature set (version {data.get('version')}); "
                                   "refit it with bench/train_answer.py.")
        try:
            scorer_data = data["scorer"]
            kinds = {"linear": Linear, "trees": Trees}
            if scorer_data.get("kind") not in kinds:
                raise ValueError(f"unknown scorer kind {scorer_data.get('kind')!r}")
            scorer = kinds[scorer_data["kind"]].from_json(scorer_data)
            return cls(FEATURES, scorer, float(data["platt"]["a"]), float(data["platt"]["c"]), float(data["threshold"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AnswerModelError(f"{where} is incomplete or malformed ({exc}); refit it with bench/train_answer.py.") from exc


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


def _weighted_share(idf: dict[str, float], have: set[str]) -> float:
    total = sum(idf.values())
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
        for (s, e), sim, sentence_terms in zip(passage.sentences, sims, term_sets[i][1]):
            text = review.text[s:e]
            words = len(text.split())
            if words < MIN_SENTENCE_WORDS:
                continue
            span = best_candidate(text, kind, question, focus) if kind else None
            if span is None and kind in REQUIRED_TYPES:
                continue
            factoid = 1.0 if kind else 0.0
            rows.append((i, passage.review_id, (s, e), [
                float(sim), float(cos), 0.0, share(wanted, sentence_terms), share(wanted, term_sets[i][0]),
                unknown, unseen, factoid, factoid * (span is not None), factoid * (span is None), math.log1p(words),
                math.log1p(len(wanted)), float(kind in EXACT_TYPES and span is not None),
                _weighted_share(idf, sentence_terms), _weighted_share(idf, term_sets[i][0]),
                math.log1p(rank_of.get(i, len(order)))],
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
    probs = model.probabilities(np.array([c.features for c in cands], dtype=float))
    scored = [Candidate(c.position, c.review_id, c.sentence, c.features, c.answer_span, float(p))
              for c, p in zip(cands, probs)]
    return sorted(scored, key=lambda c: (-c.probability, -c.features[0], c.position, c.sentence))


def best_per_review(scored: list[Candidate]) -> dict[str, Candidate]:
    """Each review's best candidate (the input is sorted best first)."""
    out: dict[str, Candidate] = {}
    for c in scored:
        out.setdefault(c.review_id, c)
    return out
