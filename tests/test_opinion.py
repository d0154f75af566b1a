"""Opinion questions: kinds, the follow-up rule, opinion replies, review-level metrics."""

import json

import pytest

from qa.answer import build_opinion_answer, opinion_abstention, stance_tally
from qa.chat import FOLD_MARGIN, readings
from qa.evals import ReplyJudgement, QueryResult, EvalQuery, answer_metrics, judge_reply, load_dataset
from qa.kinds import question_kind
from qa.opinion import FEATURES, Judgement, OpinionModel, load_opinion_model, stance

from .conftest import ROOT


# ---------------------------------------------------------------- kinds and readings (no model)

@pytest.mark.parametrize("question, kind, aspect_word", [
    ("Is the acting good?", "opinion", "performance"),
    ("How is the camerawork?", "opinion", "cinematography"),
    ("Is it scary?", "opinion", "suspense"),
    ("Is the film too long?", "opinion", "pacing"),
    ("Should I see it?", "verdict", None),
    ("Would I enjoy it?", "verdict", None),
    ("What are its weaknesses?", "criticism", None),
    ("What do critics dislike about it?", "criticism", None),
    ("What are its strengths?", "praise", None),
    ("Do the critics agree with each other?", "agreement", None),
    ("Who composed the score?", "fact", None),
    ("How is Lim caught?", "fact", None),
    ("How is the regime's elite shown?", "fact", None),
    ("Can you recommend a good laptop for programming?", "fact", None),
    ("When can I watch it at home?", "fact", None),
])
def test_question_kinds(question, kind, aspect_word):
    found = question_kind(question)
    assert found.name == kind
    if aspect_word:
        assert aspect_word in found.aspect_terms


def test_every_labelled_opinion_question_gets_its_kind():
    for name in ("escape-opinion", "escape-opinion-check"):
        for line in (ROOT / "evals" / name / "queries.jsonl").read_text().splitlines():
            q = json.loads(line)
            assert question_kind(q["text"]).name == q["metadata"]["kind"], q["text"]


def test_stand_alone_it_questions_are_read_alone():
    for question in ("Is it scary?", "Should I see it?", "Would I enjoy it?", "What are its weaknesses?"):
        found = readings(question, ["Who composed the score?"])
        assert [(r.rule, r.query_used) for r in found] == [("alone", question)]


def test_follow_ups_lean_on_one_resolved_turn():
    assert [r.query_used for r in readings("And the cinematography?", ["Is the acting good?"])] == \
        ["Is the cinematography good?"]
    assert [r.query_used for r in readings("And the music?", ["Is the acting good?", "And the cinematography?"])] == \
        ["Is the music good?"]  # the turn it leans on, itself resolved; not the acting
    assert [r.query_used for r in readings("Who plays him?", ["Who composed the score?", "Who is the villain?"])] == \
        ["Who is the villain? Who plays him?"]  # only the turn it leans on
    assert [r.query_used for r in readings("Was it any good?", ["Who shot the cinematography?"])] == \
        ["Was the cinematography any good?"]
    both = readings("When was it released?", ["Who composed the score?"])
    assert [r.rule for r in both] == ["alone", "folded"]
    assert readings("Who composed the score?", []) == [readings("Who composed the score?", ["Is it scary?"])[0]]


# ---------------------------------------------------------------- replies (a synthetic store)

class _Store:
    def __init__(self, reviews):
        self.reviews = reviews


def _review(rid, text, title):
    from qa.records import Review

    return Review(rid, "Escape (2024)", title, text)


def _hit(rid, text, rank):
    from qa.records import Hit, Passage

    return Hit(Passage(f"{rid}#p0", rid, 0, len(text), 1, text, ((0, len(text)),)), 1.0, rank, (0, len(text)))


def test_a_reply_never_quotes_two_sentences_of_one_review_as_two_reviews():
    a_text, b_text = "The acting is superb. The lead is magnificent.", "The cast is fine."
    reviews = {"a": _review("a", a_text, "Review A"), "b": _review("b", b_text, "Review B")}
    hits = [_hit("a", a_text, 1), _hit("b", b_text, 2)]
    position = {"a#p0": 0, "b#p0": 1}
    judged = [Judgement(0, "a", (0, 21), (), 0.9, "positive"), Judgement(0, "a", (22, 47), (), 0.8, "positive"),
              Judgement(1, "b", (0, 17), (), 0.6, "mixed")]
    answer = build_opinion_answer("Is the acting good?", "Is the acting good?", question_kind("Is the acting good?"),
                                  hits, hits, reviews, 2, judged, 0.5, False, position,
                                  lambda p, r: hits[p], ())
    quoted = [answer.hits[s.rank - 1].passage.review_id for s in answer.answer_spans]
    assert quoted == ["a", "b"] and answer.summary.count("\n") == 1
    assert answer.summary.startswith("- Review A: “The acting is superb.” [1]")
    assert answer.coverage == "2 of 2 reviews judge the acting." and answer.kind == "opinion"
    none = build_opinion_answer("Is it funny?", "Is it funny?", question_kind("Is it funny?"), hits, hits, reviews, 2,
                                judged, 0.95, False, position, lambda p, r: hits[p], ())
    assert not none.answered and none.summary == "None of the 2 reviews discusses whether it is funny."


def test_abstention_and_tally_sentences():
    assert opinion_abstention(question_kind("Are the special effects good?"), 3) == \
        "None of the 3 reviews discusses the special effects."
    assert opinion_abstention(question_kind("Should I see it?"), 1) == "The review does not give an overall verdict."
    assert stance_tally(question_kind("Should I see it?"), ["positive"] * 3) == "All 3 reviews recommend it."
    assert stance_tally(question_kind("Is the acting good?"), ["positive", "positive", "negative"]) == \
        "2 of 3 praise the acting; 1 criticise the acting."


def test_stance_rule():
    assert stance("A magnificent, moving performance.") == "positive"
    assert stance("The screenplay fails, though the cast tries hard and it is a sad waste.") == "negative"
    assert stance("Stylish, though at times the urgency eclipses clarity.") == "mixed"


def test_the_shipped_opinion_model_loads_and_says_whether_stances_show():
    model = load_opinion_model()
    assert len(model.weights) == len(FEATURES) and 0 < model.threshold < 1
    assert model.show_stance == (model.stance_accuracy >= 0.85)
    with pytest.raises(Exception, match="another feature set"):
        OpinionModel.from_json({**model.to_json(), "features": ["x"]})


# ---------------------------------------------------------------- review-level metrics

def test_review_recall_and_stance_accuracy_formulas():
    def result(answerable, answered, right, answering, quoted, stances=()):
        q = EvalQuery("q", "x", answerable=answerable)
        return QueryResult(q, "x", [], {0}, 1, ReplyJudgement(answered, 0.5, right, "", answering, quoted, stances))

    results = [result(True, True, (True, False), 3, 2, (("positive", "positive"), ("negative", "mixed"))),
               result(True, False, (), 2, 0),
               result(True, True, (False,), 0, 0)]  # no evidence: left out of review recall
    out, _ = answer_metrics(results)
    assert out["review_recall"] == pytest.approx(round((2 / 3 + 0) / 2, 4))
    assert out["stance_accuracy"] == 0.5
    assert out["first_line_rate"] == pytest.approx(round(1 / 3, 4))


@pytest.mark.slow
def test_opinion_replies_on_the_seed_reviews(engine):
    answer = engine.ask("Is the acting good?")
    assert answer.answered and answer.kind == "opinion"
    quoted = [answer.hits[s.rank - 1].passage.review_id for s in answer.answer_spans]
    assert len(quoted) == len(set(quoted)) >= 2
    assert engine.ask("Should I see it?").kind == "verdict"
    assert not engine.ask("How are the costumes?").answered


@pytest.mark.slow
def test_a_stand_alone_reading_is_never_replaced_by_a_worse_folded_one(engine):
    from qa.retrieve import Filters

    retrieval, filters = engine.settings.retrieval, Filters()
    for question, history in [("When was it released?", ["Who composed the score?"]),
                              ("Who directed it?", ["What is the running time?"]),
                              ("How long is it?", ["Is it scary?"])]:
        alone, folded = (engine._answer(question, r, retrieval, filters) for r in readings(question, history))
        chosen = engine.ask(question, history)
        if chosen.used_history:
            assert folded.answered and (not alone.answered or folded.confidence >= alone.confidence + FOLD_MARGIN)
        else:
            assert chosen.summary == alone.summary and chosen.query_used == question


@pytest.mark.slow
def test_eval_scores_review_recall_on_the_opinion_set(engine):
    from qa.corpus import read_corpus
    from qa.evals import evaluate_dataset

    dataset = load_dataset(ROOT / "evals" / "escape-opinion-check")
    result = evaluate_dataset(engine, dataset, read_corpus(engine.settings.corpus_dir).offset_maps, progress=False)
    assert 0 < result.answers["review_recall"] <= 1 and "stance_accuracy" in result.answers
    assert dataset.stances and judge_reply is not None
