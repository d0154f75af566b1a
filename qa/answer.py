"""Hits -> Answer: a short extractive reply with numbered citations, and what each review says.

The reply is the highlighted (best-matching) sentence of each of the top hits, deduplicated, each
followed by its citation [n], where n is the hit's rank. Because the retriever caps passages per review,
the top hits come from several reviews, so a reply shows each review's view, agreeing or not.
"""

from __future__ import annotations

from .records import Answer, Hit, Review

REPLY_SENTENCES = 3
REPLY_RELATIVE = 0.75  # a later hit joins the reply when its sentence scores this share of the best one
# A review addresses a question when its best passage is close in meaning and shares a content word
# with it, or is very close in meaning alone (MiniLM cosines for a good match sit around 0.25-0.6).
MENTION_DENSE_WITH_TERMS = 0.25
MENTION_DENSE_ALONE = 0.45


def reply(hits: list[Hit], reviews: dict[str, Review], sentences: int = REPLY_SENTENCES) -> str:
    """The best hit's sentence, then those of later hits whose sentences match nearly as well."""
    parts: list[str] = []
    seen: set[str] = set()
    floor = REPLY_RELATIVE * max((h.scores.get("sentence", 0.0) for h in hits[:1]), default=0.0)
    for hit in hits:
        if parts and hit.scores.get("sentence", 0.0) < floor:
            continue
        s, e = hit.highlight
        sentence = " ".join(reviews[hit.passage.review_id].text[s:e].split())
        if sentence.casefold() in seen:
            continue
        seen.add(sentence.casefold())
        parts.append(f"{sentence} [{hit.rank}]")
        if len(parts) == sentences:
            break
    return "\n".join(parts) if parts else "No passage in the reviews matches this question."


def addresses(hit: Hit) -> bool:
    dense, bm25 = hit.scores.get("dense", 0.0), hit.scores.get("bm25", 0.0)
    return dense >= MENTION_DENSE_ALONE or (dense >= MENTION_DENSE_WITH_TERMS and bm25 > 0)


def coverage_line(per_review: list[Hit], total_reviews: int) -> str:
    mentioned = sum(1 for h in per_review if addresses(h))
    noun = "review" if total_reviews == 1 else "reviews"
    return f"{mentioned} of {total_reviews} {noun} address this question."


def build_answer(question: str, query_used: str, hits: list[Hit], per_review: list[Hit],
                 reviews: dict[str, Review], total_reviews: int, notices: tuple[str, ...] = ()) -> Answer:
    return Answer(question, query_used, tuple(hits), reply(hits, reviews), coverage_line(per_review, total_reviews),
                  tuple(per_review), notices)


def hit_json(hit: Hit, reviews: dict[str, Review]) -> dict:
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
    }


def answer_json(answer: Answer, reviews: dict[str, Review]) -> dict:
    """The stable `qa ask --json` / API object (extra keys may be added, none removed)."""
    return {
        "question": answer.question,
        "query_used": answer.query_used,
        "answer": answer.summary,
        "hits": [hit_json(h, reviews) for h in answer.hits],
        "coverage": answer.coverage,
        "per_review": [hit_json(h, reviews) for h in answer.per_review],
        "notices": list(answer.notices),
    }
