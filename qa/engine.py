"""The composition root: open (or build) the index, load the model, and answer questions.

Settings are passed in; nothing here reads the environment (app.py and cli.py do).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from .answer import build_answer
from .chat import Folded, clean_question, fold
from .embed import Embedder
from .errors import CorpusError
from .passages import ChunkerSettings
from .records import Answer, Hit
from .retrieve import Filters, Query, Retriever, RetrievalSettings
from .store import ANN_THRESHOLD, BuildReport, Store, open_index

PER_REVIEW_LIMIT = 20  # "what each review says" lists at most this many reviews


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


class Engine:
    """Holds the loaded store, model and retriever; `ask` keeps no per-user state."""

    def __init__(self, store: Store, embedder: Embedder, settings: Settings, report: BuildReport):
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.report = report
        self.retriever = Retriever(store, embedder)

    @classmethod
    def open(cls, settings: Settings = Settings(), rebuild: bool = False, progress: bool = True,
             embedder: Embedder | None = None) -> "Engine":
        if not Path(settings.corpus_dir).is_dir():  # fail before the slow model load
            raise CorpusError(f"The corpus folder {settings.corpus_dir} does not exist; create it and add review files.")
        embedder = embedder or Embedder(settings.model, query_cache_size=settings.query_cache)
        store, report = open_index(settings.corpus_dir, settings.index_dir, embedder, settings.chunker,
                                   rebuild=rebuild, progress=progress, index_factory=settings.index_factory,
                                   ann_threshold=settings.ann_threshold)
        return cls(store, embedder, settings, report)

    def films(self) -> list[str]:
        return self.store.films()

    def _per_review(self, order: list[int], detail: dict, query_vector, filters: Filters) -> list[Hit]:
        """The best passage of each review in scope, in fused order; reviews that neither candidate
        list reached are scored densely over their own passages (when there are few reviews)."""
        best: dict[str, int] = {}
        for i in order:
            best.setdefault(self.store.passages[i].review_id, i)
        in_scope = self.retriever.allowed_reviews(filters)
        missing = in_scope - best.keys()
        if missing and len(in_scope) <= PER_REVIEW_LIMIT:
            positions = [j for rid in missing for j in self.store.positions_of_review.get(rid, [])]
            for j, score in zip(positions, self.retriever.dense_scores(positions, query_vector)):
                review_id = self.store.passages[j].review_id
                detail[j] = {"dense": float(score), "fused": 0.0}
                current = best.get(review_id)
                if current is None or detail[j]["dense"] > detail[current]["dense"]:
                    best[review_id] = j
        ranked = sorted(best.values(), key=lambda j: -detail[j].get("fused", 0.0))[:PER_REVIEW_LIMIT]
        return [self.retriever.hit(j, n, detail[j], "fused", query_vector) for n, j in enumerate(ranked, 1)]

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

    def search(self, question: str, history: list[str] | tuple[str, ...], retrieval: RetrievalSettings,
               filters: Filters = Filters()) -> tuple[Folded, Query, list[int], dict, list[Hit]]:
        """Fold the history in, retrieve, and return every stage (evals use the full fused order)."""
        folded = fold(question, [clean_question(h)[0] for h in history if h and str(h).strip()])
        query = self.retriever.query(question, folded.history_text)
        order, detail = self.retriever.ranked(query, retrieval, filters)
        return folded, query, order, detail, self.retriever.hits(order, detail, query, retrieval)

    def ask(self, question: str, history: list[str] | tuple[str, ...] = (), film: str | None = None,
            outlet: str | None = None, review_ids: tuple[str, ...] | None = None, k: int | None = None,
            mode: str | None = None, per_review_cap: int | None | str = "default",
            metadata: dict | None = None) -> Answer:
        """Answer one question. Raises BadQuestion for an empty one; never keeps state between calls."""
        text, notices = clean_question(question)
        retrieval = self.retrieval_settings(k, mode, per_review_cap)
        filters = Filters(film=film or None, outlet=outlet or None, review_ids=review_ids,
                          metadata=metadata or {})
        folded, query, order, detail, hits = self.search(text, history, retrieval, filters)
        per_review = self._per_review(order, detail, query.vector, filters)
        scope = {h.passage.review_id for h in per_review}
        return build_answer(text, folded.query_used, hits, per_review, self.store.reviews, len(scope), notices)
