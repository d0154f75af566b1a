"""Conversation: decide whether a question depends on earlier turns, and fold those turns in.

No LLM: a question is a follow-up when it leans on something said before (a third-person pronoun,
"else", "also", an opening "and" / "what about", or so few words that it cannot stand alone). A
follow-up is searched with the last earlier user turns folded in: their words are added to the BM25
text, and their embedding is blended into the question's. Self-contained questions are searched as typed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .errors import BadQuestion

MAX_QUESTION_CHARS = 1000
HISTORY_TURNS = 2

_WORDS = re.compile(r"[\w'’-]+")
_ANAPHORA = {"he", "him", "his", "himself", "she", "her", "hers", "herself", "they", "them", "their",
             "theirs", "themselves", "else", "also", "too", "former", "latter", "same"}
_WEAK_ANAPHORA = {"it", "its", "this", "that", "these", "those", "there", "one"}
_DEICTIC_THERE = re.compile(r"(?<!\bis )(?<!\bare )(?<!\bwas )(?<!\bwere )\bthere\b(?! (is|are|was|were|be)\b)", re.I)
_OPENERS = re.compile(r"^\s*(and|but|or|so|also|what about|how about|and what about|then|what else)\b", re.I)


@dataclass(frozen=True)
class Folded:
    question: str
    history_text: str | None  # earlier turns folded in, or None (a self-contained question)
    query_used: str  # the text actually searched, shown to the user


def clean_question(raw: str | None) -> tuple[str, tuple[str, ...]]:
    """The question with control characters removed and whitespace collapsed, plus any notices.

    Raises BadQuestion for an empty question. A question over MAX_QUESTION_CHARS is cut there (the model
    reads about 256 tokens anyway) and a notice says so.
    """
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c not in "\u200d" else c
                   for c in (raw or ""))
    text = " ".join(text.split())
    if not text:
        raise BadQuestion("Please type a question.")
    notices: tuple[str, ...] = ()
    if len(text) > MAX_QUESTION_CHARS:
        text = text[:MAX_QUESTION_CHARS].rsplit(" ", 1)[0] or text[:MAX_QUESTION_CHARS]
        notices = (f"Your question was long, so only its first {len(text)} characters were searched.",)
    return text, notices


def is_follow_up(question: str, history: list[str] | tuple[str, ...]) -> bool:
    """True when the question only makes sense with the history (and there is history)."""
    if not history:
        return False
    words = [w.casefold().strip("'’-") for w in _WORDS.findall(question)]
    if not words:
        return False
    if _OPENERS.match(question):
        return True
    if any(w in _ANAPHORA for w in words):
        return True
    if _DEICTIC_THERE.search(question):  # "the audience there", not "is there a ..."
        return True
    if len(words) <= 5 and any(w in _WEAK_ANAPHORA for w in words):
        return True
    return len(words) <= 3


def fold(question: str, history: list[str] | tuple[str, ...] = ()) -> Folded:
    """Fold the last earlier user turns into a follow-up; leave a self-contained question alone."""
    turns = [" ".join(str(t).split()) for t in history if t and str(t).strip()]
    if not is_follow_up(question, turns):
        return Folded(question, None, question)
    history_text = " ".join(turns[-HISTORY_TURNS:])
    return Folded(question, history_text, searched_text(question, history_text))


def searched_text(question: str, history_text: str | None) -> str:
    """The words searched for a question: the folded-in history first, then the question."""
    return f"{history_text} {question}" if history_text else question
