"""The chat's pure parts, in process, with the real engine."""

from qa.records import Answer, AnswerSpan
from qa.ui import EngineLoader, cards_html, escape_markdown, respond, reply_markdown, user_turns

EVIL = '<script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1))'


def _loader(engine):
    return EngineLoader(engine.settings, opener=lambda _: engine)


def test_escape_markdown_leaves_nothing_live():
    out = escape_markdown(EVIL)
    assert "<" not in out and ">" not in out.replace("&gt;", "")
    assert "\\[x\\]\\(javascript:alert\\(1\\)\\)" in out


def test_respond_answers_with_cards_and_keeps_history_per_call(engine):
    loader = _loader(engine)
    history, box, cards, per_review, searched = list(respond("Who composed the score?", [], None, None, 3, loader))[-1]
    assert box == "" and len(history) == 2
    reply = history[-1]["content"][0]["text"]
    assert "Dalpalan" in reply and "\\[1\\]" in reply
    assert 'id="qa-card-1"' in cards and '<mark>The haunting score by <strong class="qa-answer">Dalpalan</strong>' in cards
    assert 'id="qa-card-3"' in cards and 'id="qa-card-4"' not in cards
    assert "of 3 reviews address this question" in per_review
    follow = list(respond("What else has he worked on?", history, None, None, 3, loader))[-1]
    assert "Searched for: Who composed the score? What else has he worked on?" in follow[4]
    assert user_turns(follow[0]) == ["Who composed the score?", "What else has he worked on?"]
    assert len(history) == 2  # the caller's list is not changed
    typed = "What did Lee Je-hoon (the lead) do? <b>#1</b>"
    turn = list(respond(typed, [], None, None, 3, loader))[-1][0]
    assert user_turns(turn) == [typed]


def test_respond_states(engine):
    loader = _loader(engine)
    empty = list(respond("   ", [], None, None, 5, loader))
    assert empty[-1][0][-1]["content"][0]["text"] == "Please type a question."
    other = list(respond("Who composed the score?", [], "Some other film", None, 5, loader))[-1]
    assert "no review matches the chosen film" in other[0][-1]["content"][0]["text"]
    one_review = list(respond("Who composed the score?", [], None,
                              "Escape (2024): a taut, emotionally charged thriller", 5, loader))[-1]
    assert one_review[2].count('data-review-id="escape-2024/000_c5d586a175a2a666"') == one_review[2].count("qa-card-")
    no_outlet = list(respond("Who composed the score?", [], None, "Outlet: Nobody's Paper", 5, loader))[-1]
    assert 'id="qa-card-1"' not in no_outlet[2]


def test_respond_shows_a_building_message_before_the_first_load(engine):
    loader = _loader(engine)
    steps = list(respond("Who composed the score?", [], None, None, 5, loader))
    assert "building the index" in steps[0][0][-1]["content"][0]["text"]
    assert len(steps) == 2


def test_cards_escape_review_text(engine):
    from dataclasses import replace

    hit = engine.ask("Who composed the score?").hits[0]
    evil_passage = replace(hit.passage, text=EVIL + hit.passage.text[len(EVIL):])
    evil_hit = replace(hit, passage=evil_passage, highlight=(hit.passage.start, hit.passage.start + 8))
    html_out = cards_html((evil_hit,), engine)
    assert "<script>" not in html_out and "<img" not in html_out
    exact = cards_html((evil_hit,), engine, answer=Answer("q", "q", (evil_hit,), "s", "c", answered=True, answer_spans=(
        AnswerSpan(evil_hit.rank, evil_hit.highlight[0] + 1, evil_hit.highlight[0] + 4, "answer"),)))
    assert '<strong class="qa-answer">' in exact and "<img" not in exact
    assert "&lt;img src=x onerror=alert(1)&gt;" in html_out and "alert(1)&lt;/script&gt;" in html_out
    answer = Answer("q", "q", (), EVIL, "0 of 3 reviews address this question.")
    assert "<script>" not in reply_markdown(answer)
    quoted = Answer("q", "q", (), EVIL, "1 of 3 reviews address this question.", answered=True, confidence=0.8)
    assert "<script>" not in reply_markdown(quoted) and reply_markdown(quoted).startswith("> ")
