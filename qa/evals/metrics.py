"""Scoring a dataset: every query asked as a reader would ask it, its pool judged, ranx's metrics.

Passage metrics (ranx, means over the scored queries): mrr@10 = mean of 1 / rank of the first relevant
passage in the top 10 (0 when none); recall@k = relevant passages in the top k / relevant passages in the
pool; hit_rate@k = share of queries with a relevant passage in the top k; ndcg@10 with binary gains.
Review metrics: the same over reviews ranked by their best passage (MaxP) in a deep fused list of
REVIEW_DEPTH passages, against the dataset's qrels. Reply metrics: `answer_metrics` states each formula.
Queries with no relevant passage in their (filtered) pool are reported and left out of the scores.
"""

from __future__ import annotations
import warnings
from dataclasses import dataclass, field, replace

from .datasets import Dataset, EvalQuery, doc_id_of
from .relevance import ReplyJudgement, judge_reply, relevant_passages

# ranx's numba kernels warn about an int cast on every first call; it is harmless and noisy.
warnings.filterwarnings("ignore", message=".*unsafe cast from uint64 to int64.*")


METRICS = ["mrr@10", "recall@1", "recall@5", "recall@10", "hit_rate@1", "hit_rate@5", "hit_rate@10", "ndcg@10"]


# Review-level (document) metrics, comparable with BEIR/MTEB tables: each review scored by its best
# passage (MaxP) in a deep fused list of REVIEW_DEPTH passages per retriever list.
REVIEW_METRICS = ["ndcg@10", "recall@100", "mrr@10", "hit_rate@5"]


REVIEW_DEPTH = 1000


PLOT_KS = list(range(1, 11))


def public_name(metric: str) -> str:
    return metric.replace("hit_rate", "hit")


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

    from ..chat import clean_question
    from ..retrieve import Filters

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
