"""Labelled question sets: BEIR folders a tester writes from the app's Label tab (or `qa feedback export`).

A set is a folder under the labels root, in the layout `qa eval` reads with no conversion:

    queries.jsonl     {"_id", "text", "history", "answers", "metadata": {"answerable", "filter", "kind",
                       "negatives"}}: `answers` are the exact answer texts selected, `answerable: false`
                       marks a question these reviews do not answer, `negatives` the passages marked
                       "does not answer" (near misses, for training) as "review-id@start-end"
    evidence.jsonl    {"query_id", "doc_id", "start", "end", "stance"?}: each answer as offsets into the
                       review's raw text, as every eval set gives them (eval maps them through ingest
                       repair); a passage marked "answers" without a selection is its whole span; for an
                       opinion question, the review's stance there (positive, negative, mixed) when marked
    qrels/test.tsv    query-id, corpus-id (review), score 1 for each review holding an answer

Every save rewrites the three files under a lock file (`filelock`, so two people labelling at once, in
one server or two processes, never lose each other's work), each written to a temp file and renamed
into place, so a reader of the folder never sees half a file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

from .errors import DatasetError

SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
LOCK_TIMEOUT = 30  # seconds a save waits for another writer


@dataclass(frozen=True)
class Label:
    """One labelled question. `evidence` spans are (review id, start, end) in the review's raw text."""

    query_id: str
    question: str
    history: tuple[str, ...] = ()
    film: str | None = None
    answerable: bool = True
    answers: tuple[str, ...] = ()
    evidence: tuple[tuple[str, int, int], ...] = ()
    negatives: tuple[str, ...] = ()
    metadata: dict = field(default_factory=dict)  # anything else kept from the source (feedback, notes)
    stances: dict = field(default_factory=dict)  # (review id, start, end) of an evidence span -> its stance

    def query_json(self) -> dict:
        meta = {**self.metadata, "answerable": self.answerable, "kind": self.metadata.get("kind", "labelled")}
        if self.film:
            meta["filter"] = {"film": self.film}
        if self.negatives:
            meta["negatives"] = list(self.negatives)
        return {"_id": self.query_id, "text": self.question, "history": list(self.history),
                "answers": list(self.answers) if self.answerable else [], "metadata": meta}


def check_set_name(name: str) -> str:
    name = (name or "").strip()
    if not SET_NAME.fullmatch(name):
        raise DatasetError("A label set name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.")
    return name


def label_sets(root: Path) -> list[str]:
    """The sets under `root` that hold a queries.jsonl, by name."""
    root = Path(root)
    return sorted(p.name for p in root.iterdir() if (p / "queries.jsonl").is_file()) if root.is_dir() else []


def new_query_id(question: str, existing: set[str]) -> str:
    """A readable id from the question's words, unique in the set: "who-composed-the-score", "-2", ..."""
    base = "-".join(re.findall(r"[a-z0-9]+", question.casefold())[:8]) or "question"
    candidate, n = base, 1
    while candidate in existing:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


class LabelSet:
    """A named set under the labels root; reads and writes its BEIR files."""

    def __init__(self, root: Path, name: str):
        self.name = check_set_name(name)
        self.folder = Path(root) / self.name

    @contextmanager
    def _locked(self) -> Iterator[None]:
        from filelock import FileLock, Timeout

        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(self.folder / ".lock"), timeout=LOCK_TIMEOUT):
                yield
        except Timeout as exc:
            raise DatasetError(f"The label set {self.name} is being saved by someone else; try again.") from exc

    def labels(self) -> list[Label]:
        """Every saved label, in the order first saved."""
        queries = self.folder / "queries.jsonl"
        if not queries.is_file():
            return []
        evidence: dict[str, list[tuple[str, int, int]]] = {}
        stances: dict[str, dict] = {}
        if (self.folder / "evidence.jsonl").is_file():
            for obj in _read_jsonl(self.folder / "evidence.jsonl"):
                span = (str(obj["doc_id"]), int(obj["start"]), int(obj["end"]))
                evidence.setdefault(str(obj["query_id"]), []).append(span)
                if obj.get("stance"):
                    stances.setdefault(str(obj["query_id"]), {})[span] = str(obj["stance"])
        out = []
        for obj in _read_jsonl(queries):
            meta = dict(obj.get("metadata") or {})
            film = (meta.pop("filter", None) or {}).get("film")
            out.append(Label(str(obj["_id"]), obj["text"], tuple(obj.get("history") or ()), film,
                             meta.pop("answerable", True) is not False, tuple(obj.get("answers") or ()),
                             tuple(evidence.get(str(obj["_id"]), ())), tuple(meta.pop("negatives", ())), meta,
                             stances.get(str(obj["_id"]), {})))
        return out

    def get(self, query_id: str) -> Label | None:
        return next((label for label in self.labels() if label.query_id == query_id), None)

    def save(self, label: Label) -> Label:
        """Add the label, or replace the one with its query id; an empty id gets a new one. Returns it.
        An answerable label needs evidence (a passage marked as answering, or a selected answer)."""
        if not label.question.strip():
            raise DatasetError("A label needs a question.")
        if label.answerable and not label.evidence:
            raise DatasetError("Mark a passage that answers, select the answer, or mark the question unanswerable.")
        return self.save_many([label])[0]

    def save_many(self, new: list[Label]) -> list[Label]:
        """Add or replace several labels in one locked write (an export); evidence is not required, so
        a question still to be labelled can be saved with `metadata.needs_label`."""
        with self._locked():
            labels = self.labels()
            saved = []
            for label in new:
                if not label.query_id:
                    label = replace(label, query_id=new_query_id(label.question, {x.query_id for x in labels}))
                if not label.answerable:
                    label = replace(label, evidence=(), answers=())
                index = next((i for i, x in enumerate(labels) if x.query_id == label.query_id), None)
                if index is None:
                    labels.append(label)
                else:
                    labels[index] = label
                saved.append(label)
            self._write(labels)
        return saved

    def delete(self, query_id: str) -> bool:
        with self._locked():
            labels = self.labels()
            kept = [x for x in labels if x.query_id != query_id]
            if len(kept) == len(labels):
                return False
            self._write(kept)
        return True

    def _write(self, labels: list[Label]) -> None:
        queries = "".join(json.dumps(x.query_json(), ensure_ascii=False) + "\n" for x in labels)
        evidence = "".join(json.dumps({"query_id": x.query_id, "doc_id": d, "start": s, "end": e}
                                      | ({"stance": x.stances[(d, s, e)]} if (d, s, e) in x.stances else {})) + "\n"
                           for x in labels for d, s, e in x.evidence)
        qrels = "query-id\tcorpus-id\tscore\n" + "".join(
            f"{x.query_id}\t{d}\t1\n" for x in labels for d in sorted({d for d, _, _ in x.evidence}))
        _atomic_write(self.folder / "queries.jsonl", queries)
        _atomic_write(self.folder / "evidence.jsonl", evidence)
        (self.folder / "qrels").mkdir(exist_ok=True)
        if any(x.evidence for x in labels):
            _atomic_write(self.folder / "qrels" / "test.tsv", qrels)
        else:  # no review is relevant to anything: no review-level labels at all
            (self.folder / "qrels" / "test.tsv").unlink(missing_ok=True)


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
