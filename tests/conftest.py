"""Shared fixtures: the real model and the seed index are built once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

ROOT = Path(__file__).resolve().parent.parent
SEED_CORPUS = ROOT / "corpus"
SEEDS = ROOT.parent / "shared" / "seeds"
SEED_002 = SEED_CORPUS / "escape-2024" / "002_03b15f6e9896f6a9.txt"
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def embedder():
    from qa.embed import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, embedder):
    """(corpus dir, index dir) of the seed corpus, built once."""
    from qa.store import open_index

    folder = tmp_path_factory.mktemp("seed") / "index"
    open_index(SEED_CORPUS, folder, embedder, progress=False)
    return SEED_CORPUS, folder


@pytest.fixture(scope="session")
def engine(seed_index, embedder):
    from qa.engine import Engine, Settings

    corpus, folder = seed_index
    return Engine.open(Settings(corpus_dir=corpus, index_dir=folder), embedder=embedder, progress=False)


@pytest.fixture
def corpus_copy(tmp_path):
    """A writable copy of the seed corpus."""
    target = tmp_path / "corpus"
    shutil.copytree(SEED_CORPUS, target)
    return target
