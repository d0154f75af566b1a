"""Review -> Passage records: windows of whole sentences with exact character offsets.

Sentences are found paragraph by paragraph. Each run of end marks (`.`, `!`, `?`, `…`, with any closing
quotes or brackets) is a possible sentence end, and small rules decide the common cases the way pysbd
(rule-based, Golden-Rule tested, no downloaded data) decides them on real user reviews: ". The" ends a
sentence, "problems.Quality" and "0.1" do not. A stretch of text that holds a case the rules leave open
(an abbreviation before ". ", an ellipsis, "?!", "! lower-case") goes to pysbd, whose segments are located
in the text by search, so the offsets are exact whatever pysbd does with whitespace. pysbd alone costs
~10 ms a long review (its abbreviation pass compiles regexes per call); with the rules it is called
about 0.8 times a long review, the whole splitter takes ~1 ms, and 97.6% of pysbd's sentences come out
identical (bench/splitter.py; most of the rest are places where pysbd does not split "word. Word").

A passage is a run of consecutive sentences of about `words` words. It prefers to end at a paragraph
break once it is half full, and the next passage starts `overlap` sentences before the previous one
ended. One sentence longer than twice the window is cut at word boundaries, so no passage overflows the
model's input.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import lru_cache

from .records import Passage, Review

_WORD = re.compile(r"\S+")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
# A possible sentence end: end marks, then closing quotes or brackets.
_END_MARKS = re.compile(r"[.!?…]+[\"'”’)\]]*")
_CLOSERS = "\"'”’)]"
# Characters that open a new sentence after an end mark (list bullets, brackets, quotes).
_OPENERS = "(\"“‘[-*+•|"
# pysbd's regexes are slow on one huge "paragraph" with no line breaks; split those first.
_MAX_PARAGRAPH_CHARS = 20_000


@dataclass(frozen=True)
class ChunkerSettings:
    words: int = 100
    overlap: int = 1

    def as_dict(self) -> dict:
        return {"splitter": "rules+pysbd", "words": self.words, "overlap": self.overlap, "version": 2}


@lru_cache(maxsize=1)
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


@lru_cache(maxsize=1)
def _abbreviations() -> frozenset[str]:
    from pysbd.lang.english import English

    return frozenset(a.strip().lower().rstrip(".") for a in English.Abbreviation.ABBREVIATIONS)


class _End(enum.Enum):
    SPLIT = "split"
    JOIN = "join"
    ASK = "ask pysbd"


def _sentence_end(text: str, mark: re.Match[str], end: int) -> _End:
    """Whether the end-mark run `mark` ends a sentence, decided as pysbd does on user reviews.

    The rates in the comments are how often pysbd splits in that case, over 7,700 undecided end marks
    of SubjQA training reviews (bench/splitter.py); cases below ~90% either way are left to pysbd.
    """
    after = mark.end()
    if after >= end:
        return _End.JOIN
    punct = mark.group().rstrip(_CLOSERS)
    closed = len(punct) < len(mark.group())
    following = text[after]
    if len(punct) > 1:
        if set(punct) <= {".", "…"}:  # an ellipsis
            if following.isspace() and text[after:end].lstrip()[:1].isupper():
                return _End.SPLIT  # "headphones... They're" 96%
            if following.islower():
                return _End.JOIN  # "bad....and thus" 6%
        return _End.ASK  # "?!", "!!", "well... the" 21%, "dots...I'm" 14%
    word_start = text.rfind(" ", max(0, mark.start() - 40), mark.start()) + 1
    word = text[word_start:mark.start()].lstrip("(\"'“‘[")
    if following.isspace():
        following = text[after:end].lstrip()[:1]
        if punct == "." and (word.lower() in _abbreviations() or len(word) == 1):
            return _End.ASK  # "etc. Are" 75%, initials
        if following.isupper() or following.isdigit() or following in _OPENERS:
            return _End.SPLIT  # 92-98%
        if following.islower():
            if punct == ".":
                return _End.SPLIT if word[-1:].isalpha() and "." not in word else _End.ASK  # 95%
            return _End.JOIN if punct == "!" else _End.ASK  # "great! they" 0%
        return _End.ASK
    if punct == ".":
        if closed or word.endswith(")"):  # "(that).I've" 94%
            return _End.SPLIT if following.isupper() or following in _OPENERS else _End.ASK
        if following.isalnum():
            return _End.JOIN  # "problems.Quality", "0.1", "Amazon.com": 0%
        return _End.SPLIT if following in _OPENERS else _End.ASK  # "one.---Edited", "better.**Update" 90-100%
    if following.isupper() or following in _OPENERS:
        return _End.SPLIT if not closed or punct == "!" else _End.ASK  # "nice!Overall" 87%, "this?Also" 90%
    return _End.ASK


def paragraphs(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph, whitespace trimmed.

    Reviews scraped from the web put one paragraph per line; hard-wrapped text (short lines with blank
    lines between paragraphs) is split at blank lines instead.
    """
    lines = [m for m in re.finditer(r"[^\n]+", text) if m.group().strip()]
    hard_wrapped = (
        _BLANK_LINE.search(text) is not None
        and len(lines) >= 4
        and sorted(len(m.group()) for m in lines)[len(lines) // 2] < 90
    )
    pieces = (
        [(m.start(), m.end()) for m in re.finditer(r"(?:[^\n]|\n(?![ \t]*\n))+", text)]
        if hard_wrapped
        else [(m.start(), m.end()) for m in lines]
    )
    return [span for span in (_trim(text, s, e) for s, e in pieces) if span[1] > span[0]]


def _split_long(text: str, start: int, end: int, max_words: int) -> list[tuple[int, int]]:
    words = list(_WORD.finditer(text, start, end))
    if len(words) <= max_words:
        return [(start, end)]
    return [
        (words[i].start(), words[min(i + max_words, len(words)) - 1].end())
        for i in range(0, len(words), max_words)
    ]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    chunk = text[start:end]
    return start + len(chunk) - len(chunk.lstrip()), start + len(chunk.rstrip())


def _pysbd_starts(text: str, start: int, end: int) -> list[int]:
    """Where pysbd starts sentences in text[start:end] (after the first), located by search."""
    starts = [start]
    cursor = start
    for segment in _segmenter().segment(text[start:end]):
        seg = segment.strip()
        found = text.find(seg, cursor, end) if seg else -1
        if found > starts[-1]:
            starts.append(found)
        if found >= 0:
            cursor = found + len(seg)
    return starts[1:]


def sentences(text: str, start: int, end: int, max_words: int = 200) -> list[tuple[int, int]]:
    """(start, end) of each sentence in text[start:end], trimmed, in order, never overlapping.

    The rules and pysbd only propose where sentences start; the text between two starts is one sentence,
    so any character pysbd drops or rewrites still lands in a sentence.
    """
    pieces = [(start, end)]
    if end - start > _MAX_PARAGRAPH_CHARS:
        pieces = _split_long(text, start, end, 2000)
    starts: list[int] = []
    for p_start, p_end in pieces:
        stretch, undecided = p_start, False
        for mark in _END_MARKS.finditer(text, p_start, p_end):
            decision = _sentence_end(text, mark, p_end)
            if decision is _End.ASK:
                undecided = True
            elif decision is _End.SPLIT:
                next_start = _trim(text, mark.end(), p_end)[0]
                starts.append(stretch)
                if undecided:
                    starts.extend(_pysbd_starts(text, *_trim(text, stretch, next_start)))
                stretch, undecided = next_start, False
        starts.append(stretch)
        if undecided:
            starts.extend(_pysbd_starts(text, *_trim(text, stretch, p_end)))
    ends = starts[1:] + [end]
    spans: list[tuple[int, int]] = []
    for s, e in zip(starts, ends):
        s, e = _trim(text, s, e)
        if e > s:
            spans.extend(_split_long(text, s, e, max_words))
    return spans


def split_review(review: Review, settings: ChunkerSettings = ChunkerSettings()) -> list[Passage]:
    """Cut a review into passages; `review.text[p.start:p.end] == p.text` for every one."""
    text = review.text
    units: list[tuple[int, int, int, int]] = []  # start, end, paragraph number, words
    for number, (p_start, p_end) in enumerate(paragraphs(text), 1):
        for s_start, s_end in sentences(text, p_start, p_end, max_words=2 * settings.words):
            units.append((s_start, s_end, number, len(_WORD.findall(text, s_start, s_end))))
    passages: list[Passage] = []
    i = 0
    while i < len(units):
        j, words = i, 0
        while j < len(units):
            if j > i and words + units[j][3] > settings.words:
                break
            # Close at a paragraph break once half full, so passages keep to one topic.
            if j > i and units[j][2] != units[j - 1][2] and words >= settings.words // 2:
                break
            words += units[j][3]
            j += 1
        start, end = units[i][0], units[j - 1][1]
        passages.append(
            Passage(
                id=f"{review.id}:{len(passages)}",
                review_id=review.id,
                start=start,
                end=end,
                paragraph=units[i][2],
                text=text[start:end],
                sentences=tuple((u[0], u[1]) for u in units[i:j]),
            )
        )
        if j >= len(units):
            break
        i = max(i + 1, j - settings.overlap)
    return passages
