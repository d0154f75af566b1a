"""Benches cannot rot: each bench script has a smoke mode (tiny sizes, seconds) run here, so a crash fails
the suite. bench/run.py --smoke runs the in-process measures of bench/ask.py, build.py, precision.py and
ann.py at their smallest in one process (one model load); bench/memory.py runs its own. The soak's smoke
runs against the Reviews tab's server (tests/test_reviews_tab.py), the Ray build's in
tests/test_distributed.py."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT


def _smoke(*args: str, timeout: int = 300) -> dict:
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}  # ranx on a few questions: skip its 15 s compile
    out = subprocess.run([sys.executable, *args, "--smoke", "--json"], capture_output=True, text=True, cwd=ROOT,
                         timeout=timeout, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_scale_bench_smoke_runs_the_whole_ask_without_the_model():
    """bench/scale.py --smoke: two tiny synthetic stores through the whole ask (the reader reads the stub
    embedder's token vectors); its last line is the JSON the full run prints."""
    result = _smoke("bench/scale.py")
    assert [row["passages"] for row in result["rows"]] == [400, 800]
    assert result["ask_1m_over_10k"] > 0 and result["ask_1m_over_10k_filtered"] > 0


@pytest.mark.slow
def test_run_bench_smoke_measures_ask_build_precision_and_ann():
    result = _smoke("bench/run.py")
    assert result["ask_p50_ms"] > 0 and result["floor_p50_ms"] > 0 and result["opinion_ask_p50_ms"] > 0
    assert result["build_over_encode"] > 0 and result["precision_ask_p50_ms_fp32"] > 0
    assert set(result["ann"]) and all(r["passages"] == 5_000 for r in result["ann"].values())


def test_model_free_bench_smokes():
    """ann (synthetic vectors), splitter (the seed reviews) and reliability (a made-up answers.csv)."""
    ann = _smoke("bench/ann.py")
    assert all(0 <= r["recall_at_10"] <= 1 for r in ann.values())
    splitter = _smoke("bench/splitter.py")
    assert splitter["reviews"] == 3 and splitter["identical"] > 0.9
    out = subprocess.run([sys.executable, "bench/reliability.py", "--smoke"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0 and "2 answered questions" in out.stdout, out.stderr[-2000:]


@pytest.mark.slow
def test_rank_table_smoke_scores_every_retriever_on_a_few_escape_questions():
    result = _smoke("bench/rank_table.py")
    assert {row["retriever"] for row in result["rows"]} >= {"dense", "bm25", "hybrid", "ranked"}


@pytest.mark.slow
def test_memory_bench_smoke_measures_each_part():
    result = _smoke("bench/memory.py")
    assert result["rss_engine_mb"] > result["rss_imports_mb"] > 0
    assert 0 < result["query_cache"]["bytes"] <= result["query_cache"]["bound_bytes"]
    assert result["session_bytes"] > 10_000  # a Gradio session copies every component's config
