"""The sentence splitter against pysbd alone, on long real user reviews: time per review and agreement.

    python bench/splitter.py [--subjqa .cache/subjqa] [--reviews 2000] [--json]

Reviews: the SubjQA training splits and books dev/test (train/subjqa.py writes them; movies dev/test are
held out and never read), repaired as the corpus reader repairs them. The reference is the splitter this
project shipped before (pysbd on every paragraph with an inner end mark, segments located by search).
Prints ms per review for both, their ratio, the share of pysbd's sentences that the splitter returns
identically (`identical`), and a sample of the boundaries where they differ.
"""

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

from _common import ROOT, subjqa_texts

from qa import passages
from qa.repair import repair

# The previous splitter's cheap test: a paragraph with no end mark before its last character is one sentence.
INNER_END = re.compile(r"[.!?…。！？]+[\"'”’)\]]*\s+\S")
SETS = ("electronics-train", "grocery-train", "restaurants-train", "tripadvisor-train", "books-dev", "books-test")


def load_reviews(folder: Path, limit: int) -> list[str]:
    texts = [repair(t).text for t in subjqa_texts(folder, SETS)]
    random.Random(0).shuffle(texts)
    return texts[:limit]


def seed_reviews() -> list[str]:
    """The seed corpus's reviews, repaired (--smoke: no SubjQA needed)."""
    from qa.corpus import read_corpus

    return [r.text for r in read_corpus(ROOT / "corpus").reviews]


def pysbd_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The previous splitter: pysbd on the whole paragraph unless it has no inner end mark."""
    if not INNER_END.search(text, start, end):
        return [passages._trim(text, start, end)]
    starts = [start] + passages._pysbd_starts(text, start, end)
    spans = [passages._trim(text, s, e) for s, e in zip(starts, starts[1:] + [end])]
    return [(s, e) for s, e in spans if e > s]


def split_all(texts: list[str], split) -> tuple[list[list[tuple[int, int]]], float]:
    t0 = time.perf_counter()
    out = [[span for p in passages.paragraphs(t) for span in split(t, *p)] for t in texts]
    return out, (time.perf_counter() - t0) * 1000 / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjqa", type=Path, default=ROOT / ".cache" / "subjqa")
    parser.add_argument("--reviews", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="the seed reviews instead of SubjQA's: the script still runs")
    args = parser.parse_args()
    texts = seed_reviews() if args.smoke else load_reviews(args.subjqa, args.reviews)
    split_all(texts[:50], passages.sentences)  # imports and caches
    reference, pysbd_ms = split_all(texts, pysbd_sentences)
    ours, ms = split_all(texts, lambda t, s, e: passages.sentences(t, s, e, max_words=10**9))
    total = sum(len(r) for r in reference)
    identical = sum(len(set(r) & set(o)) for r, o in zip(reference, ours))
    differ = []
    for text, r, o in zip(texts, reference, ours):
        for kind, starts in (("pysbd only", {s for s, _ in r} - {s for s, _ in o}),
                             ("ours only", {s for s, _ in o} - {s for s, _ in r})):
            differ += [(kind, text[max(0, b - 30):b] + " | " + text[b:b + 20]) for b in sorted(starts)]
    words = sum(len(t.split()) for t in texts) / len(texts)
    result = {"reviews": len(texts), "mean_words": round(words, 1), "sentences": total,
              "pysbd_ms_per_review": round(pysbd_ms, 3), "splitter_ms_per_review": round(ms, 3),
              "speed_up": round(pysbd_ms / ms, 1), "identical": round(identical / total, 4),
              "boundaries_pysbd_only": sum(k == "pysbd only" for k, _ in differ),
              "boundaries_ours_only": sum(k == "ours only" for k, _ in differ)}
    print(f"{len(texts)} reviews, mean {words:.0f} words, {total} pysbd sentences")
    print(f"pysbd alone: {pysbd_ms:.2f} ms/review   splitter: {ms:.2f} ms/review   ({result['speed_up']}x)")
    print(f"identical to pysbd: {identical / total:.2%} (target >= 95%)")
    for kind, context in random.Random(1).sample(differ, min(12, len(differ))):
        print(f"  {kind:10s} {context!r}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
