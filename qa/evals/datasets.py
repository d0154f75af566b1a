"""Eval datasets: BEIR-layout folders read into queries, labels and evidence, and the engine that serves one.

Dataset folder:
    queries.jsonl      {"_id", "text", "history"?: [earlier user turns], "answers"?: [strings],
                        "metadata"?: {"filter"?: {field: value}, "kind"?: str, "answerable"?: bool}}
    corpus.jsonl       optional {"_id", "title", "text", "metadata"?}; absent: the configured corpus
    qrels/test.tsv     optional review-level labels: query-id, corpus-id, score
    evidence.jsonl     optional span labels {"query_id", "doc_id", "start", "end", "stance"?}, offsets into
                       the document text exactly as given (mapped through ingest repair)

Any malformed line raises DatasetError naming the file and line. A dataset with its own corpus.jsonl is
indexed once under a cache folder keyed by the corpus's content hash (`dataset_corpus_dir`).
"""

from __future__ import annotations
import hashlib
import re
import shutil

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DatasetError


STANCES = ("positive", "negative", "mixed")


@dataclass(frozen=True)
class EvalQuery:
    id: str
    text: str
    history: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()
    filter: dict = field(default_factory=dict)
    kind: str = ""
    answerable: bool = True  # False: `"answers": []` with `metadata.answerable: false`, scored for abstention


@dataclass
class Dataset:
    folder: Path
    queries: list[EvalQuery]
    corpus_path: Path | None
    qrels: dict[str, dict[str, int]] | None
    evidence: dict[str, list[tuple[str, int, int]]]
    stances: dict[str, dict[tuple[str, int, int], str]] = field(default_factory=dict)  # query -> evidence -> stance

    @property
    def name(self) -> str:
        return self.folder.name


def _jsonl(path: Path) -> list[tuple[int, dict]]:
    from ..corpus import jsonl_objects

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason}).") from exc
    return jsonl_objects(text, str(path), DatasetError)


def _strings(value, path: Path, n: int, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DatasetError(f"{path} line {n}: '{name}' must be a list of strings.")
    return tuple(value)


def load_dataset(folder: str | Path) -> Dataset:
    """Read a BEIR-layout folder; any malformed line raises DatasetError naming file and line."""
    folder = Path(folder)
    queries_path = folder / "queries.jsonl"
    if not queries_path.is_file():
        raise DatasetError(f"{folder} has no queries.jsonl; an eval dataset needs one.")
    queries: list[EvalQuery] = []
    seen: set[str] = set()
    for n, obj in _jsonl(queries_path):
        qid, text = obj.get("_id"), obj.get("text")
        if not isinstance(qid, (str, int)) or not isinstance(text, str) or not text.strip():
            raise DatasetError(f"{queries_path} line {n}: each query needs an '_id' and a non-empty 'text'.")
        qid = str(qid)
        if qid in seen:
            raise DatasetError(f"{queries_path} line {n}: the query id '{qid}' is used twice.")
        seen.add(qid)
        meta = obj.get("metadata") or {}
        if not isinstance(meta, dict) or not isinstance(meta.get("filter", {}), dict):
            raise DatasetError(f"{queries_path} line {n}: 'metadata' and 'metadata.filter' must be objects.")
        queries.append(EvalQuery(qid, text, _strings(obj.get("history"), queries_path, n, "history"),
                                 _strings(obj.get("answers"), queries_path, n, "answers"),
                                 dict(meta.get("filter") or {}), str(meta.get("kind") or ""),
                                 meta.get("answerable") is not False))
    if not queries:
        raise DatasetError(f"{queries_path} holds no query.")

    qrels = None
    qrels_path = folder / "qrels" / "test.tsv"
    if qrels_path.is_file():
        qrels = {}
        for n, line in enumerate(qrels_path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or (n == 1 and line.lower().startswith("query-id")):
                continue
            parts = line.split("\t")
            if len(parts) != 3 or not re.fullmatch(r"-?\d+", parts[2].strip()):
                raise DatasetError(f"{qrels_path} line {n}: expected query-id<TAB>corpus-id<TAB>integer score.")
            if parts[0] not in seen:
                raise DatasetError(f"{qrels_path} line {n}: unknown query id '{parts[0]}'.")
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])

    evidence: dict[str, list[tuple[str, int, int]]] = {}
    stances: dict[str, dict[tuple[str, int, int], str]] = {}
    evidence_path = folder / "evidence.jsonl"
    if evidence_path.is_file():
        for n, obj in _jsonl(evidence_path):
            qid, doc, start, end = obj.get("query_id"), obj.get("doc_id"), obj.get("start"), obj.get("end")
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end and doc is not None):
                raise DatasetError(f"{evidence_path} line {n}: needs query_id, doc_id and integer start < end.")
            if str(qid) not in seen:
                raise DatasetError(f"{evidence_path} line {n}: unknown query id '{qid}'.")
            evidence.setdefault(str(qid), []).append((str(doc), start, end))
            if obj.get("stance") is not None:
                if obj["stance"] not in STANCES:
                    raise DatasetError(f"{evidence_path} line {n}: 'stance' must be one of {', '.join(STANCES)}.")
                stances.setdefault(str(qid), {})[(str(doc), start, end)] = obj["stance"]

    corpus_path = folder / "corpus.jsonl"
    if corpus_path.is_file():
        for n, obj in _jsonl(corpus_path):
            if obj.get("_id") is None or not isinstance(obj.get("text"), str):
                raise DatasetError(f"{corpus_path} line {n}: each document needs an '_id' and a 'text'.")
    return Dataset(folder, queries, corpus_path if corpus_path.is_file() else None, qrels, evidence, stances)


def dataset_corpus_dir(dataset: Dataset, cache_root: Path) -> Path:
    """A corpus folder holding only the dataset's corpus.jsonl, in a cache keyed by its content, so
    the store's own manifest check makes a second run embed nothing."""
    digest = hashlib.sha256(dataset.corpus_path.read_bytes()).hexdigest()[:16]
    target = cache_root / f"{dataset.name}-{digest}" / "corpus"
    if not (target / "corpus.jsonl").is_file():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dataset.corpus_path, target / "corpus.jsonl")
    return target


def open_dataset_engine(dataset: Dataset, settings, cache_root: Path, embedder=None, progress: bool = True,
                        answer_model=None):
    """The engine an eval runs against (the dataset's own corpus, indexed once into the cache, or the
    configured corpus) and the raw->repaired offset maps of its reviews."""
    from dataclasses import replace

    from ..corpus import read_corpus
    from ..engine import Engine

    if dataset.corpus_path is not None:
        corpus_dir = dataset_corpus_dir(dataset, cache_root)
        settings = replace(settings, corpus_dir=corpus_dir, index_dir=corpus_dir.parent / "index")
    engine = Engine.open(settings, progress=progress, embedder=embedder, answer_model=answer_model)
    return engine, read_corpus(settings.corpus_dir).offset_maps


def doc_id_of(review_id: str, from_dataset: bool) -> str:
    """BEIR doc id of a review: the row id for a dataset corpus.jsonl, the review id otherwise."""
    return review_id.split("#", 1)[1] if from_dataset and "#" in review_id else review_id
