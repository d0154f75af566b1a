"""What the web app's tabs share: passage cards and escaping (review text is untrusted: everything from a
review is HTML-escaped, and Markdown punctuation backslashed, before it is shown), the film list's
"all films" choice, and the page's style sheet. Every tab imports from here; no tab imports another.
"""

from __future__ import annotations

import html
import re

from ..engine import Engine
from ..records import Answer, Hit

ALL_FILMS = "All films"

CSS = """
.qa-cards { display: flex; flex-direction: column; gap: 10px; }
.qa-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px 12px;
  background: var(--block-background-fill); }
.qa-head { font-weight: 600; display: flex; gap: 8px; align-items: baseline; }
.qa-num { color: var(--color-accent); min-width: 2em; }
.qa-meta { font-size: 0.85em; color: var(--body-text-color-subdued); margin: 2px 0 6px 0; }
.qa-match { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 0.8em; cursor: help; }
.qa-strong { background: #d1fae5; color: #065f46; } .qa-good { background: #fef3c7; color: #92400e; }
.qa-weak { background: #f3f4f6; color: #4b5563; }
.qa-text { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.92em; margin: 0; line-height: 1.45; }
.qa-text mark { background: #fde68a; color: inherit; padding: 0 1px; }
.qa-answer { text-decoration: underline; text-decoration-thickness: 2px; }
.qa-closest { font-weight: 600; color: var(--body-text-color-subdued); margin: 0; }
.qa-empty { color: var(--body-text-color-subdued); font-style: italic; }
.qa-misses { font-size: 0.85em; border-collapse: collapse; width: 100%; }
.qa-misses td, .qa-misses th { border: 1px solid var(--border-color-primary); padding: 4px 6px; vertical-align: top;
  overflow-wrap: anywhere; }
"""

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
