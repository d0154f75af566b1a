"""Label sets (qa/labels.py), the Label tab's functions (qa/ui/label.py) and readers' feedback
(qa/feedback.py): files `qa eval` reads as they are, raw offsets, two writers at once, a vote round trip."""

import json
import multiprocessing
import subprocess
import sys
import threading

import pytest

from qa.ui import label as label_ui
from qa.corpus import read_corpus
from qa.errors import DatasetError
from qa.evals import evaluate_dataset, load_dataset
from qa.labels import Label, LabelSet, label_sets
from qa.serving import EngineLoader

from .conftest import ROOT

SCORE_QUESTION = "Who composed the score?"
SCORE_REVIEW = "escape-2024/002_03b15f6e9896f6a9"  # the mojibake seed: its raw and repaired offsets differ


def _loader(engine):
    return EngineLoader(engine.settings, opener=lambda _: engine)


def test_a_label_set_is_a_beir_folder_eval_reads(tmp_path):
    labels = LabelSet(tmp_path, "mine")
    first = labels.save(Label("", "Who composed the score?", evidence=(("r1", 10, 20),), answers=("Dalpalan",)))
    labels.save(Label("", "Is there a sequel?", answerable=False, evidence=(("r1", 0, 5),)))
    assert first.query_id == "who-composed-the-score"
    dataset = load_dataset(tmp_path / "mine")
    assert [(q.id, q.answerable, q.answers) for q in dataset.queries] == [
        ("who-composed-the-score", True, ("Dalpalan",)), ("is-there-a-sequel", False, ())]
    assert dataset.evidence == {"who-composed-the-score": [("r1", 10, 20)]}  # unanswerable keeps no evidence
    assert dataset.qrels == {"who-composed-the-score": {"r1": 1}}
    # edit: the same id replaces; delete removes; the order of first saving stays
    labels.save(Label("who-composed-the-score", "Who wrote the music?", evidence=(("r2", 1, 4),)))
    assert [x.question for x in labels.labels()] == ["Who wrote the music?", "Is there a sequel?"]
    assert labels.delete("is-there-a-sequel") and not labels.delete("is-there-a-sequel")
    assert [x.query_id for x in labels.labels()] == ["who-composed-the-score"] and label_sets(tmp_path) == ["mine"]
    assert not list((tmp_path / "mine").glob(".*.tmp"))  # temp files renamed into place


def test_bad_labels_are_refused_in_one_sentence(tmp_path):
    for bad in ("", "../up", ".hidden", "a/b"):
        with pytest.raises(DatasetError, match="^A label set name is 1-64 letters"):
            LabelSet(tmp_path, bad)
    with pytest.raises(DatasetError, match="^Mark a passage that answers, select the answer, or mark the question "
                                           "unanswerable.$"):
        LabelSet(tmp_path, "s").save(Label("", "Who?"))
    assert not (tmp_path / "s" / "queries.jsonl").exists()


def _write_many(root, writer, count):
    labels = LabelSet(root, "shared")
    for n in range(count):
        labels.save(Label(f"{writer}-{n}", f"Question {n} from {writer}?", evidence=((f"r{n}", 0, 5),)))


def test_two_writers_at_once_lose_nothing(tmp_path):
    """Two processes and two threads save into one set at the same time: every label is there, whole."""
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_write_many, args=(tmp_path, f"p{i}", 15)) for i in range(2)]
    threads = [threading.Thread(target=_write_many, args=(tmp_path, f"t{i}", 15)) for i in range(2)]
    for worker in procs + threads:
        worker.start()
    for worker in procs + threads:
        worker.join(timeout=120)
    assert all(p.exitcode == 0 for p in procs)
    saved = LabelSet(tmp_path, "shared").labels()
    assert sorted(x.query_id for x in saved) == sorted(f"{w}-{n}" for w in ("p0", "p1", "t0", "t1") for n in range(15))
    dataset = load_dataset(tmp_path / "shared")
    assert len(dataset.queries) == 60 and sum(len(v) for v in dataset.evidence.values()) == 60


def test_label_tab_saves_an_exact_answer_as_raw_offsets_that_eval_scores(engine, tmp_path):
    """Search, mark, select the exact answer in a passage, save; `qa eval` on the folder scores what the
    labels imply: MRR@10 = mean of 1 / rank of the first passage holding the answer, abstention counted."""
    loader = _loader(engine)
    cards, choices, state, status = label_ui.search(SCORE_QUESTION, "", None, label_ui.empty_state(), loader)
    assert status.startswith("10 passages") and len(choices) == 10 and 'class="qa-card"' in cards
    # its own element ids (the Ask tab's cards are on the same page), and no answer badge: nothing was decided
    assert 'id="qa-label-card-1"' in cards and 'id="qa-card-' not in cards and "qa-match" not in cards
    hit = next(h for h in state["hits"] if h["review_id"] == SCORE_REVIEW and "Dalpalan" in h["text"])
    start = hit["text"].index("Dalpalan")
    state, message = label_ui.select_answer(hit["value"], [start, start + len("Dalpalan")], "Dalpalan", state)
    assert message == "Exact answer: “Dalpalan”"
    _, refused = label_ui.select_answer(hit["value"], [start, start + 8], "edited text", state)
    assert refused.startswith("The passage text was changed")
    other = next(h for h in state["hits"] if h["review_id"] != SCORE_REVIEW)
    saved_status, saved, state = label_ui.save("mine", SCORE_QUESTION, "", None, [], [other["value"]], False, state,
                                               loader, tmp_path)
    assert saved_status == "Saved “Who composed the score?” to mine as who-composed-the-score."
    label_ui.save("mine", "Is there a post-credits scene?", "", None, [], [], True, label_ui.empty_state(), loader,
                  tmp_path)
    assert [v for _, v in saved] == ["who-composed-the-score"]

    dataset = load_dataset(tmp_path / "mine")
    (review_id, raw_start, raw_end), = dataset.evidence["who-composed-the-score"]
    repaired = engine.reviews[SCORE_REVIEW]
    maps = read_corpus(engine.settings.corpus_dir).offset_maps
    assert review_id == SCORE_REVIEW and (raw_start, raw_end) != (hit["start"] + start, hit["start"] + start + 8)
    shown_start, shown_end = maps[SCORE_REVIEW].span(raw_start, raw_end)
    assert repaired.text[shown_start:shown_end] == "Dalpalan"
    raw = (ROOT / "corpus" / "escape-2024" / "002_03b15f6e9896f6a9.txt").read_text(encoding="utf-8")
    assert raw.split("\n---\n", 1)[1][raw_start:raw_end] == "Dalpalan"  # offsets into the file's own text
    assert dataset.queries[0].answers == ("Dalpalan",) and dataset.queries[1].answerable is False

    result = evaluate_dataset(engine, dataset, maps, k=10, progress=False)
    ranked = engine.search(SCORE_QUESTION, retrieval=engine.retrieval_settings(k=10)).hits
    first = next(h.rank for h in ranked if h.passage.review_id == SCORE_REVIEW and "Dalpalan" in h.passage.text)
    assert result.metrics["mrr@10"] == pytest.approx(1 / first, abs=1e-4)
    assert result.metrics["hit@10"] == 1.0
    abstained = engine.ask("Is there a post-credits scene?").answered is False
    assert result.answers["abstention_rate"] == float(abstained)

    # open it again: the marks come back (the exact answer inside its passage, the negative)
    question, history, film, unanswerable, _, _, answers, negatives, opened, _ = label_ui.open_label(
        "mine", "who-composed-the-score", loader, tmp_path)
    assert (question, history, unanswerable, answers) == (SCORE_QUESTION, "", False, [])
    assert [x["text"] for x in opened["exact"]] == ["Dalpalan"] and negatives == [other["value"]]


def test_a_vote_round_trip_like_dislike_export_eval(engine, tmp_path):
    from qa.feedback import export_feedback, feedback_stats, read_feedback
    from qa.ui import record_vote, respond

    loader = _loader(engine)
    feedback = tmp_path / "feedback"
    liked = list(respond(SCORE_QUESTION, [], None, None, 5, loader))[-1]
    disliked = list(respond("Who plays the villain?", liked[0], None, None, 5, loader))[-1]
    off_topic = list(respond("What is the capital of France?", [], None, None, 5, loader))[-1]
    empty = list(respond("   ", [], None, None, 5, loader))[-1]
    assert empty[-1] is None  # "Please type a question" is not an answer: nothing to vote on
    assert record_vote({}, 1, True, feedback) == "" and not feedback.exists()
    assert record_vote({1: liked[-1]}, 1, True, feedback).startswith("Thanks")
    assert record_vote({3: disliked[-1]}, [3, 0], False, feedback).startswith("Thanks")
    assert record_vote({1: off_topic[-1]}, 1, True, feedback).startswith("Thanks")
    records = read_feedback(feedback)
    assert [r["liked"] for r in records] == [True, False, True]
    assert records[1]["history"] == [SCORE_QUESTION] and records[0]["versions"]["answer_model"] == 4
    assert feedback_stats(records)["liked"] == 2 and feedback_stats(records)["disliked"] == 1
    assert feedback_stats(records)["abstained"] == int(not off_topic[-1]["answer"]["answered"])

    out = tmp_path / "labels" / "readers"
    labels = export_feedback(records, out, read_corpus(engine.settings.corpus_dir).offset_maps)
    by_question = {x.question: x for x in labels}
    assert by_question["Who plays the villain?"].metadata["needs_label"] is True
    assert by_question["Who plays the villain?"].history == (SCORE_QUESTION,)
    assert len(export_feedback(records, out, {})) == 3 and len(LabelSet(out.parent, "readers").labels()) == 3
    dataset = load_dataset(out)
    score = next(q for q in dataset.queries if q.text == SCORE_QUESTION)
    assert score.answerable and dataset.evidence[score.id]  # the liked answer's cited sentences
    proc = subprocess.run([sys.executable, "-m", "qa", "eval", str(out), "--corpus", str(engine.settings.corpus_dir),
                           "--index", str(engine.settings.index_dir), "--json"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert metrics["queries"] >= 1 and metrics["first_sentence_accuracy"] == 1.0  # the liked reply is right
    stats = subprocess.run([sys.executable, "-m", "qa", "feedback", "stats", "--feedback", str(feedback), "--json"],
                           capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert stats.returncode == 0 and json.loads(stats.stdout.strip().splitlines()[-1])["votes"] == 3
    missing = subprocess.run([sys.executable, "-m", "qa", "feedback", "stats", "--feedback", str(tmp_path / "none")],
                             capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert missing.returncode == 2 and missing.stderr.strip().startswith("error: There is no feedback at")


def test_a_selection_after_an_emoji_lands_on_the_same_words():
    text = "Loved it 🎬 and the score by Dalpalan."
    state = {**label_ui.empty_state(), "hits": [{"value": "r@100-138", "review_id": "r", "start": 100, "end": 138,
                                                 "text": text}]}
    js_start = len(text[: text.index("Dalpalan")].encode("utf-16-le")) // 2  # the browser counts UTF-16 units
    state, message = label_ui.select_answer("r@100-138", [js_start, js_start + 8], "Dalpalan", state)
    assert message == "Exact answer: “Dalpalan”"
    assert state["exact"][0]["start"] == 100 + text.index("Dalpalan")


def test_opening_a_label_keeps_what_lies_outside_the_passages_shown(engine, tmp_path):
    """A label whose answer is in a passage the tab does not show (and a negative, and feedback metadata)
    loses none of them when it is opened and saved again."""
    loader = _loader(engine)
    review = engine.reviews[SCORE_REVIEW]
    start = review.text.index("Dalpalan")
    maps = read_corpus(engine.settings.corpus_dir).offset_maps
    far = ("escape-2024/000_c5d586a175a2a666", 0, 5)  # raw offsets, in a passage far down the ranking
    label = LabelSet(tmp_path, "kept").save(Label(
        "", "What is the villain's name?", evidence=(far, (SCORE_REVIEW, *maps[SCORE_REVIEW].raw_span(start, start + 8))),
        negatives=("escape-2024/001_ab617f7258eed2b4@0-10",), metadata={"kind": "feedback", "needs_label": True}))
    *_, state, status = label_ui.open_label("kept", label.query_id, loader, tmp_path)
    assert "are kept" in status and state["kept_negatives"] == ["escape-2024/001_ab617f7258eed2b4@0-10"]
    again = label_ui.build_label(label.question, "", None, [], [], False, state, maps)
    assert sorted(again.evidence) == sorted(label.evidence) and again.negatives == label.negatives
    assert again.metadata == {"kind": "feedback"}  # no longer waiting for a tester


def test_label_tab_saves_per_review_answers_with_stances_that_eval_reads(engine, tmp_path):
    """An opinion question labelled in the tab: two reviews' passages tick as answering, one also as
    praising, one as both praising and criticising; the set's evidence carries the stances, eval reads
    them, and opening and saving again keeps them."""
    loader = _loader(engine)
    question = "Is the acting good?"
    _, choices, state, _ = label_ui.search(question, "", None, label_ui.empty_state(), loader)
    by_review = {}
    for _, value in choices:
        by_review.setdefault(label_ui.parse_value(value)[0], value)
    first, second = list(by_review.values())[:2]
    status, _, state = label_ui.save("opinions", question, "", None, [first, second], [], False,
                                     {**state, "question": question}, loader, tmp_path, [first, second], [second])
    assert status.startswith("Saved"), status
    dataset = load_dataset(tmp_path / "opinions")
    stances = dataset.stances[state["query_id"]]
    assert sorted(stances.values()) == ["mixed", "positive"] and len(dataset.evidence[state["query_id"]]) == 2
    opened = label_ui.open_label("opinions", state["query_id"], loader, tmp_path)
    answers, reopened = opened[6], opened[8]
    assert reopened["shown_stances"] == {first: "positive", second: "mixed"}  # ticked again on opening
    label_ui.save("opinions", question, "", None, answers, [], False, reopened, loader, tmp_path,
                  [first, second], [second])
    assert load_dataset(tmp_path / "opinions").stances[state["query_id"]] == stances  # nothing lost
    label_ui.save("opinions", question, "", None, answers, [], False, reopened, loader, tmp_path, [first], [])
    assert sorted(load_dataset(tmp_path / "opinions").stances[state["query_id"]].values()) == ["positive"]
