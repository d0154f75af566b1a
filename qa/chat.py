"""Conversation: decide whether a question depends on earlier turns, and fold in the one it leans on.

No LLM. A question is a follow-up when it leans on something said before (a third-person pronoun,
"else", "also", an opening "and" / "what about", or so few words that it cannot stand alone). The
readings of a question (`readings`), stand-alone first:

- no history, or a question that makes sense about the film in scope ("Is it scary?", "Should I see
  it?", "Who directed the film?"): the question as typed, alone;
- an elliptical follow-up of an opinion question ("And the editing?" after "Is the acting good?"): the
  earlier question about the new aspect ("Is the editing good?"), alone;
- "Is it any good?" after a question that names an aspect ("Who shot the cinematography?"): the question
  about that aspect ("Is the cinematography any good?"), alone;
- a question that cannot stand alone ("Who plays him?", "And the audience score?"): folded with the one
  earlier turn it leans on (the last one, itself resolved by these rules): its words are added to the
  BM25 text and its embedding blended into the question's;
- a question that says "it" and may stand alone ("When was it released?"): both the stand-alone and the
  folded reading; the engine keeps the folded one only when it answers clearly more surely
  (FOLD_MARGIN), so a folded reading never replaces a stand-alone one that answers better.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .errors import BadQuestion
from .kinds import ASPECTS, OPINION, OPINION_KINDS, question_kind

MAX_QUESTION_CHARS = 1000
FOLD_MARGIN = 0.1  # a folded reading must be this much surer than the stand-alone one to replace it

_WORDS = re.compile(r"[\w'’-]+")
_ANAPHORA = {"he", "him", "his", "himself", "she", "her", "hers", "herself", "they", "them", "their",
             "theirs", "themselves", "else", "also", "too", "former", "latter", "same"}
_WEAK_ANAPHORA = {"it", "its", "this", "that", "these", "those", "there", "one"}
_DEICTIC_THERE = re.compile(r"(?<!\bis )(?<!\bare )(?<!\bwas )(?<!\bwere )\bthere\b(?! (is|are|was|were|be)\b)", re.I)
_STRONG = _ANAPHORA - {"too", "same"}  # these name someone only the history names
_ELLIPSIS = re.compile(r"^\s*(and|but|so|also|what about|how about|and what about|and how about)\s+(the\s+|its\s+)?"
                       r"(?P<a>[\w'’ -]+?)\s*\??\s*$", re.I)
_GENERIC_EVALUATION = re.compile(r"^(is|was) (it|that) (any )?(good|any good|great|bad|ok|okay|worth it|impressive|"
                                 r"effective|memorable|well done)\s*\??$", re.I)
_ASPECT_NOUNS = {w: a for a, words in ASPECTS.items() for w in words[:6] if w.isalpha() and not w.endswith("ed")}
_OPENERS = re.compile(r"^\s*(and|but|or|so|also|what about|how about|and what about|then|what else)\b", re.I)


@dataclass(frozen=True)
class Folded:
    question: str  # the question answered: as typed, or rewritten from the turn it leans on
    history_text: str | None  # the earlier turn folded in, or None
    query_used: str  # the text actually searched, shown to the user
    rule: str = "alone"  # alone, rewritten or folded: which reading this is

    @property
    def uses_history(self) -> bool:
        return self.rule != "alone"


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
    """The reading the rules settle on without answering: the only one, or the folded one of two."""
    return readings(question, history)[-1]


def resolve(turn: str, earlier: list[str]) -> str:
    """What an earlier turn asked, in words that stand alone: rewritten, folded with its own earlier turn
    when it could not stand alone, else as typed (when it had two readings, the stand-alone one)."""
    found = readings(turn, earlier)
    reading = found[0]
    return reading.query_used if reading.rule == "folded" else reading.question


def readings(question: str, history: list[str] | tuple[str, ...] = ()) -> list[Folded]:
    """The readings of a question in its conversation, stand-alone first (see the module docstring);
    one or two. Each earlier turn is first resolved the same way, so "And the music?" after "Is the
    acting good?", "And the cinematography?" leans on "Is the cinematography good?"."""
    turns = [" ".join(str(t).split()) for t in history if t and str(t).strip()]
    alone = Folded(question, None, question)
    if not turns or not is_follow_up(question, turns):
        return [alone]
    previous = resolve(turns[-1], turns[:-1])
    words = {w.casefold().strip("'’-") for w in _WORDS.findall(question)}
    ellipsis = _ELLIPSIS.match(question)
    if ellipsis and len(ellipsis.group("a").split()) <= 4:
        earlier = question_kind(previous)
        if earlier.name in OPINION_KINDS:
            aspect = ellipsis.group("a").strip()
            said = earlier.aspect.casefold()
            if earlier.name == OPINION and said and said in previous.casefold() and len(previous.casefold()) == len(previous):
                at = previous.casefold().index(said)
                text = previous[:at] + aspect + previous[at + len(said):]
            else:
                text = f"How is the {aspect}?"
            return [Folded(text, previous, text, "rewritten")]
    own = question_kind(question)
    if own.name in OPINION_KINDS and not (words & _STRONG):
        aspect = next((w for w in _WORDS.findall(previous.casefold()) if w in _ASPECT_NOUNS), None)
        if aspect and _GENERIC_EVALUATION.match(question.strip()):  # "Is it any good?" after "Who shot the cinematography?"
            text = re.sub(r"\b(it|that)\b", f"the {aspect}", question, count=1)
            return [Folded(text, previous, text, "rewritten")]
        return [alone]  # "Is it scary?": "it" is the film
    folded = Folded(question, previous, searched_text(question, previous), "folded")
    if words & _STRONG or _OPENERS.match(question) or _DEICTIC_THERE.search(question):
        return [folded]  # "Who plays him?": only the history says who
    return [alone, folded]


def searched_text(question: str, history_text: str | None) -> str:
    """The words searched for a question: the folded-in history first, then the question."""
    return f"{history_text} {question}" if history_text else question
