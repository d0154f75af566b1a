"""The reader (qa/reader.py): its file checks, its head's masking, and (with the real model) that serving
reads exactly as training did and that it tells answers from near misses."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from qa.errors import ReaderModelError
from qa.reader import MANIFEST, READER_DIR, READER_VERSION, WEIGHTS, Reader, head_module, load_reader, sha256_of


def _write_head(folder, hidden: int = 8, dim: int = 16, version: int = READER_VERSION, seed: int = 0):
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    head = head_module(dim, hidden)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(folder / WEIGHTS))
    (folder / MANIFEST).write_text(json.dumps({"version": version, "sha256": sha256_of(folder / WEIGHTS),
                                               "hidden": hidden, "dim": dim}))
    return folder


def test_a_good_head_loads_and_bad_ones_are_one_sentence(tmp_path):
    good = _write_head(tmp_path / "good")
    assert isinstance(load_reader(good), Reader)
    corrupt = _write_head(tmp_path / "corrupt")
    data = bytearray((corrupt / WEIGHTS).read_bytes())
    data[-1] ^= 0xFF
    (corrupt / WEIGHTS).write_bytes(bytes(data))
    cases = {"corrupt": "do not match their recorded sha256"}
    missing = _write_head(tmp_path / "missing")
    (missing / WEIGHTS).unlink()
    cases["missing"] = "are missing"
    no_manifest = _write_head(tmp_path / "no_manifest")
    (no_manifest / MANIFEST).unlink()
    cases["no_manifest"] = "manifest .* is missing"
    _write_head(tmp_path / "old", version=READER_VERSION - 1)
    cases["old"] = "this code reads version"
    shape = _write_head(tmp_path / "shape")
    manifest = json.loads((shape / MANIFEST).read_text())
    (shape / MANIFEST).write_text(json.dumps(manifest | {"hidden": 12}))
    cases["shape"] = "do not fit its head"
    garbled = _write_head(tmp_path / "garbled")
    (garbled / MANIFEST).write_text("{not json")
    cases["garbled"] = "cannot be read"
    for name, message in cases.items():
        with pytest.raises(ReaderModelError, match=message) as caught:
            load_reader(tmp_path / name)
        assert "\n" not in str(caught.value) and str(caught.value).endswith(".")


def test_padding_and_batching_do_not_change_a_score(tmp_path):
    """A sentence scored alone, in a batch with a longer one (so it is padded), or twice gives one logit."""
    reader = load_reader(_write_head(tmp_path / "head", seed=3))
    rng = np.random.default_rng(0)
    question, short, long = rng.normal(size=(5, 16)), rng.normal(size=(3, 16)), rng.normal(size=(9, 16))
    alone = reader.score_tokens(question, [short])
    together = reader.score_tokens(question, [long, short, short])
    assert together[1] == pytest.approx(alone[0], abs=1e-5) and together[2] == pytest.approx(alone[0], abs=1e-5)
    assert reader.score_tokens(question, []).shape == (0,)


def test_shipped_head_matches_its_manifest():
    manifest = json.loads((READER_DIR / MANIFEST).read_text())
    assert manifest["version"] == READER_VERSION and sha256_of(READER_DIR / WEIGHTS) == manifest["sha256"]
    assert (READER_DIR / WEIGHTS).stat().st_size < 25 * 2**20


@pytest.fixture(scope="module")
def reader(embedder):
    return load_reader().with_embedder(embedder)


def test_serving_reads_as_training_did(reader, tmp_path):
    """train/fit_reader.py scores pairs from its cached token table (float16, cut to MAX_TOKENS);
    Reader.logits must give the same numbers for the same texts."""
    from train.fit_reader import predict, token_table

    question = "How long is the film?"
    sentences = ["Running time: 1hr 34m", "The haunting score by Dalpalan lifts every chase.", "It is a taut thriller."]
    table = token_table([question, *sentences], reader.embedder, tmp_path / "tokens.npz")
    rows = np.arange(3)
    trained = predict(reader.head, rows, np.zeros(3, dtype=int), rows + 1, table)
    assert reader.logits(question, sentences) == pytest.approx(trained, abs=1e-5)
    assert reader.logits(question, sentences) == pytest.approx(trained, abs=1e-5)  # again, from its cache


def test_the_reader_tells_answers_from_near_misses(reader):
    duration = reader.logits("How long is the film?", ["Running time: 1hr 34m", "The acting is superb throughout."])
    assert duration[0] > duration[1]
    director = "Director: Lee Jong-pil"
    asked = reader.logits("Who directed the film?", [director])[0]
    near_miss = reader.logits("Who is the casting director?", [director])[0]
    assert asked > near_miss


def test_a_missing_reader_stops_the_engine_in_one_sentence(seed_index, embedder, tmp_path, monkeypatch):
    from qa import reader as reader_module
    from qa.engine import Engine, Settings

    broken = tmp_path / "reader"
    shutil.copytree(READER_DIR, broken)
    (broken / WEIGHTS).write_bytes(b"not weights")
    monkeypatch.setattr(reader_module, "READER_DIR", broken)
    corpus, index = seed_index
    with pytest.raises(ReaderModelError, match="sha256"):
        Engine.open(Settings(corpus_dir=corpus, index_dir=index), progress=False, embedder=embedder)
