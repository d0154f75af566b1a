"""The whole `ask` at 10k, 100k and 1M passages, with and without a film filter.

    python bench/scale.py [--json] [--sizes 10000 100000 1000000] [--smoke]

`--smoke` runs two tiny sizes for one round, in seconds: what the test suite runs so the bench cannot rot.

Review text follows a Zipf vocabulary of 20,000 filler words with the questions' content words
sprinkled in (3% of words), so a question word occurs in about 1% of passages, as content words do in
real reviews (a 60-word vocabulary would make every question match a third of the corpus).

A stub embedder stands in for the model (the model's cost does not grow with the corpus, and is not the
point here): passage, sentence and question vectors are random unit vectors, seeded. Passages are
synthetic review text (about 10 passages per review, 20 reviews per film), so BM25, filters, the
per-review view, the ranker's features and the answer decision all do their real work. Each store is
built in memory with the store's own FAISS choice (exact Flat below 200k passages, IVF above).

Prints p50 of ask per size (unfiltered and filtered to one film) and peak RSS per passage; the last
line is JSON with ask_1m_over_10k and ask_1m_over_10k_filtered (target: at most 1.5 each).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qa.engine import Engine, Settings  # noqa: E402
from qa.lexical import Lexical  # noqa: E402
from qa.records import Passage, Review, Source  # noqa: E402
from qa.retrieve import Filters  # noqa: E402
from qa.build import BuildReport  # noqa: E402
from qa.store import Store  # noqa: E402
from qa.vectors import IndexFeeder, choose_factory, new_index, tune_for_search  # noqa: E402

DIM = 384
PASSAGES_PER_REVIEW = 10
REVIEWS_PER_FILM = 20
SENTENCES_PER_PASSAGE = 3
FILLER_WORDS = 20_000
CONTENT_SHARE = 0.03
WORDS = ("score music pacing villain actor actress director camera light story plot ending twist scene "
         "dialogue drama thriller escape border soldier brother freedom tension chase night forest river "
         "city mountain train minutes runtime hour critic audience cinema sound editing colour frame shot "
         "performance script writer producer composer cast role hero friend family war peace fear hope").split()
QUESTIONS = ["Who composed the score?", "How is the pacing?", "Who plays the villain?", "How long is the film?",
             "Is the ending good?", "What do critics say about the camera work?", "Does the twist work?",
             "How is the dialogue?"]


def unit(rows: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal((rows, DIM), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class StubEmbedder:
    """Question and token vectors from a seeded generator per text: no model. Token vectors (what the
    reader reads) are one per word plus the two special tokens, so the reader's head does its real work
    on inputs of a real shape."""

    precision = "fp32"

    @staticmethod
    def _rng(text: str) -> np.random.Generator:
        return np.random.default_rng(int.from_bytes(text.encode("utf-8")[:8].ljust(8, b"\0"), "little") ^ len(text))

    def encode_query(self, text: str) -> np.ndarray:
        return unit(1, self._rng(text))[0]

    def encode_tokens(self, texts: list[str], tokens_per_batch: int = 2048) -> list[np.ndarray]:
        return [unit(min(len(t.split()), 254) + 2, self._rng(t)) for t in texts]


def build(passages: int, seed: int = 0) -> Store:
    rng = np.random.default_rng(seed)
    reviews: dict[str, Review] = {}
    records: list[Passage] = []
    texts: list[str] = []
    filler = np.array([f"w{n}" for n in range(FILLER_WORDS)])
    zipf_cdf = np.cumsum(1.0 / np.arange(1, FILLER_WORDS + 1))
    zipf_cdf /= zipf_cdf[-1]
    content = np.array(WORDS)

    def make_sentence() -> str:
        words = filler[np.minimum(np.searchsorted(zipf_cdf, rng.random(8)), FILLER_WORDS - 1)]
        sprinkled = rng.random(8) < CONTENT_SHARE
        words[sprinkled] = rng.choice(content, int(sprinkled.sum()))
        return " ".join(words).capitalize() + "."
    for r in range(passages // PASSAGES_PER_REVIEW):
        film = f"Film {r // REVIEWS_PER_FILM}"
        review_id = f"film-{r // REVIEWS_PER_FILM}/review-{r}"
        parts, spans, at = [], [], 0
        for p in range(PASSAGES_PER_REVIEW):
            sentences = [make_sentence() for _ in range(SENTENCES_PER_PASSAGE)]
            if rng.random() < 0.05:
                sentences[0] = f"It runs {int(rng.integers(80, 180))} minutes."
            text = " ".join(sentences)
            offsets, s = [], at
            for sentence in sentences:
                offsets.append((s, s + len(sentence)))
                s += len(sentence) + 1
            spans.append((at, at + len(text), tuple(offsets), text))
            parts.append(text)
            at += len(text) + 2
        full = "\n\n".join(parts)
        reviews[review_id] = Review(review_id, film, f"Review {r}", full, Source(outlet=f"Outlet {r % 50}"))
        for p, (start, end, offsets, text) in enumerate(spans):
            records.append(Passage(f"{review_id}#{p}", review_id, start, end, p + 1, text, offsets))
            texts.append(text)
    vectors = unit(len(records), rng)
    factory = choose_factory(len(records), None, 200_000)
    index = new_index(factory, DIM)
    feeder = IndexFeeder(index)
    for at in range(0, len(records), 100_000):
        feeder.add(vectors[at:at + 100_000], np.arange(at, min(at + 100_000, len(records)), dtype=np.int64))
    index = feeder.finish()
    tune_for_search(index)
    sentence_vectors = unit(len(records) * SENTENCES_PER_PASSAGE, rng).astype(np.float16)
    sentence_start = np.arange(0, len(records) * SENTENCES_PER_PASSAGE + 1, SENTENCES_PER_PASSAGE)
    manifest = {"index_factory": factory, "counts": {"reviews": len(reviews), "passages": len(records)}}
    return Store(Path("."), manifest, reviews, records, index, sentence_vectors, sentence_start, Lexical.build(texts))


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(size: int, rounds: int) -> dict:
    started = time.perf_counter()
    store = build(size)
    built = time.perf_counter() - started
    engine = Engine(store, StubEmbedder(), Settings(), BuildReport("built", "bench"))
    film = store.reviews[next(iter(store.reviews))].film
    for q in QUESTIONS:  # warm-up: term caches, the ranker, lazy indexes
        engine.ask(q)
        engine.ask(q, filters=Filters(film=film))
    plain, filtered = [], []
    for _ in range(rounds):
        for q in QUESTIONS:
            t = time.perf_counter()
            engine.ask(q)
            plain.append(time.perf_counter() - t)
            t = time.perf_counter()
            engine.ask(q, filters=Filters(film=film))
            filtered.append(time.perf_counter() - t)
    return {"passages": len(store.passages), "reviews": len(store.reviews), "build_s": round(built, 1),
            "factory": store.manifest["index_factory"], "ask_p50_ms": round(statistics.median(plain) * 1000, 2),
            "ask_filtered_p50_ms": round(statistics.median(filtered) * 1000, 2),
            "peak_rss_bytes_per_passage": round(peak_rss_bytes() / len(store.passages))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="two tiny sizes, one round: a check that it runs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.rounds = [400, 800], 1
    rows = []
    for size in args.sizes:
        row = measure(size, args.rounds)
        rows.append(row)
        print(f"{row['passages']:>9,} passages ({row['factory']:>13}): ask p50 {row['ask_p50_ms']:7.2f} ms, "
              f"filtered to one film {row['ask_filtered_p50_ms']:7.2f} ms; built in {row['build_s']} s; "
              f"peak RSS {row['peak_rss_bytes_per_passage']:,} B/passage (cumulative)", flush=True)
    out = {"rows": rows}
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        out["ask_1m_over_10k"] = round(last["ask_p50_ms"] / first["ask_p50_ms"], 3)
        out["ask_1m_over_10k_filtered"] = round(last["ask_filtered_p50_ms"] / first["ask_filtered_p50_ms"], 3)
        print(f"ask {last['passages']:,} / {first['passages']:,}: {out['ask_1m_over_10k']} unfiltered, "
              f"{out['ask_1m_over_10k_filtered']} filtered (target <= 1.5 each)")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
