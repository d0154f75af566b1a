"""The on-disk index with the real model and real FAISS."""

import dataclasses
import json
import shutil

import pytest

from qa.engine import Engine, Settings
from qa.errors import IndexCorrupt, IndexMismatch, IndexNotBuilt
from qa.passages import ChunkerSettings
from qa.retrieve import Filters
from qa.build import open_index
from qa.store import load_store

QUESTIONS = ["Who composed the score?", "How long is the film?", "Did critics like the pacing?"]


def _answers(engine):
    return [[(h.passage.id, round(h.score, 6), h.highlight) for h in engine.ask(q).hits] for q in QUESTIONS]


def test_round_trip_reloads_without_embedding_and_answers_identically(seed_index, embedder, engine):
    corpus, folder = seed_index
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["model"]["dim"] == 384 and manifest["model"]["normalized"] is True
    assert manifest["chunker"] == ChunkerSettings().as_dict()
    assert set(manifest["corpus"]) == {f"escape-2024/{n}" for n in (
        "000_c5d586a175a2a666.txt", "001_ab617f7258eed2b4.txt", "002_03b15f6e9896f6a9.txt")}
    assert not list(folder.rglob("*.pkl")) and not list(folder.rglob("*.pickle"))
    reopened = Engine.open(Settings(corpus_dir=corpus, index_dir=folder), embedder=embedder, progress=False)
    assert reopened.report.action == "loaded" and reopened.report.embedded_passages == 0
    assert _answers(reopened) == _answers(engine)


def test_editing_one_review_reembeds_only_its_passages(tmp_path, corpus_copy, embedder):
    folder = tmp_path / "index"
    store, report = open_index(corpus_copy, folder, embedder, progress=False)
    assert report.action == "built"
    per_review = {}
    for p in store.passages:
        per_review[p.review_id] = per_review.get(p.review_id, 0) + 1
    edited = corpus_copy / "escape-2024" / "000_c5d586a175a2a666.txt"
    edited.write_text(edited.read_text() + "\nA late addition: the final chase is superb.\n")
    store2, report2 = open_index(corpus_copy, folder, embedder, progress=False)
    assert report2.action == "updated" and "1 changed" in report2.reason
    assert report2.embedded_reviews == 1
    assert report2.embedded_passages == len([p for p in store2.passages if p.review_id.endswith("000_c5d586a175a2a666")])
    assert report2.reused_passages == per_review["escape-2024/001_ab617f7258eed2b4"] + per_review["escape-2024/002_03b15f6e9896f6a9"]
    # adding and removing files: only the new file is embedded
    (corpus_copy / "escape-2024" / "extra.md").write_text("---\ntitle: Extra\n---\nThe score is loud. The plot is thin.\n")
    (corpus_copy / "escape-2024" / "001_ab617f7258eed2b4.txt").unlink()
    store3, report3 = open_index(corpus_copy, folder, embedder, progress=False)
    assert report3.embedded_reviews == 1 and report3.embedded_passages == 1
    assert "1 review files added, 0 changed, 1 removed" == report3.reason
    assert {p.review_id for p in store3.passages} == {
        "escape-2024/000_c5d586a175a2a666", "escape-2024/002_03b15f6e9896f6a9", "escape-2024/extra"}
    # the updated index equals a fresh build of the same corpus
    fresh, _ = open_index(corpus_copy, tmp_path / "fresh", embedder, progress=False)
    assert [p.id for p in fresh.passages] == [p.id for p in store3.passages]
    import numpy as np
    a = np.vstack([store3.vectors.reconstruct(i) for i in range(len(store3.passages))])
    b = np.vstack([fresh.vectors.reconstruct(i) for i in range(len(fresh.passages))])
    assert np.allclose(a, b, atol=1e-5)


def test_changing_the_chunk_size_rebuilds(tmp_path, corpus_copy, embedder):
    folder = tmp_path / "index"
    open_index(corpus_copy, folder, embedder, progress=False)
    store, report = open_index(corpus_copy, folder, embedder, ChunkerSettings(words=60), progress=False)
    assert report.action == "built" and "chunker changed" in report.reason
    assert report.reused_passages == 0 and report.embedded_passages == len(store.passages)


def test_damaged_indexes_are_named_in_one_sentence(tmp_path, seed_index, embedder):
    _, good = seed_index
    with pytest.raises(IndexNotBuilt, match="python -m qa index"):
        load_store(tmp_path / "none")
    cases = {
        "truncated faiss": lambda f: (f / "vectors.faiss").write_bytes((f / "vectors.faiss").read_bytes()[:100]),
        "no manifest": lambda f: (f / "manifest.json").unlink(),
        "bad manifest": lambda f: (f / "manifest.json").write_text("{not json"),
        "no passages": lambda f: (f / "passages.jsonl").unlink(),
    }
    for name, damage in cases.items():
        folder = tmp_path / name.replace(" ", "_")
        shutil.copytree(good, folder)
        damage(folder)
        with pytest.raises(IndexCorrupt, match="--rebuild") as err:
            load_store(folder, embedder.info)
        assert "\n" not in str(err.value)
    other = dataclasses.replace(embedder.info, id="some-other-model", dim=768)
    with pytest.raises(IndexMismatch, match="dimension 384.*dimension 768.*--rebuild"):
        load_store(good, other)


def test_a_corrupt_index_is_rebuilt_by_open_index(tmp_path, corpus_copy, embedder):
    folder = tmp_path / "index"
    open_index(corpus_copy, folder, embedder, progress=False)
    (folder / "vectors.faiss").write_bytes(b"garbage")
    store, report = open_index(corpus_copy, folder, embedder, progress=False)
    assert report.action == "built" and "unreadable" in report.reason
    assert store.vectors.ntotal == len(store.passages)


def test_leftovers_of_a_killed_write_are_recovered(tmp_path, corpus_copy, embedder):
    folder = tmp_path / "index"
    open_index(corpus_copy, folder, embedder, progress=False)
    # a kill between the two renames leaves only the swapped-out old index
    folder.rename(tmp_path / ".index.old-999999-deadbeef")
    (tmp_path / ".index.tmp-999999-cafecafe").mkdir()
    store, report = open_index(corpus_copy, folder, embedder, progress=False)
    assert report.action == "loaded"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "index"]


def test_index_type_switch_reuses_vectors_and_hnsw_answers_like_flat(tmp_path, corpus_copy, embedder):
    import faiss

    folder = tmp_path / "index"
    flat, _ = open_index(corpus_copy, folder, embedder, progress=False)
    assert json.loads((folder / "manifest.json").read_text())["index_factory"] == "Flat"
    ivf, report = open_index(corpus_copy, folder, embedder, progress=False, ann_threshold=10)
    assert report.action == "updated" and report.embedded_passages == 0 and report.reused_passages == len(flat.passages)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["index_factory"] == "IVF1,Flat" and manifest["index_setting"]["ann_threshold"] == 10
    hnsw, report = open_index(corpus_copy, folder, embedder, progress=False, index_factory="HNSW32,Flat")
    assert report.action == "updated" and report.embedded_passages == 0
    assert json.loads((folder / "manifest.json").read_text())["index_factory"] == "HNSW32,Flat"
    assert isinstance(faiss.downcast_index(hnsw.vectors.index), faiss.IndexHNSW)
    assert faiss.downcast_index(hnsw.vectors.index).hnsw.efSearch == 256
    for q in ["Who composed the score?", "Where did the reviewer see the film?"]:
        v = embedder.encode_query(q).reshape(1, -1)
        assert flat.vectors.search(v, 3)[1].tolist() == hnsw.vectors.search(v, 3)[1].tolist() == \
               ivf.vectors.search(v, 3)[1].tolist()
    import pytest as _pytest
    with _pytest.raises(ValueError, match="must keep exact vectors"):
        open_index(corpus_copy, folder, embedder, progress=False, index_factory="IVF16,PQ8")
    with _pytest.raises(ValueError, match="needs at least 1024 passages to train; this corpus has"):
        open_index(corpus_copy, folder, embedder, progress=False, index_factory="IVF1024,Flat")
    assert load_store(folder).vectors.ntotal == len(flat.passages)  # the failed switches left the index whole


def test_ivf_index_is_trained_from_stored_vectors_and_filters_like_flat(tmp_path, corpus_copy, embedder):
    import faiss

    from qa.engine import Engine, Settings

    folder = tmp_path / "index"
    flat_engine = Engine.open(Settings(corpus_dir=corpus_copy, index_dir=folder), embedder=embedder, progress=False)
    flat_answers = {q: flat_engine.ask(q, filters=Filters(review_ids=("escape-2024/002_03b15f6e9896f6a9",))) for q in
                    ["Who composed the score?", "How long is the film?"]}
    ivf_engine = Engine.open(Settings(corpus_dir=corpus_copy, index_dir=folder, index_factory="IVF4,Flat"),
                             embedder=embedder, progress=False)
    assert ivf_engine.report.action == "updated" and ivf_engine.report.embedded_passages == 0
    inner = faiss.downcast_index(ivf_engine.store.vectors.index)
    assert isinstance(inner, faiss.IndexIVFFlat) and inner.is_trained and inner.nprobe == 4  # min(lists, max(8, ...))
    for q, expected in flat_answers.items():  # every list probed: the same passages and scores as exact search
        got = ivf_engine.ask(q, filters=Filters(review_ids=("escape-2024/002_03b15f6e9896f6a9",)))
        assert got.hits
        assert [(h.passage.id, round(h.score, 5)) for h in got.hits] == \
               [(h.passage.id, round(h.score, 5)) for h in expected.hits]
        assert {h.passage.review_id for h in got.hits} == {"escape-2024/002_03b15f6e9896f6a9"}


def test_default_index_kind_by_corpus_size():
    from qa.vectors import choose_factory, ivf_lists

    assert choose_factory(199_999, None, 200_000) == "Flat"
    assert choose_factory(200_000, None, 200_000) == f"IVF{ivf_lists(200_000)},Flat" == "IVF512,Flat"
    assert ivf_lists(1_000_000) == 1024  # 2 ** round(log2(sqrt(n)))
    assert ivf_lists(52) == 1 and ivf_lists(10**12) == 65536  # at most n / 40 lists; at most 65536
    assert choose_factory(5, "HNSW32,Flat", 200_000) == "HNSW32,Flat"
