"""Turn a fetched copy of lewtun/SubjQA into BEIR eval folders (never committed: the data keeps its licence).

    python train/subjqa.py [--repo /work/.mirror/lewtun+SubjQA/repo] [--out .cache/subjqa]

Writes one folder per allowed split, `<out>/<domain>-<split>/`, holding
    corpus.jsonl    one document per review (SubjQA appends " ANSWERNOTFOUND" to every review; cut off)
    queries.jsonl   one query per (question, review) pair, filtered to that review
                    (`metadata.filter = {"subjqa_review": id}`); `answers` are the annotators' spans, or
                    `[]` with `metadata.answerable: false` when every annotator marked ANSWERNOTFOUND
    evidence.jsonl  the annotators' character spans, as SubjQA gives them

`--scope item` writes `<domain>-<split>-item/` instead: each answerable question searched among every review
of its item (its product, restaurant, hotel or film: `metadata.filter = {"film": item}`), as a reader asks
about a film among all its reviews; that is what the ranker is trained and measured on.

Only the splits DEVELOPERS.md allows are read: the train splits of every domain the snapshot holds and
the dev/test splits of books, electronics, grocery, restaurants and tripadvisor. The movies dev and test
splits are the project's held-out check and are refused here, so no script of ours can read them.
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

DOMAINS = ("books", "electronics", "grocery", "movies", "restaurants", "tripadvisor")
HELD_OUT = {("movies", "dev"), ("movies", "test")}
NOT_FOUND = "ANSWERNOTFOUND"


def allowed(domain: str, split: str) -> bool:
    return (domain, split) not in HELD_OUT and domain in DOMAINS and split in ("train", "dev", "test")


def read_split(repo: Path, domain: str, split: str) -> list[dict] | None:
    """The split's rows, or None when the snapshot lacks it (books and movies train are too large)."""
    if not allowed(domain, split):
        raise SystemExit(f"{domain} {split} is held out; it is never read.")
    done = subprocess.run(["git", "--git-dir", str(repo / ".git") if (repo / ".git").is_dir() else str(repo),
                           "show", f"HEAD:SubjQA/{domain}/splits/{split}.csv"], capture_output=True, text=True)
    if done.returncode != 0:
        return None
    return list(csv.DictReader(io.StringIO(done.stdout)))


def convert(rows: list[dict], scope: str = "review") -> tuple[list[dict], list[dict], list[dict]]:
    """(corpus, queries, evidence) for one split; one query per (question id, review id) pair, searched
    within that review (scope "review") or, answerable ones only, within its item's reviews ("item")."""
    corpus: dict[str, dict] = {}
    pairs: dict[tuple[str, str], dict] = {}
    for row in rows:
        text = row["review"]
        if text.endswith(NOT_FOUND):
            text = text[: -len(NOT_FOUND)].rstrip()
        corpus.setdefault(row["review_id"], {"_id": row["review_id"], "title": f"{row['domain']} {row['item_id']}",
                                             "text": text, "metadata": {"subjqa_review": row["review_id"],
                                                                        "film": row["item_id"]}})
        pair = pairs.setdefault((row["q_review_id"], row["review_id"]), {"question": row["question"], "spans": []})
        span = row["human_ans_spans"]
        if span != NOT_FOUND:
            start, end = ast.literal_eval(row["human_ans_indices"])
            if 0 <= start < end <= len(text) and (span, start, end) not in pair["spans"]:
                pair["spans"].append((span, start, end))
    queries, evidence = [], []
    for n, ((qid, rid), pair) in enumerate(pairs.items()):
        query_id = f"{qid[:12]}-{rid[:12]}-{n}"
        answers = sorted({s for s, _, _ in pair["spans"]})
        if scope == "item" and not answers:
            continue
        where = {"film": corpus[rid]["metadata"]["film"]} if scope == "item" else {"subjqa_review": rid}
        queries.append({"_id": query_id, "text": pair["question"], "answers": answers,
                        "metadata": {"filter": where, "answerable": bool(answers),
                                     "kind": "answerable" if answers else "unanswerable"}})
        evidence += [{"query_id": query_id, "doc_id": rid, "start": s, "end": e} for _, s, e in pair["spans"]]
    return list(corpus.values()), queries, evidence


def write_folder(folder: Path, corpus: list[dict], queries: list[dict], evidence: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, items in (("corpus.jsonl", corpus), ("queries.jsonl", queries), ("evidence.jsonl", evidence)):
        with open(folder / name, "w", encoding="utf-8") as handle:
            for item in items:
                handle.write(json.dumps(item, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", default="/work/.mirror/lewtun+SubjQA/repo", help="fetched lewtun/SubjQA")
    parser.add_argument("--out", default=".cache/subjqa")
    parser.add_argument("--splits", nargs="*", default=None,
                        help="domain-split names (default: every allowed split), e.g. grocery-train books-dev")
    parser.add_argument("--scope", choices=("review", "item"), default="review",
                        help="search each question within its own review (default) or its item's reviews")
    args = parser.parse_args(argv)
    repo = Path(args.repo)
    if not repo.exists():
        print(f"error: {repo} does not exist; fetch lewtun/SubjQA first (search tool: fetch).", file=sys.stderr)
        return 2
    wanted = args.splits or [f"{d}-{s}" for d in DOMAINS for s in ("train", "dev", "test") if allowed(d, s)]
    for name in wanted:
        domain, split = name.rsplit("-", 1)
        rows = read_split(repo, domain, split)
        if rows is None:
            print(f"{name}: not in this snapshot; skipped", file=sys.stderr)
            continue
        corpus, queries, evidence = convert(rows, args.scope)
        write_folder(Path(args.out) / (name + ("-item" if args.scope == "item" else "")), corpus, queries, evidence)
        unanswerable = sum(not q["metadata"]["answerable"] for q in queries)
        print(f"{name}: {len(queries)} questions ({unanswerable} unanswerable), {len(corpus)} reviews")
    return 0


if __name__ == "__main__":
    sys.exit(main())
