"""Fusion, diversity, follow-ups and highlights: formulas on tiny fixtures, then the real model."""

import pytest

from qa.chat import clean_question, fold, is_follow_up
from qa.errors import BadQuestion
from qa.lexical import Lexical
from qa.retrieve import Filters, RetrievalSettings, cap_per_review, rrf

# ---------------------------------------------------------------- formulas


def test_rrf_matches_the_formula():
    dense, bm25 = [3, 1, 2], [1, 4]
    scores = rrf([dense, bm25], k=60)
    assert scores[1] == pytest.approx(1 / (60 + 2) + 1 / (60 + 1))
    assert scores[3] == pytest.approx(1 / (60 + 1))
    assert scores[2] == pytest.approx(1 / (60 + 3))
    assert scores[4] == pytest.approx(1 / (60 + 2))
    weighted = rrf([dense, bm25], k=10, weights=[2.0, 0.5])
    assert weighted[1] == pytest.approx(2.0 / 12 + 0.5 / 11)


def test_per_review_cap_holds_and_off_means_pure_fusion():
    ranked = [0, 1, 2, 3, 4, 5, 6]
    review_of = ["a", "a", "a", "b", "a", "c", "b"]
    top = cap_per_review(ranked, review_of, cap=2, k=5)
    assert top == [0, 1, 3, 5, 6]
    assert max(sum(1 for d in top if review_of[d] == r) for r in "abc") <= 2
    assert cap_per_review(ranked, review_of, cap=None, k=5) == ranked[:5]
    # with too few reviews, the skipped candidates fill the list rather than leaving it short
    assert cap_per_review([0, 1, 2, 4], review_of, cap=1, k=3) == [0, 1, 2]


def test_bm25_finds_exact_names_and_numbers():
    lexical = Lexical.build(["The haunting score by Dalpalan enhances it.", "Clocking in at 94 minutes, it is brisk.",
                             "The cinematography is lush."])
    assert lexical.scores("Dalpalan?").argmax() == 0
    assert lexical.scores("94 minutes").argmax() == 1
    assert lexical.scores("the of and").max() == 0


FOLLOW_UPS = [
    # question, history, dependent?, how the settled reading uses the history (alone, folded, rewritten)
    ("Who composed the score?", [], False, "alone"),
    ("What else has he worked on?", ["Who composed the score?"], True, "folded"),
    ("And the audience score?", ["What did critics give it?"], True, "folded"),
    ("What about the pacing?", ["How was the acting?"], True, "rewritten"),  # "How was the pacing?"
    ("Is it long?", ["Who directed Escape?"], True, "alone"),  # "it" is the film: an opinion about it
    ("Their names?", ["Who stars in it?"], True, "folded"),
    ("Who plays Major Ri Hyun-sang in Escape?", ["Who composed the score?"], False, "alone"),
    ("How long is the running time of Escape?", ["Who directed?"], False, "alone"),
    ("Did critics like the cinematography of the film?", ["Who is the lead?"], False, "alone"),
    ("Did she like it?", ["What did the Houston Chronicle say?"], True, "folded"),
    ("Why?", ["Was the screenplay weak?"], True, "folded"),
]


@pytest.mark.parametrize("question,history,dependent,rule", FOLLOW_UPS)
def test_follow_up_detection(question, history, dependent, rule):
    assert is_follow_up(question, history) is dependent
    folded = fold(question, history)
    assert folded.rule == rule
    if rule == "folded":
        assert folded.history_text and folded.query_used.endswith(question) and history[-1] in folded.query_used
    elif rule == "rewritten":
        assert folded.history_text == history[-1] and folded.query_used == folded.question != question
    else:
        assert folded.query_used == question and folded.history_text is None


def test_questions_are_cleaned_or_refused():
    with pytest.raises(BadQuestion):
        clean_question("   \n\t ")
    with pytest.raises(BadQuestion):
        clean_question("\x00\x07")
    assert clean_question("Who\x00 scored\u202e it?")[0] == "Who scored it?"
    text, notices = clean_question("why " * 50_000)
    assert len(text) <= 1000 and notices


def test_settings_reject_nonsense():
    with pytest.raises(ValueError):
        RetrievalSettings(mode="magic")
    with pytest.raises(ValueError):
        RetrievalSettings(k=0)


# ---------------------------------------------------------------- the real model on the seeds


def _review_text(engine, hit):
    return engine.store.reviews[hit.passage.review_id].text


def test_who_composed_the_score_puts_dalpalan_first(engine):
    for mode in ("dense", "bm25", "hybrid"):
        answer = engine.ask("Who composed the score?", retrieval=engine.retrieval_settings(mode=mode))
        top = answer.hits[0]
        assert "Dalpalan" in top.passage.text, mode
        s, e = top.highlight
        assert "Dalpalan" in _review_text(engine, top)[s:e]
    assert "Dalpalan" in engine.ask("Who composed the score?").summary.split("\n")[0]


def test_bm25_alone_finds_94_minutes(engine):
    answer = engine.ask("94 minutes", retrieval=engine.retrieval_settings(mode="bm25", k=1))
    assert "94 minutes" in answer.hits[0].passage.text


def test_highlights_lie_inside_their_passage_and_cover_whole_sentences(engine):
    for q in ["Who composed the score?", "Did critics like the pacing?", "Where did the reviewer see the film?",
              "What is the Rotten Tomatoes score?", "Who plays the villain?"]:
        for hit in engine.ask(q, retrieval=engine.retrieval_settings(k=8)).hits:
            p = hit.passage
            s, e = hit.highlight
            assert p.start <= s < e <= p.end
            assert (s, e) in p.sentences


def test_per_review_cap_spreads_the_top_k(engine):
    # Retrieval's own order (an opinion reply puts the passages it quotes first among its cards).
    found = engine.search("How was the acting?", retrieval=engine.retrieval_settings(k=5))
    counts = {}
    for h in found.hits[:5]:
        counts[h.passage.review_id] = counts.get(h.passage.review_id, 0) + 1
    assert max(counts.values()) <= 2 and len(counts) == 3
    uncapped = engine.search("How was the acting?", retrieval=engine.retrieval_settings(k=5, per_review_cap=None))
    order, detail = engine.retriever.ranked(engine.retriever.query("How was the acting?"), RetrievalSettings(k=5))
    assert [h.passage for h in uncapped.hits[:5]] == [engine.store.passages[i] for i in order[:5]]


def test_follow_up_is_searched_with_its_history(engine):
    answer = engine.ask("Who plays him?", history=["Who is the villain, Major Ri?"])
    assert answer.query_used == "Who is the villain, Major Ri? Who plays him?"
    assert any("Koo Kyo-hwan" in h.passage.text for h in answer.hits[:3])
    alone = engine.ask("Who plays him?")
    assert alone.query_used == "Who plays him?"


def test_what_each_review_says(engine):
    answer = engine.ask("What about the cinematography?")
    assert len(answer.per_review) == 3
    assert {h.passage.review_id for h in answer.per_review} == set(engine.store.reviews)
    assert answer.coverage.endswith("of 3 reviews address this question.")


def test_film_filter(engine):
    assert engine.ask("Who composed the score?", filters=Filters(film="Escape (2024)")).hits
    answer = engine.ask("Who composed the score?", filters=Filters(film="Some other film"))
    assert answer.hits == () and "No passage" in answer.summary


def test_unknown_fusion_is_refused_and_single_list_modes_show_their_own_score(engine):
    with pytest.raises(ValueError, match="fusion must be one of convex, rrf, not 'convx'"):
        RetrievalSettings(fusion="convx")
    bm25 = engine.ask("Who composed the score?", retrieval=engine.retrieval_settings(mode="bm25")).hits[0]
    assert bm25.score == bm25.scores["bm25"] > 1.0  # a BM25 score, not 1/(60 + rank)
    dense = engine.ask("Who composed the score?", retrieval=engine.retrieval_settings(mode="dense")).hits[0]
    assert dense.score == dense.scores["dense"]


def test_review_index_lets_through_exactly_what_the_filter_rule_does():
    import itertools
    import random
    from types import SimpleNamespace

    from qa.records import Passage, Review, Source
    from qa.retrieve import Filters, ReviewIndex

    rng = random.Random(0)
    reviews = {f"r{n}": Review(f"r{n}", f"Film {n % 3}", "t", "x", Source(outlet=[None, "Paper", "blog"][n % 3]),
                               metadata={"lang": ["en", "FR"][n % 2]}) for n in range(40)}
    passages = [Passage(f"r{n}#{k}", f"r{n}", 0, 1, 1, "x") for n in range(40) for k in range(n % 4)]
    rng.shuffle(passages)  # a review's passages need not sit together
    index = ReviewIndex(SimpleNamespace(reviews=reviews, passages=passages))

    def rule(review, f):  # the filter semantics, one review at a time
        wanted = {**f.metadata, **({"film": f.film} if f.film else {}), **({"outlet": f.outlet} if f.outlet else {})}
        for key, value in wanted.items():
            have = {"film": review.film, "outlet": review.source.outlet}.get(key, review.metadata.get(key))
            if have is None or str(have).casefold() != str(value).casefold():
                return False
        return not f.review_ids or review.id in f.review_ids

    options = itertools.product([None, "film 1", "Film 9"], [None, "PAPER", "blog"], [None, ("r1", "r4", "r7", "zz")],
                                [{}, {"lang": "fr"}, {"film": "Film 1"}])
    for film, outlet, ids, metadata in options:
        f = Filters(film=film, outlet=outlet, review_ids=ids, metadata=metadata)
        numbers = index.reviews(f)
        if not f.active():
            assert numbers is None
            continue
        expected = [rid for rid, review in reviews.items() if rule(review, f)]
        assert [index.review_ids[n] for n in numbers] == expected, f
        assert index.passages(numbers).tolist() == [i for i, p in enumerate(passages) if p.review_id in expected], f
