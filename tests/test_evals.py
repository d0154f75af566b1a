"""Evals: metric formulas on tiny fixtures, the three relevance paths, filters, malformed files."""

import json
import subprocess
import sys

import pytest

from qa.engine import Settings
from qa.errors import DatasetError
from qa.evals import evaluate_dataset, fold_text, load_dataset, open_dataset_engine
from qa.evals.metrics import _ranx_scores

from .conftest import ROOT

# ---------------------------------------------------------------- metrics as formulas


def test_metrics_match_their_formulas():
    qrels = {"q1": {"a": 1, "c": 1}, "q2": {"x": 1}, "q3": {"m": 1}}
    run = {"q1": {"b": 3, "a": 2, "c": 1},          # relevant at ranks 2 and 3
           "q2": {"x": 3, "y": 2, "z": 1},          # relevant at rank 1
           "q3": {"n": 2, "o": 1}}                  # relevant never retrieved
    got = _ranx_scores(qrels, run, ["mrr@10", "recall@1", "recall@5", "hit_rate@1", "hit_rate@5", "ndcg@10"])
    assert got["mrr@10"] == pytest.approx(round((1 / 2 + 1 / 1 + 0) / 3, 4))
    assert got["recall@1"] == pytest.approx(round((0 / 2 + 1 / 1 + 0) / 3, 4))
    assert got["recall@5"] == pytest.approx(round((2 / 2 + 1 / 1 + 0) / 3, 4))
    assert got["hit@1"] == pytest.approx(round((0 + 1 + 0) / 3, 4))
    assert got["hit@5"] == pytest.approx(round((1 + 1 + 0) / 3, 4))
    import math
    dcg_q1 = 1 / math.log2(2 + 1) + 1 / math.log2(3 + 1)
    idcg_q1 = 1 / math.log2(1 + 1) + 1 / math.log2(2 + 1)
    assert got["ndcg@10"] == pytest.approx(round((dcg_q1 / idcg_q1 + 1 + 0) / 3, 4), abs=1e-4)


def test_ranx_agrees_with_trec_eval_on_a_real_run(engine):
    import pytrec_eval

    dataset = load_dataset(ROOT / "evals" / "escape")
    from qa.corpus import read_corpus

    result = evaluate_dataset(engine, dataset, read_corpus(ROOT / "corpus").offset_maps, k=10, progress=False)
    evaluator = pytrec_eval.RelevanceEvaluator(result.qrels, {"recip_rank", "ndcg_cut.10"})
    per_query = evaluator.evaluate(result.run)
    # trec_eval's recip_rank has no cut-off; the run holds 10 passages per query, so it equals MRR@10
    mrr = sum(v["recip_rank"] for v in per_query.values()) / len(per_query)
    ndcg = sum(v["ndcg_cut_10"] for v in per_query.values()) / len(per_query)
    assert result.metrics["mrr@10"] == pytest.approx(mrr, abs=1e-4)
    assert result.metrics["ndcg@10"] == pytest.approx(ndcg, abs=1e-4)
    assert len(result.scored) >= 40


def test_maxp_ranks_each_review_by_its_best_passage():
    from qa.evals import maxp

    assert maxp(["a", "b", "a", "c", "b"]) == {"a": 3.0, "b": 2.0, "c": 1.0}
    assert maxp([]) == {"(nothing retrieved)": 0.0}


def test_review_metrics_agree_with_trec_eval_on_a_beir_fixture(tmp_path, embedder):
    import pytrec_eval

    engine, result = _run(tmp_path, embedder, ROOT / "tests" / "fixtures" / "beir-mini", k=10)
    assert set(result.review_qrels) == set(result.review_run) and len(result.review_qrels) == 6
    assert result.review_qrels["q1"] == {"d1": 1, "d2": 2}  # graded labels kept for nDCG
    for run in result.review_run.values():  # MaxP: every review at most once, 8 reviews in all
        assert len(run) <= 8 and len(set(run.values())) == len(run)
    per_query = pytrec_eval.RelevanceEvaluator(result.review_qrels, {"ndcg_cut.10", "recall.100", "recip_rank"}
                                               ).evaluate(result.review_run)

    def mean(measure):
        return sum(v[measure] for v in per_query.values()) / len(per_query)

    # 8 reviews: every relevant one ranks within 10, so trec_eval's uncut recip_rank equals MRR@10
    assert result.metrics["review_ndcg@10"] == pytest.approx(mean("ndcg_cut_10"), abs=1e-4)
    assert result.metrics["review_recall@100"] == pytest.approx(mean("recall_100"), abs=1e-4)
    assert result.metrics["review_mrr@10"] == pytest.approx(mean("recip_rank"), abs=1e-4)
    assert result.metrics["review_recall@100"] == 1.0  # the deep list reaches every review


def test_bars_parse_and_fail_below():
    from qa.evals import below_bars, parse_bar

    assert parse_bar("mrr@10=0.70") == ("mrr@10", 0.70)
    assert parse_bar(" review_ndcg@10 =0.5") == ("review_ndcg@10", 0.5)
    for bad, needle in [("mrr@10", "METRIC=VALUE"), ("mrr=0.7", "unknown metric 'mrr'"), ("ece=0.1", "unknown"),
                        ("hit@5=high", "must be a number")]:
        with pytest.raises(ValueError, match=needle):
            parse_bar(bad)
    values = {"mrr@10": 0.6, "hit@5": 0.85}
    assert below_bars(values, [("mrr@10", 0.7), ("hit@5", 0.85)]) == ["mrr@10 0.6000 < 0.7"]  # equal passes
    assert below_bars(values, [("abstention_rate", 0.9)]) == ["abstention_rate not measured on this dataset (bar 0.9)"]
    assert below_bars(values, []) == []


def test_fold_text():
    assert fold_text("  Lee Jong\u2011pil’s  “SCORE” —\tgreat ") == "lee jong-pil's \"score\" - great"
    assert fold_text("ﬁlm １２") == "film 12"


# ---------------------------------------------------------------- datasets with their own corpus


def _write(folder, corpus=None, queries=(), qrels=None, evidence=None):
    folder.mkdir(parents=True, exist_ok=True)
    if corpus is not None:
        (folder / "corpus.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in corpus))
    (folder / "queries.jsonl").write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries))
    if qrels is not None:
        (folder / "qrels").mkdir(exist_ok=True)
        (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels))
    if evidence is not None:
        (folder / "evidence.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evidence))
    return folder


QUOTED = ("The critic wrote &quot;a triumph&quot; and then &quot;a mess&quot; in one breath. "
          "Later she said the &quot;soundtrack by Mira Oduya&quot; carried every scene. "
          "The ending felt &quot;rushed&quot;, the middle &quot;slack&quot;.")
TWO_FILMS = [
    {"_id": "a1", "title": "Alpha one", "text": "The score of Alpha was composed by Ingrid Vale. It soars.",
     "metadata": {"film": "Alpha"}},
    {"_id": "a2", "title": "Alpha two", "text": "Alpha runs two hours and drags in the middle.", "metadata": {"film": "Alpha"}},
    {"_id": "b1", "title": "Beta one", "text": "Beta has a score composed by Tomas Reed, loud and brassy.",
     "metadata": {"film": "Beta"}},
    {"_id": "q1", "title": "Quoted", "text": QUOTED, "metadata": {"film": "Gamma"}},
]


def _run(tmp_path, embedder, dataset_dir, **kw):
    dataset = load_dataset(dataset_dir)
    engine, maps = open_dataset_engine(dataset, Settings(), tmp_path / "cache", embedder=embedder, progress=False)
    return engine, evaluate_dataset(engine, dataset, maps, progress=False, **kw)


def test_answer_evidence_and_qrels_paths(tmp_path, embedder):
    start = QUOTED.index("&quot;soundtrack")
    end = QUOTED.index("carried") - 1
    folder = _write(tmp_path / "ds", TWO_FILMS, [
        {"_id": "ans", "text": "Who composed the score of Alpha?", "answers": ["INGRID  vale"]},
        {"_id": "ev", "text": "Who wrote the soundtrack?", "metadata": {"filter": {"film": "Gamma"}}},
        {"_id": "qr", "text": "Which film drags in the middle?", "answers": ["drags in the middle"]},
    ], qrels=[("qr", "a2", 1), ("ans", "a1", 1)], evidence=[{"query_id": "ev", "doc_id": "q1", "start": start, "end": end}])
    engine, result = _run(tmp_path, embedder, folder, k=3)
    by_id = {r.query.id: r for r in result.results}
    # answer strings: folded match (case, whitespace)
    assert {engine.store.passages[i].review_id for i in by_id["ans"].relevant} == {"corpus#a1"}
    # evidence offsets refer to the raw text with &quot;; after repair they still mark the same words
    ev_passages = [engine.store.passages[i] for i in by_id["ev"].relevant]
    assert ev_passages and all(p.review_id == "corpus#q1" for p in ev_passages)
    review = engine.store.reviews["corpus#q1"]
    assert "&quot;" not in review.text and '"soundtrack by Mira Oduya"' in review.text
    from qa.corpus import read_corpus
    maps = read_corpus(tmp_path / "cache" / next((tmp_path / "cache").iterdir()).name / "corpus").offset_maps
    s, e = maps["corpus#q1"].span(start, end)
    assert review.text[s:e] == '"soundtrack by Mira Oduya"'
    assert by_id["ev"].first_relevant == 1
    # qrels: review-level hit@5 comes from the labels
    assert result.metrics["review_hit@5"] == 1.0
    assert result.metrics["hit@5"] == 1.0


def test_a_filtered_query_never_sees_the_other_film(tmp_path, embedder):
    folder = _write(tmp_path / "ds", TWO_FILMS, [
        {"_id": "alpha", "text": "Who composed the score?", "answers": ["Ingrid Vale"], "metadata": {"filter": {"film": "Alpha"}}},
        {"_id": "beta", "text": "Who composed the score?", "answers": ["Tomas Reed"], "metadata": {"filter": {"film": "Beta"}}},
        {"_id": "wrong", "text": "Who composed the score?", "answers": ["Tomas Reed"], "metadata": {"filter": {"film": "Alpha"}}},
    ])
    engine, result = _run(tmp_path, embedder, folder, k=10)
    films = {r.query.id: {engine.store.reviews[engine.store.passages[i].review_id].film for i in r.ranked}
             for r in result.results}
    assert films == {"alpha": {"Alpha"}, "beta": {"Beta"}, "wrong": {"Alpha"}}
    assert result.summary()["excluded"] == ["wrong"] and result.summary()["queries"] == 2
    assert result.metrics["hit@1"] == 1.0


@pytest.mark.parametrize("name,content,needle", [
    ("queries.jsonl", '{"_id": "a", "text": "ok"}\n{"_id": "b", "text": "fine"}\n{"_id": "c", "text": \n', "queries.jsonl line 3"),
    ("queries.jsonl", '{"_id": "a", "text": "ok"}\n{"_id": "a", "text": "again"}\n', "queries.jsonl line 2: the query id 'a' is used twice"),
    ("queries.jsonl", '{"_id": "a", "text": "ok", "answers": "not a list"}\n', "queries.jsonl line 1: 'answers'"),
    ("corpus.jsonl", '{"_id": "d1", "text": "fine"}\n{"_id": "d2"}\n', "corpus.jsonl line 2"),
    ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq\td1\t1\nq d1 x\n", "test.tsv line 3"),
    ("evidence.jsonl", '{"query_id": "q", "doc_id": "d1", "start": 5, "end": 2}\n', "evidence.jsonl line 1"),
])
def test_malformed_lines_name_file_and_line(tmp_path, name, content, needle):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "queries.jsonl").write_text('{"_id": "q", "text": "ok"}\n')
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "fine"}\n')
    (folder / name).parent.mkdir(exist_ok=True)
    (folder / name).write_text(content)
    with pytest.raises(DatasetError) as err:
        load_dataset(folder)
    assert needle in str(err.value)


def test_cli_eval_outputs_and_compare(tmp_path, seed_index):
    corpus, index = seed_index
    env_args = ["--corpus", str(corpus), "--index", str(index)]
    outs = {}
    bars = {"dense": ["--fail-under", "mrr@10=1.01", "--fail-under", "hit@5=0", "--fail-under", "abstention_rate=0.5"],
            "hybrid": ["--fail-under", "mrr@10=0.5", "--fail-under", "hit@5=0.7"]}
    for mode in ("dense", "hybrid"):
        out = tmp_path / mode
        proc = subprocess.run([sys.executable, "-m", "qa", "eval", str(ROOT / "evals" / "escape"), "--retriever", mode,
                               "--out", str(out), "--json", *bars[mode], *env_args], capture_output=True, text=True,
                              cwd=ROOT, timeout=300)
        metrics = json.loads(proc.stdout.strip().splitlines()[-1])
        if mode == "dense":  # bars not met: exit 1, one line naming each metric below its bar
            assert proc.returncode == 1, proc.stderr
            assert proc.stderr.strip().splitlines()[-1] == (
                f"below the bar: mrr@10 {metrics['mrr@10']:.4f} < 1.01; "
                "abstention_rate not measured on this dataset (bar 0.5)")
        else:
            assert proc.returncode == 0, proc.stderr
            assert "below the bar" not in proc.stderr
        assert metrics["retriever"] == mode and metrics["queries"] >= 40
        for name in ("metrics.json", "per_query.csv", "run.trec", "report.md", "recall_at_k.png", "qrels.trec"):
            assert (out / name).stat().st_size > 0, name
        assert (out / "recall_at_k.png").read_bytes()[:4] == b"\x89PNG"
        report = (out / "report.md").read_text()
        first = report.index("## Queries, misses first")
        assert "MISS" not in report[first:] or report[first:].index("MISS") < report[first:].index("first relevant at rank")
        assert "Evaluating" in proc.stderr  # the progress bar over queries
        outs[mode] = out
    proc = subprocess.run([sys.executable, "-m", "qa", "compare", str(outs["dense"]), str(outs["hybrid"])],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "mrr@10" in proc.stdout and "p (paired t)" in proc.stdout


def test_a_dataset_corpus_is_embedded_once(tmp_path, embedder):
    folder = _write(tmp_path / "ds", TWO_FILMS, [{"_id": "x", "text": "Who composed the score?", "answers": ["Ingrid Vale"]}])
    dataset = load_dataset(folder)
    first, _ = open_dataset_engine(dataset, Settings(), tmp_path / "cache", embedder=embedder, progress=False)
    second, _ = open_dataset_engine(dataset, Settings(), tmp_path / "cache", embedder=embedder, progress=False)
    assert first.report.action == "built" and first.report.embedded_passages > 0
    assert second.report.action == "loaded" and second.report.embedded_passages == 0


def test_cli_eval_indexes_a_dataset_corpus_under_the_cache_option(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "qa", "eval", str(ROOT / "tests" / "fixtures" / "beir-mini"),
                           "--cache", str(tmp_path / "cache"), "--json"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["review_queries"] == 6
    assert list((tmp_path / "cache").glob("beir-mini-*/index/manifest.json"))


# ---------------------------------------------------------------- reply metrics as formulas


def test_reply_metrics_match_their_formulas():
    from qa.evals import EvalQuery, QueryResult, ReplyJudgement, answer_metrics

    def result(qid, answerable, answered, confidence, right):
        query = EvalQuery(qid, "q?", answers=("x",) if answerable else (), answerable=answerable)
        return QueryResult(query, "q?", [1], {1} if answerable else set(), 1 if answerable else None,
                           ReplyJudgement(answered, confidence, tuple(right), "reply"))

    results = [
        result("a1", True, True, 0.95, [True, False]),    # first right, precision 1/2
        result("a2", True, True, 0.55, [False, True, True]),  # first wrong, precision 2/3
        result("a3", True, False, 0.20, []),               # false abstention
        result("u1", False, False, 0.10, []),              # right abstention
        result("u2", False, True, 0.62, [False]),          # answered an unanswerable question
    ]
    metrics, table = answer_metrics(results)
    assert metrics["answered_rate"] == pytest.approx(round(2 / 3, 4))
    assert metrics["first_sentence_accuracy"] == pytest.approx(1 / 2)
    assert metrics["reply_precision"] == pytest.approx(round((1 / 2 + 2 / 3) / 2, 4))
    assert metrics["abstention_rate"] == pytest.approx(1 / 2)
    # answered: a1 (0.95, right), a2 (0.55, wrong), u2 (0.62, wrong); bins 0.9-1.0, 0.5-0.6, 0.6-0.7
    assert [(r["bin"], r["count"], r["accuracy"]) for r in table] == [("0.5-0.6", 1, 0.0), ("0.6-0.7", 1, 0.0),
                                                                       ("0.9-1.0", 1, 1.0)]
    ece = (abs(0.0 - 0.55) + abs(0.0 - 0.62) + abs(1.0 - 0.95)) / 3
    assert metrics["ece"] == pytest.approx(round(ece, 4))


def test_eval_scores_replies_and_abstentions_and_compare_tests_them(engine, tmp_path):
    from qa.corpus import read_corpus
    from qa.evals import compare_runs, write_outputs

    maps = read_corpus(engine.settings.corpus_dir).offset_maps
    dataset = load_dataset(ROOT / "evals" / "escape-unanswerable")
    assert len(dataset.queries) >= 30 and not any(q.answerable for q in dataset.queries)
    result = evaluate_dataset(engine, dataset, maps, progress=False)
    assert 0.0 <= result.answers["abstention_rate"] <= 1.0 and "answered_rate" not in result.answers
    write_outputs(result, engine, tmp_path / "a")
    write_outputs(result, engine, tmp_path / "b")
    assert (tmp_path / "a" / "reliability.png").stat().st_size > 0
    assert "abstention_rate" in json.loads((tmp_path / "a" / "metrics.json").read_text())
    table = compare_runs(tmp_path / "a", tmp_path / "b")
    assert "abstention_rate" in table and "1.0000" in table  # identical runs: p = 1


def _trec(folder, run_rows, qrels_rows):
    folder.mkdir(parents=True)
    (folder / "run.trec").write_text("".join(f"{q} Q0 {d} {r} {10 - r} sys\n" for q, d, r in run_rows))
    (folder / "qrels.trec").write_text("".join(f"{q} 0 {d} 1\n" for q, d in qrels_rows))


def test_compare_scores_runs_of_another_chunker_against_their_own_labels(tmp_path):
    """Another chunker moves passage ids, so the labels differ: each run is scored per query against its
    own labels, over the questions both kept. MRR@10: A q1 1, q2 1/2; B q1 1/2, q2 1 (q3 only in B)."""
    from qa.errors import DatasetError
    from qa.evals import compare_runs

    _trec(tmp_path / "a", [("q1", "a", 1), ("q2", "x", 1), ("q2", "b", 2)], [("q1", "a"), ("q2", "b")])
    _trec(tmp_path / "b", [("q1", "z", 1), ("q1", "c", 2), ("q2", "d", 1), ("q3", "e", 1)],
          [("q1", "c"), ("q2", "d"), ("q3", "e")])
    table = compare_runs(tmp_path / "a", tmp_path / "b")
    mrr = next(line for line in table.splitlines() if line.startswith("mrr@10")).split()
    assert mrr[1:4] == ["0.7500", "0.7500", "+0.0000"] and mrr[-1] == "1/0/1"
    assert "2 queries scored by both (2 and 3)" in table
    _trec(tmp_path / "c", [("other", "a", 1)], [("other", "a")])
    with pytest.raises(DatasetError, match="share no scored question"):
        compare_runs(tmp_path / "a", tmp_path / "c")


@pytest.mark.parametrize("name", ["escape-dev", "escape-words"])
def test_every_answer_of_a_seed_question_set_occurs_in_the_repaired_reviews(name):
    """An answer string that no review holds (a typo, or text copied before repair) would make its
    question unanswerable to the scorer; answerable flags and answers agree."""
    from qa.corpus import read_corpus

    texts = [fold_text(r.text) for r in read_corpus(ROOT / "corpus").reviews]
    dataset = load_dataset(ROOT / "evals" / name)
    assert len(dataset.queries) >= 50
    for query in dataset.queries:
        assert query.answerable == bool(query.answers), query.id
        for answer in query.answers:
            assert any(fold_text(answer) in t for t in texts), (query.id, answer)
