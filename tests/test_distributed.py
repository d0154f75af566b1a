"""Index builds on a real local Ray runtime (2 CPUs): the same index as a local build, a killed worker
retried, and one sentence when Ray is missing or cannot be reached."""

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qa.answer import answer_json
from qa.build import open_index
from qa.engine import Engine, Settings
from qa.store import load_store

from .conftest import ROOT, SEED_CORPUS

pytestmark = pytest.mark.slow
QUESTIONS = ["Who composed the score?", "How long is the film?", "Where did the reviewer watch the film?",
             "What are the film's weaknesses?"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def _same_index(a, b) -> None:
    assert [p.id for p in a.passages] == [p.id for p in b.passages]
    va, vb = a.vectors.reconstruct_n(0, a.vectors.ntotal), b.vectors.reconstruct_n(0, b.vectors.ntotal)
    assert np.abs(va - vb).max() < 1e-5
    assert np.abs(a.sentence_vectors.astype(np.float32) - b.sentence_vectors.astype(np.float32)).max() < 1e-3  # fp16
    assert {k: v for k, v in a.manifest.items() if k not in ("built_at", "files", "ranker", "reader")} == \
           {k: v for k, v in b.manifest.items() if k not in ("built_at", "files", "ranker", "reader")}


@pytest.fixture(scope="module")
def many_reviews(tmp_path_factory):
    """A corpus of 240 short review files made from the seed reviews' sentences, shuffled."""
    sentences = [s.strip() + "." for path in sorted(SEED_CORPUS.rglob("*.txt"))
                 for s in path.read_text(encoding="utf-8").split(". ") if len(s.split()) > 6]
    rng = random.Random(0)
    folder = tmp_path_factory.mktemp("many") / "corpus"
    for n in range(240):
        film = folder / f"film-{n % 12}"
        film.mkdir(parents=True, exist_ok=True)
        (film / f"{n:03d}.txt").write_text(" ".join(rng.sample(sentences, 9)), encoding="utf-8")
    return folder


@pytest.fixture
def stale_current_cluster(monkeypatch):
    """Ray's temp folder holding a "current cluster" file left by a head node that was killed: a plain
    `ray.init()` would try to join it. (A short path: Ray's sockets live under it.)"""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="qa-ray-", dir="/tmp")
    (Path(folder) / "ray_current_cluster").write_text("127.0.0.1:1")
    monkeypatch.setenv("RAY_TMPDIR", folder)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_ray_build_answers_exactly_like_a_local_one(seed_index, embedder, tmp_path, stale_current_cluster):
    corpus, local_folder = seed_index
    # without RAY_ADDRESS the build starts its own runtime, whatever the stale current-cluster file says
    ray_store, report = open_index(corpus, tmp_path / "ray", embedder, progress=False, engine="ray", workers=2)
    assert report.action == "built" and report.embedded_passages == len(ray_store.passages)
    local_store = load_store(local_folder)
    _same_index(ray_store, local_store)
    engines = [Engine(store, embedder, Settings(), report) for store in (ray_store, local_store)]
    for question in QUESTIONS:
        ray_json, local_json = (answer_json(e.ask(question), e.reviews) for e in engines)
        assert ray_json["answer"] == local_json["answer"] and ray_json["answer_spans"] == local_json["answer_spans"]
        assert len(ray_json["hits"]) == len(local_json["hits"]), question
        for ray_hit, local_hit in zip(ray_json["hits"], local_json["hits"]):
            # the same passages, ranks, highlights and exact answers; scores equal to float rounding (1e-7 vectors)
            assert {k: v for k, v in ray_hit.items() if k not in ("score", "scores")} == \
                   {k: v for k, v in local_hit.items() if k not in ("score", "scores")}, question
            assert ray_hit["scores"] == pytest.approx(local_hit["scores"], abs=2e-6), question


def test_a_killed_ray_worker_is_retried_and_the_build_completes(many_reviews, embedder, tmp_path):
    local, _ = open_index(many_reviews, tmp_path / "local", embedder, progress=False)
    assert len(local.passages) >= 240
    build = subprocess.Popen([sys.executable, "-m", "qa", "index", "--engine", "ray", "--workers", "2", "--precision", "fp32",
                              "--corpus", str(many_reviews), "--index", str(tmp_path / "ray")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and build.poll() is None and time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-f", "MapWorker"], capture_output=True, text=True).stdout.split()
        if found:
            time.sleep(1.0)  # mid-build: the workers are loading the model or embedding
            killed = int(found[0])
            subprocess.run(["kill", "-9", str(killed)])
        time.sleep(0.2)
    out, err = build.communicate(timeout=300)
    assert killed is not None, "no Ray worker was seen"
    print(f"killed Ray worker {killed}; build exit {build.returncode}")
    assert build.returncode == 0, err[-2000:]
    assert "Index built" in err and "Traceback" not in err
    _same_index(load_store(tmp_path / "ray"), local)


def test_ray_missing_or_unreachable_is_one_sentence(tmp_path, monkeypatch):
    from qa.distributed import RayUnavailable, require_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails, as without the package
    with pytest.raises(RayUnavailable, match=r"needs Ray, which is not installed: pip install 'ray\[data\]'"):
        require_ray()
    out = subprocess.run([sys.executable, "-m", "qa", "index", "--engine", "ray", "--index", str(tmp_path / "i")],
                         capture_output=True, text=True, env={**ENV, "RAY_ADDRESS": "127.0.0.1:1"}, cwd=ROOT,
                         timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == "error: Ray could not join the cluster at RAY_ADDRESS=127.0.0.1:1: nothing answers there."


@pytest.mark.parametrize("refusal", ["AuthenticationError", "grpc"])
def test_a_cluster_that_wants_a_token_is_named_in_one_sentence(monkeypatch, refusal):
    import ray
    import ray.exceptions

    from qa import distributed

    def refuse(**_):
        if refusal == "AuthenticationError":
            raise ray.exceptions.AuthenticationError("Authentication failed: token mismatch")
        raise RuntimeError("Failed to connect to GCS: UNAUTHENTICATED: InvalidAuthToken")

    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    monkeypatch.setattr(distributed, "preflight", lambda: None)  # the address "answers"
    monkeypatch.setattr(ray, "init", refuse)
    with pytest.raises(distributed.RayUnavailable) as caught:
        next(distributed.ray_embed(["a passage"], [[(0, 9)]], [0], None, "fp32", 384))
    assert str(caught.value) == ("Ray refused to let this build join the cluster at RAY_ADDRESS=10.0.0.5:6379: "
                                 f"{distributed.AUTH_HINT}.")
    assert "\n" not in str(caught.value) and "RAY_AUTH_TOKEN" in str(caught.value)


def test_ray_build_bench_smoke():
    """bench/ray_build.py --smoke: one copy of the seed corpus, one Ray worker against the local build."""
    out = subprocess.run([sys.executable, "bench/ray_build.py", "--smoke", "--json"], capture_output=True, text=True,
                         cwd=ROOT, env=ENV, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ray_1_workers_s"] > 0 and "ray_2_workers_s" not in result
