"""Faults done for real: a killed build, damaged indexes, hostile questions, bad files, load."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st

from qa.engine import Engine, Settings
from qa.errors import DatasetError
from qa.evals import load_dataset
from qa.build import open_index
from qa.store import load_store

from .conftest import ROOT, SEED_CORPUS

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
QUESTIONS = ["Who composed the score?", "How long is the film?", "Did critics like the pacing?"]


def _answers(engine):
    return [[(h.passage.id, round(h.score, 6), h.highlight) for h in engine.ask(q).hits] for q in QUESTIONS]


def test_a_killed_rebuild_leaves_the_previous_index_whole(tmp_path, embedder):
    corpus = tmp_path / "corpus"
    for n in range(8):  # about 400 passages: several seconds of embedding to kill into
        target = corpus / f"copy{n}"
        target.mkdir(parents=True)
        for f in (SEED_CORPUS / "escape-2024").iterdir():
            target.joinpath(f.name).write_text(f.read_text(encoding="utf-8") + f"\nCopy {n}.\n", encoding="utf-8")
    index = tmp_path / "index"
    engine = Engine.open(Settings(corpus_dir=corpus, index_dir=index), embedder=embedder, progress=False)
    before = _answers(engine)
    proc = subprocess.Popen([sys.executable, "-m", "qa", "index", "--rebuild", "--progress", "--corpus", str(corpus),
                             "--index", str(index)], stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
    seen = ""
    deadline = time.monotonic() + 120
    while "Embedding" not in seen and time.monotonic() < deadline:
        seen += proc.stderr.read(1)
    assert "Embedding" in seen, seen
    time.sleep(1.0)  # well inside the embedding of ~400 passages
    assert proc.poll() is None, "the rebuild finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".index.")]
    assert leftovers and all(".index.tmp-" in n for n in leftovers)
    assert load_store(index, embedder.info).vectors.ntotal == len(engine.store.passages)
    again = Engine.open(Settings(corpus_dir=corpus, index_dir=index), embedder=embedder, progress=False)
    assert again.report.action == "loaded" and again.report.embedded_passages == 0
    assert _answers(again) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".index.")]


def test_edited_manifest_is_caught(tmp_path, seed_index, embedder):
    import shutil

    from qa.errors import IndexCorrupt, IndexMismatch

    _, good = seed_index
    folder = tmp_path / "index"
    shutil.copytree(good, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["model"]["dim"] = 512
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatch, match="dimension 512"):
        load_store(folder, embedder.info)
    manifest["model"]["dim"] = 384
    manifest["files"]["passages.jsonl"] += 1
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorrupt, match="passages.jsonl is truncated or altered"):
        load_store(folder, embedder.info)


HOSTILE = {
    "empty": "",
    "whitespace": " \t\n ",
    "huge": "Who composed the score? " * 4200,  # ~100,000 characters
    "control": "Who\x00 composed\x07 the\x1b[31m score?",
    "rtl": "מי הלחין את הפסקול? Who composed the score?",
    "emoji": "🎬🎵 who did the music?? 🎻",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_questions_in_python(engine, name):
    from qa.errors import BadQuestion

    question = HOSTILE[name]
    if name in ("empty", "whitespace"):
        with pytest.raises(BadQuestion, match="Please type a question"):
            engine.ask(question)
        return
    answer = engine.ask(question)
    assert answer.hits
    if name == "huge":
        assert answer.notices and "only its first" in answer.notices[0]
    if name in ("huge", "control", "rtl"):
        assert "Dalpalan" in answer.hits[0].passage.text or "Dalpalan" in answer.summary or name == "rtl"


def test_hostile_questions_through_the_cli(seed_index):
    corpus, index = seed_index
    for name, question in HOSTILE.items():
        question = question.replace("\x00", "")  # no argv can carry a NUL byte
        out = subprocess.run([sys.executable, "-m", "qa", "ask", question, "--json", "--corpus", str(corpus),
                              "--index", str(index)], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120)
        assert "Traceback" not in out.stderr, name
        if name in ("empty", "whitespace"):
            assert out.returncode == 2 and out.stderr.strip() == "error: Please type a question.", name
        else:
            assert out.returncode == 0, (name, out.stderr)
            assert json.loads(out.stdout)["hits"], name


def test_hostile_questions_through_the_api(app_server):
    from gradio_client import Client

    client = Client(app_server.url, verbose=False)
    for name, question in HOSTILE.items():
        if name in ("empty", "whitespace"):
            with pytest.raises(Exception, match="Please type a question"):
                client.predict(question, "", 5, [], api_name="/ask")
        else:
            result = client.predict(question, "", 5, [], api_name="/ask")
            assert result["hits"], name
    assert "Traceback" not in app_server.log()


def test_bad_corpus_files_each_get_a_warning(tmp_path, embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text("The score by Dalpalan is haunting and the pacing is brisk.")
    (corpus / "dup.txt").write_text("The score by Dalpalan is haunting and the pacing is brisk.")
    (corpus / "binary.txt").write_bytes(os.urandom(2048) + b"\x00")
    (corpus / "cp1252.txt").write_bytes("Na\xefve \x93quotes\x94 and a \x96 dash: a fine film.".encode("latin-1"))
    (corpus / "empty.md").write_text("")
    with open(corpus / "huge.txt", "wb") as handle:
        handle.truncate(50_000_000)  # a 50 MB file (sparse)
    (corpus / "locked.txt").write_text("secret")
    os.chmod(corpus / "locked.txt", 0)
    outside = tmp_path / "outside.txt"
    outside.write_text("outside")
    os.symlink(outside, corpus / "escape.txt")
    store, report = open_index(corpus, tmp_path / "index", embedder, progress=False)
    warnings = "\n".join(report.warnings)
    assert {r.id for r in store.reviews.values()} >= {"cp1252"}
    assert "dup.txt: skipped, same content as" in warnings or "good.txt: skipped, same content as" in warnings
    assert "binary.txt: skipped" in warnings and "empty.md: skipped" in warnings
    assert "huge.txt: skipped, 50 MB is over the 20 MB limit" in warnings
    assert "escape.txt: skipped, it is a link to a file outside the corpus folder" in warnings
    assert "cp1252.txt: not UTF-8; read as Windows-1252" in warnings
    assert store.reviews["cp1252"].text == "Naïve “quotes” and a – dash: a fine film."
    if os.geteuid() != 0:  # root reads any file, so the permission fault can only be shown as a user
        assert "locked.txt: skipped, it cannot be read" in warnings


def test_load_8_clients_x_50_questions(app_server):
    from gradio_client import Client

    questions = [json.loads(line)["text"] for line in (ROOT / "evals" / "escape" / "queries.jsonl").read_text().splitlines()][:50]
    alone = {}
    solo = Client(app_server.url, verbose=False)
    for q in questions:
        alone[q] = solo.predict(q, "", 5, [], api_name="/ask")
    errors: list[str] = []
    mismatches: list[str] = []

    def worker(seed: int):
        client = Client(app_server.url, verbose=False)
        order = questions[seed:] + questions[:seed]
        for q in order:
            try:
                if client.predict(q, "", 5, [], api_name="/ask") != alone[q]:
                    mismatches.append(q)
            except Exception as exc:  # counted, not raised, so every client finishes
                errors.append(f"{q}: {exc}")

    threads = [threading.Thread(target=worker, args=(n * 6,)) for n in range(8)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not any(t.is_alive() for t in threads), "load test did not finish within its time bound"
    assert errors == [] and mismatches == []
    print(f"400 concurrent asks in {time.monotonic() - start:.1f}s")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(
    st.just('{"_id": "q%d", "text": "fine"}'),
    st.text(max_size=30).filter(lambda s: "\n" not in s and "\r" not in s),
), min_size=1, max_size=8))
def test_eval_reader_names_the_bad_line(tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp("fuzz")
    rendered = [line.replace("%d", str(n)) for n, line in enumerate(lines)]  # numbered good lines; text as given
    (folder / "queries.jsonl").write_text("\n".join(rendered) + "\n", encoding="utf-8")
    try:
        dataset = load_dataset(folder)
    except DatasetError as exc:
        message = str(exc)
        assert "queries.jsonl" in message
        if " line " in message:
            n = int(message.split(" line ")[1].split(":")[0])
            assert 1 <= n <= len(rendered)
            bad = rendered[n - 1]
            try:
                obj = json.loads(bad)
                ok = isinstance(obj, dict) and isinstance(obj.get("text"), str) and obj["text"].strip() and "_id" in obj
            except ValueError:
                ok = False
            assert not ok or "used twice" in message
    else:
        assert dataset.queries
