"""Benches cannot rot: each bench with a smoke mode runs it here, in seconds, so a crash fails the suite."""

import json
import subprocess
import sys

import pytest

from .conftest import ROOT


@pytest.mark.slow
def test_scale_bench_smoke_runs_the_whole_ask_without_the_model():
    """bench/scale.py --smoke: two tiny synthetic stores through the whole ask (the reader reads the stub
    embedder's token vectors); its last line is the JSON the full run prints."""
    out = subprocess.run([sys.executable, "bench/scale.py", "--smoke", "--json"], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert [row["passages"] for row in result["rows"]] == [400, 800]
    assert result["ask_1m_over_10k"] > 0 and result["ask_1m_over_10k_filtered"] > 0
