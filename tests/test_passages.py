from hypothesis import given, settings, strategies as st

from qa.corpus import read_corpus
from qa.passages import ChunkerSettings, paragraphs, sentences, split_review
from qa.records import Review

from .conftest import SEED_CORPUS


def _check(review, passages, words):
    for p in passages:
        assert review.text[p.start : p.end] == p.text
        assert p.text == p.text.strip() and p.text
        assert len(p.text.split()) <= 2 * words
        for s, e in p.sentences:
            assert p.start <= s < e <= p.end
    # every word of the review is in some passage
    covered = set()
    for p in passages:
        covered.update(range(p.start, p.end))
    assert all(i in covered for i, c in enumerate(review.text) if not c.isspace())


def test_offsets_hold_over_every_seed_passage():
    corpus = read_corpus(SEED_CORPUS)
    for review in corpus.reviews:
        passages = split_review(review)
        assert len(passages) >= 5
        _check(review, passages, 100)
        # the paragraph number is the 1-based paragraph that holds the passage's first character
        spans = paragraphs(review.text)
        for p in passages:
            number = next(n for n, (s, e) in enumerate(spans, 1) if s <= p.start < e)
            assert p.paragraph == number


def test_passages_are_whole_sentences_with_overlap():
    text = " ".join(f"Sentence number {i} has exactly seven words." for i in range(40))
    review = Review("r", "F", "T", text)
    passages = split_review(review, ChunkerSettings(words=30, overlap=1))
    assert all(p.text.startswith("Sentence") and p.text.endswith(".") for p in passages)
    for a, b in zip(passages, passages[1:]):
        assert b.start < a.end  # one sentence shared
        assert a.sentences[-1] == b.sentences[0]
    assert all(len(p.text.split()) <= 30 for p in passages)


def test_a_huge_sentence_is_cut_at_word_boundaries():
    text = "word " * 1000 + "end."
    review = Review("r", "F", "T", text)
    passages = split_review(review, ChunkerSettings(words=100))
    _check(review, passages, 100)


def test_sentences_splitter_keeps_abbreviations():
    text = "Dr. Kim said no. The film runs 94 min. and ends."
    spans = sentences(text, 0, len(text))
    assert [text[s:e] for s, e in spans][0] == "Dr. Kim said no."


# Messy user text, written for this test in the style of real product and film reviews.
MESSY = [
    "Very nice!Overall I love this film.",
    "I will not have any problems.Quality and sound are great.",
    "It cost $400.The only negative is the length.",
    "It works (I will get to that).I have seen it twice.",
    "She still doesn't.  This one does.",
    "The score is by Mowg. The film runs 94 min. and ends well.",
    "Worth it!-Good acting.-Bad ending.",
    "Pacing is fine. but the ending drags.",
    "These actors are great! they are not the problem.",
    "Plot, cast, effects, etc. Are they worth it?",
    "Dr. Kim said no. Mr. Lee said yes.",
    "I waited... and waited... Then it started.",
    "Was it good?!?! Deal me in! They really were.",
    "Version 2.5 is out. See amazon.com for details.",
    "Great sound.(Too loud at times.) Still a buy.",
]


def _pysbd(text):
    import pysbd

    return [s.strip() for s in pysbd.Segmenter(language="en", clean=False).segment(text)]


def test_rules_split_messy_text_as_pysbd_does():
    for text in MESSY:
        assert [text[s:e] for s, e in sentences(text, 0, len(text))] == _pysbd(text), text


def test_rules_decide_without_pysbd_where_they_can(monkeypatch):
    import qa.passages as passages

    def refuse(*_):
        raise AssertionError("pysbd was asked about a case the rules decide")

    monkeypatch.setattr(passages, "_pysbd_starts", refuse)
    text = "Very nice!Overall I love it. It cost $400.The end is weak (I will get to that).I saw it twice."
    assert [text[s:e] for s, e in sentences(text, 0, len(text))] == [
        "Very nice!", "Overall I love it.", "It cost $400.The end is weak (I will get to that).", "I saw it twice."]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=600), st.integers(min_value=5, max_value=60), st.integers(min_value=0, max_value=3))
def test_offset_invariant_on_any_text(text, words, overlap):
    review = Review("r", "F", "T", text)
    passages = split_review(review, ChunkerSettings(words=words, overlap=overlap))
    _check(review, passages, words)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["Hello there.", "Who’s next?", "“Quoted!” he said.", "\n", "\n\n", " ",
                                 "Mr. Lee", "94 min.", "π¬", "—", "a", "...", "?!"]), max_size=60))
def test_offset_invariant_on_sentence_like_text(parts):
    text = " ".join(parts)
    review = Review("r", "F", "T", text)
    _check(review, split_review(review, ChunkerSettings(words=12)), 12)
