"""The chat's pure parts, in process, with the real engine."""

from pathlib import Path

import pytest

from qa.records import Answer, AnswerSpan
from qa.serving import EngineLoader
from qa.ui import cards_html, escape_markdown, respond, reply_markdown, user_turns

EVIL = '<script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1))'


def _loader(engine):
    return EngineLoader(engine.settings, opener=lambda _: engine)


def test_escape_markdown_leaves_nothing_live():
    out = escape_markdown(EVIL)
    assert "<" not in out and ">" not in out.replace("&gt;", "")
    assert "\\[x\\]\\(javascript:alert\\(1\\)\\)" in out


def test_respond_answers_with_cards_and_keeps_history_per_call(engine):
    loader = _loader(engine)
    history, box, cards, per_review, searched, block, vote = list(
        respond("Who composed the score?", [], None, None, 3, loader))[-1]
    assert box == "" and len(history) == 2
    assert vote["answer"]["question"] == "Who composed the score?" and vote["history"] == []  # what a vote records
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


def test_cards_name_only_what_is_known(engine):
    hit = engine.ask("Who composed the score?").hits[0]
    card = cards_html((hit,), engine)
    assert "unknown" not in card.split('class="qa-meta">')[1].split("<span")[0]
    assert f"¶ {hit.passage.paragraph} · chars {hit.passage.start}–{hit.passage.end}" in card


def test_every_card_on_the_ask_tab_has_its_own_id(engine):
    """The ranked cards and "What each review says" are on one page: their element ids never repeat."""
    import re

    from qa.ui import per_review_html

    answer = engine.ask("Who composed the score?")
    ids = re.findall(r' id="([^"]+)"', cards_html(answer.hits, engine, answer=answer) + per_review_html(answer, engine))
    assert len(ids) == len(answer.hits) + len(answer.per_review) == len(set(ids))
    assert ids[0] == "qa-card-1" and "qa-review-card-1" in ids


def test_source_line_names_only_what_is_known():
    from qa.records import Passage, Review, Source, source_line

    passage = Passage("p", "r", 10, 20, 3, "x" * 10)
    assert source_line(Review("r", "F", "Title", "t"), passage) == "Title · ¶ 3 · chars 10–20"
    known = Review("r", "F", "Title", "t", Source(outlet="The Paper", author="Ann Lee"))
    assert source_line(known, passage) == "Title · The Paper · by Ann Lee · ¶ 3 · chars 10–20"


def test_downloaded_conversation_holds_each_turn_as_on_screen_with_its_citations(engine, tmp_path):
    from qa.records import source_line
    from qa.ui import conversation_markdown, turn_markdown, write_conversation

    loader = _loader(engine)
    first = list(respond("Who composed the score?", [], None, None, 3, loader))[-1]
    second = list(respond("What is the capital of France?", first[0], None, None, 3, loader))[-1]
    path = write_conversation([first[5], second[5]], tmp_path)
    text = path.read_text(encoding="utf-8")
    assert path.name == "conversation.md" and text == conversation_markdown([first[5], second[5]])
    assert text.count("**Question:**") == 2 and text.index("Who composed") < text.index("capital of France")
    for history in (first[0], second[0]):
        assert history[-1]["content"][0]["text"] in text  # each reply exactly as the chat shows it
    answer = engine.ask("Who composed the score?", retrieval=engine.retrieval_settings(k=3))
    for span in answer.answer_spans:
        hit = answer.hits[span.rank - 1]
        assert f"\\[{hit.rank}\\] {escape_markdown(source_line(engine.store.reviews[hit.passage.review_id], hit.passage))}" in text
    assert "Closest passages: none of them answers the question." in text  # the second turn abstains
    evil = turn_markdown(EVIL, escape_markdown(EVIL))
    assert "<script>" not in evil and "<img" not in evil
    assert write_conversation([first[5]], tmp_path) != path  # another conversation, another file


def test_evaluate_tab_renders_from_memory_and_leaves_no_files(engine, tmp_path):
    import tempfile

    from qa.ui import run_evaluation

    from .conftest import ROOT

    def eval_folders():  # what the tab used to leave behind, one folder per run
        return set(Path(tempfile.gettempdir()).glob("qa-eval-*"))

    before = eval_folders()
    rows, recall, misses, status, reliability = run_evaluation("escape", "hybrid", "", _loader(engine), ROOT / "evals",
                                                               tmp_path / "cache")
    assert status == "Evaluated escape with hybrid: 60 queries scored."
    names = [name for name, _ in rows]
    assert names[0] == "queries scored" and "mrr@10" in names and "review_ndcg@10" in names
    assert recall.size[0] > 100 and reliability.size[0] > 100  # images, not paths to temp files
    assert misses.count("<tr>") == 61
    assert eval_folders() == before
    _, _, _, message, _ = run_evaluation("nope", "hybrid", "", _loader(engine), ROOT / "evals", tmp_path / "cache")
    assert message == f"There is no dataset named nope under {ROOT / 'evals'}."
    _, _, _, message, _ = run_evaluation("labels/nope", "hybrid", "", _loader(engine), ROOT / "evals", tmp_path / "cache",
                                         labels_dir=tmp_path / "labels")
    assert message == (f"There is no dataset named labels/nope under {ROOT / 'evals'} "
                       f"(or, as labels/<set>, under {tmp_path / 'labels'}).")


def test_downloads_folder_keeps_only_the_newest_conversations(tmp_path):
    import os

    from qa.ui import write_conversation

    paths = []
    for n in range(5):
        paths.append(write_conversation([f"**Question:** turn {n}"], tmp_path, keep=3))
        os.utime(paths[-1].parent, (1_000 + n, 1_000 + n))  # distinct ages, oldest first
    latest = write_conversation(["**Question:** the last one"], tmp_path, keep=3)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert len(kept) == 3 and latest.parent.name in kept
    assert {paths[3].parent.name, paths[4].parent.name} <= set(kept)  # the two newest before it
    assert latest.read_text(encoding="utf-8").endswith("the last one\n")


def test_a_shared_app_loads_eval_outputs_only_from_its_folder(engine, tmp_path):
    from qa.errors import DatasetError
    from qa.ui import eval_output_folder, run_evaluation

    root = tmp_path / "eval-out"
    (root / "run1").mkdir(parents=True)
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "metrics.json").write_text("{}")
    (root / "link").symlink_to(outside)
    assert eval_output_folder("run1", root) == (root / "run1").resolve()
    assert eval_output_folder(str(root / "run1"), root) == (root / "run1").resolve()
    assert eval_output_folder(str(outside), None) == outside  # a local app: any folder
    for typed in (str(outside), "../secret", str(root / "link"), "/etc"):
        with pytest.raises(DatasetError, match=f"^This app loads eval outputs only from {root}; give a folder inside it.$"):
            eval_output_folder(typed, root)
    rows, plot, misses, status, reliability = run_evaluation(None, "hybrid", str(outside), _loader(engine),
                                                             tmp_path, tmp_path / "cache", outputs_root=root)
    assert (rows, plot, misses, reliability) == ([], None, "", None)
    assert status == f"This app loads eval outputs only from {root}; give a folder inside it."


def test_gradios_old_copies_of_conversations_are_pruned(tmp_path):
    import os
    import time

    from qa.ui import prune_served_copies

    for name, age in (("old", 7200), ("new", 10)):
        (tmp_path / name).mkdir()
        path = tmp_path / name / "conversation.md"
        path.write_text("x")
        os.utime(path, (time.time() - age, time.time() - age))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "picture.png").write_text("not ours")
    assert prune_served_copies(tmp_path, 3600) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "other"]
