"""What the web app's tabs share: passage cards and escaping (review text is untrusted: everything from a
review is HTML-escaped, and Markdown punctuation backslashed, before it is shown), and the film list's
"all films" choice. The Ask tab (qa/ui.py) and the Label tab (qa/label_ui.py) both import from here, so
neither imports the other.
"""

from __future__ import annotations

import html
import re

from .engine import Engine
from .records import Answer, Hit

ALL_FILMS = "All films"

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|~>])")
_MD_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-!|~>])")


def escape_markdown(text: str) -> str:
    """Text safe to place in a Markdown component: HTML escaped, Markdown punctuation backslashed."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def match_label(hit: Hit, threshold: float) -> tuple[str, str]:
    """(css class, words) for a passage, from the calibrated probability that its best sentence
    answers the question (decide.py): at or above the answer threshold it answers."""
    p = hit.scores.get("answer", 0.0)
    if p >= max(threshold, 0.7):
        return "qa-strong", f"answers · {p:.0%}"
    if p >= threshold:
        return "qa-good", f"likely answers · {p:.0%}"
    return "qa-weak", f"closest match · {p:.0%}"


def _safe_url(url: str | None) -> str | None:
    if url and re.match(r"^https?://", url.strip(), re.I):
        return url.strip()
    return None


def card_html(hit: Hit, engine: Engine, exact: tuple[int, int] | None = None, id_prefix: str = "qa-card",
              decided: bool = True) -> str:
    """One passage card, with the element id `{id_prefix}-{rank}`; `exact` (review offsets inside the
    highlight) marks the exact answer. `decided` False (a plain search, as the Label tab makes) leaves out
    the answer badge: no decision was made, so "closest match · 0%" would be wrong."""
    p = hit.passage
    review = engine.reviews[p.review_id]
    s, e = hit.highlight[0] - p.start, hit.highlight[1] - p.start
    marked = html.escape(p.text[s:e])
    if exact is not None and hit.highlight[0] <= exact[0] < exact[1] <= hit.highlight[1]:
        a, b = exact[0] - hit.highlight[0], exact[1] - hit.highlight[0]
        inner = p.text[s:e]
        marked = (html.escape(inner[:a]) + '<strong class="qa-answer">' + html.escape(inner[a:b]) + "</strong>"
                  + html.escape(inner[b:]))
    body = html.escape(p.text[:s]) + "<mark>" + marked + "</mark>" + html.escape(p.text[e:])
    meta = [html.escape(review.source.outlet)] if review.source.outlet else []  # only what is known
    if review.source.author:
        meta.append("by " + html.escape(review.source.author))
    url = _safe_url(review.source.url)
    if url:
        meta.append(f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer nofollow">'
                    "read the review</a>")
    if len(engine.films()) > 1:
        meta.append(html.escape(review.film))
    meta.append(f"¶ {p.paragraph} · chars {p.start}–{p.end}")
    badge = ""
    if decided:
        css, words = match_label(hit, engine.answer_model.threshold)
        raw = " · ".join(f"{k} {v:.4f}" for k, v in hit.scores.items())
        badge = f' · <span class="qa-match {css}" title="raw scores: {html.escape(raw, quote=True)}">{words}</span>'
    return (
        f'<div class="qa-card" id="{id_prefix}-{hit.rank}" data-review-id="{html.escape(p.review_id, quote=True)}" '
        f'data-passage-id="{html.escape(p.id, quote=True)}">'
        f'<div class="qa-head"><span class="qa-num">[{hit.rank}]</span>'
        f'<span class="qa-title">{html.escape(review.title)}</span></div>'
        f'<div class="qa-meta">{" · ".join(meta)}{badge}</div>'
        f'<p class="qa-text">{body}</p></div>'
    )


def cards_html(hits: tuple[Hit, ...], engine: Engine, empty: str = "No passages yet: ask a question.",
               answer: Answer | None = None, id_prefix: str = "qa-card", decided: bool = True) -> str:
    if not hits:
        return f'<div class="qa-cards"><p class="qa-empty">{html.escape(empty)}</p></div>'
    exact = answer.exact_answers if answer else {}
    head = ""
    if answer is not None and not answer.answered:
        head = '<p class="qa-closest">Closest passages: none of them answers the question.</p>'
    return (f'<div class="qa-cards">{head}'
            + "".join(card_html(h, engine, exact.get(h.rank), id_prefix, decided) for h in hits) + "</div>")


def unescape_markdown(text: str) -> str:
    """The inverse of escape_markdown: the text the reader typed."""
    return html.unescape(_MD_ESCAPED.sub(r"\1", text))
