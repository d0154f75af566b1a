"""`python -m qa` as a user runs it: a subprocess, real model, real index."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
KEYS = {"rank", "score", "text", "highlight", "review_id", "title", "outlet", "paragraph", "start", "end"}


def _qa(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout, cwd=ROOT)


def test_ask_json_prints_the_design_object(seed_index):
    corpus, folder = seed_index
    out = _qa("ask", "Who composed the score?", "--k", "3", "--json", "--corpus", str(corpus), "--index", str(folder))
    assert out.returncode == 0, out.stderr
    obj = json.loads(out.stdout)
    assert {"question", "query_used", "answer", "hits"} <= set(obj)
    assert len(obj["hits"]) >= 3 and KEYS <= set(obj["hits"][0])
    cited = {s["rank"] for s in obj["answer_spans"]}
    assert all(h["rank"] in cited for h in obj["hits"][3:])  # beyond k only passages the reply quotes
    top = obj["hits"][0]
    assert "Dalpalan" in top["text"] and top["rank"] == 1
    s, e = top["highlight"]
    assert top["start"] <= s < e <= top["end"]
    assert top["text"][s - top["start"]:e - top["start"]].startswith("The haunting score by Dalpalan")
    assert "Traceback" not in out.stderr


@pytest.mark.slow  # loads the model in a subprocess
def test_ask_plain_output_has_source_lines_and_index_is_built_when_missing(tmp_path):
    folder = tmp_path / "index"
    out = _qa("ask", "Who composed the score?", "--k", "2", "--index", str(folder))
    assert out.returncode == 0, out.stderr
    assert "Index built (no index yet): embedded 52 passages from 3 reviews" in out.stderr
    assert "repaired escape-2024/002_03b15f6e9896f6a9: 4 β→’, 6 β→—, 8 emoji junk" in out.stderr
    assert "[1] “Escape” (2024): A Gripping Tale of Freedom, Brotherhood, and Survival · ¶ " in out.stdout
    assert "outlet unknown" not in out.stdout
    assert "»The haunting score by [[Dalpalan]]" in out.stdout  # the quoted sentence, its exact answer marked
    again = _qa("index", "--index", str(folder))
    assert again.returncode == 0 and "up to date; nothing embedded" in again.stderr


@pytest.mark.slow  # loads the model in a subprocess
def test_errors_are_one_sentence_without_traceback(tmp_path):
    cases = [
        (("ask", "   "), "Please type a question."),
        (("ask", "hi", "--corpus", str(tmp_path / "missing"), "--index", str(tmp_path / "i")), "does not exist"),
        (("ask", "hi", "--corpus", str(tmp_path), "--index", str(tmp_path / "i")), "holds no readable review"),
        (("ask", "hi", "--model", str(tmp_path / "no-model"), "--index", str(tmp_path / "i")), "does not exist"),
        (("ask", "hi", "--model", "no-such-org/no-such-model", "--index", str(tmp_path / "i")), "cannot be loaded offline"),
    ]
    for args, message in cases:
        out = _qa(*args, timeout=120)
        assert out.returncode == 2, (args, out.stderr)
        assert message in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_a_bad_bar_is_refused_before_anything_loads():
    out = _qa("eval", "evals/escape", "--fail-under", "mrr=0.7", timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "argument --fail-under: unknown metric 'mrr'; choose from mrr@10, " in out.stderr.splitlines()[-1]
