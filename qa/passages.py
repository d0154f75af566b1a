"""Review -> Passage records: windows of whole sentences with exact character offsets.

Sentences come from pysbd (rule-based, Golden-Rule tested, needs no downloaded data, unlike NLTK's punkt
or a spaCy model), run paragraph by paragraph. Its segments are located in the text by search, so the
offsets are exact whatever pysbd does with whitespace.

A passage is a run of consecutive sentences of about `words` words. It prefers to end at a paragraph
break once it is half full, and the next passage starts `overlap` sentences before the previous one
ended. One sentence longer than twice the window is cut at word boundaries, so no passage overflows the
model's input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .records import Passage, Review

_WORD = re.compile(r"\S+")
_INNER_END = re.compile(r"[.!?…。！？]+[\"'”’)\]]*\s+\S")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
# pysbd's regexes are slow on one huge "paragraph" with no line breaks; split those first.
_MAX_PARAGRAPH_CHARS = 20_000


@dataclass(frozen=True)
class ChunkerSettings:
    words: int = 100
    overlap: int = 1

    def as_dict(self) -> dict:
        return {"splitter": "pysbd", "words": self.words, "overlap": self.overlap, "version": 1}


@lru_cache(maxsize=1)
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


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


def sentences(text: str, start: int, end: int, max_words: int = 200) -> list[tuple[int, int]]:
    """(start, end) of each sentence in text[start:end], trimmed, in order, never overlapping.

    pysbd only proposes where sentences start; the text between two starts is one sentence, so any
    character pysbd drops or rewrites still lands in a sentence.
    """
    pieces = [(start, end)]
    if end - start > _MAX_PARAGRAPH_CHARS:
        pieces = _split_long(text, start, end, 2000)
    spans: list[tuple[int, int]] = []
    for p_start, p_end in pieces:
        starts = [p_start]
        cursor = p_start
        # pysbd costs ~1 ms a paragraph; one with no sentence end before its last character is one sentence
        if not _INNER_END.search(text, p_start, p_end):
            spans.extend(_split_long(text, *_trim(text, p_start, p_end), max_words))
            continue
        for segment in _segmenter().segment(text[p_start:p_end]):
            seg = segment.strip()
            found = text.find(seg, cursor, p_end) if seg else -1
            if found > starts[-1]:
                starts.append(found)
            if found >= 0:
                cursor = found + len(seg)
        for s, e in zip(starts, starts[1:] + [p_end]):
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
