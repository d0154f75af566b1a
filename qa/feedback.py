"""Readers' thumbs up / down on chat answers, kept as JSONL, and turned into label sets to correct.

`feedback.jsonl` (in the feedback folder, by default `feedback/` beside the index folder) holds one
object per vote: the question and history as typed, the reply, whether it answered, its confidence, the
cited passages and every hit (review id, rank, offsets into the repaired review text), the film filter,
and the index (its build time and passage count) and model versions that produced it. Appends happen
under a lock file, so votes from many sessions interleave whole.

`export_feedback` writes a label set (qa/labels.py) for the Label tab to open and correct:
- liked and answered: evidence = the cited sentences (the exact answers where there are), mapped to
  raw offsets; the reviews behind them relevant;
- liked and abstained: unanswerable from these reviews;
- disliked: `metadata.needs_label`, with the passages the reply cited as negatives (near misses) and no
  evidence, so `qa eval` leaves it out until a tester labels it.
The latest vote on a question (with the same history and film) wins; exporting again replaces those
labels (their ids come from the question, history and film) and keeps the rest of the set.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from pathlib import Path

from .errors import DatasetError
from .labels import Label, LabelSet, new_query_id

FEEDBACK_FILE = "feedback.jsonl"


def compact_answer(answer: dict) -> dict:
    """What a vote needs of an answer object (`answer_json`): no passage texts, since a chat session
    keeps one per reply until the reader leaves."""
    kept = {k: answer.get(k) for k in ("question", "answer", "answered", "confidence", "answer_spans", "kind")}
    return {**kept, "hits": [{k: h[k] for k in ("rank", "review_id", "start", "end")} for h in answer.get("hits", [])]}


def feedback_record(answer: dict, history: list[str], liked: bool, film: str | None, versions: dict) -> dict:
    """One vote, from the answer object the reader saw (`answer_json`)."""
    hits = answer.get("hits", [])
    cited = []
    for span in answer.get("answer_spans", []):
        hit = hits[span["rank"] - 1] if 0 < span["rank"] <= len(hits) else None
        if hit is not None:
            cited.append({"rank": span["rank"], "review_id": hit["review_id"], "start": span["start"],
                          "end": span["end"], "kind": span["kind"], "passage": [hit["start"], hit["end"]]})
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "liked": bool(liked),
        "question": answer.get("question", ""),
        "history": list(history),
        "film": film,
        "reply": answer.get("answer", ""),
        "answered": bool(answer.get("answered")),
        "confidence": answer.get("confidence"),
        "cited": cited,
        "hits": [{"rank": h["rank"], "review_id": h["review_id"], "start": h["start"], "end": h["end"]} for h in hits],
        "versions": versions,
    }


def record_feedback(folder: Path, record: dict) -> None:
    from filelock import FileLock

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".lock"), timeout=30):
        with open(folder / FEEDBACK_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_feedback(folder: Path) -> list[dict]:
    path = Path(folder) / FEEDBACK_FILE
    if not path.is_file():
        raise DatasetError(f"There is no feedback at {path} yet; readers' thumbs up and down are saved there.")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            record["question"], record["liked"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path} line {n} is not a feedback record.") from exc
        out.append(record)
    return out


def feedback_stats(records: list[dict]) -> dict:
    """Counts: votes, liked, disliked, abstained (replies that were "the reviews don't say"), and each
    split by vote."""
    counts = Counter()
    for r in records:
        vote = "liked" if r["liked"] else "disliked"
        counts[vote] += 1
        kind = "answered" if r.get("answered") else "abstained"
        counts[kind] += 1
        counts[f"{kind}_{vote}"] += 1
    keys = ("liked", "disliked", "answered", "abstained", "answered_liked", "answered_disliked", "abstained_liked",
            "abstained_disliked")
    return {"votes": len(records), **{k: counts[k] for k in keys}}


def export_feedback(records: list[dict], out: Path, offset_maps: dict) -> list[Label]:
    """Write the votes as a label set at `out` (merged by query id with what is there); returns the labels.
    `offset_maps` (review id -> OffsetMap, from read_corpus) turns the cited spans into raw offsets."""
    latest: dict[tuple, dict] = {}
    for r in records:
        latest[(r["question"], tuple(r.get("history") or ()), r.get("film"))] = r
    label_set = LabelSet(Path(out).parent, Path(out).name)
    labels = []
    for (question, history, film), r in latest.items():
        # the same question, history and film always get the same id: a second export replaces, never doubles
        digest = hashlib.sha256(json.dumps([question, list(history), film]).encode("utf-8")).hexdigest()[:8]
        query_id = f"{new_query_id(question, set())}-{digest}"
        meta = {"kind": "feedback", "feedback": "liked" if r["liked"] else "disliked", "reply": r.get("reply", ""),
                "confidence": r.get("confidence"), "voted_at": r.get("time")}
        if r["liked"] and not r.get("answered"):
            labels.append(Label(query_id, question, history, film, answerable=False, metadata=meta))
            continue
        if r["liked"]:
            exact = [c for c in r.get("cited", []) if c.get("kind") == "answer"]
            spans = exact or [c for c in r.get("cited", []) if c.get("kind") == "sentence"]
            evidence = []
            for c in spans:
                mapping = offset_maps.get(c["review_id"])
                start, end = mapping.raw_span(c["start"], c["end"]) if mapping is not None else (c["start"], c["end"])
                evidence.append((c["review_id"], start, end))
            labels.append(Label(query_id, question, history, film, evidence=tuple(evidence), metadata=meta))
            continue
        negatives = tuple(dict.fromkeys(f"{c['review_id']}@{c['passage'][0]}-{c['passage'][1]}"
                                        for c in r.get("cited", [])))
        labels.append(Label(query_id, question, history, film, negatives=negatives,
                            metadata={**meta, "needs_label": True}))
    return label_set.save_many(labels)
