"""Building and updating an index folder, crash-safe.

A write goes to a temp folder beside the index and is swapped in by rename, so a crash at any moment
leaves the previous index whole. `open_index` compares the manifest with the configured model, chunker
and corpus: it loads when all match, embeds only the changed review files when files changed, and
rebuilds (saying why) when the model or chunker changed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .corpus import Corpus, fingerprint, read_corpus
from .embed import Embedder, ModelInfo
from .errors import IndexCorrupt, IndexMismatch, IndexNotBuilt
from .lexical import Lexical
from .passages import ChunkerSettings, split_review
from .records import Passage, Review
from .store import (FORMAT_VERSION, MANIFEST, Store, library_versions, load_store, passage_json, read_manifest,
                    review_json)
from .vectors import ANN_THRESHOLD, IndexFeeder, choose_factory, new_index

log = logging.getLogger(__name__)
EMBED_BATCH = 512  # passages handed to the model per step: bounds memory and drives the progress bar


@dataclass(frozen=True)
class BuildReport:
    action: str  # "loaded", "updated" or "built"
    reason: str
    embedded_passages: int = 0
    reused_passages: int = 0
    embedded_reviews: int = 0
    warnings: tuple[str, ...] = ()
    repairs: dict = field(default_factory=dict)

    def summary(self) -> str:
        if self.action == "loaded":
            return "Index is up to date; nothing embedded."
        return (f"Index {self.action} ({self.reason}): embedded {self.embedded_passages} passages from "
                f"{self.embedded_reviews} reviews, reused {self.reused_passages}.")


# ---------------------------------------------------------------- records <-> json

# ---------------------------------------------------------------- write

def _siblings(folder: Path, kind: str) -> list[Path]:
    return sorted(folder.parent.glob(f".{folder.name}.{kind}-*"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(folder: Path) -> list[str]:
    """Undo what a killed write left behind: restore a swapped-out index, remove dead temp folders."""
    notes = []
    if not folder.exists():
        old = _siblings(folder, "old")
        if old:
            old[-1].rename(folder)
            notes.append(f"Restored the previous index from {old[-1].name}.")
    for kind in ("tmp", "old"):
        for path in _siblings(folder, kind):
            try:
                pid = int(path.name.rsplit("-", 2)[-2])
            except ValueError:
                pid = -1
            if pid != os.getpid() and not _pid_alive(pid):
                shutil.rmtree(path, ignore_errors=True)
                notes.append(f"Removed {path.name}, left by an interrupted build.")
    return notes


def _start_write(folder: Path, reviews: list[Review], passages: list[Passage]) -> Path:
    """A new temp folder beside the index holding the records; the vectors follow once embedded. A
    kill from here on leaves only this folder, which `recover` removes on the next run."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    with open(tmp / "reviews.jsonl", "w", encoding="utf-8") as handle:
        for r in reviews:
            handle.write(json.dumps(review_json(r), ensure_ascii=False) + "\n")
    with open(tmp / "passages.jsonl", "w", encoding="utf-8") as handle:
        for p in passages:
            handle.write(json.dumps(passage_json(p)) + "\n")
    return tmp


def _finish_write(tmp: Path, folder: Path, manifest: dict, vectors, sentence_vectors: np.ndarray,
                  lexical: Lexical) -> None:
    """Write the rest and the manifest (last, fsynced), then swap the folder in by two renames."""
    import faiss

    faiss.write_index(vectors, str(tmp / "vectors.faiss"))
    np.save(tmp / "sentences.npy", sentence_vectors, allow_pickle=False)
    lexical.save(tmp / "bm25")
    manifest["files"] = {p.relative_to(tmp).as_posix(): p.stat().st_size
                         for p in sorted(tmp.rglob("*")) if p.is_file()}
    with open(tmp / MANIFEST, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())
    old = folder.parent / f".{folder.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)  # between the renames only `old` exists; `recover` restores it after a crash
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------- build / update

def _plan(folder: Path, info: ModelInfo, chunker: ChunkerSettings, files: dict[str, str],
          rebuild: bool, index_setting: dict) -> tuple[str, str, dict | None]:
    """(action, reason, old manifest or None) where action is load, update or build."""
    if rebuild:
        return "build", "rebuild requested", None
    try:
        manifest = read_manifest(folder)
    except IndexNotBuilt:
        return "build", "no index yet", None
    except IndexCorrupt as exc:
        return "build", f"the old index was unreadable: {exc}", None
    built = manifest["model"]
    if manifest["format_version"] != FORMAT_VERSION:
        return "build", f"index format {manifest['format_version']} -> {FORMAT_VERSION}", None
    if built.get("id") != info.id or built.get("sha256") != info.sha256 or built.get("dim") != info.dim:
        return "build", f"the model changed from '{built.get('id')}' to '{info.id}'", None
    if manifest.get("chunker") != chunker.as_dict():
        return "build", f"the chunker changed from {manifest.get('chunker')} to {chunker.as_dict()}", None
    if manifest.get("corpus") != files:
        old = manifest.get("corpus") or {}
        added = sum(1 for f in files if f not in old)
        removed = sum(1 for f in old if f not in files)
        changed = sum(1 for f in files if f in old and old[f] != files[f])
        return "update", f"{added} review files added, {changed} changed, {removed} removed", manifest
    if manifest.get("index_setting") != index_setting:
        return "update", f"the index type setting changed from {manifest.get('index_setting')} to {index_setting}", manifest
    return "load", "up to date", manifest


def open_index(corpus_dir: str | os.PathLike, index_dir: str | os.PathLike, embedder: Embedder,
               chunker: ChunkerSettings = ChunkerSettings(), rebuild: bool = False,
               progress: bool = True, index_factory: str | None = None,
               ann_threshold: int = ANN_THRESHOLD, stamp: dict | None = None,
               sort_by_length: bool = True, engine: str = "local", workers: int = 2) -> tuple[Store, BuildReport]:
    """Load the index if it is current; otherwise update or rebuild it from the corpus, then load it.
    `stamp` adds fields to the manifest of a new build (the engine records its ranker version there);
    `sort_by_length` batches passages of similar length together (bench/build.py measures it off);
    `engine="ray"` embeds on Ray Data with `workers` model-holding actors (qa/distributed.py).

    A changed index type (factory or threshold) is an update that re-embeds nothing: the stored
    vectors are copied into the new index."""
    index_setting = {"factory": index_factory, "ann_threshold": ann_threshold}
    folder = Path(index_dir)
    recover(folder)
    files = fingerprint(corpus_dir)
    action, reason, manifest = _plan(folder, embedder.info, chunker, files, rebuild, index_setting)
    if action == "load":
        try:
            return load_store(folder, embedder.info), BuildReport("loaded", reason)
        except IndexCorrupt as exc:
            action, reason, manifest = "build", f"the old index was unreadable: {exc}", None
    log.info("Index: %s (%s)", "updating" if action == "update" else "building", reason)

    corpus: Corpus = read_corpus(corpus_dir)
    old: Store | None = None
    if manifest is not None:
        try:
            old = load_store(folder, embedder.info)
        except (IndexCorrupt, IndexMismatch) as exc:
            reason = f"{reason}; old index unusable, rebuilt: {exc}"
    unchanged = {f for f, sha in corpus.files.items() if old is not None and old.manifest["corpus"].get(f) == sha}
    old_positions: dict[str, list[int]] = {}
    if old is not None:
        for i, p in enumerate(old.passages):
            old_positions.setdefault(p.review_id, []).append(i)

    passages: list[Passage] = []
    reuse: list[tuple[int, int]] = []  # (new position, old position)
    fresh: list[int] = []  # new positions to embed
    embedded_reviews = 0
    for review in corpus.reviews:
        if review.source.path in unchanged and review.id in old_positions:
            for i in old_positions[review.id]:
                reuse.append((len(passages), i))
                passages.append(old.passages[i])
        else:
            embedded_reviews += 1
            for p in split_review(review, chunker):
                fresh.append(len(passages))
                passages.append(p)

    tmp = _start_write(folder, corpus.reviews, passages)
    try:
        _embed_and_finish(tmp, folder, embedder, chunker, corpus, passages, reuse, fresh, old, progress,
                          choose_factory(len(passages), index_factory, ann_threshold), index_setting, stamp,
                          sort_by_length, engine, workers)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    store = load_store(folder, embedder.info)
    report = BuildReport("updated" if action == "update" and old is not None else "built", reason,
                         embedded_passages=len(fresh), reused_passages=len(reuse),
                         embedded_reviews=embedded_reviews, warnings=tuple(corpus.warnings),
                         repairs=corpus.repairs)
    return store, report


def _embed_and_finish(tmp: Path, folder: Path, embedder: Embedder, chunker: ChunkerSettings, corpus: Corpus,
                      passages: list[Passage], reuse: list[tuple[int, int]], fresh: list[int], old: Store | None,
                      progress: bool, factory: str, index_setting: dict, stamp: dict | None = None,
                      sort_by_length: bool = True, engine: str = "local", workers: int = 2) -> None:
    from tqdm import tqdm

    dim = embedder.info.dim
    # Vectors go into FAISS batch by batch (ids = passage positions), so they are never all held twice.
    feeder = IndexFeeder(new_index(factory, dim))
    # One preallocated matrix (passage i's sentences at rows first[i]:first[i+1]), filled in place, so
    # sentence vectors are never held twice (at 100k passages they are ~0.5 GB).
    first = np.concatenate([[0], np.cumsum([len(p.sentences) for p in passages], dtype=np.int64)])
    all_sentences = np.zeros((int(first[-1]), dim), dtype=np.float16)
    for b in range(0, len(reuse), EMBED_BATCH):
        new_pos, old_pos = zip(*reuse[b : b + EMBED_BATCH])
        vectors = old.vectors.reconstruct_batch(np.asarray(old_pos, dtype=np.int64))
        feeder.add(vectors, np.asarray(new_pos, dtype=np.int64))
        for n, o in zip(new_pos, old_pos):
            all_sentences[first[n] : first[n + 1]] = old.sentences_of(o)
    if sort_by_length:
        fresh.sort(key=lambda i: -len(passages[i].text))  # similar lengths share a batch: less padding
    bar = tqdm(total=len(fresh), unit="passage", desc="Embedding", disable=not progress or not fresh)

    def spans_of(i: int) -> list[tuple[int, int]]:
        return [(s - passages[i].start, e - passages[i].start) for s, e in passages[i].sentences]

    if engine == "ray" and fresh:
        from .distributed import ray_embed

        embedded = ray_embed([passages[i].text for i in fresh], [spans_of(i) for i in fresh], fresh, embedder.model_name,
                             embedder.precision, dim, workers)
    else:
        def local():
            for b in range(0, len(fresh), EMBED_BATCH):
                batch = fresh[b : b + EMBED_BATCH]
                vectors, sentence_vectors = embedder.encode_passages(
                    [passages[i].text for i in batch], [spans_of(i) for i in batch], sort_by_length=sort_by_length)
                yield np.asarray(batch, dtype=np.int64), vectors, sentence_vectors

        embedded = local()
    for batch, vectors, sentence_vectors in embedded:
        feeder.add(vectors, batch)
        for i, sv in zip(batch, sentence_vectors):
            all_sentences[first[i] : first[i + 1]] = sv
        bar.update(len(batch))
    bar.close()
    index = feeder.finish()

    lexical = Lexical.build([p.text for p in passages])
    precisions = {embedder.precision} if fresh else set()
    if reuse and old is not None:
        precisions.update(str(old.manifest.get("precision", "fp32")).split("+"))
    new_manifest = {
        "format_version": FORMAT_VERSION,
        "model": {"id": embedder.info.id, "sha256": embedder.info.sha256, "dim": dim, "normalized": True,
                  "max_tokens": embedder.info.max_tokens},
        "chunker": chunker.as_dict(),
        "precision": "+".join(sorted(precisions or {embedder.precision})),  # of the stored vectors
        "index_factory": factory,
        "index_setting": index_setting,
        "metric": "inner_product",
        "corpus": corpus.files,
        "counts": {"reviews": len(corpus.reviews), "passages": len(passages)},
        "warnings": corpus.warnings,
        "repairs": corpus.repairs,
        "versions": library_versions(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(stamp or {}),
    }
    _finish_write(tmp, folder, new_manifest, index, all_sentences, lexical)
