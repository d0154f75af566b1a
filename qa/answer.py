"""Hits + scored candidate sentences -> Answer: a short extractive reply with citations, or an abstention.

The decision (decide.py) scores every candidate sentence; this module turns the per-review decision into
the reply, the coverage line and the answer spans, so the three can never disagree.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from .decide import Candidate, best_per_review
from .records import Answer, AnswerSpan, Hit, Review

REPLY_SENTENCES = 3  # the best answer, then at most two more from other reviews


def abstention(in_scope: int) -> str:
    if in_scope == 0:
        return "No passage to quote: no review matches the chosen film, outlet or review."
    noun = "review" if in_scope == 1 else f"{in_scope} reviews"
    where = "the review" if in_scope == 1 else f"the {noun}"
    return f"The reviews don't say: nothing in {where} answers this question, so the closest passages are shown below."


def coverage_line(addressing: int, in_scope: int) -> str:
    noun = "review" if in_scope == 1 else "reviews"
    return f"{addressing} of {in_scope} {noun} address this question."


def _sentence(review: Review, span: tuple[int, int]) -> str:
    return " ".join(review.text[span[0]:span[1]].split())


def build_answer(question: str, query_used: str, hits: list[Hit], per_review: list[Hit], reviews: dict[str, Review],
                 in_scope: int, scored: list[Candidate], threshold: float, position_of: dict[str, int],
                 make_hit: Callable[[int, int], Hit], notices: tuple[str, ...] = ()) -> Answer:
    """The reply and the coverage line from one per-review decision.

    A review addresses the question when its best candidate sentence reaches `threshold`; the question
    is answered when any review does. The reply quotes the best addressing sentence first, then the best
    sentence of each further addressing review (at most REPLY_SENTENCES), each cited by its hit's rank;
    a cited passage outside the top hits joins them. Not answered: one plain sentence, and the hits
    stay as the closest passages. `scored` is sorted best first (decide.score).
    """
    best = best_per_review(scored)
    addressing = [c for c in best.values() if c.probability >= threshold]  # best first
    confidence = scored[0].probability if scored else 0.0
    best_of_hit: dict[int, Candidate] = {}
    for c in scored:
        best_of_hit.setdefault(c.position, c)

    def annotated(hit: Hit) -> Hit:
        c = best_of_hit.get(position_of[hit.passage.id])
        if c is None:  # no sentence of it can answer (none holds the asked-for type)
            return replace(hit, scores={**hit.scores, "answer": 0.0})
        return replace(hit, highlight=c.sentence, scores={**hit.scores, "answer": c.probability})

    hits = [annotated(h) for h in hits]
    per_review = [annotated(h) for h in per_review]
    lines: list[str] = []
    spans: list[AnswerSpan] = []
    seen: set[str] = set()
    for c in addressing:
        if len(lines) == REPLY_SENTENCES:
            break
        text = _sentence(reviews[c.review_id], c.sentence)
        if text.casefold() in seen:
            continue
        seen.add(text.casefold())
        rank = next((h.rank for h in hits if position_of[h.passage.id] == c.position), None)
        if rank is None:
            rank = len(hits) + 1
            hits.append(annotated(make_hit(c.position, rank)))  # annotated: highlights c, its passage's best
        lines.append(f"{text} [{rank}]")
        spans.append(AnswerSpan(rank, c.sentence[0], c.sentence[1], "sentence"))
        if c.answer_span is not None:
            spans.append(AnswerSpan(rank, c.answer_span[0], c.answer_span[1], "answer"))
    answered = bool(lines)
    summary = "\n".join(lines) if answered else abstention(in_scope)
    return Answer(question, query_used, tuple(hits), summary, coverage_line(len(addressing), in_scope),
                  tuple(per_review), notices, answered, round(confidence, 4), tuple(spans), len(addressing), in_scope)


def hit_json(hit: Hit, reviews: dict[str, Review], exact: tuple[int, int] | None = None) -> dict:
    p = hit.passage
    review = reviews[p.review_id]
    return {
        "rank": hit.rank,
        "score": round(hit.score, 6),
        "text": p.text,
        "highlight": [hit.highlight[0], hit.highlight[1]],
        "review_id": p.review_id,
        "title": review.title,
        "outlet": review.source.outlet,
        "author": review.source.author,
        "url": review.source.url,
        "film": review.film,
        "paragraph": p.paragraph,
        "start": p.start,
        "end": p.end,
        "scores": {k: round(v, 6) for k, v in hit.scores.items()},
        "answer_span": list(exact) if exact else None,
    }


def answer_json(answer: Answer, reviews: dict[str, Review]) -> dict:
    """The stable `qa ask --json` / API object (extra keys may be added, none removed)."""
    return {
        "question": answer.question,
        "query_used": answer.query_used,
        "answer": answer.summary,
        "answered": answer.answered,
        "confidence": answer.confidence,
        "answer_spans": [{"rank": s.rank, "start": s.start, "end": s.end, "kind": s.kind} for s in answer.answer_spans],
        "hits": [hit_json(h, reviews, answer.exact_answers.get(h.rank)) for h in answer.hits],
        "coverage": answer.coverage,
        "per_review": [hit_json(h, reviews) for h in answer.per_review],
        "notices": list(answer.notices),
    }
