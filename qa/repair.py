"""Text repair at ingest, with an offset map from the raw text to the repaired text.

Steps, in order: HTML entities (`&quot;` -> `"`), ftfy (configured so text that needs no repair is left
byte for byte the same), and a targeted rule for UTF-8 read through the Greek code page cp1253 with bytes
lost, which ftfy cannot undo because the lost bytes are gone: "β" stands for ’ between letters and for —
between spaces, and "π" plus a junk symbol at a line start is what is left of an emoji.

Every step records the spans it replaced, so offsets into the raw text (eval labels) can be mapped to
offsets into the repaired text.
"""

from __future__ import annotations

import bisect
import difflib
import html
import re
from collections import Counter
from dataclasses import dataclass

import ftfy

# ftfy's defaults uncurl quotes, NFC-normalise and rewrite line breaks: all change text that was fine.
_FTFY = ftfy.TextFixerConfig(
    unescape_html=False,
    uncurl_quotes=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    fix_line_breaks=False,
    normalization=None,
    explain=False,
)

_LINES = re.compile(r"[^\n]*\n|[^\n]+")
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# The signature of cp1253 mojibake: "β" glued to Latin letters, or standing alone between spaces.
_GREEK_SIGNATURE = re.compile(r"[A-Za-z]β[A-Za-z]| β ")
_GREEK_RULES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("β→’", re.compile(r"(?<=[A-Za-z])β(?=[A-Za-z])"), "\u2019"),
    ("β→—", re.compile(r"(?<= )β(?= )"), "\u2014"),
    ("β→“", re.compile(r"(?<![^\s(\[])β(?=[A-Za-z0-9])"), "\u201c"),
    ("β→”", re.compile(r"(?<=[A-Za-z0-9.,!?])β(?![A-Za-z0-9])"), "\u201d"),
    # F0 9F xx yy (an emoji) through cp1253: "π", then lost or symbol bytes, at the start of a line.
    ("emoji junk", re.compile(r"(?m)^π[^\w\s]?[ΆΈΉΊΌΎΏ]?[^\w\s]?[ \t]+"), ""),
)


@dataclass(frozen=True)
class Edit:
    raw_start: int
    raw_end: int
    new_start: int
    new_end: int


def _shift(edits: tuple[Edit, ...], offset: int, side: str) -> int:
    i = bisect.bisect_right([e.raw_start for e in edits], offset) - 1
    if i < 0:
        return offset
    e = edits[i]
    if offset >= e.raw_end:
        return e.new_end + (offset - e.raw_end)
    if offset == e.raw_start:
        return e.new_start
    return e.new_start if side == "start" else e.new_end


def _unshift(edits: tuple[Edit, ...], offset: int, side: str) -> int:
    """_shift backwards: an offset in the repaired text to the raw text."""
    i = bisect.bisect_right([e.new_start for e in edits], offset) - 1
    if i < 0:
        return offset
    e = edits[i]
    if offset >= e.new_end and not (offset == e.new_end == e.new_start):
        return e.raw_end + (offset - e.new_end)
    if offset == e.new_start:
        return e.raw_start
    return e.raw_start if side == "start" else e.raw_end


@dataclass(frozen=True)
class OffsetMap:
    """Maps offsets in a raw text to offsets in its repaired form, one step of edits at a time.

    Outside edited spans an offset moves by the net length change of the edits before it. An offset
    strictly inside an edited span maps to the edit's new start (for a span start) or new end (for a
    span end), so a labelled span still covers the same words.
    """

    steps: tuple[tuple[Edit, ...], ...] = ()

    def span(self, start: int, end: int) -> tuple[int, int]:
        for edits in self.steps:
            start, end = _shift(edits, start, "start"), _shift(edits, end, "end")
        return start, end

    def raw_span(self, start: int, end: int) -> tuple[int, int]:
        """The inverse of `span`: a span of the repaired text (a label made on what readers see) to the
        raw text, so that `span(*raw_span(s, e)) == (s, e)` wherever (s, e) starts and ends outside an
        edit; a span ending inside an edit widens to cover it."""
        for edits in reversed(self.steps):
            start, end = _unshift(edits, start, "start"), _unshift(edits, end, "end")
        return start, end

    def then(self, edits: list[Edit]) -> "OffsetMap":
        return OffsetMap(self.steps + (tuple(edits),)) if edits else self


@dataclass(frozen=True)
class Repaired:
    text: str
    counts: Counter
    offsets: OffsetMap

    @property
    def changed(self) -> int:
        return sum(self.counts.values())


def _sub(text: str, pattern: re.Pattern[str], replace, label: str, counts: Counter) -> tuple[str, list[Edit]]:
    out: list[str] = []
    edits: list[Edit] = []
    pos = 0
    new_len = 0
    for m in pattern.finditer(text):
        new = replace(m) if callable(replace) else replace
        if new == m.group(0):
            continue
        out.append(text[pos : m.start()])
        new_len += m.start() - pos
        edits.append(Edit(m.start(), m.end(), new_len, new_len + len(new)))
        out.append(new)
        new_len += len(new)
        pos = m.end()
        counts[label] += 1
    if not edits:
        return text, edits
    out.append(text[pos:])
    return "".join(out), edits


def _unescape(m: re.Match[str]) -> str:
    return html.unescape(m.group(0))


def _ftfy_lines(text: str, counts: Counter) -> tuple[str, list[Edit]]:
    """ftfy line by line; changed lines are aligned with difflib so offsets stay exact outside edits."""
    out: list[str] = []
    edits: list[Edit] = []
    raw_pos = new_pos = 0
    for line in _LINES.findall(text):  # only "\n" ends a line: str.splitlines also splits on \x0b, \x1c...
        fixed = ftfy.fix_text(line, _FTFY)
        if fixed != line:
            counts["ftfy"] += 1
            matcher = difflib.SequenceMatcher(None, line, fixed, autojunk=False)
            for tag, i1, i2, j1, j2 in matcher.get_opcodes():
                if tag != "equal":
                    edits.append(Edit(raw_pos + i1, raw_pos + i2, new_pos + j1, new_pos + j2))
        out.append(fixed)
        raw_pos += len(line)
        new_pos += len(fixed)
    if not edits:
        return text, edits
    return "".join(out), edits


def repair(raw: str) -> Repaired:
    """Repair `raw` and return the text, what was repaired (counts per rule) and the offset map.

    Text that needs no repair comes back identical (same string, empty counts). Repair is idempotent:
    repair(repair(x).text).text == repair(x).text.
    """
    counts: Counter = Counter()
    text, edits = _sub(raw, _ENTITY, _unescape, "html entity", counts)
    offsets = OffsetMap().then(edits)
    text, edits = _ftfy_lines(text, counts)
    offsets = offsets.then(edits)
    if _GREEK_SIGNATURE.search(text):
        for label, pattern, replacement in _GREEK_RULES:
            text, edits = _sub(text, pattern, replacement, label, counts)
            offsets = offsets.then(edits)
    return Repaired(text, counts, offsets)
