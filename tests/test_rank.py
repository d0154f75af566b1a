"""The learned re-ranker: its features as formulas, train/serve identity, and its file's failure modes."""

import json
import math

import numpy as np
import pytest

from qa.rank import FEATURES, RANKER_PATH, RANKER_VERSION, RankerError, check_index, features, load_ranker
from qa.retrieve import RetrievalSettings


def _candidates(engine, question):
    query = engine.retriever.query(question)
    order, detail = engine.retriever.ranked(query, RetrievalSettings(mode="hybrid"))
    return query, order, detail


def test_features_match_their_formulas(engine):
    query, order, detail = _candidates(engine, "How long is the film?")
    rows = features(query.text, query.lexical_text, query.vector, order, detail, engine.store)
    n = len(order)
    assert rows.shape == (n, len(FEATURES)) and n > 10
    col = {name: rows[:, k] for k, name in enumerate(FEATURES)}
    dense = np.array([detail[i]["dense"] for i in order])
    bm25 = np.array([detail[i]["bm25"] for i in order])
    assert col["dense"] == pytest.approx(dense)
    assert col["dense_gap"] == pytest.approx(dense - dense.max())
    assert col["bm25_norm"] == pytest.approx(bm25 / bm25.max())
    assert col["bm25_log"] == pytest.approx(np.log1p(bm25))
    assert sorted(col["dense_rank"]) == pytest.approx([math.log1p(r) for r in range(1, n + 1)])
    assert col["dense_rank"][int(np.argmax(dense))] == pytest.approx(math.log1p(1))
    first = order[0]
    sims = np.sort(engine.store.sentences_of(first).astype(np.float32) @ query.vector)[::-1]
    assert col["sentence_best"][0] == pytest.approx(sims[0]) and col["sentence_second"][0] == pytest.approx(sims[1])
    assert (col["asks_type"] == 1).all()  # "how long" asks for a duration
    passage = engine.store.passages[first]
    assert col["position"][0] == pytest.approx(passage.start / len(engine.store.reviews[passage.review_id].text))
    reviews = [engine.store.passages[i].review_id for i in order]
    assert col["review_share"].sum() == pytest.approx(sum(reviews.count(r) ** 2 for r in set(reviews)) / n)
    minutes = [k for k, i in enumerate(order) if "94 minutes" in engine.store.passages[i].text]
    assert minutes and all(col["type_match"][k] == 1 for k in minutes)  # a duration is there
    assert features(query.text, query.lexical_text, query.vector, [], {}, engine.store).shape == (0, len(FEATURES))


def test_serving_scores_are_the_ranker_on_the_training_features(engine):
    query, order, detail = _candidates(engine, "Who composed the score?")
    ranker = engine.retriever.ranker
    expected = dict(zip(order, ranker.scores(features(query.text, query.lexical_text, query.vector, order, detail,
                                                           engine.store))))
    served_order, served = engine.retriever.ranked(query, RetrievalSettings(mode="ranked"))
    assert set(served_order) == set(order)
    assert {i: served[i]["ranked"] for i in served_order} == pytest.approx(expected)
    assert served_order == sorted(order, key=lambda i: (-expected[i], i))
    answer = engine.ask("Who composed the score?", retrieval=engine.retrieval_settings(mode="ranked"))
    assert answer.hits[0].score == pytest.approx(answer.hits[0].scores["ranked"])  # ranked mode shows its own score


def test_ranker_arrays_score_as_lightgbm_does(engine):
    """The served scores (tree arrays) equal the booster's own predict on real candidates' features."""
    ranker = engine.retriever.ranker
    rows = [features(q.text, q.lexical_text, q.vector, order, detail, engine.store)
            for q, order, detail in (_candidates(engine, text) for text in
                                     ("Who composed the score?", "How long is Escape?", "Is the acting good?"))]
    rows = np.vstack(rows)
    assert len(rows) > 20
    import lightgbm

    booster = lightgbm.Booster(model_str=json.loads(RANKER_PATH.read_text())["lightgbm_model"])
    assert np.allclose(ranker.scores(rows), booster.predict(rows, num_threads=1), atol=1e-9)


def test_ranker_file_failures_are_one_sentence(tmp_path):
    path = tmp_path / "ranker.json"
    with pytest.raises(RankerError, match="is missing; reinstall, or run train/fit_ranker.py"):
        load_ranker(path)
    path.write_text("{not json")
    with pytest.raises(RankerError, match="cannot be read"):
        load_ranker(path)
    good = json.loads(load_ranker.__defaults__[0].read_text())
    path.write_text(json.dumps({**good, "version": RANKER_VERSION + 1}))
    with pytest.raises(RankerError, match="another version or other features"):
        load_ranker(path)
    path.write_text(json.dumps({**good, "features": list(FEATURES[:-1])}))
    with pytest.raises(RankerError, match="other features"):
        load_ranker(path)
    ranker = load_ranker()
    check_index(ranker, {})  # an index from before rankers were recorded
    check_index(ranker, {"ranker": {"version": RANKER_VERSION}})
    with pytest.raises(RankerError, match="rebuild it with `qa index --rebuild`"):
        check_index(ranker, {"ranker": {"version": RANKER_VERSION + 1}})


def test_a_new_index_records_the_ranker_version(tmp_path, embedder):
    from qa.engine import Engine, Settings

    from .conftest import SEED_CORPUS

    engine = Engine.open(Settings(corpus_dir=SEED_CORPUS, index_dir=tmp_path / "index"), embedder=embedder,
                         progress=False)
    assert engine.store.manifest["ranker"] == {"version": RANKER_VERSION, "features": list(FEATURES)}
    from qa.reader import READER_VERSION

    assert engine.store.manifest["reader"] == {"version": READER_VERSION}
