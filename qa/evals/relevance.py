"""Judging: which passages are relevant to a query, and which sentences of a reply answer it.

A passage is relevant to a query when it overlaps one of its evidence spans (mapped from raw offsets
through ingest repair) or contains one of its answers after folding (`fold_text`: NFKC, dashes and
quotes folded, case folded, whitespace collapsed). A reply sentence answers when it overlaps an evidence
span of the same review, or contains an answer string after folding. Review recall of a reply: the reviews
with evidence whose evidence the reply quotes, over the reviews with evidence.
"""

from __future__ import annotations
import unicodedata

from dataclasses import dataclass

from .datasets import EvalQuery, doc_id_of


_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"), "-")


_QUOTES = {**dict.fromkeys(map(ord, "\u2018\u2019\u201a\u201b\u2032\u00b4`"), "'"),
           **dict.fromkeys(map(ord, "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"), '"')}


def fold_text(text: str) -> str:
    """NFKC, dashes to "-", curly quotes to straight, case folded, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).translate(_DASHES).translate(_QUOTES).casefold()
    return " ".join(text.split())


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
