"""The precision setting: detection with both answers simulated, auto, fallback, bad values, and (where
the CPU has native bf16) bf16 vectors against fp32 ones and the manifest."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from qa.precision import PRECISIONS, native_bf16, resolve

from .conftest import ROOT


def test_detection_reports_both_answers():
    assert native_bf16(lambda: True)[0] is True
    native, why = native_bf16(lambda: False)
    assert native is False and "no native bf16" in why

    def broken():
        raise RuntimeError("odd torch build")

    assert native_bf16(broken)[0] is False


def test_auto_picks_bf16_only_where_native():
    assert resolve("auto", lambda: True)[0] == "bf16"
    assert resolve("auto", lambda: False)[0] == "fp32"
    assert resolve(None, lambda: False)[0] == "fp32"
    assert resolve("fp32", lambda: True) == ("fp32", "fp32 was asked for")


def test_bf16_without_native_support_runs_fp32_and_says_so():
    chosen, why = resolve("bf16", lambda: False)
    assert chosen == "fp32" and "running fp32 instead" in why
    assert resolve("BF16", lambda: True)[0] == "bf16"


def test_a_bad_value_names_the_allowed_ones(seed_index):
    with pytest.raises(ValueError, match="auto, fp32, bf16"):
        resolve("fp16")
    corpus, folder = seed_index
    out = subprocess.run([sys.executable, "-m", "qa", "ask", "Who composed the score?", "--precision", "half",
                          "--corpus", str(corpus), "--index", str(folder)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and out.stderr.strip() == "error: precision must be one of auto, fp32, bf16, not 'half'"
    assert PRECISIONS == ("auto", "fp32", "bf16")


def test_fp32_vectors_are_exactly_todays(embedder):
    texts = ["Who composed the score?", "The haunting score by Dalpalan enhances the film's emotional gravity."]
    assert embedder.precision == "fp32"
    reference = embedder.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    assert np.allclose(embedder.encode(texts), reference, atol=2e-7)


NATIVE, WHY = native_bf16()


@pytest.mark.skipif(not NATIVE, reason=f"bf16 is not native here: {WHY}")
def test_bf16_vectors_stay_close_to_fp32_and_the_manifest_says_bf16(embedder, tmp_path):
    from qa.engine import Engine, Settings

    engine = Engine.open(Settings(corpus_dir=ROOT / "corpus", index_dir=tmp_path / "index"), embedder=embedder,
                         progress=False)
    texts = [p.text for p in engine.store.passages]
    try:
        embedder.precision = "bf16"
        bf16 = embedder.encode(texts)
        built = Engine.open(Settings(corpus_dir=ROOT / "corpus", index_dir=tmp_path / "bf16", precision="bf16"),
                            embedder=embedder, progress=False)
        assert json.loads((tmp_path / "bf16" / "manifest.json").read_text())["precision"] == "bf16"
        assert built.embedder.precision == "bf16"
        answer = built.ask("Who composed the score?")
        assert "Dalpalan" in answer.hits[0].passage.text
    finally:
        embedder.precision = "fp32"
    fp32 = embedder.encode(texts)
    cosines = (bf16 * fp32).sum(axis=1)
    assert cosines.min() >= 0.99, cosines.min()
    assert np.allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)  # normalised in float32 after the cast
