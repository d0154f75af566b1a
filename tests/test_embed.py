"""The embedder's own batching: passages sorted by token count, questions coalesced across threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from qa.batching import Coalescer

QUESTIONS = ["Who composed the score?", "How long is the film?", "Who directed Escape?", "Is it worth seeing?",
             "Who plays the villain?", "What happens with the wild boar?", "How does the film end?",
             "What does the propaganda sign say?"]


def _run_together(n: int, target) -> list:
    """target(i) from n threads released at once; results by i."""
    results: list = [None] * n
    gate = threading.Barrier(n)

    def worker(i: int):
        gate.wait()
        try:
            results[i] = target(i)
        except Exception as exc:  # returned, so the test sees which caller got what
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_coalescer_batches_callers_that_arrive_while_busy_and_returns_each_its_own_result():
    first_running, release = threading.Event(), threading.Event()
    sizes: list[int] = []

    def batch_fn(items: list[int]) -> list[int]:
        sizes.append(len(items))
        if len(sizes) == 1:  # hold the first batch until every other caller has queued
            first_running.set()
            assert release.wait(10)
        return [x * 10 for x in items]

    coalescer = Coalescer(batch_fn, max_batch=32)
    first = threading.Thread(target=lambda: coalescer.run(0))
    first.start()
    assert first_running.wait(10)
    results: dict[int, int] = {}
    others = [threading.Thread(target=lambda i=i: results.__setitem__(i, coalescer.run(i))) for i in range(1, 8)]
    for t in others:
        t.start()
    while len(coalescer._queue) < 7:  # all seven are waiting behind the running batch
        threading.Event().wait(0.001)
    release.set()
    for t in [first, *others]:
        t.join(timeout=10)
    assert sizes == [1, 7]  # the first ran alone at once; the rest shared one call
    assert results == {i: i * 10 for i in range(1, 8)}


def test_coalescer_respects_max_batch_and_hands_errors_to_that_batch_only():
    calls: list[list[str]] = []

    def batch_fn(items: list[str]) -> list[str]:
        calls.append(items)
        if "bad" in items:
            raise ValueError("bad item")
        return [s.upper() for s in items]

    coalescer = Coalescer(batch_fn, max_batch=3)
    assert coalescer.run("a") == "A"
    with pytest.raises(ValueError, match="bad item"):
        coalescer.run("bad")
    assert coalescer.run("b") == "B"  # a failed batch leaves the coalescer usable
    out = _run_together(10, lambda i: coalescer.run(f"x{i}"))
    assert out == [f"X{i}" for i in range(10)]
    assert max(len(c) for c in calls) <= 3
    with pytest.raises(ValueError):
        Coalescer(batch_fn, max_batch=0)


def test_questions_from_threads_share_forward_passes_and_match_one_at_a_time(embedder):
    alone = np.vstack([embedder.encode([q])[0] for q in QUESTIONS])
    saved, embedder.query_cache_size = embedder.query_cache_size, 0  # every question must reach the model
    try:
        before = embedder._queries.batches
        together = _run_together(len(QUESTIONS), lambda i: embedder.encode_query(QUESTIONS[i]))
        batches = embedder._queries.batches - before
    finally:
        embedder.query_cache_size = saved
    assert np.abs(np.vstack(together) - alone).max() < 1e-5
    assert batches < len(QUESTIONS)  # at least two questions shared a forward pass


def test_passage_encoding_matches_the_model_in_any_order_with_sentence_vectors(embedder, seed_index):
    from qa.store import load_store

    store = load_store(seed_index[1])
    passages = store.passages[:40]
    texts = [p.text for p in passages]
    spans = [[(s - p.start, e - p.start) for s, e in p.sentences] for p in passages]
    reference = embedder.model.encode(texts, normalize_embeddings=True)
    for sort in (True, False):
        vectors, sentences = embedder.encode_passages(texts, spans, tokens_per_batch=800, sort_by_length=sort)
        assert np.abs(vectors - reference).max() < 1e-5
        assert [len(s) for s in sentences] == [len(p.sentences) for p in passages]
        stored = np.vstack([store.sentences_of(i) for i in range(len(passages))]).astype(np.float32)
        assert np.abs(np.vstack(sentences) - stored).max() < 1e-3  # stored as float16
        norms = np.linalg.norm(np.vstack(sentences), axis=1)
        assert np.all((np.abs(norms - 1) < 1e-4) | (norms == 0))
