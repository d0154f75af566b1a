"""The composition root: open (or build) the index, load the model, and answer questions.

Settings are passed in; nothing here reads the environment (app.py and cli.py do).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np

from .answer import build_answer, build_opinion_answer
from .answer_types import TYPE_HINTS, question_type
from .chat import FOLD_MARGIN, Folded, clean_question, fold, readings
from .decide import AnswerModel, Candidate, candidates, content_terms, content_words, load_model, score
from .embed import Embedder
from .errors import CorpusError
from .kinds import in_context, question_kind
from .lexical import terms
from .opinion import OpinionModel, judgements, load_opinion_model, probe_text
from .passages import ChunkerSettings
from .precision import resolve as resolve_precision
from .rank import FEATURES as RANK_FEATURES, RANKER_VERSION
from .reader import READER_VERSION, load_reader
from .records import Answer, Hit, Passage, Review
from .retrieve import Filters, Query, Retriever, RetrievalSettings, score_key
from .build import BuildReport, open_index
from .store import Store, load_store
from .vectors import ANN_THRESHOLD

PER_REVIEW_LIMIT = 20  # "what each review says" lists at most this many reviews
CANDIDATE_DEPTH = 20  # fused passages whose sentences the answer decision weighs (besides the hits shown)
TYPED_DEPTH = 10  # and BM25 passages for the question plus the words of its answer type


@dataclass(frozen=True)
class Settings:
    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    model: str | None = None  # None: the packaged all-MiniLM-L6-v2
    chunker: ChunkerSettings = field(default_factory=ChunkerSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    index_factory: str | None = None  # None: Flat below ann_threshold passages, IVF<sqrt(n)>,Flat above
    ann_threshold: int = ANN_THRESHOLD
    query_cache: int = 1024  # questions whose vectors are kept (LRU); 0 switches the cache off
    precision: str = "auto"  # auto (bf16 where the CPU computes it natively, else fp32), fp32 or bf16
    build_engine: str = "local"  # where a build embeds: "local" (this process) or "ray" (qa/distributed.py)
    build_workers: int = 2  # Ray workers, each holding the model


def update_index(settings: Settings, embedder: Embedder, rebuild: bool = False,
                 progress: bool = False) -> tuple[Store, BuildReport]:
    """Load, update or build the index at settings.index_dir from settings.corpus_dir (qa/build.py),
    stamped with the ranker's and reader's versions: what `Engine.open` and a server's rebuild run."""
    return open_index(settings.corpus_dir, settings.index_dir, embedder, settings.chunker,
                      rebuild=rebuild, progress=progress, index_factory=settings.index_factory,
                      ann_threshold=settings.ann_threshold,
                      stamp={"ranker": {"version": RANKER_VERSION, "features": list(RANK_FEATURES)},
                             "reader": {"version": READER_VERSION}},
                      engine=settings.build_engine, workers=settings.build_workers)


@dataclass(frozen=True)
class SearchResult:
    """What retrieval found for one question: the folded question, what was searched, every fused
    candidate best first with its per-list scores, and the top k hits."""

    folded: Folded
    query: Query
    order: list[int]
    detail: dict[int, dict[str, float]]
    hits: list[Hit]


@dataclass(frozen=True)
class Prepared:
    text: str  # the cleaned question
    notices: tuple[str, ...]
    folded: Folded
    query: Query
    detail: dict
    hits: list[Hit]
    per_review: list[Hit]
    in_scope: int
    candidates: list[Candidate]


class Engine:
    """Holds the loaded store, model and retriever; `ask` keeps no per-user state."""

    def __init__(self, store: Store, embedder: Embedder, settings: Settings, report: BuildReport,
                 answer_model: AnswerModel | None = None, opinion_model: OpinionModel | None = None):
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.report = report
        self.retriever = Retriever(store, embedder)
        self.answer_model = answer_model or load_model()
        self.opinion_model = opinion_model or load_opinion_model()
        # The reader shares the embedder (one model in memory, at the index's precision).
        self.reader = load_reader().with_embedder(embedder) if self.answer_model.reader_scorer is not None else None
        self.precision_note = ""

    @classmethod
    def open(cls, settings: Settings = Settings(), rebuild: bool = False, progress: bool = True,
             embedder: Embedder | None = None, answer_model: AnswerModel | None = None,
             opinion_model: OpinionModel | None = None) -> "Engine":
        if not Path(settings.corpus_dir).is_dir():  # fail before the slow model load
            raise CorpusError(f"The corpus folder {settings.corpus_dir} does not exist; create it and add review files.")
        answer_model = answer_model or load_model()  # a missing or mismatched model file fails before the slow load too
        if answer_model.reader_scorer is not None:
            load_reader()  # and so does a missing or altered reader
        opinion_model = opinion_model or load_opinion_model()  # and a missing opinion model
        precision, why = resolve_precision(settings.precision)
        if embedder is None:
            embedder = Embedder(settings.model, query_cache_size=settings.query_cache, precision=precision)
        elif settings.precision != "auto":  # a shared embedder keeps its own precision unless one is named
            embedder.precision = precision
        store, report = update_index(settings, embedder, rebuild=rebuild, progress=progress)
        if settings.precision == "auto":  # questions at the precision the passages were embedded at
            built = store.manifest.get("precision", "fp32")
            if built == "fp32" or (built == "bf16" and precision == "bf16"):
                embedder.precision = built
        engine = cls(store, embedder, settings, report, answer_model, opinion_model)
        engine.precision_note = why
        return engine

    def reopen(self) -> "Engine":
        """A new engine over the index now committed at `settings.index_dir`, sharing this one's model,
        answer model and reader (nothing is loaded twice); this engine is left as it was, so requests
        that hold it finish on the old index. A missing, half-written or corrupt index, or one built
        with another model, raises the store's one-sentence error (IndexCorrupt, IndexMismatch,
        IndexNotBuilt)."""
        store = load_store(self.settings.index_dir, self.embedder.info)
        report = BuildReport("loaded", "a newer index was committed", warnings=tuple(store.manifest.get("warnings", ())))
        engine = type(self)(store, self.embedder, self.settings, report, self.answer_model, self.opinion_model)
        engine.reader = self.reader  # with its token cache: sentences read before the swap are not encoded again
        engine.precision_note = self.precision_note
        return engine

    def films(self) -> list[str]:
        return self.store.films()

    def index_facts(self) -> dict:
        """What the served index is, for health checks and votes: its build time (the index version),
        the model, the precision its vectors were stored at, and its size."""
        manifest = self.store.manifest
        return {"built_at": manifest.get("built_at"), "model": (manifest.get("model") or {}).get("id"),
                "precision": manifest.get("precision", "fp32"), "passages": len(self.store.passages),
                "reviews": len(self.store.reviews)}

    def _per_review(self, order: list[int], detail: dict, query_vector, filters: Filters,
                    key: str = "fused") -> tuple[list[Hit], int]:
        """The best passage of each review in scope, in retrieval order (at most PER_REVIEW_LIMIT), and the
        number of reviews in scope. Reviews that neither candidate list reached are scored densely over
        their own passages (when there are few reviews). `detail` is not modified."""
        best: dict[str, int] = {}
        for i in order:
            best.setdefault(self.store.passages[i].review_id, i)
        in_scope = self.retriever.reviews_in_scope(filters)  # their ids, or their number when unfiltered
        count = in_scope if isinstance(in_scope, int) else len(in_scope)
        scores = {i: detail[i] for i in best.values()}
        if count <= PER_REVIEW_LIMIT:
            everyone = self.store.reviews if isinstance(in_scope, int) else in_scope
            missing = [rid for rid in everyone if rid not in best]
        else:
            missing = []
        if missing:
            positions = [j for rid in missing for j in self.store.positions_of_review.get(rid, [])]
            for j, dense in zip(positions, self.retriever.dense_scores(positions, query_vector)):
                review_id = self.store.passages[j].review_id
                current = best.get(review_id)
                if current is None or float(dense) > scores[current]["dense"]:
                    best[review_id] = j
                    scores[j] = {"dense": float(dense), "fused": 0.0}
        place = {i: n for n, i in enumerate(order)}  # reviews the lists reached, in their order; then the rest
        ranked = sorted(best.values(), key=lambda j: (place.get(j, len(order)), -scores[j]["dense"]))[:PER_REVIEW_LIMIT]
        hits = [self.retriever.hit(j, n, scores[j], key, query_vector) for n, j in enumerate(ranked, 1)]
        return hits, count

    def retrieval_settings(self, k: int | None = None, mode: str | None = None,
                           per_review_cap: int | None | str = "default") -> RetrievalSettings:
        changes: dict = {}
        if k is not None:
            changes["k"] = int(k)
        if mode is not None:
            changes["mode"] = mode
        if per_review_cap != "default":
            changes["per_review_cap"] = per_review_cap
        return replace(self.settings.retrieval, **changes) if changes else self.settings.retrieval

    def search(self, question: str, history: list[str] | tuple[str, ...] = (), filters: Filters | None = None,
               retrieval: RetrievalSettings | None = None) -> SearchResult:
        """Fold the history in and retrieve: every stage, for evals and training (ask uses it too)."""
        folded = fold(question, [clean_question(h)[0] for h in history if h and str(h).strip()])
        return self._search(folded, filters or Filters(), retrieval or self.settings.retrieval)

    def _search(self, folded: Folded, filters: Filters, retrieval: RetrievalSettings) -> SearchResult:
        query = self.retriever.query(folded.question, folded.history_text)
        order, detail = self.retriever.ranked(query, retrieval, filters)
        return SearchResult(folded, query, order, detail, self.retriever.hits(order, detail, query, retrieval))

    # ------------------------------------------------------------ read-only views for callers

    @property
    def reviews(self) -> Mapping[str, Review]:
        """Review id -> Review, read only."""
        return MappingProxyType(self.store.reviews)

    @property
    def passages(self) -> Sequence[Passage]:
        """Every passage, by position (its FAISS id)."""
        return self.store.passages

    def position_of(self, passage_id: str) -> int:
        return self.store.position[passage_id]

    def scope(self, filters: Filters) -> np.ndarray | None:
        """Sorted positions of the passages the filters let through; None when nothing is filtered."""
        return self.retriever.scope(filters)

    def prepare(self, question: str, history: list[str] | tuple[str, ...], retrieval: RetrievalSettings,
                filters: Filters, reading: Folded | None = None, factoid: bool = True) -> Prepared:
        """Every stage before the answer decision: retrieval, the per-review view and (with `factoid`)
        the candidate sentences with their features (training reads these too, so it sees what serving
        sees). `reading` is the reading of the question to search (default: the one the rules settle)."""
        text, notices = clean_question(question)
        if reading is None:
            reading = fold(text, [clean_question(h)[0] for h in history if h and str(h).strip()])
        found = self._search(reading, filters, retrieval)
        folded, query, order, detail, hits = found.folded, found.query, found.order, found.detail, found.hits
        per_review, in_scope = self._per_review(order, detail, query.vector, filters, score_key(retrieval.mode))
        if not factoid:
            return Prepared(text, notices, folded, query, detail, hits, per_review, in_scope, [])
        typed: list[int] = []
        hints = TYPE_HINTS.get(question_type(text) or "")
        if hints:  # passages that use the words of the asked-for type ("minutes" for "how long")
            typed = self.retriever.lexical_top(f"{content_words(query.lexical_text)} {hints}", TYPED_DEPTH, filters)
        positions = list(dict.fromkeys([*(self.store.position[h.passage.id] for h in [*hits, *per_review]),
                                        *order[:CANDIDATE_DEPTH], *typed]))
        cands = candidates(text, query.lexical_text, query.vector, positions, self.store, self.retriever.terms,  # the ranker's cache too
                           order)
        return Prepared(text, notices, folded, query, detail, hits, per_review, in_scope, cands)

    def ask(self, question: str, history: list[str] | tuple[str, ...] = (), filters: Filters | None = None,
            retrieval: RetrievalSettings | None = None) -> Answer:
        """Answer one question within `filters` (default: everything) with `retrieval` (default: the
        engine's settings; `retrieval_settings(...)` derives variants). Each reading of the question in its
        conversation (qa/chat.py `readings`) is answered; of two, the folded one is kept only when it
        answers and its confidence beats the stand-alone one's by FOLD_MARGIN (or the stand-alone one
        does not answer). Raises BadQuestion for an empty question; keeps no state between calls."""
        retrieval = retrieval or self.settings.retrieval
        filters = filters or Filters()
        text, _ = clean_question(question)
        options = readings(text, [clean_question(h)[0] for h in history if h and str(h).strip()])
        answers = [self._answer(question, reading, retrieval, filters) for reading in options]
        if len(answers) == 1:
            return answers[0]
        alone, folded = answers
        if folded.answered and (not alone.answered or folded.confidence >= alone.confidence + FOLD_MARGIN) \
                and not self._answers_earlier_turn(folded, text, options[1].history_text or ""):
            return folded
        return alone

    def _answers_earlier_turn(self, answer: Answer, question: str, earlier: str) -> bool:
        """True when a folded reading's first quoted sentence shares no content term with the question
        but some with the earlier turn: it answers that turn again ("Running time: 1hr 34m" for "Who
        directed it?" after "What is the running time?")."""
        first = next((s for s in answer.answer_spans if s.kind == "sentence"), None)
        if first is None:
            return False
        review = self.store.reviews[answer.hits[first.rank - 1].passage.review_id]
        said = set(terms(review.text[first.start:first.end]))
        return said.isdisjoint(content_terms(question)) and not said.isdisjoint(content_terms(earlier))

    def _answer(self, question: str, reading: Folded, retrieval: RetrievalSettings, filters: Filters) -> Answer:
        """The reply to one reading: an opinion reply for opinion kinds (qa/opinion.py), else the factoid
        decision (qa/decide.py)."""
        kind = in_context(question_kind(reading.question), reading.history_text)
        p = self.prepare(question, (), retrieval, filters, reading, factoid=not kind.opinion)
        key = score_key(retrieval.mode)

        def make_hit(position: int, rank: int) -> Hit:
            return self.retriever.hit(position, rank, p.detail.get(position, {}), key, p.query.vector)

        used = reading.uses_history
        if kind.opinion:
            review_ids = [h.passage.review_id for h in p.per_review]
            probe = self.embedder.encode_query(probe_text(kind))
            judged = judgements(kind, p.query.vector, probe, review_ids, self.store, self.opinion_model)
            return build_opinion_answer(p.text, reading.query_used, kind, p.hits, p.per_review, self.store.reviews,
                                        p.in_scope, judged, self.opinion_model.threshold,
                                        self.opinion_model.show_stance, self.store.position, make_hit, p.notices, used)
        return build_answer(p.text, reading.query_used, p.hits, p.per_review, self.store.reviews, p.in_scope,
                            score(p.candidates, self.answer_model,
                                  self.reader.for_question(reading.query_used, self.store.reviews) if self.reader else None),
                            self.answer_model.threshold,
                            self.store.position, make_hit, p.notices, used)
