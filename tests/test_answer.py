"""The answer decision: question and answer types, the calibrated model, reply/coverage agreement,
abstention, exact answer spans, `qa ask --batch` and the reply metrics of `qa eval`."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from qa.answer import REPLY_SENTENCES, build_answer
from qa.answer_types import answer_candidates, best_candidate, question_type
from qa.decide import (
    FEATURES,
    MODEL_VERSION,
    READ_LIMIT,
    READ_PER_REVIEW,
    READER_FEATURES,
    AnswerModel,
    Candidate,
    Linear,
    candidates,
    load_model,
    reader_rows,
    to_read,
)
from qa.errors import AnswerModelError
from qa.records import Hit, Passage, Review
from qa.retrieve import Filters

from .conftest import ROOT

# ---------------------------------------------------------------- question type -> answer span (no model)

TYPED = [  # question, sentence, exact answer expected
    ("Who composed the score?", "The haunting score by Dalpalan (known for his work on The Wailing) lifts it.", "Dalpalan"),
    ("Who directed Escape?", "Directed by Lee Jong\u2011pil, Escape delivers a taut thriller.", "Lee Jong\u2011pil"),
    ("How long is the film?", "Clocking in at 94 minutes, Escape wastes no time.", "94 minutes"),
    ("What is the running time?", "Running time: 1hr 34m", "1hr 34m"),
    ("What is the Rotten Tomatoes score?", "Rotten Tomatoes: 71% critics, 87% audience", "71%"),
    ("What rating did RogerEbert.com give it?", "RogerEbert.com: 2.5/4 – “intriguing, but underdeveloped”", "2.5/4"),
    ("When was it screening in South Korea?", "As of April 2024, Escape is screening in theaters.", "April 2024"),
    ("Where was it set?", "The chase runs across the border in North Korea.", "North Korea"),
    ("How much did it cost to make?", "The budget was $5 million, they say.", "$5 million"),
]


@pytest.mark.parametrize("question, sentence, expected", TYPED)
def test_each_question_type_finds_its_exact_answer(question, sentence, expected):
    kind = question_type(question)
    assert kind is not None
    span = best_candidate(sentence, kind, question, [])
    assert span is not None and sentence[span[0]:span[1]] == expected


def test_types_of_questions():
    assert question_type("Who plays the villain?") == "person"
    assert question_type("Who composed the score?") == "person"  # "score" names the music here
    assert question_type("How long is it?") == "duration"
    assert question_type("What score did critics give it?") == "score"
    assert question_type("When was it released?") == "date"
    assert question_type("Where did the reviewer see it?") == "place"
    assert question_type("How many awards did it win?") == "quantity"
    assert question_type("How is the pacing?") is None
    assert question_type("Is it worth seeing?") is None


def test_a_name_in_the_question_is_not_its_answer():
    sentence = "Lee Je-hoon stars opposite Koo Kyo-hwan."
    spans = answer_candidates(sentence, "person", "Who stars opposite Lee Je-hoon?")
    assert [sentence[s:e] for s, e in spans] == ["Koo Kyo-hwan"]
    assert answer_candidates("It is brisk and lean.", "duration") == []
    assert answer_candidates("Anything at all.", None) == []


# ---------------------------------------------------------------- the model file


def test_probability_is_the_calibrated_logistic_of_the_linear_score():
    n = len(FEATURES)
    mean, scale = np.full(n, 0.5), np.full(n, 2.0)
    weights = np.arange(n, dtype=float) / 10
    model = AnswerModel(FEATURES, Linear(mean, scale, weights, -0.3), 1.5, 0.2, 0.5)
    x = np.linspace(0, 1, n)
    raw = sum(w * (xi - 0.5) / 2.0 for w, xi in zip(weights, x)) - 0.3
    assert model.probabilities(x.reshape(1, -1))[0] == pytest.approx(1 / (1 + math.exp(-(1.5 * raw + 0.2))))
    assert model.probabilities(np.zeros((0, n))).shape == (0,)


def test_shipped_model_loads_and_round_trips():
    model = load_model()
    assert 0.0 < model.threshold < 1.0 and model.features == FEATURES
    again = AnswerModel.from_json(json.loads(json.dumps(model.to_json())))
    rows = np.random.default_rng(1).random((5, len(FEATURES)))
    reviews, read = ["a", "b", "a", "b", "c"], (lambda chosen: np.linspace(-2, 3, len(chosen)))
    assert model.reader_scorer is not None  # version 4 ships with the reader stage
    assert np.allclose(again.probabilities(rows, reviews, read), model.probabilities(rows, reviews, read))
    assert again.threshold == model.threshold


def _reader_model(rng, a: float = 1.2, c: float = -0.3) -> AnswerModel:
    n, m = len(FEATURES), len(READER_FEATURES)
    return AnswerModel(FEATURES, Linear(np.zeros(n), np.ones(n), rng.normal(size=n), 0.1), a, c, 0.4,
                       reader_scorer=Linear(np.zeros(m), np.ones(m), rng.normal(size=m), -0.2))


def test_a_reader_model_round_trips_and_needs_the_reader():
    rng = np.random.default_rng(4)
    model = _reader_model(rng)
    again = AnswerModel.from_json(json.loads(json.dumps(model.to_json())))
    rows, reviews = rng.random((6, len(FEATURES))), ["a", "b", "a", "c", "b", "a"]
    read = lambda chosen: np.asarray(chosen, float) * 0.5 - 1.0  # noqa: E731 (any fixed logits)
    assert again.reader_scorer is not None
    assert np.allclose(again.probabilities(rows, reviews, read), model.probabilities(rows, reviews, read))
    with pytest.raises(ValueError, match="reader"):
        model.probabilities(rows)


def test_to_read_takes_each_reviews_best_up_to_the_limits():
    raw = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 6.0])
    reviews = ["a", "a", "a", "a", "b", "b", "c"]
    chosen = to_read(raw, reviews)
    assert chosen.tolist() == [6, 0, 1, 2, 4, 5][: READ_LIMIT] and READ_PER_REVIEW == 3
    many = to_read(np.arange(40.0), [str(i) for i in range(40)])
    assert len(many) == READ_LIMIT and many.tolist() == list(range(39, 39 - READ_LIMIT, -1))
    assert to_read(np.zeros(0), []).tolist() == []


def test_reader_rows_follow_their_formulas():
    """reader_margin = logit - max logit over the read ones; reader_rank = log(1 + rank of the logit, 0 the
    best); the rest copied from the candidate."""
    col = {f: i for i, f in enumerate(FEATURES)}
    rows = np.zeros((4, len(FEATURES)))
    rows[:, col["sentence_cos"]] = [0.3, 0.6, 0.5, 0.7]
    rows[:, col["type_match"]] = [1, 0, 0, 1]
    chosen = np.array([1, 3, 0])
    table = reader_rows(rows, chosen, np.array([-1.0, 2.0, 0.5]))
    r = {f: i for i, f in enumerate(READER_FEATURES)}
    assert table[:, r["reader"]].tolist() == [-1.0, 2.0, 0.5]
    assert table[:, r["reader_margin"]].tolist() == [-3.0, 0.0, -1.5]
    assert table[:, r["reader_rank"]].tolist() == pytest.approx([math.log1p(2), 0.0, math.log1p(1)])
    assert table[:, r["sentence_cos"]].tolist() == [0.6, 0.7, 0.3] and table[:, r["type_match"]].tolist() == [0, 1, 1]


def test_a_question_of_only_an_exact_type_is_fully_matched_by_a_sentence_holding_it():
    """sentence_idf_terms is 1 for a question with no content term ("How long is the film?") when the
    sentence holds the exact type asked for; with content terms, or without an exact-type span, it is copied."""
    col = {f: i for i, f in enumerate(FEATURES)}
    rows = np.zeros((4, len(FEATURES)))
    rows[:, col["question_terms"]] = [0.0, 0.0, math.log1p(2), 0.0]
    rows[:, col["exact_type_match"]] = [1, 0, 1, 0]
    rows[:, col["sentence_idf_terms"]] = [0.0, 0.0, 0.25, 0.0]
    table = reader_rows(rows, np.arange(4), np.zeros(4))
    assert table[:, list(READER_FEATURES).index("sentence_idf_terms")].tolist() == [1.0, 0.0, 0.25, 0.0]
    assert rows[0, col["sentence_idf_terms"]] == 0.0  # the candidate's own row is left alone


def test_a_reader_stage_scores_only_what_it_reads():
    """Read candidates get sigmoid(a * reader_raw(reader_rows) + c); the others 0."""
    rng = np.random.default_rng(7)
    model = _reader_model(rng, 1.5, -0.5)
    rows = rng.random((5, len(FEATURES)))
    reviews = ["a", "a", "a", "a", "b"]
    asked = []

    def read(chosen):
        asked.append(list(chosen))
        return np.linspace(-1, 1, len(chosen))

    probs = model.probabilities(rows, reviews, read)
    raw = model.scorer.raw(rows)
    chosen = to_read(raw, reviews)
    assert asked == [chosen.tolist()] and len(chosen) == 4
    expected = np.zeros(5)
    z = model.reader_scorer.raw(reader_rows(rows, chosen, np.linspace(-1, 1, 4)))
    expected[chosen] = 1 / (1 + np.exp(-(1.5 * z - 0.5)))
    assert probs.tolist() == pytest.approx(expected.tolist())
    assert (probs == 0).sum() == 1


def test_missing_or_mismatched_model_file_is_one_sentence(tmp_path):
    with pytest.raises(AnswerModelError, match="missing"):
        load_model(tmp_path / "nope.json")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"version": 2, "features": ["a", "b"], "weights": [1, 2]}))
    with pytest.raises(AnswerModelError, match="another feature set"):
        load_model(other)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(AnswerModelError, match="cannot be read"):
        load_model(broken)
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"version": MODEL_VERSION, "features": list(FEATURES), "scorer": {"kind": "forest"}}))
    with pytest.raises(AnswerModelError, match="malformed"):
        load_model(partial)


def test_passage_rank_is_the_log_of_the_retrievers_rank(engine):
    """passage_rank = log(1 + r) for a passage at rank r (0-based) of the retriever's order, and
    log(1 + len(order)) for one outside it."""
    found = engine.search("Who composed the score?")
    order = found.order[:5]
    positions = [found.order[3], found.order[0], found.order[7], found.order[9]]
    cands = candidates("Who composed the score?", "Who composed the score?", found.query.vector, positions,
                       engine.store, None, order)
    column = FEATURES.index("passage_rank")
    assert {c.position for c in cands} == set(positions)
    for c in cands:
        expected = math.log1p(order.index(c.position)) if c.position in order else math.log1p(len(order))
        assert c.features[column] == pytest.approx(expected)


# ---------------------------------------------------------------- reply and coverage from one decision

def _fixture(probabilities: dict[str, list[float]]):
    """Reviews r0.. with one passage each, one sentence per probability."""
    reviews, hits, scored, position_of = {}, [], [], {}
    for n, (rid, probs) in enumerate(probabilities.items()):
        sentences = [f"Sentence {j} of review {rid} says something." for j in range(len(probs))]
        text = " ".join(sentences)
        offsets, at = [], 0
        for s in sentences:
            offsets.append((at, at + len(s)))
            at += len(s) + 1
        reviews[rid] = Review(rid, "Film", f"Title {rid}", text)
        passage = Passage(f"{rid}#0", rid, 0, len(text), 1, text, tuple(offsets))
        position_of[passage.id] = n
        hits.append(Hit(passage, 1.0 - n / 10, n + 1, offsets[0], {"fused": 1.0}))
        scored += [Candidate(n, rid, offsets[j], tuple([0.0] * len(FEATURES)), None, p) for j, p in enumerate(probs)]
    scored.sort(key=lambda c: -c.probability)
    return reviews, hits, scored, position_of


@pytest.mark.parametrize("probabilities", [
    {"a": [0.9, 0.2], "b": [0.6], "c": [0.1]},
    {"a": [0.3], "b": [0.2], "c": [0.1]},
    {"a": [0.95], "b": [0.8], "c": [0.7], "d": [0.65]},
    {"a": [0.5], "b": [0.49]},
])
def test_reply_and_coverage_come_from_the_same_decision(probabilities):
    threshold = 0.5
    reviews, hits, scored, position_of = _fixture(probabilities)
    answer = build_answer("q?", "q?", hits, hits, reviews, len(reviews), scored, threshold, position_of,
                          lambda pos, rank: None)
    addressing = [rid for rid, probs in probabilities.items() if max(probs) >= threshold]
    assert answer.addressing == len(addressing)
    assert answer.coverage == f"{len(addressing)} of {len(reviews)} reviews address this question."
    assert answer.answered == bool(addressing)
    assert answer.confidence == pytest.approx(round(max(max(p) for p in probabilities.values()), 4))
    lines = answer.summary.split("\n")
    if not addressing:
        assert len(lines) == 1 and answer.summary.startswith("The reviews don't say")
        assert answer.answer_spans == () and answer.hits  # the closest passages stay
        return
    assert len(lines) == min(len(addressing), REPLY_SENTENCES)
    quoted = [s for s in answer.answer_spans if s.kind == "sentence"]
    assert len(quoted) == len(lines)
    cited_reviews = [answer.hits[s.rank - 1].passage.review_id for s in quoted]
    assert cited_reviews == addressing[:REPLY_SENTENCES]  # best first, one sentence per review
    for line, span in zip(lines, quoted):
        review = reviews[answer.hits[span.rank - 1].passage.review_id]
        assert line == f"{review.text[span.start:span.end]} [{span.rank}]"


def test_no_review_in_scope_says_so():
    answer = build_answer("q?", "q?", [], [], {}, 0, [], 0.5, {}, lambda pos, rank: None)
    assert not answer.answered and "no review matches" in answer.summary
    assert answer.coverage == "0 of 0 reviews address this question."


# ---------------------------------------------------------------- the real engine on the seed corpus

UNANSWERABLE = ["What is the capital of France?", "Who produced the film?", "What was the film's budget?",
                "How do I bake sourdough bread?", "Who designed the costumes?"]
ANSWERABLE = [  # question, what the first reply sentence must contain, the exact answer span (or None)
    ("Who composed the score?", "Dalpalan", "Dalpalan"),
    ("How long is Escape?", None, ("94 minutes", "1hr 34m")),
    ("How long is the film?", None, ("94 minutes", "1hr 34m")),  # no content term at all
    ("What is the film's Rotten Tomatoes score?", "71%", "71%"),
    ("Who directed Escape?", "Lee Jong", None),
]


@pytest.mark.parametrize("question", UNANSWERABLE)
def test_questions_no_review_answers_get_an_abstention(engine, question):
    answer = engine.ask(question)
    assert not answer.answered, (answer.summary, answer.confidence)
    assert answer.summary.startswith("The reviews don't say") and "\n" not in answer.summary
    assert answer.coverage == "0 of 3 reviews address this question."
    assert answer.hits and answer.answer_spans == ()


@pytest.mark.parametrize("question, first_contains, exact", ANSWERABLE)
def test_answerable_questions_quote_the_answer_first(engine, question, first_contains, exact):
    answer = engine.ask(question)
    assert answer.answered and 0.0 < answer.confidence <= 1.0
    first = answer.summary.split("\n")[0]
    if first_contains:
        assert first_contains in first
    if exact:
        spans = [s for s in answer.answer_spans if s.kind == "answer"]
        assert spans, answer.answer_spans
        hit = answer.hits[spans[0].rank - 1]
        text = engine.store.reviews[hit.passage.review_id].text[spans[0].start:spans[0].end]
        assert text in ((exact,) if isinstance(exact, str) else exact)
        assert hit.highlight[0] <= spans[0].start < spans[0].end <= hit.highlight[1]


def test_reply_and_coverage_agree_on_real_questions(engine):
    questions = [q for q, *_ in ANSWERABLE] + UNANSWERABLE + ["How is the cinematography?", "Did critics like the pacing?"]
    for question in questions:
        answer = engine.ask(question)
        n = answer.addressing
        assert answer.coverage.startswith(f"{n} of 3 ")
        assert answer.answered == (n > 0)
        assert len(answer.summary.split("\n")) == (min(n, REPLY_SENTENCES) if answer.answered else 1)
        for h in answer.hits:
            assert 0.0 <= h.scores["answer"] <= 1.0


# ---------------------------------------------------------------- qa ask --batch


def test_ask_batch_keeps_order_and_isolates_a_bad_line(seed_index, tmp_path):
    corpus, folder = seed_index
    batch = tmp_path / "questions.jsonl"
    batch.write_text("\n".join([
        json.dumps({"text": "Who composed the score?"}),
        "{this is not json",
        json.dumps({"text": "   "}),
        json.dumps({"text": "What else is he known for?", "history": ["Who composed the score?"]}),
        json.dumps({"text": "What is the capital of France?", "film": "Escape (2024)"}),
    ]) + "\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "qa", "ask", "--batch", str(batch), "--corpus", str(corpus),
                          "--index", str(folder)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 5 and out.returncode == 1  # some lines failed; every line got its object
    assert rows[0]["question"] == "Who composed the score?" and rows[0]["answered"] is True
    assert rows[1] == {"line": 2, "error": rows[1]["error"]} and "not valid JSON" in rows[1]["error"]
    assert rows[2]["line"] == 3 and "Please type a question" in rows[2]["error"]
    assert rows[3]["query_used"] == "Who composed the score? What else is he known for?"
    assert rows[4]["answered"] is False and {"confidence", "answer_spans", "hits"} <= set(rows[4])


def test_ask_batch_missing_file_is_one_line(seed_index, tmp_path):
    corpus, folder = seed_index
    out = subprocess.run([sys.executable, "-m", "qa", "ask", "--batch", str(tmp_path / "none.jsonl"),
                          "--corpus", str(corpus), "--index", str(folder)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and "does not exist" in out.stderr


def test_coverage_counts_every_review_in_scope_past_the_per_review_limit(tmp_path, embedder):
    """24 reviews: "N of 24", not "N of 20" (the per-review list stops at 20; the count does not)."""
    import shutil

    from qa.engine import PER_REVIEW_LIMIT, Engine, Settings

    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    other = corpus / "other-film"
    other.mkdir()
    for n in range(21):
        (other / f"r{n:02d}.txt").write_text(f"---\nfilm: Other Film\n---\nReview {n}: the lighting is moody and the "
                                             f"plot moves slowly through its {n + 2} chapters.\n", encoding="utf-8")
    engine = Engine.open(Settings(corpus_dir=corpus, index_dir=tmp_path / "index"), embedder=embedder, progress=False)
    answer = engine.ask("Who composed the score?")
    assert len(engine.store.reviews) == 24 > PER_REVIEW_LIMIT
    assert answer.in_scope == 24 and answer.coverage.endswith("of 24 reviews address this question.")
    assert len(answer.per_review) <= PER_REVIEW_LIMIT
    only = engine.ask("Who composed the score?", filters=Filters(film="Other Film"))
    assert only.in_scope == 21 and only.coverage.endswith("of 21 reviews address this question.")
    escape = engine.ask("Who composed the score?", filters=Filters(film="Escape (2024)"))
    assert escape.coverage.endswith("of 3 reviews address this question.") and escape.answered


def test_training_reads_and_scores_the_candidates_as_serving_does(engine):
    """train/fit_answer.py builds the reader stage's rows from collected candidates (read_rows); for
    the same question and candidates they give the probabilities serving gives."""
    from train.fit_answer import Collected, ReaderLogits, read_rows
    from qa.decide import to_read

    model = engine.answer_model
    assert model.reader_scorer is not None
    for question in ("How long is the film?", "Who composed the score?", "Is the ending satisfying?"):
        p = engine.prepare(question, (), engine.settings.retrieval, Filters())
        x = np.array([c.features for c in p.candidates])
        served = model.probabilities(x, [c.review_id for c in p.candidates],
                                     lambda chosen: engine.reader.for_question(p.folded.query_used, engine.reviews)([p.candidates[i] for i in chosen]))
        reviews = sorted({c.review_id for c in p.candidates})
        texts = [engine.store.reviews[c.review_id].text[c.sentence[0]:c.sentence[1]] for c in p.candidates]
        data = Collected(x, np.zeros(len(x), bool), np.zeros(len(x), int),
                         np.array([reviews.index(c.review_id) for c in p.candidates]), np.array([True]), texts,
                         [p.folded.query_used])
        rows = read_rows(data, model.scorer.raw(x), ReaderLogits(engine.embedder, engine.embedder.precision, False), False)
        trained = 1 / (1 + np.exp(-(model.a * model.reader_scorer.raw(rows.x) + model.c)))
        chosen = to_read(model.scorer.raw(x), [c.review_id for c in p.candidates])
        assert trained.tolist() == pytest.approx(served[chosen].tolist(), abs=1e-9)
        assert np.delete(served, chosen).tolist() == [0.0] * (len(x) - len(chosen))


def test_training_keeps_the_token_vectors_it_encoded_between_runs(engine, tmp_path):
    """train/fit_answer.py encodes the texts its reader cache lacks once and keeps them for the next run."""
    from train.fit_answer import ReaderLogits

    texts = ["How long is the film?", "Running time: 1hr 34m"]
    first = ReaderLogits(engine.embedder, engine.embedder.precision, cache=tmp_path)
    assert first.table == {}
    encoded = first.tokens(texts)
    first.save()
    again = ReaderLogits(engine.embedder, engine.embedder.precision, cache=tmp_path)
    assert set(again.table) == set(texts)
    for before, after in zip(encoded, again.tokens(texts)):
        np.testing.assert_array_equal(before, after)
    written = again.extra_path.stat().st_mtime_ns
    again.save()  # nothing new was encoded: the file is not written again
    assert again.extra_path.stat().st_mtime_ns == written
