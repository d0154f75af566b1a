"""Retrieval evals over BEIR-layout datasets: read, judge relevance, score with ranx, report, compare.

Dataset folder:
    queries.jsonl      {"_id", "text", "history"?: [earlier user turns], "answers"?: [strings],
                        "metadata"?: {"filter"?: {field: value}, "kind"?: str, ...}}
    corpus.jsonl       optional {"_id", "title", "text", "metadata"?}; absent: the configured corpus
    qrels/test.tsv     optional review-level labels: query-id, corpus-id, score
    evidence.jsonl     optional span labels {"query_id", "doc_id", "start", "end"}, offsets into the
                       document text exactly as given (mapped through ingest repair)

A passage is relevant to a query when it overlaps one of its evidence spans or contains one of its
answers after folding (NFKC, dashes and quotes folded, case folded, whitespace collapsed). Queries with
no relevant passage in their (filtered) pool are reported and left out of the scores.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import unicodedata
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import DatasetError
from .records import source_line

METRICS = ["mrr@10", "recall@1", "recall@5", "recall@10", "hit_rate@1", "hit_rate@5", "hit_rate@10", "ndcg@10"]
# Review-level (document) metrics, comparable with BEIR/MTEB tables: each review scored by its best
# passage (MaxP) in a deep fused list of REVIEW_DEPTH passages per retriever list.
REVIEW_METRICS = ["ndcg@10", "recall@100", "mrr@10", "hit_rate@5"]
REVIEW_DEPTH = 1000
PLOT_KS = list(range(1, 11))
# ranx's numba kernels warn about an int cast on every first call; it is harmless and noisy.
warnings.filterwarnings("ignore", message=".*unsafe cast from uint64 to int64.*")


STANCES = ("positive", "negative", "mixed")


def public_name(metric: str) -> str:
    return metric.replace("hit_rate", "hit")


# ---------------------------------------------------------------- folding

_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"), "-")
_QUOTES = {**dict.fromkeys(map(ord, "\u2018\u2019\u201a\u201b\u2032\u00b4`"), "'"),
           **dict.fromkeys(map(ord, "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"), '"')}


def fold_text(text: str) -> str:
    """NFKC, dashes to "-", curly quotes to straight, case folded, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).translate(_DASHES).translate(_QUOTES).casefold()
    return " ".join(text.split())


# ---------------------------------------------------------------- reading

@dataclass(frozen=True)
class EvalQuery:
    id: str
    text: str
    history: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()
    filter: dict = field(default_factory=dict)
    kind: str = ""
    answerable: bool = True  # False: `"answers": []` with `metadata.answerable: false`, scored for abstention


@dataclass
class Dataset:
    folder: Path
    queries: list[EvalQuery]
    corpus_path: Path | None
    qrels: dict[str, dict[str, int]] | None
    evidence: dict[str, list[tuple[str, int, int]]]
    stances: dict[str, dict[tuple[str, int, int], str]] = field(default_factory=dict)  # query -> evidence -> stance

    @property
    def name(self) -> str:
        return self.folder.name


def _jsonl(path: Path) -> list[tuple[int, dict]]:
    from .corpus import jsonl_objects

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason}).") from exc
    return jsonl_objects(text, str(path), DatasetError)


def _strings(value, path: Path, n: int, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DatasetError(f"{path} line {n}: '{name}' must be a list of strings.")
    return tuple(value)


def load_dataset(folder: str | Path) -> Dataset:
    """Read a BEIR-layout folder; any malformed line raises DatasetError naming file and line."""
    folder = Path(folder)
    queries_path = folder / "queries.jsonl"
    if not queries_path.is_file():
        raise DatasetError(f"{folder} has no queries.jsonl; an eval dataset needs one.")
    queries: list[EvalQuery] = []
    seen: set[str] = set()
    for n, obj in _jsonl(queries_path):
        qid, text = obj.get("_id"), obj.get("text")
        if not isinstance(qid, (str, int)) or not isinstance(text, str) or not text.strip():
            raise DatasetError(f"{queries_path} line {n}: each query needs an '_id' and a non-empty 'text'.")
        qid = str(qid)
        if qid in seen:
            raise DatasetError(f"{queries_path} line {n}: the query id '{qid}' is used twice.")
        seen.add(qid)
        meta = obj.get("metadata") or {}
        if not isinstance(meta, dict) or not isinstance(meta.get("filter", {}), dict):
            raise DatasetError(f"{queries_path} line {n}: 'metadata' and 'metadata.filter' must be objects.")
        queries.append(EvalQuery(qid, text, _strings(obj.get("history"), queries_path, n, "history"),
                                 _strings(obj.get("answers"), queries_path, n, "answers"),
                                 dict(meta.get("filter") or {}), str(meta.get("kind") or ""),
                                 meta.get("answerable") is not False))
    if not queries:
        raise DatasetError(f"{queries_path} holds no query.")

    qrels = None
    qrels_path = folder / "qrels" / "test.tsv"
    if qrels_path.is_file():
        qrels = {}
        for n, line in enumerate(qrels_path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or (n == 1 and line.lower().startswith("query-id")):
                continue
            parts = line.split("\t")
            if len(parts) != 3 or not re.fullmatch(r"-?\d+", parts[2].strip()):
                raise DatasetError(f"{qrels_path} line {n}: expected query-id<TAB>corpus-id<TAB>integer score.")
            if parts[0] not in seen:
                raise DatasetError(f"{qrels_path} line {n}: unknown query id '{parts[0]}'.")
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])

    evidence: dict[str, list[tuple[str, int, int]]] = {}
    stances: dict[str, dict[tuple[str, int, int], str]] = {}
    evidence_path = folder / "evidence.jsonl"
    if evidence_path.is_file():
        for n, obj in _jsonl(evidence_path):
            qid, doc, start, end = obj.get("query_id"), obj.get("doc_id"), obj.get("start"), obj.get("end")
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end and doc is not None):
                raise DatasetError(f"{evidence_path} line {n}: needs query_id, doc_id and integer start < end.")
            if str(qid) not in seen:
                raise DatasetError(f"{evidence_path} line {n}: unknown query id '{qid}'.")
            evidence.setdefault(str(qid), []).append((str(doc), start, end))
            if obj.get("stance") is not None:
                if obj["stance"] not in STANCES:
                    raise DatasetError(f"{evidence_path} line {n}: 'stance' must be one of {', '.join(STANCES)}.")
                stances.setdefault(str(qid), {})[(str(doc), start, end)] = obj["stance"]

    corpus_path = folder / "corpus.jsonl"
    if corpus_path.is_file():
        for n, obj in _jsonl(corpus_path):
            if obj.get("_id") is None or not isinstance(obj.get("text"), str):
                raise DatasetError(f"{corpus_path} line {n}: each document needs an '_id' and a 'text'.")
    return Dataset(folder, queries, corpus_path if corpus_path.is_file() else None, qrels, evidence, stances)


def dataset_corpus_dir(dataset: Dataset, cache_root: Path) -> Path:
    """A corpus folder holding only the dataset's corpus.jsonl, in a cache keyed by its content, so
    the store's own manifest check makes a second run embed nothing."""
    digest = hashlib.sha256(dataset.corpus_path.read_bytes()).hexdigest()[:16]
    target = cache_root / f"{dataset.name}-{digest}" / "corpus"
    if not (target / "corpus.jsonl").is_file():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dataset.corpus_path, target / "corpus.jsonl")
    return target


def open_dataset_engine(dataset: Dataset, settings, cache_root: Path, embedder=None, progress: bool = True,
                        answer_model=None):
    """The engine an eval runs against (the dataset's own corpus, indexed once into the cache, or the
    configured corpus) and the raw->repaired offset maps of its reviews."""
    from dataclasses import replace

    from .corpus import read_corpus
    from .engine import Engine

    if dataset.corpus_path is not None:
        corpus_dir = dataset_corpus_dir(dataset, cache_root)
        settings = replace(settings, corpus_dir=corpus_dir, index_dir=corpus_dir.parent / "index")
    engine = Engine.open(settings, progress=progress, embedder=embedder, answer_model=answer_model)
    return engine, read_corpus(settings.corpus_dir).offset_maps


def doc_id_of(review_id: str, from_dataset: bool) -> str:
    """BEIR doc id of a review: the row id for a dataset corpus.jsonl, the review id otherwise."""
    return review_id.split("#", 1)[1] if from_dataset and "#" in review_id else review_id


# ---------------------------------------------------------------- judging and scoring

@dataclass(frozen=True)
class ReplyJudgement:
    """How the reply fared: answered or not, its confidence, and which reply sentences answer."""

    answered: bool
    confidence: float
    sentences_right: tuple[bool, ...]  # one per reply sentence, in order
    summary: str
    answering_reviews: int = 0  # reviews with evidence for the question (0: the dataset has none for it)
    reviews_quoted: int = 0  # of those, how many the reply quotes a sentence of that overlaps their evidence
    stances: tuple[tuple[str, str], ...] = ()  # (labelled, replied) for each quoted sentence with a labelled stance

    @property
    def review_recall(self) -> float | None:
        return self.reviews_quoted / self.answering_reviews if self.answering_reviews else None

    @property
    def first_right(self) -> bool:
        return bool(self.sentences_right) and self.sentences_right[0]


@dataclass
class QueryResult:
    query: EvalQuery
    query_used: str
    ranked: list[int]  # passage positions, best first (top k)
    relevant: set[int]
    first_relevant: int | None  # 1-based rank, or None
    reply: ReplyJudgement | None = None

    @property
    def excluded(self) -> bool:
        return not self.relevant


@dataclass
class EvalResult:
    dataset: str
    retriever: str
    k: int
    per_review_cap: int | None
    metrics: dict[str, float]
    per_kind: dict[str, dict[str, float]]
    results: list[QueryResult]
    qrels: dict[str, dict[str, int]]
    run: dict[str, dict[str, float]]
    recall_curve: dict[int, float]
    answers: dict[str, float] = field(default_factory=dict)
    reliability: list[dict] = field(default_factory=list)
    review_qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    review_run: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def scored(self) -> list[QueryResult]:
        return [r for r in self.results if not r.excluded]

    def summary(self) -> dict:
        out = {"dataset": self.dataset, "retriever": self.retriever, "k": self.k,
               "per_review_cap": self.per_review_cap, "queries": len(self.scored),
               "excluded": [r.query.id for r in self.results if r.excluded and r.query.answerable],
               "unanswerable": sum(not r.query.answerable for r in self.results),
               "review_queries": len(self.review_qrels)}
        out.update(self.metrics)
        out.update(self.answers)
        return out


def relevant_passages(engine, query: EvalQuery, pool: list[int], offset_maps: dict, from_dataset: bool,
                      evidence: list[tuple[str, int, int]]) -> set[int]:
    answers = [fold_text(a) for a in query.answers if a.strip()]
    passages = engine.passages
    spans = gold_spans(query, evidence, offset_maps, sorted({passages[i].review_id for i in pool}), from_dataset)
    return {i for i in pool if span_answers(engine.reviews[passages[i].review_id].text,
                                            (passages[i].start, passages[i].end),
                                            spans.get(passages[i].review_id, []), answers)}


def gold_spans(query: EvalQuery, evidence: list[tuple[str, int, int]], offset_maps: dict,
               review_ids: list[str], from_dataset: bool) -> dict[str, list[tuple[int, int]]]:
    """The query's evidence spans per review id, in repaired-text offsets."""
    by_doc: dict[str, list[tuple[int, int]]] = {}
    for doc, start, end in evidence:
        by_doc.setdefault(doc, []).append((start, end))
    out: dict[str, list[tuple[int, int]]] = {}
    for review_id in review_ids:
        mapping = offset_maps.get(review_id)
        for start, end in by_doc.get(doc_id_of(review_id, from_dataset), ()):
            out.setdefault(review_id, []).append(mapping.span(start, end) if mapping is not None else (start, end))
    return out


def span_answers(text: str, span: tuple[int, int], spans: list[tuple[int, int]], answers: list[str]) -> bool:
    """A span of a review (a passage, or a quoted sentence) answers when it overlaps an evidence span of
    that review, or contains one of the folded `answers`; `text` is the review text, `answers` already
    folded (fold_text)."""
    start, end = span
    if any(s < end and start < e for s, e in spans):
        return True
    if not answers:
        return False
    folded = fold_text(text[start:end])
    return any(a and a in folded for a in answers)


def judge_reply(engine, query: EvalQuery, answer, offset_maps: dict, from_dataset: bool,
                evidence: list[tuple[str, int, int]], stances: dict | None = None) -> ReplyJudgement:
    """Judge each quoted sentence of the reply against the query's evidence spans and answers; count
    the reviews with evidence that the reply quotes (review recall) and pair each quoted sentence that
    overlaps a labelled stance with the stance the reply gave it."""
    quoted = [(answer.hits[s.rank - 1].passage.review_id, (s.start, s.end), s.stance)
              for s in answer.answer_spans if s.kind == "sentence"]
    every = sorted(engine.reviews) if evidence else []
    spans = gold_spans(query, evidence, offset_maps, every or sorted({r for r, _, _ in quoted}), from_dataset)
    answers = [fold_text(a) for a in query.answers if a.strip()]
    right = tuple(span_answers(engine.reviews[r].text, span, spans.get(r, []), answers) for r, span, _ in quoted)
    covered = {r for (r, span, _), ok in zip(quoted, right) if ok and spans.get(r)}
    labelled: list[tuple[str, str]] = []
    for doc_span, label in (stances or {}).items():
        doc, start, end = doc_span
        for r, (s, e), given in quoted:
            if doc_id_of(r, from_dataset) != doc or not given:
                continue
            mapping = offset_maps.get(r)
            gs, ge = mapping.span(start, end) if mapping is not None else (start, end)
            if gs < e and s < ge:
                labelled.append((label, given))
    return ReplyJudgement(answer.answered, answer.confidence, right, answer.summary,
                          sum(1 for r in spans if spans[r]), len(covered), tuple(labelled))


RELIABILITY_BINS = 10


def answer_metrics(results: list[QueryResult]) -> tuple[dict[str, float], list[dict]]:
    """Reply metrics and the reliability table.

    answered_rate            answered / answerable questions (those with answers or evidence)
    first_sentence_accuracy  answered answerable questions whose first reply sentence answers / answered ones
    reply_precision          mean over answered answerable questions of (answering reply sentences / sentences)
    first_line_rate          answerable questions whose first reply sentence answers / answerable questions
                             (an abstention counts as wrong)
    review_recall            mean over answerable questions with evidence of (reviews with evidence that the
                             reply quotes an evidence sentence of / reviews with evidence); an abstention is 0
    stance_accuracy          quoted sentences whose stance equals the labelled one / quoted labelled sentences
    abstention_rate          not answered / questions marked unanswerable
    ece                      sum over confidence bins of (questions in bin / answered) * |accuracy - mean confidence|,
                             over every answered question (an answer to an unanswerable one is wrong)
    A metric whose denominator is empty is left out. Reliability rows: bin, count, mean confidence, accuracy.
    """
    judged = [r for r in results if r.reply is not None]
    answerable = [r for r in judged if r.query.answerable and not r.excluded]
    unanswerable = [r for r in judged if not r.query.answerable]
    answered = [r for r in answerable if r.reply.answered]
    out: dict[str, float] = {}
    if answerable:
        out["answered_rate"] = round(len(answered) / len(answerable), 4)
    if answered:
        out["first_sentence_accuracy"] = round(sum(r.reply.first_right for r in answered) / len(answered), 4)
        out["reply_precision"] = round(sum(sum(r.reply.sentences_right) / len(r.reply.sentences_right)
                                           for r in answered) / len(answered), 4)
    if answerable:
        out["first_line_rate"] = round(sum(r.reply.first_right for r in answerable) / len(answerable), 4)
    recalls = [r.reply.review_recall for r in answerable if r.reply.review_recall is not None]
    if recalls:
        out["review_recall"] = round(sum(recalls) / len(recalls), 4)
    stances = [pair for r in judged for pair in r.reply.stances]
    if stances:
        out["stance_accuracy"] = round(sum(a == b for a, b in stances) / len(stances), 4)
    if unanswerable:
        out["abstention_rate"] = round(sum(not r.reply.answered for r in unanswerable) / len(unanswerable), 4)
    pairs = [(r.reply.confidence, r.reply.first_right and r.query.answerable)
             for r in answerable + unanswerable if r.reply.answered]
    table = reliability_table(pairs)
    if pairs:
        out["ece"] = round(expected_calibration_error(table), 4)
    return out, table


def expected_calibration_error(table: list[dict]) -> float:
    """sum over bins of (count / all counts) * |accuracy - mean confidence| (0 for an empty table)."""
    total = sum(row["count"] for row in table)
    return sum(row["count"] / total * abs(row["accuracy"] - row["confidence"]) for row in table) if total else 0.0


def reliability_table(pairs: list[tuple[float, bool]], bins: int = RELIABILITY_BINS) -> list[dict]:
    """Equal-width confidence bins over [0, 1]: count, mean confidence and accuracy of each non-empty bin."""
    rows = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(c, ok) for c, ok in pairs if lo <= c < hi or (b == bins - 1 and c == 1.0)]
        if inside:
            rows.append({"bin": f"{lo:.1f}-{hi:.1f}", "count": len(inside),
                         "confidence": round(sum(c for c, _ in inside) / len(inside), 4),
                         "accuracy": round(sum(ok for _, ok in inside) / len(inside), 4)})
    return rows


def _ranx_scores(qrels: dict, run: dict, metrics: list[str]) -> dict[str, float]:
    """ranx's means over the queries in `qrels`, rounded to 4 places; none at all (not zeros) when no
    query has a label, so a dataset labelled only at review level reports no passage-level numbers."""
    from ranx import Qrels, Run, evaluate

    if not qrels:
        return {}
    scores = evaluate(Qrels(qrels), Run(run), metrics, make_comparable=True)
    if isinstance(scores, float):
        scores = {metrics[0]: scores}
    return {public_name(m): round(float(v), 4) for m, v in scores.items()}


def evaluate_dataset(engine, dataset: Dataset, offset_maps: dict, mode: str | None = None, k: int = 10,
                     per_review_cap: int | None | str = "default", progress: bool = True) -> EvalResult:
    """Ask every query (with its history and filter), judge relevance over its pool, score with ranx."""
    from tqdm import tqdm

    from .chat import clean_question
    from .retrieve import Filters

    from_dataset = dataset.corpus_path is not None
    retrieval = engine.retrieval_settings(k=k, mode=mode, per_review_cap=per_review_cap)
    deep = replace(retrieval, depth=max(retrieval.depth, REVIEW_DEPTH), per_review_cap=None)
    results: list[QueryResult] = []
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    review_qrels: dict[str, dict[str, int]] = {}
    review_run: dict[str, dict[str, float]] = {}
    for query in tqdm(dataset.queries, desc="Evaluating", unit="query", disable=not progress):
        filters = Filters(metadata=query.filter)
        scope = engine.scope(filters)
        pool = list(range(len(engine.passages))) if scope is None else scope.tolist()
        relevant = relevant_passages(engine, query, pool, offset_maps, from_dataset,
                                     dataset.evidence.get(query.id, []))
        answer = engine.ask(query.text, query.history, filters, retrieval)
        ranked = [engine.position_of(h.passage.id) for h in answer.hits[:k]]  # cited extras come after k
        first = next((n for n, i in enumerate(ranked, 1) if i in relevant), None)
        results.append(QueryResult(query, answer.query_used, ranked, relevant, first,
                                   judge_reply(engine, query, answer, offset_maps, from_dataset,
                                               dataset.evidence.get(query.id, []), dataset.stances.get(query.id))))
        if dataset.qrels is not None:  # review-level labels: the dataset's own, else from the relevant passages
            labels = {d: s for d, s in dataset.qrels.get(query.id, {}).items() if s > 0}
        else:
            labels = {doc_id_of(engine.passages[i].review_id, from_dataset): 1 for i in relevant}
        if labels:
            review_qrels[query.id] = labels
            order = engine.search(clean_question(query.text)[0], query.history, filters, deep).order
            review_run[query.id] = maxp([doc_id_of(engine.passages[i].review_id, from_dataset) for i in order])
        if not relevant:
            continue
        qrels[query.id] = {engine.passages[i].id: 1 for i in relevant}
        run[query.id] = {engine.passages[i].id: float(len(ranked) - n) for n, i in enumerate(ranked)}
        if not run[query.id]:
            run[query.id] = {"(nothing retrieved)": 0.0}
    metrics = _ranx_scores(qrels, run, METRICS)
    review = _ranx_scores(review_qrels, review_run, REVIEW_METRICS)
    metrics.update({f"review_{m}": v for m, v in review.items()})
    kinds = sorted({r.query.kind for r in results if r.query.kind})
    per_kind = {}
    for kind in kinds:
        ids = [r.query.id for r in results if r.query.kind == kind and not r.excluded]
        if ids:
            per_kind[kind] = {"queries": len(ids), **_ranx_scores({q: qrels[q] for q in ids},
                                                                  {q: run[q] for q in ids}, ["mrr@10", "hit_rate@5"])}
    curve = {}
    if qrels:
        curve_scores = _ranx_scores(qrels, run, [f"recall@{n}" for n in PLOT_KS if n <= k])
        curve = {n: curve_scores[f"recall@{n}"] for n in PLOT_KS if n <= k}
    answers, reliability = answer_metrics(results)
    return EvalResult(dataset.name, retrieval.mode, k, retrieval.per_review_cap, metrics, per_kind, results, qrels, run, curve,
                      answers, reliability, review_qrels, review_run)


def maxp(docs_of_ranked_passages: list[str]) -> dict[str, float]:
    """A review ranking from a passage ranking (MaxP): each review takes the rank of its best passage;
    scores are n, n-1, ... for the n distinct reviews in order of first appearance. An empty ranking
    gives a placeholder so ranx still counts the query (as a miss)."""
    docs = list(dict.fromkeys(docs_of_ranked_passages))
    return {d: float(len(docs) - n) for n, d in enumerate(docs)} or {"(nothing retrieved)": 0.0}


# ---------------------------------------------------------------- gates

ANSWER_METRICS = ("answered_rate", "first_sentence_accuracy", "reply_precision", "abstention_rate",
                  "first_line_rate", "review_recall", "stance_accuracy")
GATED_METRICS = tuple([public_name(m) for m in METRICS] + [f"review_{public_name(m)}" for m in REVIEW_METRICS]
                      + list(ANSWER_METRICS))  # higher is better for each; ece (lower is better) is not gated


def parse_bar(text: str) -> tuple[str, float]:
    """`metric=value` (e.g. "mrr@10=0.70") -> (metric, value); the metric must be one of GATED_METRICS."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep:
        raise ValueError(f"expected METRIC=VALUE, such as mrr@10=0.70, not {text!r}")
    if name not in GATED_METRICS:
        raise ValueError(f"unknown metric {name!r}; choose from {', '.join(GATED_METRICS)}")
    try:
        return name, float(value)
    except ValueError:
        raise ValueError(f"the bar for {name} must be a number, not {value.strip()!r}") from None


def below_bars(values: dict[str, float], bars: list[tuple[str, float]]) -> list[str]:
    """One phrase per bar not met: "mrr@10 0.6123 < 0.70". A value equal to its bar passes; a metric the
    dataset could not measure (no unanswerable questions for abstention_rate, say) fails, saying so."""
    out = []
    for name, bar in bars:
        if name not in values:
            out.append(f"{name} not measured on this dataset (bar {bar:g})")
        elif values[name] < bar:
            out.append(f"{name} {values[name]:.4f} < {bar:g}")
    return out


# ---------------------------------------------------------------- outputs

def _source(engine, position: int) -> str:
    p = engine.passages[position]
    return source_line(engine.reviews[p.review_id], p)


def _snippet(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


PER_QUERY_FIELDS = ["query_id", "kind", "question", "query_used", "first_relevant_rank", "relevant_in_pool",
                    *(f"top{n}_{part}" for n in range(1, 4) for part in ("text", "source", "relevant"))]


def per_query_rows(result: EvalResult, engine) -> list[dict]:
    """One row per query (PER_QUERY_FIELDS): its first relevant rank and its top 3 passages with sources."""
    rows = []
    for r in result.results:
        row = {"query_id": r.query.id, "kind": r.query.kind, "question": r.query.text, "query_used": r.query_used,
               "first_relevant_rank": "" if r.first_relevant is None else r.first_relevant,
               "relevant_in_pool": len(r.relevant)}
        for n, i in enumerate(r.ranked[:3], 1):
            row.update({f"top{n}_text": _snippet(engine.passages[i].text), f"top{n}_source": _source(engine, i),
                        f"top{n}_relevant": int(i in r.relevant)})
        rows.append(row)
    return rows


def metric_rows(summary: dict) -> list[list]:
    """[name, value] rows of a metrics summary (EvalResult.summary() or a metrics.json), for a table."""
    skip = {"dataset", "retriever", "k", "per_review_cap", "queries", "excluded", "per_kind", "recall_curve",
            "reliability", "unanswerable", "review_queries"}
    return [["queries scored", summary.get("queries")]] + [[name, value] for name, value in summary.items()
                                                            if name not in skip]


def write_outputs(result: EvalResult, engine, out: Path) -> None:
    """metrics.json, per_query.csv, run.trec, qrels.trec, review_run.trec, review_qrels.trec, answers.csv,
    report.md, recall_at_k.png and reliability.png in `out`."""
    from ranx import Qrels, Run

    out.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    summary["per_kind"] = result.per_kind
    summary["recall_curve"] = result.recall_curve
    summary["reliability"] = result.reliability
    (out / "metrics.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with open(out / "per_query.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, PER_QUERY_FIELDS, restval="")
        writer.writeheader()
        writer.writerows(per_query_rows(result, engine))
    if result.run:
        Run(result.run, name=f"{result.dataset}-{result.retriever}").save(str(out / "run.trec"), kind="trec")
        Qrels(result.qrels).save(str(out / "qrels.trec"), kind="trec")
    if result.review_run:
        Run(result.review_run, name=f"{result.dataset}-{result.retriever}-maxp").save(str(out / "review_run.trec"),
                                                                                      kind="trec")
        Qrels(result.review_qrels).save(str(out / "review_qrels.trec"), kind="trec")
    with open(out / "answers.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["query_id", "answerable", "answered", "confidence", "first_right", "reply_precision", "reply",
                         "review_recall"])
        for r in result.results:
            if r.reply is None or (r.excluded and r.query.answerable):
                continue
            right = r.reply.sentences_right
            writer.writerow([r.query.id, int(r.query.answerable), int(r.reply.answered), r.reply.confidence,
                             int(r.reply.first_right), round(sum(right) / len(right), 4) if right else "",
                             r.reply.summary, "" if r.reply.review_recall is None else round(r.reply.review_recall, 4)])
    (out / "report.md").write_text(report_markdown(result, engine), encoding="utf-8")
    plot_recall(result, out / "recall_at_k.png")
    plot_reliability(result.reliability, out / "reliability.png", f"{result.dataset}: reliability of answers")


def plot_recall(result: EvalResult, path) -> None:
    """Recall@k against k, as a PNG written to `path` (a file name or a binary file object)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ks = sorted(result.recall_curve)
    ax.plot(ks, [result.recall_curve[k] for k in ks], marker="o")
    ax.set_xlabel("k")
    ax.set_ylabel("Recall@k (passages)")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(ks or [1])
    ax.grid(alpha=0.3)
    ax.set_title(f"{result.dataset}: {result.retriever}, {len(result.scored)} queries")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_reliability(table: list[dict], path, title: str) -> None:
    """Accuracy against mean confidence per bin (each dot labelled with its question count), beside the
    diagonal, as a PNG written to `path` (a file name or a binary file object)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    if table:
        ax.plot([r["confidence"] for r in table], [r["accuracy"] for r in table], marker="o", label="answered questions")
        for r in table:
            ax.annotate(str(r["count"]), (r["confidence"], r["accuracy"]), textcoords="offset points", xytext=(4, -10),
                        fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence (mean per bin)")
    ax.set_ylabel("share whose first reply sentence answers")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def reply_problems(result: EvalResult) -> list[QueryResult]:
    """Wrong answers (answered, first sentence wrong) then false abstentions, then answers to
    unanswerable questions."""
    judged = [r for r in result.results if r.reply is not None]
    wrong = [r for r in judged if r.query.answerable and not r.excluded and r.reply.answered and not r.reply.first_right]
    missed = [r for r in judged if r.query.answerable and not r.excluded and not r.reply.answered]
    false = [r for r in judged if not r.query.answerable and r.reply.answered]
    return wrong + missed + false


def misses_first(result: EvalResult) -> list[QueryResult]:
    """Scored queries, misses first, then by rank of the first relevant passage, worst first."""
    return sorted(result.scored, key=lambda r: (r.first_relevant is not None, -(r.first_relevant or 0)))


def report_markdown(result: EvalResult, engine) -> str:
    lines = [f"# Eval: {result.dataset} ({result.retriever}, k={result.k}, per-review cap {result.per_review_cap})", "",
             f"{len(result.scored)} queries scored; {len(result.results) - len(result.scored)} left out "
             "(no relevant passage in their pool).", "", "| metric | value |", "|---|---|"]
    lines += [f"| {m} | {v:.4f} |" for m, v in result.metrics.items()]
    if result.per_kind:
        lines += ["", "| kind | queries | mrr@10 | hit@5 |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['queries']} | {v['mrr@10']:.4f} | {v['hit@5']:.4f} |" for k, v in result.per_kind.items()]
    if result.answers:
        lines += ["", "## Replies", "", "| metric | value |", "|---|---|"]
        lines += [f"| {m} | {v:.4f} |" for m, v in result.answers.items()]
        if result.reliability:
            lines += ["", "| confidence bin | questions | mean confidence | accuracy |", "|---|---|---|---|"]
            lines += [f"| {r['bin']} | {r['count']} | {r['confidence']:.3f} | {r['accuracy']:.3f} |" for r in result.reliability]
        problems = reply_problems(result)
        if problems:
            lines += ["", "### Wrong answers, false abstentions, answers to unanswerable questions", ""]
            for r in problems:
                if not r.query.answerable:
                    what = "answered an unanswerable question"
                elif r.reply.answered:
                    what = "wrong first sentence"
                else:
                    what = "false abstention"
                reply = " / ".join(r.reply.summary.split("\n"))
                lines.append(f"- {r.query.id}: {r.query.text} ({what}, confidence {r.reply.confidence:.2f}): {_snippet(reply, 200)}")
    lines += ["", "## Queries, misses first", ""]
    for r in misses_first(result):
        status = "MISS" if r.first_relevant is None else f"first relevant at rank {r.first_relevant}"
        lines.append(f"### {r.query.id}: {r.query.text} ({status})")
        if r.query_used != r.query.text:
            lines.append(f"- searched for: {r.query_used}")
        if r.query.answers:
            lines.append(f"- answers: {' | '.join(r.query.answers)}")
        for n, i in enumerate(r.ranked[:3], 1):
            mark = "✓" if i in r.relevant else "✗"
            lines.append(f"- {n}. {mark} {_snippet(engine.passages[i].text, 140)} ({_source(engine, i)})")
        lines.append("")
    excluded = [r for r in result.results if r.excluded]
    if excluded:
        lines += ["## Left out (no relevant passage in the pool)", ""]
        lines += [f"- {r.query.id}: {r.query.text}" for r in excluded]
    return "\n".join(lines) + "\n"


def compare_runs(out_a: Path, out_b: Path, metrics: list[str] | None = None) -> str:
    """Paired significance (two-sided paired t-test, ranx) per metric between two eval outputs."""
    from ranx import Qrels, Run, compare

    if not any((out / "run.trec").is_file() for out in (out_a, out_b)) and all(
            (out / "answers.csv").is_file() for out in (out_a, out_b)):  # only unanswerable questions
        return compare_replies(out_a / "answers.csv", out_b / "answers.csv", f"A:{out_a.name}", f"B:{out_b.name}")
    for out in (out_a, out_b):
        for name in ("run.trec", "qrels.trec"):
            if not (out / name).is_file():
                raise DatasetError(f"{out} has no {name}; run `qa eval DATASET --out {out}` first.")
    qrels_a = Qrels.from_file(str(out_a / "qrels.trec"), kind="trec")
    qrels_b = Qrels.from_file(str(out_b / "qrels.trec"), kind="trec")
    if qrels_a.to_dict() != qrels_b.to_dict():
        return _compare_own_labels(out_a, out_b, qrels_a, qrels_b, metrics or METRICS)
    runs = []
    for out in (out_a, out_b):
        run = Run.from_file(str(out / "run.trec"), kind="trec")
        run.name = out.name
        runs.append(run)
    if runs[0].name == runs[1].name:
        runs[0].name, runs[1].name = f"A:{runs[0].name}", f"B:{runs[1].name}"
    metrics = metrics or METRICS
    report = compare(qrels_a, runs=runs, metrics=metrics, max_p=0.05, stat_test="student",
                     make_comparable=True).to_dict()
    a, b = runs[0].name, runs[1].name
    rows = [("metric", a, b, "B-A", "p (paired t)", "B win/tie/loss", "")]
    for m in metrics:
        sa, sb = report[a]["scores"][m], report[b]["scores"][m]
        p = report[a]["comparisons"][b][m]
        wtl = report[b]["win_tie_loss"][a][m]
        rows.append((public_name(m), f"{sa:.4f}", f"{sb:.4f}", f"{sb - sa:+.4f}", f"{p:.4f}",
                     f"{wtl['W']}/{wtl['T']}/{wtl['L']}", "significant" if p < 0.05 else ""))
    lines = text_table(rows)
    n = len(qrels_a.to_dict())
    lines.append(f"{n} queries; two-sided paired Student t-test per metric (ranx), significant at p < 0.05.")
    if (out_a / "answers.csv").is_file() and (out_b / "answers.csv").is_file():
        lines += ["", compare_replies(out_a / "answers.csv", out_b / "answers.csv", a, b)]
    return "\n".join(lines)


def _compare_own_labels(out_a: Path, out_b: Path, qrels_a, qrels_b, metrics: list[str]) -> str:
    """Two runs whose passage labels differ, as when the chunker changed (passage ids and boundaries move):
    each run is scored per query against its own labels, and the paired t-test (scipy, as ranx's
    "student") runs over the questions both kept. Runs of different datasets share no question: refused."""
    from ranx import Run, evaluate
    from scipy.stats import ttest_rel

    common = sorted(qrels_a.to_dict().keys() & qrels_b.to_dict().keys())
    if not common:
        raise DatasetError(f"{out_a} and {out_b} share no scored question; compare runs of one dataset.")
    a, b = (f"A:{out_a.name}", f"B:{out_b.name}") if out_a.name == out_b.name else (out_a.name, out_b.name)
    per_query = []
    for out, qrels in ((out_a, qrels_a), (out_b, qrels_b)):
        run = Run.from_file(str(out / "run.trec"), kind="trec")
        scores = evaluate(qrels, run, metrics, return_mean=False, make_comparable=True)
        ids = list(qrels.to_dict())
        per_query.append({m: dict(zip(ids, scores[m])) for m in metrics})
    rows = [("metric", a, b, "B-A", "p (paired t)", "B win/tie/loss", "")]
    for m in metrics:
        va = [float(per_query[0][m][q]) for q in common]
        vb = [float(per_query[1][m][q]) for q in common]
        p = float(ttest_rel(va, vb).pvalue) if va != vb else 1.0
        p = 1.0 if p != p else p
        wins, losses = sum(y > x for x, y in zip(va, vb)), sum(y < x for x, y in zip(va, vb))
        rows.append((public_name(m), f"{sum(va) / len(va):.4f}", f"{sum(vb) / len(vb):.4f}",
                     f"{(sum(vb) - sum(va)) / len(va):+.4f}", f"{p:.4f}",
                     f"{wins}/{len(common) - wins - losses}/{losses}", "significant" if p < 0.05 else ""))
    lines = text_table(rows)
    lines.append(f"{len(common)} queries scored by both ({len(qrels_a.to_dict())} and {len(qrels_b.to_dict())}); "
                 "the passage labels differ (another chunker?), so each run is scored against its own; "
                 "two-sided paired Student t-test per metric (scipy), significant at p < 0.05.")
    if (out_a / "answers.csv").is_file() and (out_b / "answers.csv").is_file():
        lines += ["", compare_replies(out_a / "answers.csv", out_b / "answers.csv", a, b)]
    return "\n".join(lines)


def _reply_rows(path: Path) -> dict[str, dict]:
    with open(path, encoding="utf-8") as handle:
        return {r["query_id"]: r for r in csv.DictReader(handle)}


def compare_replies(path_a: Path, path_b: Path, name_a: str = "A", name_b: str = "B") -> str:
    """Paired t-tests (scipy) on per-question reply outcomes: answered (answerable questions), first
    sentence right (questions both runs answered), abstained (unanswerable questions)."""
    from scipy.stats import ttest_rel

    rows_a, rows_b = _reply_rows(path_a), _reply_rows(path_b)
    common = sorted(rows_a.keys() & rows_b.keys())
    outcomes = {
        "answered_rate": [(q, "answered") for q in common if rows_a[q]["answerable"] == "1"],
        "first_sentence_accuracy": [(q, "first_right") for q in common if rows_a[q]["answerable"] == "1"
                                    and rows_a[q]["answered"] == "1" and rows_b[q]["answered"] == "1"],
        "abstention_rate": [(q, "abstained") for q in common if rows_a[q]["answerable"] == "0"],
        "first_line_rate": [(q, "first_right") for q in common if rows_a[q]["answerable"] == "1"],
        "review_recall": [(q, "review_recall") for q in common if rows_a[q].get("review_recall")
                          and rows_b[q].get("review_recall")],
    }
    table = [("reply metric", name_a, name_b, "B-A", "p (paired t)", "questions", "")]
    for metric, keys in outcomes.items():
        if not keys:
            continue

        def value(row, column):
            return 1.0 - float(row["answered"]) if column == "abstained" else float(row[column])

        va = [value(rows_a[q], c) for q, c in keys]
        vb = [value(rows_b[q], c) for q, c in keys]
        p = float(ttest_rel(va, vb).pvalue) if va != vb else 1.0
        p = 1.0 if p != p else p  # nan when the differences are constant
        ma, mb = sum(va) / len(va), sum(vb) / len(vb)
        table.append((metric, f"{ma:.4f}", f"{mb:.4f}", f"{mb - ma:+.4f}", f"{p:.4f}", str(len(keys)),
                      "significant" if p < 0.05 else ""))
    return "\n".join(text_table(table))


def text_table(rows: list[tuple[str, ...]]) -> list[str]:
    """Left-aligned columns, the first row a header underlined with dashes."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines
