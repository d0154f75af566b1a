"""The records that flow through the pipeline. Every offset is into `Review.text` (the repaired text)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Source:
    """Where a review comes from. Missing fields stay None; they are never invented."""

    outlet: str | None = None
    author: str | None = None
    url: str | None = None
    rating: str | None = None
    date: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class Review:
    id: str
    film: str
    title: str
    text: str
    source: Source = field(default_factory=Source)
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Passage:
    """A window of whole sentences: `review.text[start:end] == text` always.

    `paragraph` is the 1-based paragraph number of the passage's first sentence. `sentences` holds the
    (start, end) review offsets of the sentences inside it, used for highlighting.
    """

    id: str
    review_id: str
    start: int
    end: int
    paragraph: int
    text: str
    sentences: tuple[tuple[int, int], ...] = ()


def source_line(review: Review, passage: Passage) -> str:
    """`title · outlet · by author · ¶ paragraph · chars start–end`, naming only what is known (a
    review without an outlet or author shows neither, never "unknown")."""
    parts = [review.title]
    if review.source.outlet:
        parts.append(review.source.outlet)
    if review.source.author:
        parts.append(f"by {review.source.author}")
    parts += [f"¶ {passage.paragraph}", f"chars {passage.start}–{passage.end}"]
    return " · ".join(parts)


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float
    rank: int
    highlight: tuple[int, int]
    scores: dict[str, float] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class AnswerSpan:
    """A span of the reply in its review: a quoted sentence, or the exact answer inside one."""

    rank: int  # the cited hit's rank
    start: int
    end: int
    kind: str = "sentence"  # "sentence" or "answer"
    stance: str = ""  # for an opinion reply's sentence: positive, negative or mixed ("" for facts)


@dataclass(frozen=True)
class Answer:
    question: str
    query_used: str
    hits: tuple[Hit, ...]
    summary: str
    coverage: str
    per_review: tuple[Hit, ...] = ()
    notices: tuple[str, ...] = ()
    answered: bool = False
    confidence: float = 0.0  # calibrated probability that the first reply sentence answers the question
    answer_spans: tuple[AnswerSpan, ...] = ()
    addressing: int = 0  # reviews whose best sentence answers the question
    in_scope: int = 0  # reviews the filters let through
    kind: str = "fact"  # the question's kind (qa/kinds.py): fact, opinion, verdict, praise, criticism, agreement
    used_history: bool = False  # whether the question was read with an earlier turn (query_used shows how)

    @property
    def exact_answers(self) -> dict[int, tuple[int, int]]:
        """Hit rank -> review offsets of the exact answer inside its quoted sentence (factoids only)."""
        return {s.rank: (s.start, s.end) for s in self.answer_spans if s.kind == "answer"}
