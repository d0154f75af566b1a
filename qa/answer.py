"""Hits + scored candidate sentences -> Answer: a short extractive reply with citations, or an abstention.

The decision (decide.py) scores every candidate sentence; this module turns the per-review decision into
the reply, the coverage line and the answer spans, so the three can never disagree.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from .decide import Candidate, best_per_review
from .kinds import AGREEMENT, CRITICISM, PRAISE, VERDICT, Kind, aspect_name
from .opinion import Judgement
from .records import Answer, AnswerSpan, Hit, Review

REPLY_SENTENCES = 3  # the best answer, then at most two more from other reviews
OPINION_LINES = 5  # an opinion reply quotes at most this many reviews, then says how many more judge it
STANCE_MARKS = {"positive": "👍", "negative": "👎", "mixed": "〰"}


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
                 make_hit: Callable[[int, int], Hit], notices: tuple[str, ...] = (), used_history: bool = False) -> Answer:
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
                  tuple(per_review), notices, answered, round(confidence, 4), tuple(spans), len(addressing), in_scope,
                  "fact", used_history)


def _judges(kind: Kind) -> str:
    """What a review does when it answers this kind of question, for the coverage line and abstention."""
    if kind.name in (VERDICT, AGREEMENT):
        return "give an overall verdict", "gives an overall verdict"
    what = aspect_name(kind.aspect) if kind.aspect else "it"
    if kind.name == PRAISE:
        return f"praise {what}", f"praises {what}"
    if kind.name == CRITICISM:
        return f"criticise {what}", f"criticises {what}"
    return f"judge {what}", f"discusses {what}"


def opinion_abstention(kind: Kind, in_scope: int) -> str:
    """One plain sentence naming what no review judges ("None of the 3 reviews discusses the music.")."""
    if in_scope == 0:
        return abstention(0)
    who = "The review does not" if in_scope == 1 else f"None of the {in_scope} reviews"
    verb = _judges(kind)[1]
    if in_scope == 1:
        verb = {"gives": "give", "praises": "praise", "criticises": "criticise", "discusses": "discuss"}[verb.split()[0]] + \
            verb[len(verb.split()[0]):]
    return f"{who} {verb}."


def stance_tally(kind: Kind, stances: list[str]) -> str:
    """The first line of an opinion reply when stances are shown: "All 3 reviews recommend it", "2 of 3
    praise the acting; 1 is mixed". Empty for no stances."""
    if not stances:
        return ""
    n = len(stances)
    positive = stances.count("positive")
    if kind.name in (VERDICT, AGREEMENT):
        good, bad = "recommend it", "do not recommend it"
    else:
        what = aspect_name(kind.aspect) if kind.aspect else "it"
        good, bad = f"praise {what}", f"criticise {what}"
    if positive == n:
        return f"All {n} reviews {good}." if n > 1 else f"The review {good.replace('recommend', 'recommends').replace('praise ', 'praises ')}."
    parts = [f"{positive} of {n} {good}"] if positive else []
    negative = stances.count("negative")
    if negative:
        parts.append(f"{negative} {bad}")
    mixed = n - positive - negative
    if mixed:
        parts.append(f"{mixed} {'is' if mixed == 1 else 'are'} mixed")
    return "; ".join(parts) + "."


def build_opinion_answer(question: str, query_used: str, kind: Kind, hits: list[Hit], per_review: list[Hit],
                         reviews: dict[str, Review], in_scope: int, judged: list[Judgement], threshold: float,
                         show_stance: bool, position_of: dict[str, int], make_hit: Callable[[int, int], Hit],
                         notices: tuple[str, ...] = (), used_history: bool = False) -> Answer:
    """An opinion reply, one line per review that judges what is asked: its best sentence that does
    (qa/opinion.py), quoted with its citation and the review's outlet or title, best first; at most
    OPINION_LINES, then "and N more". A quoted passage below the top hits joins them (as for facts):
    putting the quoted passages first lowered SubjQA's item-level MRR@10 (books dev 0.689 -> 0.640). A review judges it when its best sentence reaches `threshold`; no
    review does: one sentence naming what none discusses. With `show_stance` each line has its stance
    mark and a first line sums the stances up. `judged` is sorted best first."""
    best = best_per_review(judged)  # the same rule as the factoid decision's: each review's first
    judging = [j for j in best.values() if j.probability >= threshold]
    best_of_position: dict[int, Judgement] = {}
    for j in judged:
        best_of_position.setdefault(j.position, j)

    def annotated(hit: Hit) -> Hit:
        j = best_of_position.get(position_of[hit.passage.id])
        if j is None:
            return replace(hit, scores={**hit.scores, "answer": 0.0})
        return replace(hit, highlight=j.sentence, scores={**hit.scores, "answer": round(j.probability, 6)})

    hits = [annotated(h) for h in hits]  # retrieval's order: the ranker's, which the opinion model does not beat
    # "What each review says" shows the passage the reply quotes from each review that judges it.
    quoted = {j.review_id: j for j in judging}
    per_review = [annotated(h if h.passage.review_id not in quoted or position_of[h.passage.id] == quoted[h.passage.review_id].position
                            else make_hit(quoted[h.passage.review_id].position, h.rank)) for h in per_review]
    lines: list[str] = []
    spans: list[AnswerSpan] = []
    for j in judging[:OPINION_LINES]:
        review = reviews[j.review_id]
        rank = next((h.rank for h in hits if position_of[h.passage.id] == j.position), None)
        if rank is None:  # a quoted passage below the top k joins the hits, as a factoid reply's does
            rank = len(hits) + 1
            hits.append(annotated(make_hit(j.position, rank)))
        mark = f"{STANCE_MARKS[j.stance]} " if show_stance and j.stance else ""
        lines.append(f"- {mark}{review.source.outlet or review.title}: “{_sentence(review, j.sentence)}” [{rank}]")
        spans.append(AnswerSpan(rank, j.sentence[0], j.sentence[1], "sentence", j.stance))
    if len(judging) > OPINION_LINES:
        more = len(judging) - OPINION_LINES
        lines.append(f"- and {more} more {'review' if more == 1 else 'reviews'}.")
    answered = bool(spans)
    if answered and show_stance:
        lines.insert(0, stance_tally(kind, [j.stance for j in judging]))
    summary = "\n".join(lines) if answered else opinion_abstention(kind, in_scope)
    noun = "review" if in_scope == 1 else "reviews"
    coverage = f"{len(judging)} of {in_scope} {noun} {_judges(kind)[0]}."
    confidence = judging[0].probability if judging else (judged[0].probability if judged else 0.0)
    return Answer(question, query_used, tuple(hits), summary, coverage, tuple(per_review), notices, answered,
                  round(confidence, 4), tuple(spans), len(judging), in_scope, kind.name, used_history)


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
        "answer_spans": [{"rank": s.rank, "start": s.start, "end": s.end, "kind": s.kind}
                         | ({"stance": s.stance} if s.stance else {}) for s in answer.answer_spans],
        "hits": [hit_json(h, reviews, answer.exact_answers.get(h.rank)) for h in answer.hits],
        "coverage": answer.coverage,
        "per_review": [hit_json(h, reviews) for h in answer.per_review],
        "notices": list(answer.notices),
        "kind": answer.kind,
        "used_history": answer.used_history,
    }
