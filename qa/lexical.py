"""The BM25 side: bm25s over passage texts, English stopwords and Snowball stemming (PyStemmer).

Saved as bm25s's own folder of .npy/.json files (no pickle) inside the index folder. It is rebuilt from
the passage texts whenever the store is written: tokenising is thousands of passages per second, far
cheaper than the embedding that the incremental update saves.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np


@lru_cache(maxsize=1)
def _stemmer():
    try:
        import Stemmer
    except ImportError as exc:  # bm25s works without it, but "minutes" would never match "minute"
        raise ImportError("BM25 stemming needs PyStemmer: pip install PyStemmer") from exc
    return Stemmer.Stemmer("english")


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased word tokens of two or more characters, English stopwords dropped, stemmed."""
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False)


_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # bm25s's default token pattern, so terms match its vocabulary


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def terms(text: str, drop: frozenset[str] = frozenset()) -> list[str]:
    """The tokens `tokenize` would give `text` (bm25s's pattern, lower case, its English stopwords,
    Snowball stems), after also dropping the unstemmed words in `drop`."""
    words = [w for w in _TOKEN.findall(text.lower()) if w not in _stopwords() and w not in drop]
    return _stemmer().stemWords(words)


class Lexical:
    """BM25 scores over a fixed list of passages (positions 0..n-1 match the store's passages)."""

    def __init__(self, retriever, size: int):
        self._bm25 = retriever
        self.size = size
        self._prefixes: dict[int, set[str]] = {}

    def _vocab(self) -> dict:
        return getattr(self._bm25, "vocab_dict", None) or {}  # an empty index has none

    @classmethod
    def build(cls, texts: list[str]) -> "Lexical":
        import bm25s

        retriever = bm25s.BM25()
        if texts:
            retriever.index(tokenize(texts), show_progress=False)
        return cls(retriever, len(texts))

    def save(self, folder: Path) -> None:
        if self.size:
            self._bm25.save(str(folder))
        else:
            folder.mkdir(parents=True, exist_ok=True)

    @classmethod
    def load(cls, folder: Path, size: int) -> "Lexical":
        import bm25s

        if size == 0:
            return cls(bm25s.BM25(), 0)
        return cls(bm25s.BM25.load(str(folder), mmap=False), size)

    def known(self, terms, prefix: int = 0) -> set[str]:
        """The given (tokenised, stemmed) terms that occur in at least one passage; with `prefix` > 0, a
        term of at least that many characters also counts when a passage term starts with the same
        `prefix` characters (the stemmer leaves "composed" and "compositions" apart)."""
        vocab = self._vocab()
        if not prefix:
            return {t for t in terms if t in vocab}
        if prefix not in self._prefixes:  # built once per length: the vocabulary never changes
            self._prefixes[prefix] = {t[:prefix] for t in vocab if len(t) >= prefix}
        starts = self._prefixes[prefix]
        return {t for t in terms if t in vocab or (len(t) >= prefix and t[:prefix] in starts)}

    def idf(self, terms) -> dict[str, float]:
        """BM25's (Lucene) inverse document frequency of each term over the passages:
        ln(1 + (N - df + 0.5) / (df + 0.5)); a term no passage holds has df = 0, the largest idf."""
        vocab = self._vocab()
        indptr = self._bm25.scores["indptr"] if self.size else None
        out = {}
        for t in terms:
            j = vocab.get(t)
            df = int(indptr[j + 1] - indptr[j]) if j is not None and indptr is not None else 0
            out[t] = float(np.log(1 + (self.size - df + 0.5) / (df + 0.5)))
        return out

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage for `query` (zeros when no query term is in the vocabulary)."""
        if self.size == 0:
            return np.zeros(0, dtype=np.float32)
        tokens = tokenize([query])[0]
        ids = self._bm25.get_tokens_ids(tokens)
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores_from_ids(ids), dtype=np.float32)
