"""Hot reload: a newer index committed beside a running engine or app is served without a restart."""

import shutil
import subprocess
import sys
import threading
import time

import pytest

from qa.build import open_index
from qa.engine import Engine, Settings
from qa.retrieve import Filters
from qa.serving import EngineLoader, manifest_digest

from .conftest import ROOT, SEED_CORPUS, AppServer

# a review that alone answers the new question ("Zyrtalia Quenby")
NEW_REVIEW = (ROOT / "tests" / "fixtures" / "late-review.md").read_text(encoding="utf-8")
NEW_QUESTION = "Who is Zyrtalia Quenby?"
NEW_REVIEW_ID = "late.md"


def _has_new_review(engine: Engine) -> bool:
    answer = engine.ask(NEW_QUESTION, (), Filters(), engine.retrieval_settings(k=5))
    return any("Zyrtalia" in h.passage.text for h in answer.hits)


@pytest.fixture
def served(tmp_path, embedder):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(SEED_CORPUS, corpus)
    settings = Settings(corpus_dir=corpus, index_dir=index)
    loader = EngineLoader(settings, opener=lambda s: Engine.open(s, progress=False, embedder=embedder))
    return loader, corpus, index


def test_a_new_commit_is_swapped_in_and_the_old_engine_keeps_working(served, embedder):
    loader, corpus, index = served
    old = loader.get()
    assert loader.check_for_update() == "unchanged"
    assert not _has_new_review(old)
    (corpus / NEW_REVIEW_ID).write_text(NEW_REVIEW)
    open_index(corpus, index, embedder, progress=False)  # as `qa index` commits it
    assert loader.check_for_update() == "reloaded" and loader.reloads == 1
    new = loader.get()
    assert new is not old and new.embedder is old.embedder and new.answer_model is old.answer_model
    assert new.reader is old.reader  # and the reader's token cache
    assert _has_new_review(new)
    assert not _has_new_review(old) and len(old.reviews) == len(new.reviews) - 1  # in-flight requests finish
    assert loader.check_for_update() == "unchanged"


@pytest.mark.parametrize("damage", ["truncated vectors", "manifest cut short", "another model"])
def test_a_corrupt_new_index_is_refused_in_one_line_and_the_old_one_serves(served, embedder, caplog, damage):
    loader, corpus, index = served
    old = loader.get()
    manifest = (index / "manifest.json").read_text()
    if damage == "truncated vectors":
        data = (index / "vectors.faiss").read_bytes()
        (index / "vectors.faiss").write_bytes(data[: len(data) // 2])
        (index / "manifest.json").write_text(manifest.replace('"built_at"', '"rebuilt": 1, "built_at"'))
    elif damage == "manifest cut short":
        (index / "manifest.json").write_text(manifest[: len(manifest) // 2])
    else:
        (index / "manifest.json").write_text(manifest.replace(embedder.info.sha256, "0" * 64))
    with caplog.at_level("INFO", logger="qa"):
        outcome = loader.check_for_update()
    assert outcome.startswith("refused: ")
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1 and "\n" not in refusals[0].getMessage()
    assert loader.get() is old and loader.reloads == 0
    assert loader.check_for_update() == "unchanged"  # not retried until the manifest changes again
    assert old.ask("Who composed the score?", (), Filters(), old.retrieval_settings(k=3)).hits


def test_no_manifest_mid_swap_is_no_change(served):
    loader, _, index = served
    engine = loader.get()
    (index / "manifest.json").rename(index / "manifest.moved")
    assert manifest_digest(index) is None and loader.check_for_update() == "unchanged"
    assert loader.get() is engine


def test_running_app_answers_from_a_new_review_within_10_s_of_the_build(tmp_path):
    """A real server, a review added and `qa index` run beside it, requests sent all along."""
    import httpx

    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(SEED_CORPUS, corpus)
    server = AppServer(corpus, index, tmp_path / "app.log", extra_env={"QA_RELOAD_SECONDS": "1"})
    failures: list[str] = []
    seen_at: list[float] = []
    stop = threading.Event()

    def client(question: str, watch: bool):
        with httpx.Client(timeout=60) as http:
            while not stop.is_set():
                reply = http.post(server.url + "gradio_api/run/ask",
                                  json={"data": [question, "", 5, []], "session_hash": f"reload-{watch}"})
                if reply.status_code != 200:
                    failures.append(f"{reply.status_code}: {reply.text[:200]}")
                    continue
                hits = reply.json()["data"][0]["hits"]
                if watch and not seen_at and any("Zyrtalia" in h["text"] for h in hits):
                    seen_at.append(time.monotonic())

    try:
        threads = [threading.Thread(target=client, args=(q, w)) for q, w in
                   [(NEW_QUESTION, True), ("Who composed the score?", False)]]
        for t in threads:
            t.start()
        time.sleep(2)
        (corpus / NEW_REVIEW_ID).write_text(NEW_REVIEW)
        build = subprocess.run([sys.executable, "-m", "qa", "index", "--corpus", str(corpus), "--index", str(index)],
                               capture_output=True, text=True, cwd=ROOT, timeout=300)
        built_at = time.monotonic()
        assert build.returncode == 0, build.stderr
        deadline = built_at + 10
        while not seen_at and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(timeout=60)
    finally:
        stop.set()
        server.stop()
    assert failures == []
    assert seen_at and seen_at[0] - built_at <= 10, server.log()[-2000:]
    assert "Reloaded the index" in server.log()


def test_a_rebuild_from_the_served_corpus_is_swapped_in(served):
    """What SIGHUP runs in the app: an incremental build with the loaded model, then the swap."""
    loader, corpus, _ = served
    old = loader.get()
    (corpus / NEW_REVIEW_ID).write_text(NEW_REVIEW)
    assert loader.rebuild() == "reloaded"
    assert loader.get().embedder is old.embedder and _has_new_review(loader.get())
    assert loader.rebuild() == "unchanged"  # nothing new: the manifest is not rewritten


def test_health_is_503_until_an_index_is_loaded_and_names_a_failed_load(tmp_path):
    from qa.engine import Settings
    from qa.observe import Observer
    from qa.serving import EngineLoader

    def broken(_):
        raise RuntimeError("The corpus folder nowhere does not exist.")

    loader = EngineLoader(Settings(corpus_dir=tmp_path / "nowhere"), opener=broken)
    observer = Observer(loader)
    assert observer.health() == (503, {"status": "unavailable", "reason": "The index is still loading."})
    with pytest.raises(RuntimeError):
        loader.get()
    assert observer.health() == (503, {"status": "unavailable", "reason": "The corpus folder nowhere does not exist."})
    assert b"qa_passages 0.0" in observer.metrics_text()
