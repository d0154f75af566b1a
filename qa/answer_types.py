"""Question type against answer type: what kind of thing a factoid question asks for, and where a
sentence holds one.

No NER model ships offline, so this is rules: a "who" question wants a person's name (a run of
capitalised words that the question itself does not contain), "how long" a duration, "what score" a
number, percentage, fraction or stars, "when" a date, "where" a place, "how much/many" a number or sum.
Opinion questions ("how is the pacing?") have no type, and every sentence can answer them.
"""

from __future__ import annotations

import re

TYPES = ("person", "duration", "score", "date", "place", "quantity")

_TYPE_RULES = [  # first match wins ("who composed the score" asks for a person); on the casefolded question
    ("person", re.compile(r"^\s*(who|whom|whose)\b|\bwho (is|was|plays|played|directed|wrote|composed|stars|produced)\b"
                          r"|\b(which|what) (actor|actress|director|composer|cinematographer|writer|producer|editor|critic)\b"
                          r"|\bname of the (actor|actress|director|composer|cinematographer|writer|producer|editor)\b")),
    ("duration", re.compile(r"\bhow long\b|\brunning ?time\b|\bruntime\b|\bhow many (minutes|hours)\b")),
    ("score", re.compile(r"\b(score|rating|rated|rate|stars?|grade|tomatometer)\b")),
    ("date", re.compile(r"^\s*when\b|\bwhat (year|date|day|month)\b|\bwhich (year|date|month)\b|\bwhen (was|is|did|does|will)\b")),
    ("place", re.compile(r"^\s*where\b|\bwhere (was|is|did|does|do)\b|\bin which (city|country|place|cinema|theater|theatre)\b")),
    ("quantity", re.compile(r"\bhow (much|many)\b|\bwhat (budget|price|cost)\b")),
]

_MONTHS = r"(january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\.?"
_NUMBER = r"\d+(?:[.,]\d+)?"
_PATTERNS = {
    "duration": re.compile(rf"\b{_NUMBER}\s*(?:-\s*)?(?:minutes?|mins?|hours?|hrs?|h|m)\b(?:\s*{_NUMBER}\s*(?:minutes?|mins?|m)\b)?"
                           r"|\b(?:an?|one|two|three|half an?)\s+hours?\b", re.I),  # a film's length, not "a decade"
    "score": re.compile(rf"{_NUMBER}\s*%|\b{_NUMBER}\s*/\s*\d+\b|\b{_NUMBER}\s*(?:out of|of)\s*\d+\b|\b{_NUMBER}\s*stars?\b"
                        r"|[★☆]{1,5}", re.I),
    "date": re.compile(rf"\b(?:{_MONTHS}\s+\d{{1,2}},?\s+\d{{4}}|\d{{1,2}}\s+{_MONTHS}\s+\d{{4}}|{_MONTHS}\s+\d{{4}}|(?:19|20)\d{{2}}s?)\b", re.I),
    "quantity": re.compile(rf"[$€£¥₩]\s*{_NUMBER}(?:\s*(?:million|billion|thousand|m|bn|k))?|\b{_NUMBER}\s*(?:million|billion|thousand|won|dollars?|euros?|pounds?)\b"
                           rf"|\b{_NUMBER}\b", re.I),
}
# A name: capitalised words (hyphenated parts allowed, "Lee Jong-pil", "Dalpalan", "Kim Seung-an").
_NAME = re.compile(r"\b[A-Z][a-z]+(?:[-\u2010\u2011][A-Za-z][a-z]+)*(?:[ \t]+[A-Z][a-z]+(?:[-\u2010\u2011][A-Za-z][a-z]+)*)*\b")
_PLACE = re.compile(r"\b(?:in|at|near|from|to|across)\s+(?:the\s+)?([A-Z][\w'-]+(?:\s+(?:of\s+)?[A-Z][\w'-]+)*)")
# Capitalised words that start sentences or name the film's world rather than a person.
_NOT_NAMES = {"The", "A", "An", "It", "Its", "This", "That", "These", "Those", "He", "She", "His", "Her", "They", "Their",
              "In", "On", "At", "As", "But", "And", "While", "With", "When", "Where", "Who", "What", "How", "Director",
              "Directed", "Starring", "Critics", "Escape", "Film", "Movie", "North", "South", "Korea", "Korean", "Major",
              "Sergeant", "Best", "Although", "After", "Before", "However", "Yet", "Not", "There", "If", "So", "Also",
              "I", "We", "You", "My", "Our", "Your", "Plot", "Summary", "Cast", "Main", "Final", "Thoughts", "Rotten",
              "Tomatoes", "Country", "Running", "Time", "Known", "Some", "Many", "Most", "One", "For", "From", "To",
              "Of", "By", "Set", "Beneath", "Whether", "Nature", "Themes", "Symbolism", "Freedom", "Loyalty"}


# Words that passages holding an answer of the type tend to use; added to a BM25 search that gathers
# more candidate sentences for the answer decision (the ranked hits are not changed by it).
TYPE_HINTS = {
    "duration": "minutes hours running time runtime",
    "score": "score rating stars percent",
    "date": "released release date premiered",
    "quantity": "budget box office million",
}


def question_type(question: str) -> str | None:
    """The answer type a factoid question asks for (one of TYPES), or None for other questions."""
    text = question.casefold()
    for kind, pattern in _TYPE_RULES:
        if pattern.search(text):
            return kind
    return None


def _names(sentence: str) -> list[tuple[int, int]]:
    out = []
    for m in _NAME.finditer(sentence):
        words = m.group(0).split()
        while words and words[0] in _NOT_NAMES:  # "Director Lee Jong-pil" -> "Lee Jong-pil"
            words = words[1:]
        while words and words[-1] in _NOT_NAMES:
            words = words[:-1]
        if not words:
            continue
        start = m.start() + m.group(0).index(words[0])
        end = start + len(" ".join(words))
        if sentence[start:end] != " ".join(words):  # spacing inside the match was not single spaces
            start, end = m.start(), m.end()
        out.append((start, end))
    return out


def answer_candidates(sentence: str, kind: str | None, question: str = "") -> list[tuple[int, int]]:
    """(start, end) offsets in `sentence` of the spans that have the asked-for type and are not part
    of the question itself (a "who directed Lee Jong-pil's film" question is not answered by his name)."""
    if kind is None:
        return []
    asked = question.casefold()
    return [(s, e) for s, e in typed_spans(sentence, kind) if sentence[s:e].casefold() not in asked]


def typed_spans(text: str, kind: str) -> list[tuple[int, int]]:
    """(start, end) offsets in `text` of every non-blank span of the given answer type."""
    if kind == "person":
        spans = _names(text)
    elif kind == "place":
        spans = [m.span(1) for m in _PLACE.finditer(text)]
    else:
        spans = [m.span() for m in _PATTERNS[kind].finditer(text)]
    return [(s, e) for s, e in spans if text[s:e].strip()]


def best_candidate(sentence: str, kind: str | None, question: str, focus: list[str]) -> tuple[int, int] | None:
    """The candidate nearest a focus word of the question found in the sentence (the first candidate
    when none is found); None when the sentence holds no candidate of the type."""
    spans = answer_candidates(sentence, kind, question)
    if not spans:
        return None
    lowered = sentence.casefold()
    anchors = [m.start() for word in focus for m in re.finditer(re.escape(word), lowered)]
    if not anchors:
        return spans[0]
    return min(spans, key=lambda span: (min(abs(span[0] - a) for a in anchors), span[0]))
