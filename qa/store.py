"""The on-disk index: FAISS vectors, passage and review records, sentence vectors, BM25, manifest.json.

Folder layout (no pickle anywhere):
    manifest.json      format, model id + file hash + dimension, chunker, corpus fingerprint, versions,
                       and the byte size of every other file (a truncated file is caught on load)
    reviews.jsonl      one Review per line
    passages.jsonl     one Passage per line; line i is FAISS id i
    vectors.faiss      IndexIDMap2 over inner product on L2-normalised vectors
    sentences.npy      float16 sentence vectors of all passages, in passage order (for highlights)
    bm25/              the lexical side (see lexical.py)

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
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .corpus import Corpus, fingerprint, read_corpus
from .embed import Embedder, ModelInfo
from .errors import IndexCorrupt, IndexMismatch, IndexNotBuilt
from .lexical import Lexical
from .passages import ChunkerSettings, split_review
from .records import Passage, Review, Source

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FIX_HINT = "rebuild it with: python -m qa index --rebuild"
ANN_THRESHOLD = 200_000  # passages; below it exact search is fast enough (see bench/run.py)
HNSW_EF_SEARCH = 256  # recall@10 0.84 / 0.89 / 0.92 at 64 / 128 / 256 on 1M clustered vectors (bench/ann.py)
IVF_PROBE_SHARE = 64  # an IVF search visits at least 1/64 of its lists (and at least 8)...
IVF_MIN_SCAN = 16_384  # ...and at least this many vectors: ~2-3 ms here (1M: 16 of 1024 lists, recall@10 1.0)
IVF_TRAIN_PER_LIST = 40  # k-means training points per list (FAISS warns below 39)
SORT_BY_LENGTH = True  # bench/build.py switches it off to measure what the sort saves
EMBED_BATCH = 512  # passages handed to the model per step: bounds memory and drives the progress bar


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

def _review_json(r: Review) -> dict:
    return {"id": r.id, "film": r.film, "title": r.title, "text": r.text, "source": asdict(r.source),
            "metadata": r.metadata}


def _review_from(d: dict) -> Review:
    return Review(d["id"], d["film"], d["title"], d["text"], Source(**d["source"]), d.get("metadata") or {})


def _passage_json(p: Passage) -> dict:
    return {"id": p.id, "review_id": p.review_id, "start": p.start, "end": p.end, "paragraph": p.paragraph,
            "sentences": [list(s) for s in p.sentences]}


def _passage_from(d: dict, reviews: dict[str, Review]) -> Passage:
    text = reviews[d["review_id"]].text[d["start"] : d["end"]]
    return Passage(d["id"], d["review_id"], d["start"], d["end"], d["paragraph"], text,
                   tuple((s, e) for s, e in d["sentences"]))


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _versions() -> dict:
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
            handle.write(json.dumps(_review_json(r), ensure_ascii=False) + "\n")
    with open(tmp / "passages.jsonl", "w", encoding="utf-8") as handle:
        for p in passages:
            handle.write(json.dumps(_passage_json(p)) + "\n")
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
               ann_threshold: int = ANN_THRESHOLD, stamp: dict | None = None) -> tuple[Store, BuildReport]:
    """Load the index if it is current; otherwise update or rebuild it from the corpus, then load it.
    `stamp` adds fields to the manifest of a new build (the engine records its ranker version there).

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
                          choose_factory(len(passages), index_factory, ann_threshold), index_setting, stamp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    store = load_store(folder, embedder.info)
    report = BuildReport("updated" if action == "update" and old is not None else "built", reason,
                         embedded_passages=len(fresh), reused_passages=len(reuse),
                         embedded_reviews=embedded_reviews, warnings=tuple(corpus.warnings),
                         repairs=corpus.repairs)
    return store, report


def ivf_lists(passages: int) -> int:
    """IVF list count for n passages: the power of two nearest sqrt(n), at most 65536 and at most
    n / IVF_TRAIN_PER_LIST, so k-means has enough points per list.

    A search scans about n / IVF_PROBE_SHARE vectors whatever the list count, so more lists buy little
    here and cost k-means time: at 1M, 4096 lists took ~300 s to build on 2 cores, 1024 lists ~40 s,
    both at recall@10 1.0 (bench/ann.py)."""
    import math

    lists = 2 ** round(math.log2(math.sqrt(max(passages, 1))))
    return int(max(1, min(65536, lists, passages // IVF_TRAIN_PER_LIST)))


def choose_factory(passages: int, factory: str | None, ann_threshold: int) -> str:
    """The FAISS index_factory string: the configured one, else exact "Flat" below `ann_threshold`
    passages and an inverted file over exact vectors ("IVF<sqrt(n)>,Flat") at or above it."""
    if factory:
        return factory
    return "Flat" if passages < ann_threshold else f"IVF{ivf_lists(passages)},Flat"


def new_index(factory: str, dim: int):
    """An empty IndexIDMap2 over the factory's index, inner product. Only kinds that keep exact vectors
    (Flat, HNSW<M>,Flat, IVF<lists>,Flat) are accepted, so stored vectors can be reused on update and
    rescored exactly at query time; IVF indexes are trained by `IndexFeeder` as vectors arrive."""
    import faiss

    try:
        inner = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ValueError(f"'{factory}' is not a FAISS index_factory string FAISS can build") from exc
    if not isinstance(inner, (faiss.IndexFlat, faiss.IndexHNSWFlat, faiss.IndexIVFFlat)):
        raise ValueError(f"index factory '{factory}' must keep exact vectors (Flat, HNSW32,Flat or "
                         "IVF1024,Flat); compressed kinds (PQ, SQ) cannot give back the stored vectors")
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efConstruction = 40
    if isinstance(inner, faiss.IndexIVF):
        inner.make_direct_map()  # reconstruct() by position, for rescoring and reuse on update
    return faiss.IndexIDMap2(inner)


class IndexFeeder:
    """Adds vectors to a new index batch by batch. An index that needs training (IVF) holds back the
    first vectors until it has enough k-means training points (IVF_TRAIN_PER_LIST per list), trains,
    then adds them; memory beyond the index is bounded by that sample."""

    def __init__(self, index):
        import faiss

        self.index = index
        inner = faiss.downcast_index(index.index)
        self.train_size = inner.nlist * IVF_TRAIN_PER_LIST if isinstance(inner, faiss.IndexIVF) else 0
        self._held: list[tuple[np.ndarray, np.ndarray]] = []
        self._held_count = 0

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        if self.index.is_trained:
            self.index.add_with_ids(vectors, ids)
            return
        self._held.append((np.ascontiguousarray(vectors, dtype=np.float32), ids))
        self._held_count += len(ids)
        if self._held_count >= self.train_size:
            self._train_and_flush()

    def finish(self):
        if not self.index.is_trained:
            self._train_and_flush()
        return self.index

    def _train_and_flush(self) -> None:
        import faiss

        lists = faiss.downcast_index(self.index.index).nlist
        if self._held_count < lists:
            raise ValueError(f"an IVF index with {lists} lists needs at least {lists} passages to train; "
                             f"this corpus has {self._held_count}: use Flat (the default below the threshold)")
        sample = np.vstack([v for v, _ in self._held])
        self.index.train(sample)
        del sample
        for vectors, ids in self._held:
            self.index.add_with_ids(vectors, ids)
        self._held, self._held_count = [], 0


def tune_for_search(index) -> None:
    """Search-time settings that are not saved in the FAISS file (HNSW's efSearch, IVF's nprobe)."""
    import faiss

    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efSearch = HNSW_EF_SEARCH
    if isinstance(inner, faiss.IndexIVF):
        by_share = inner.nlist // IVF_PROBE_SHARE
        by_scan = -(-inner.nlist * IVF_MIN_SCAN // max(inner.ntotal, 1))  # ceil
        inner.nprobe = min(inner.nlist, max(8, by_share, by_scan))


def search_parameters(index, selector):
    """FAISS search parameters restricting a search to `selector`, of the kind the index needs (IVF
    rejects the generic kind) and carrying its tuned efSearch / nprobe (a fresh parameter object
    would otherwise reset them to FAISS's defaults)."""
    import faiss

    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    if isinstance(inner, faiss.IndexIVF):
        return faiss.SearchParametersIVF(sel=selector, nprobe=inner.nprobe)
    if isinstance(inner, faiss.IndexHNSW):
        return faiss.SearchParametersHNSW(sel=selector, efSearch=inner.hnsw.efSearch)
    return faiss.SearchParameters(sel=selector)


def _embed_and_finish(tmp: Path, folder: Path, embedder: Embedder, chunker: ChunkerSettings, corpus: Corpus,
                      passages: list[Passage], reuse: list[tuple[int, int]], fresh: list[int], old: Store | None,
                      progress: bool, factory: str, index_setting: dict, stamp: dict | None = None) -> None:
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
    if SORT_BY_LENGTH:
        fresh.sort(key=lambda i: -len(passages[i].text))  # similar lengths share a batch: less padding
    bar = tqdm(total=len(fresh), unit="passage", desc="Embedding", disable=not progress or not fresh)
    for b in range(0, len(fresh), EMBED_BATCH):
        batch = fresh[b : b + EMBED_BATCH]
        texts = [passages[i].text for i in batch]
        spans = [[(s - passages[i].start, e - passages[i].start) for s, e in passages[i].sentences] for i in batch]
        vectors, sentence_vectors = embedder.encode_passages(texts, spans, sort_by_length=SORT_BY_LENGTH)
        feeder.add(vectors, np.asarray(batch, dtype=np.int64))
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
        "versions": _versions(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(stamp or {}),
    }
    _finish_write(tmp, folder, new_manifest, index, all_sentences, lexical)
