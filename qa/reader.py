"""The reader: does this sentence answer this question? A small interaction head over frozen MiniLM tokens.

Term shares and one cosine per sentence cannot see that "Running time: 1hr 34m" answers "How long is the
film?" or that "Director: Lee Jong-pil" does not answer "Who is the casting director?". The reader reads
the question against the sentence word by word. Both are encoded alone by the bundled MiniLM (the same
model and precision as the index: no second model is loaded), and the head compares their last-layer
token vectors in the manner of decomposable attention (Parikh et al. 2016):

    q_i, s_j   the token vectors, L2-normalised;  Q_i = P q_i, S_j = P s_j   (P: dim -> hidden)
    a_i        = sum_j softmax_j(Q_i . S_j / sqrt(hidden)) S_j            what the sentence says about token i
    m_i        = max_j q_i . s_j                                          its best match among the sentence's tokens
    g_i        = relu(C [Q_i, a_i, Q_i * a_i, |Q_i - a_i|, m_i] + c)     token i compared with it
    w_i        = softmax_i(v . Q_i)                                       how much token i matters
    logit      = o . sum_i w_i g_i + b

so an answer that uses other words than the question still aligns ("runs" with "long"), and a
question word with no counterpart ("casting") pulls the score down through its weight. It is trained
by train/fit_reader.py on (question, sentence) pairs; the weights (safetensors, 0.45 MB) and a JSON
manifest with their sha256 ship in the package. Serving reads only the few best candidates of each
question (qa/decide.py chooses them), so its cost is one batched forward pass over a dozen sentences;
token vectors of sentences already read are kept in a bounded LRU cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from .cache import ArrayCache
from .errors import ReaderModelError

READER_VERSION = 1
READER_DIR = Path(__file__).with_name("reader")
WEIGHTS = "reader.safetensors"
MANIFEST = "reader.json"
MAX_TOKENS = 64  # a sentence is cut here when read (the model's own window is 256); questions too
TOKEN_CACHE = 4096  # sentences whose token vectors are kept (float16, ~25 KB each at most)
TOKEN_CACHE_BYTES = 64 * 2**20  # and at most this many bytes of them


def head_module(dim: int = 384, hidden: int = 128):
    """The head as a torch module (forward(q, q_mask, s, s_mask) -> logits of shape (batch,)); torch is
    imported here so that loading this module stays cheap."""
    import torch
    from torch import nn

    class ReaderHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.project = nn.Linear(dim, hidden)
            self.compare = nn.Linear(4 * hidden + 1, hidden)
            self.weigh = nn.Linear(hidden, 1)
            self.out = nn.Linear(hidden, 1)
            self.hidden = hidden

        def forward(self, q, q_mask, s, s_mask):
            q = nn.functional.normalize(q, dim=-1)
            s = nn.functional.normalize(s, dim=-1)
            blocked = ~s_mask[:, None, :]
            best = (q @ s.transpose(1, 2)).masked_fill(blocked, -1.0).max(dim=-1).values  # m_i
            qp, sp = self.project(q), self.project(s)
            attention = (qp @ sp.transpose(1, 2) / self.hidden ** 0.5).masked_fill(blocked, float("-inf"))
            aligned = torch.softmax(attention, dim=-1) @ sp
            g = torch.relu(self.compare(torch.cat([qp, aligned, qp * aligned, (qp - aligned).abs(), best[..., None]], -1)))
            w = torch.softmax(self.weigh(qp).squeeze(-1).masked_fill(~q_mask, float("-inf")), dim=-1)
            return self.out((w[..., None] * g).sum(dim=1)).squeeze(-1)

    return ReaderHead()


def pad(vectors: list[np.ndarray]):
    """(batch, longest, dim) float32 tensor and its (batch, longest) bool mask from token matrices."""
    import torch

    longest = max(1, max(len(v) for v in vectors))
    dim = vectors[0].shape[1]
    out = np.zeros((len(vectors), longest, dim), dtype=np.float32)
    mask = np.zeros((len(vectors), longest), dtype=bool)
    for i, v in enumerate(vectors):
        out[i, : len(v)] = v
        mask[i, : len(v)] = True
    return torch.from_numpy(out), torch.from_numpy(mask)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class ReaderInfo:
    version: int
    sha256: str
    hidden: int
    dim: int


class Reader:
    """The head plus the embedder that makes its token vectors; `logits(question, sentences)` is the
    one call serving and training make."""

    def __init__(self, head, info: ReaderInfo, embedder=None):
        self.head = head
        self.info = info
        self.embedder = embedder
        self._cache = ArrayCache(TOKEN_CACHE, TOKEN_CACHE_BYTES)  # texts whose token vectors are kept (LRU)

    @property
    def cache_size(self) -> int:
        return self._cache.max_entries

    @cache_size.setter
    def cache_size(self, entries: int) -> None:
        """Sentences whose token vectors are kept (0 switches the cache off); empties the cache."""
        self._cache = ArrayCache(entries, TOKEN_CACHE_BYTES)

    def with_embedder(self, embedder) -> "Reader":
        return Reader(self.head, self.info, embedder)

    def tokens(self, texts: list[str]) -> list[np.ndarray]:
        """Token vectors of each text (cut to MAX_TOKENS), from the cache where it has them."""
        precision = self.embedder.precision
        found: dict[int, np.ndarray] = {}
        for i, t in enumerate(texts):
            hit = self._cache.get((precision, t))
            if hit is not None:
                found[i] = hit
        missing = [i for i in range(len(texts)) if i not in found]
        if missing:
            encoded = self.embedder.encode_tokens([texts[i] for i in missing])
            for i, vectors in zip(missing, encoded):
                found[i] = vectors[:MAX_TOKENS].astype(np.float16)
                self._cache.put((precision, texts[i]), found[i])
        return [found[i].astype(np.float32) for i in range(len(texts))]

    def score_tokens(self, question: np.ndarray, sentences: list[np.ndarray]) -> np.ndarray:
        """Logits of one question's token matrix against each sentence's."""
        import torch

        if not sentences:
            return np.zeros(0)
        s, s_mask = pad(sentences)
        q, q_mask = pad([question] * len(sentences))
        with torch.inference_mode():
            return self.head(q, q_mask, s, s_mask).double().numpy()

    def logits(self, question: str, sentences: list[str]) -> np.ndarray:
        """How strongly each sentence answers the question (a logit; higher answers more)."""
        if not sentences:
            return np.zeros(0)
        vectors = self.tokens([question, *sentences])
        return self.score_tokens(vectors[0], vectors[1:])

    def for_question(self, question: str, reviews) -> Callable[[list], np.ndarray]:
        """What the answer decision calls (qa/decide.py `score`): the logits of each candidate sentence
        (a record with `review_id` and `sentence` offsets into `reviews[review_id].text`) for `question`."""
        return lambda cands: self.logits(question, [reviews[c.review_id].text[c.sentence[0]:c.sentence[1]]
                                                    for c in cands])


def load_reader(folder: Path | None = None) -> Reader:
    """The head in `folder` (default: the shipped one, READER_DIR); one plain sentence when its file is
    missing, altered or of another version. Loaded once per folder."""
    return _load_reader(Path(folder or READER_DIR).resolve())


@lru_cache(maxsize=4)
def _load_reader(folder: Path) -> Reader:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        expected, version = manifest["sha256"], int(manifest["version"])
        hidden, dim = int(manifest["hidden"]), int(manifest["dim"])
    except FileNotFoundError as exc:
        raise ReaderModelError(f"The reader's manifest {folder / MANIFEST} is missing; reinstall, or run train/fit_reader.py.") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReaderModelError(f"The reader's manifest {folder / MANIFEST} cannot be read ({exc.__class__.__name__}).") from exc
    if version != READER_VERSION:
        raise ReaderModelError(f"The reader in {folder} is version {version}, this code reads version {READER_VERSION}; "
                               "refit it with train/fit_reader.py.")
    path = folder / WEIGHTS
    if not path.is_file():
        raise ReaderModelError(f"The reader's weights {path} are missing; reinstall, or run train/fit_reader.py.")
    if sha256_of(path) != expected:
        raise ReaderModelError(f"The reader's weights {path} do not match their recorded sha256 (altered or corrupt); "
                               "reinstall, or run train/fit_reader.py.")
    from safetensors.torch import load_file

    head = head_module(dim, hidden)
    try:
        head.load_state_dict(load_file(str(path)))
    except Exception as exc:  # safetensors and torch raise several kinds; all mean "not this head"
        raise ReaderModelError(f"The reader's weights {path} do not fit its head ({exc.__class__.__name__}).") from exc
    head.eval()
    return Reader(head, ReaderInfo(version, expected, hidden, dim))
