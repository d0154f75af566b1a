"""The on-disk index: FAISS vectors, passage and review records, sentence vectors, BM25, manifest.json.

Folder layout (no pickle anywhere):
    manifest.json      format, model id + file hash + dimension, chunker, corpus fingerprint, versions,
                       and the byte size of every other file (a truncated file is caught on load)
    reviews.jsonl      one Review per line
    passages.jsonl     one Passage per line; line i is FAISS id i
    vectors.faiss      IndexIDMap2 over inner product on L2-normalised vectors
    sentences.npy      float16 sentence vectors of all passages, in passage order (for highlights)
    bm25/              the lexical side (see lexical.py)

This module reads an index (`load_store`) and holds the record formats; qa/build.py writes one
(crash-safe, incremental) and qa/vectors.py chooses and tunes the FAISS index.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .embed import ModelInfo
from .errors import IndexCorrupt, IndexMismatch, IndexNotBuilt
from .lexical import Lexical
from .records import Passage, Review, Source
from .vectors import tune_for_search

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FIX_HINT = "rebuild it with: python -m qa index --rebuild"


@dataclass
class Store:
    folder: Path
    manifest: dict
    reviews: dict[str, Review]
    passages: list[Passage]
    vectors: "object"  # faiss.Index
    sentence_vectors: np.ndarray
    sentence_start: np.ndarray  # passage i's sentences are rows sentence_start[i]:sentence_start[i+1]
    lexical: Lexical

    @cached_property
    def position(self) -> dict[str, int]:
        """Passage id -> its position (and FAISS id)."""
        return {p.id: i for i, p in enumerate(self.passages)}

    @cached_property
    def positions_of_review(self) -> dict[str, list[int]]:
        """Review id -> the positions of its passages."""
        out: dict[str, list[int]] = {}
        for i, p in enumerate(self.passages):
            out.setdefault(p.review_id, []).append(i)
        return out

    def sentences_of(self, position: int) -> np.ndarray:
        return self.sentence_vectors[self.sentence_start[position] : self.sentence_start[position + 1]]

    def films(self) -> list[str]:
        return sorted({r.film for r in self.reviews.values()})


def review_json(r: Review) -> dict:
    return {"id": r.id, "film": r.film, "title": r.title, "text": r.text, "source": asdict(r.source),
            "metadata": r.metadata}


def _review_from(d: dict) -> Review:
    return Review(d["id"], d["film"], d["title"], d["text"], Source(**d["source"]), d.get("metadata") or {})


def passage_json(p: Passage) -> dict:
    return {"id": p.id, "review_id": p.review_id, "start": p.start, "end": p.end, "paragraph": p.paragraph,
            "sentences": [list(s) for s in p.sentences]}


def _passage_from(d: dict, reviews: dict[str, Review]) -> Passage:
    text = reviews[d["review_id"]].text[d["start"] : d["end"]]
    return Passage(d["id"], d["review_id"], d["start"], d["end"], d["paragraph"], text,
                   tuple((s, e) for s, e in d["sentences"]))


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def library_versions() -> dict:
    import bm25s
    import faiss
    import sentence_transformers

    return {"faiss": faiss.__version__, "bm25s": bm25s.__version__,
            "sentence_transformers": sentence_transformers.__version__, "numpy": np.__version__}


# ---------------------------------------------------------------- load

def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    if not Path(folder).is_dir():
        raise IndexNotBuilt(f"There is no index at {folder}; build it with: python -m qa index")
    if not path.is_file():
        raise IndexCorrupt(f"The index at {folder} has no {MANIFEST}; {FIX_HINT}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest["model"]["dim"], manifest["files"], manifest["format_version"]
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexCorrupt(f"The index manifest {path} is unreadable or incomplete; {FIX_HINT}") from exc
    return manifest


def check_model(manifest: dict, info: ModelInfo, folder: Path) -> None:
    """Raise IndexMismatch when the index was built with another model or dimension."""
    built = manifest["model"]
    if built.get("id") != info.id or built.get("sha256") != info.sha256 or built.get("dim") != info.dim:
        raise IndexMismatch(
            f"The index at {folder} was built with model '{built.get('id')}' (dimension {built.get('dim')}) "
            f"but the configured model is '{info.id}' (dimension {info.dim}); {FIX_HINT}"
        )


def load_store(folder: str | os.PathLike, info: ModelInfo | None = None) -> Store:
    """Load an index; every missing, truncated or mismatched part raises one plain-sentence error."""
    import faiss

    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest["format_version"] != FORMAT_VERSION:
        raise IndexMismatch(f"The index at {folder} has format {manifest['format_version']}, "
                            f"this version reads {FORMAT_VERSION}; {FIX_HINT}")
    if info is not None:
        check_model(manifest, info, folder)
    for name, size in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise IndexCorrupt(f"The index file {path} is missing; {FIX_HINT}")
        if path.stat().st_size != size:
            raise IndexCorrupt(f"The index file {path} is truncated or altered (size differs); {FIX_HINT}")
    try:
        reviews = {r.id: r for r in map(_review_from, _read_jsonl(folder / "reviews.jsonl"))}
        passages = [_passage_from(d, reviews) for d in _read_jsonl(folder / "passages.jsonl")]
        vectors = faiss.read_index(str(folder / "vectors.faiss"))
        tune_for_search(vectors)
        sentence_vectors = np.load(folder / "sentences.npy", allow_pickle=False)
        lexical = Lexical.load(folder / "bm25", len(passages))
    except Exception as exc:  # json, faiss, numpy and bm25s each raise their own kinds
        raise IndexCorrupt(f"The index at {folder} cannot be read ({exc.__class__.__name__}); {FIX_HINT}") from exc
    if vectors.ntotal != len(passages) or vectors.d != manifest["model"]["dim"]:
        raise IndexCorrupt(f"The index at {folder} holds {vectors.ntotal} vectors for {len(passages)} "
                           f"passages; {FIX_HINT}")
    counts = np.array([len(p.sentences) for p in passages], dtype=np.int64)
    sentence_start = np.concatenate([[0], np.cumsum(counts)])
    if sentence_vectors.shape[0] != sentence_start[-1]:
        raise IndexCorrupt(f"The index at {folder} has sentence vectors that do not match its passages; {FIX_HINT}")
    return Store(folder, manifest, reviews, passages, vectors, sentence_vectors, sentence_start, lexical)
