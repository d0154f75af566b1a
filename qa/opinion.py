"""Opinion questions, review by review: which sentence of each review judges what the question asks,
how likely it is to, and its stance.

An opinion question (qa/kinds.py) has as many answers as there are reviews that judge the aspect, and
most of them share no word with it ("acting" / "performance"). Every sentence of every review in scope
(the reviews the per-review view holds) is a candidate, with features from what the index stores:

    cos_question    cosine of the question vector and the sentence vector
    cos_probe       cosine of the sentence and the kind's probe (the aspect's lexicon words for an opinion,
                    a fixed sentence of praise / criticism / overall judgement for the others)
    margin          cos_question minus the best cos_question among the candidates (<= 0)
    aspect_hit      1 when the sentence holds a word of the aspect's lexicon line (kinds.ASPECTS), compared
                    as Snowball stems (BM25's: "performances" matches "performance", "cinema" does not
                    match "cinematography")
    sentiment       |VADER compound| of the sentence: how much it judges
    contrast        1 when it concedes or criticises ("though", "however", "underdeveloped", ...)
    verdict_cue     1 when it holds a word of overall judgement ("must-watch", "deserves", "nails", ...)
    position        where it starts in its review, 0 (first) to 1 (last)
    heading         1 for a heading or list item: no end mark and at most 8 words, or a leading "-"
    log_words       log(1 + words)
    aspect_lead     1 / (1 + the word position of its first aspect word), 0 without one: a sentence about
                    the aspect names it early ("The cinematography by ... is a standout")
    review_margin   cos_question minus the best cos_question among its own review's sentences (<= 0)
    review_probe_margin  the same for cos_probe: how it compares with the rest of its review
    names_film      1 when it names its review's film (the film's title without the year): a verdict on
                    the film usually does ("Escape is a must-watch")
    kind x feature  for each kind (opinion, verdict, praise, criticism, agreement) its flag times position,
                    contrast, verdict_cue, aspect_hit, sentiment, cos_probe and names_film, so one model weighs each
                    feature per kind

P(the sentence judges what is asked) = sigmoid(w . standardised(x) + b), a logistic regression fitted by
train/fit_opinion.py on evals/escape-opinion (one row per question and sentence, labelled by the
evidence), so it is calibrated on that data. A review judges the question when its best sentence reaches
the threshold chosen there (by cross-validation over questions); the reply quotes each such review's best
sentence. Stance (positive / negative / mixed) comes from VADER with the contrast rule; it is shown only
when the fitted file says its measured accuracy reached STANCE_BAR on labelled sentences.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .decide import read_fitted_json
from .errors import AnswerModelError
from .lexical import terms
from .kinds import AGREEMENT, CRITICISM, OPINION, PRAISE, VERDICT, Kind

OPINION_VERSION = 1
MODEL_PATH = Path(__file__).with_name("opinion_model.json")
STANCE_BAR = 0.85
KIND_FLAGS = (OPINION, VERDICT, PRAISE, CRITICISM, AGREEMENT)
INTERACTIONS = ("position", "contrast", "verdict_cue", "aspect_hit", "sentiment", "cos_probe", "names_film")
BASE_FEATURES = ("cos_question", "cos_probe", "margin", "aspect_hit", "sentiment", "contrast", "verdict_cue",
                 "position", "heading", "log_words", "names_film", "review_margin", "review_probe_margin", "aspect_lead")
FEATURES = BASE_FEATURES + tuple(f"{k}_x_{f}" for k in KIND_FLAGS for f in INTERACTIONS)
PROBES = {
    VERDICT: "Overall, the film is a must-see that deserves to be watched; I recommend it.",
    AGREEMENT: "Overall, the film is a must-see that deserves to be watched; I recommend it.",
    PRAISE: "The film's great strength is its excellent, masterful, standout work.",
    CRITICISM: "The film's weakness is that it is underdeveloped and falls short, though flawed.",
}
_CONTRAST = re.compile(r"\b(though|however|but|although|yet|while|despite|at the expense|without fully|"
                       r"underutiliz\w*|underdeveloped|surface-level|far-fetched|clich\w*|fails?|lacks?|"
                       r"weak\w*|flaw\w*|predictable|tropes?|not explored|aren't explored|eclipses)\b", re.I)
_VERDICT_CUE = re.compile(r"\b(must[- ]?(watch|see)|deserves|worth|recommend\w*|nails|riveting|triumph|"
                          r"masterpiece|high point|overall|ultimately|in the end|a stylish|essential|skip|avoid|"
                          r"lasting impression|final)\b", re.I)
_WORD = re.compile(r"[\w'’-]+")


@dataclass(frozen=True)
class OpinionModel:
    """The fitted logistic regression: standardisation, weights, threshold, and the stance check."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float
    stance_accuracy: float

    @property
    def show_stance(self) -> bool:
        return self.stance_accuracy >= STANCE_BAR

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """sigmoid(w . (x - mean) / scale + b) per row; empty in, empty out."""
        rows = np.asarray(rows, float)
        if len(rows) == 0:
            return np.zeros(0)
        return 1.0 / (1.0 + np.exp(-(((rows - self.mean) / self.scale) @ self.weights + self.bias)))

    def to_json(self, **extra) -> dict:
        return {"version": OPINION_VERSION, "features": list(FEATURES), "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "weights": self.weights.tolist(), "bias": self.bias,
                "threshold": self.threshold, "stance_accuracy": self.stance_accuracy} | extra

    @classmethod
    def from_json(cls, data: dict, where: str = "the opinion model") -> "OpinionModel":
        if data.get("version") != OPINION_VERSION or tuple(data.get("features", ())) != FEATURES:
            raise AnswerModelError(f"{where} was fitted for another feature set; refit it with train/fit_opinion.py.")
        try:
            model = cls(np.asarray(data["mean"], float), np.asarray(data["scale"], float),
                        np.asarray(data["weights"], float), float(data["bias"]), float(data["threshold"]),
                        float(data["stance_accuracy"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise AnswerModelError(f"{where} is incomplete or malformed ({exc}); refit it with train/fit_opinion.py.") from exc
        if not model.mean.shape == model.scale.shape == model.weights.shape == (len(FEATURES),):
            raise AnswerModelError(f"{where} has the wrong number of weights; refit it with train/fit_opinion.py.")
        return model


@lru_cache(maxsize=2)
def load_opinion_model(path: Path = MODEL_PATH) -> OpinionModel:
    data = read_fitted_json(path, "The opinion model", "train/fit_opinion.py", AnswerModelError)
    return OpinionModel.from_json(data, f"The opinion model {path}")


@dataclass(frozen=True)
class Judgement:
    """One sentence of one review, as an answer to an opinion question; offsets into the review text."""

    position: int  # passage position in the store
    review_id: str
    sentence: tuple[int, int]
    features: tuple[float, ...]
    probability: float = 0.0
    stance: str = ""  # positive, negative or mixed


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=20_000)
def sentiment(text: str) -> float:
    """VADER's compound score of a sentence, in [-1, 1] (cached: the same sentences come back)."""
    return float(_vader().polarity_scores(text)["compound"])


def stance(text: str) -> str:
    """positive when VADER's compound is >= 0.05 and nothing concedes; negative when it is <= -0.05 and
    something criticises; mixed otherwise (a judgement with a "though" in it, or no clear sign)."""
    score = sentiment(text)
    conceding = bool(_CONTRAST.search(text))
    if score >= 0.05 and not conceding:
        return "positive"
    if score <= -0.05 and conceding:
        return "negative"
    return "mixed"


@lru_cache(maxsize=256)
def _aspect_stems(aspect: tuple[str, ...]) -> frozenset[str]:
    return frozenset(stem for word in aspect for stem in terms(word))


def _heading(text: str, words: int) -> float:
    stripped = text.strip()
    return float(stripped.startswith("-") or (words <= 8 and not stripped.endswith((".", "!", "?", "”", "\""))))


def film_words(film: str) -> frozenset[str]:
    """The words of a film's title without a year in brackets ("Escape (2024)" -> {"escape"})."""
    return frozenset(w.casefold() for w in _WORD.findall(re.sub(r"\(\d{4}\)", " ", film or "")) if len(w) > 2)


def sentence_rows(kind: Kind, texts: list[str], cos_question: np.ndarray, cos_probe: np.ndarray,
                  positions: list[float], films: list[frozenset[str]] | None = None,
                  reviews: list[str] | None = None) -> np.ndarray:
    """One row of FEATURES per sentence (see the module docstring); one function for fitting and serving.
    `films` holds each sentence's film title words (none: names_film is 0), `reviews` its review (none:
    all one review)."""
    films = films or [frozenset()] * len(texts)
    reviews = reviews or [""] * len(texts)
    best_q: dict[str, float] = {}
    best_p: dict[str, float] = {}
    for r, cq, cp in zip(reviews, cos_question, cos_probe):
        best_q[r] = max(best_q.get(r, -1.0), float(cq))
        best_p[r] = max(best_p.get(r, -1.0), float(cp))
    best = float(np.max(cos_question)) if len(cos_question) else 0.0
    flags = [float(kind.name == k) for k in KIND_FLAGS]
    aspect = _aspect_stems(kind.aspect_terms)
    rows = []
    for text, cq, cp, where, film, review in zip(texts, cos_question, cos_probe, positions, films, reviews):
        words = [w.casefold() for w in _WORD.findall(text)]
        names = float(bool(film) and film <= set(words))
        contrast = float(bool(_CONTRAST.search(text)))
        cue = float(bool(_VERDICT_CUE.search(text)))
        stems = terms(text)
        hit = float(bool(aspect) and not aspect.isdisjoint(stems))
        lead = next((1.0 / (1 + n) for n, stem in enumerate(stems) if stem in aspect), 0.0)
        strength = abs(sentiment(text))
        base = [float(cq), float(cp), float(cq) - best, hit, strength, contrast, cue, float(where),
                _heading(text, len(words)), math.log1p(len(words)), names, float(cq) - best_q[review],
                float(cp) - best_p[review], lead]
        rows.append(base + [f * v for f in flags for v in (float(where), contrast, cue, hit, strength, float(cp), names)])
    return np.asarray(rows, float).reshape(len(texts), len(FEATURES))


def probe_text(kind: Kind) -> str:
    """What a sentence that answers this kind of question reads like, to embed as a second query."""
    if kind.name in PROBES:
        text = PROBES[kind.name]
        return f"{text} The {kind.aspect}." if kind.aspect else text
    return " ".join(kind.aspect_terms[:8]) or kind.aspect or "the film"


def sentence_candidates(kind: Kind, question_vector: np.ndarray, probe_vector: np.ndarray, review_ids: list[str],
                        store) -> tuple[list[tuple[int, str, tuple[int, int]]], list[str], np.ndarray]:
    """Every sentence (of at least 2 words) of the given reviews: (passage position, review id, span),
    its text and its row of FEATURES. A sentence shared by two overlapping passages counts once. One
    function for fitting and serving."""
    seen: set[tuple[str, int]] = set()
    where: list[tuple[int, str, tuple[int, int]]] = []
    vectors, texts, rel, films = [], [], [], []
    for review_id in review_ids:
        text = store.reviews[review_id].text
        film = film_words(store.reviews[review_id].film)
        for position in store.positions_of_review.get(review_id, []):
            passage = store.passages[position]
            for (s, e), vector in zip(passage.sentences, store.sentences_of(position)):
                if (review_id, s) in seen or len(text[s:e].split()) < 2:
                    continue
                seen.add((review_id, s))
                where.append((position, review_id, (s, e)))
                vectors.append(vector)
                texts.append(" ".join(text[s:e].split()))
                rel.append(s / max(1, len(text)))
                films.append(film)
    if not where:
        return [], [], np.zeros((0, len(FEATURES)))
    matrix = np.asarray(vectors, dtype=np.float32)
    return where, texts, sentence_rows(kind, texts, matrix @ question_vector, matrix @ probe_vector, rel, films,
                                       [r for _, r, _ in where])


def judgements(kind: Kind, question_vector: np.ndarray, probe_vector: np.ndarray, review_ids: list[str],
               store, model: OpinionModel) -> list[Judgement]:
    """Every candidate sentence of the given reviews scored, best first (ties: earlier review in
    `review_ids`, then earlier sentence)."""
    where, texts, rows = sentence_candidates(kind, question_vector, probe_vector, review_ids, store)
    probs = model.probabilities(rows)
    out = [Judgement(p, r, span, tuple(row), float(prob), stance(t))
           for (p, r, span), row, prob, t in zip(where, rows.tolist(), probs, texts)]
    order = {r: n for n, r in enumerate(review_ids)}
    return sorted(out, key=lambda j: (-j.probability, order[j.review_id], j.sentence))
