"""Index-build throughput against the raw model over the same passages, in the same run.

    python bench/build.py [--json]                 seed reviews copied 6 times
    python bench/build.py --long [--reviews 544]   long real user reviews (SubjQA training reviews)

Seed mode: the seed reviews copied several times (each copy made unique so deduplication keeps it); the
build is measured with passages sorted by length before batching (the default) and without, to show what
the sort saves. Prints build passages/s over encode passages/s (target >= 0.9).

Long mode (issue 25): reviews as long as SubjQA's movie reviews (median ~230 words), from the training
splits train/subjqa.py writes (movies dev/test are held out), in one .jsonl file. For fp32 and, where the
CPU has it natively, bf16: the build's wall time (`open_index`, rebuild: reading, repair, splitting,
embedding with sentence vectors, BM25, the write) over the model's own time for the same passages
(`build_over_model`, target <= 1.15), the splitter's ms per review, and the fp32/bf16 build ratio.
The builds include everything but loading the model, as `qa index` net of model load.
"""

import argparse
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import ROOT, subjqa_texts, timed

from qa.build import open_index
from qa.corpus import read_corpus
from qa.embed import Embedder
from qa.passages import split_review
from qa.precision import resolve

LONG_SETS = ("electronics-train", "grocery-train", "restaurants-train", "tripadvisor-train")


def make_corpus(target: Path, copies: int) -> None:
    for n in range(copies):
        folder = target / f"copy{n}"
        shutil.copytree(ROOT / "corpus" / "escape-2024", folder)
        for f in folder.iterdir():
            f.write_text(f.read_text(encoding="utf-8") + f"\nCopy {n}.\n", encoding="utf-8")


def measure(embedder: Embedder | None = None, copies: int = 6, repeats: int = 2) -> dict:
    embedder = embedder or Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        make_corpus(corpus, copies)
        store, _ = open_index(corpus, Path(tmp) / "warm", embedder, progress=False)  # warm-up
        texts = [p.text for p in store.passages]
        encode_s = build_s = unsorted_s = 0.0
        for _ in range(repeats):  # alternate to share drift
            encode_s += timed(lambda: embedder.model.encode(texts, batch_size=64, normalize_embeddings=True,
                                                            show_progress_bar=False))
            build_s += timed(lambda: open_index(corpus, Path(tmp) / "index", embedder, rebuild=True, progress=False))
            unsorted_s += timed(lambda: open_index(corpus, Path(tmp) / "index", embedder, rebuild=True,
                                                   progress=False, sort_by_length=False))
    n = len(texts) * repeats
    result = {"build_passages": len(texts), "encode_per_s": round(n / encode_s, 1), "build_per_s": round(n / build_s, 1),
              "build_unsorted_per_s": round(n / unsorted_s, 1)}
    result["build_over_encode"] = round(result["build_per_s"] / result["encode_per_s"], 3)
    result["unsorted_over_encode"] = round(result["build_unsorted_per_s"] / result["encode_per_s"], 3)
    return result


def make_long_corpus(target: Path, subjqa: Path, reviews: int, min_words: int = 150) -> None:
    """`reviews` SubjQA training reviews of at least `min_words` words (so the median is ~230 like the
    movie reviews'), shuffled with a fixed seed, written as one .jsonl review file."""
    chosen = sorted(t for t in subjqa_texts(subjqa, LONG_SETS) if len(t.split()) >= min_words)
    random.Random(0).shuffle(chosen)
    target.mkdir(parents=True)
    with (target / "reviews.jsonl").open("w", encoding="utf-8") as f:
        for n, text in enumerate(chosen[:reviews]):
            f.write(json.dumps({"id": f"r{n}", "film": f"item {n % 50}", "text": text}) + "\n")


def measure_long(embedder: Embedder, subjqa: Path, reviews: int = 544, repeats: int = 2) -> dict:
    chosen, _ = resolve("auto")
    precisions = ["fp32"] + ([chosen] if chosen != "fp32" else [])
    saved = embedder.precision
    result: dict = {"reviews": reviews, "auto_precision": chosen}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "corpus"
            make_long_corpus(corpus, subjqa, reviews)
            parsed = read_corpus(corpus)
            words = [len(r.text.split()) for r in parsed.reviews]
            split_s = min(timed(lambda: [split_review(r) for r in parsed.reviews]) for _ in range(3))
            passages = [p for r in parsed.reviews for p in split_review(r)]
            texts = [p.text for p in passages]
            spans = [[(s - p.start, e - p.start) for s, e in p.sentences] for p in passages]
            result |= {"passages": len(passages), "median_words": statistics.median(words),
                       "splitter_ms_per_review": round(split_s * 1000 / len(parsed.reviews), 3)}
            for p in precisions:  # warm-up; the bf16 copy of the model is made here, not timed
                embedder.precision = p
                open_index(corpus, Path(tmp) / f"warm-{p}", embedder, progress=False)
            model_s = dict.fromkeys(precisions, 0.0)
            build_s = dict.fromkeys(precisions, 0.0)
            for _ in range(repeats):  # alternate, to share drift
                for p in precisions:
                    embedder.precision = p
                    # The model's own time: one forward pass per passage, batched by length as the build
                    # batches, sentence vectors pooled from the same pass (what any build must compute).
                    model_s[p] += timed(lambda: embedder.encode_passages(texts, spans))
                    build_s[p] += timed(lambda: open_index(corpus, Path(tmp) / f"index-{p}", embedder,
                                                           rebuild=True, progress=False))
            for p in precisions:
                result[f"model_s_{p}"] = round(model_s[p] / repeats, 2)
                result[f"build_s_{p}"] = round(build_s[p] / repeats, 2)
                result[f"build_over_model_{p}"] = round(build_s[p] / model_s[p], 3)
            result["build_fp32_over_default"] = round(build_s["fp32"] / build_s[chosen], 3)
    finally:
        embedder.precision = saved
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--long", action="store_true", help="long real reviews instead of seed copies")
    parser.add_argument("--subjqa", type=Path, default=ROOT / ".cache" / "subjqa")
    parser.add_argument("--reviews", type=int, default=544)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="one copy, one repeat: the script still runs")
    args = parser.parse_args()
    if args.long:
        started = time.perf_counter()
        r = measure_long(Embedder(), args.subjqa, args.reviews)
        print(f"{r['reviews']} reviews (median {r['median_words']:.0f} words), {r['passages']} passages; auto = {r['auto_precision']}")
        print(f"splitter: {r['splitter_ms_per_review']:.2f} ms/review  (target <= 2)")
        for p in ("fp32", r["auto_precision"]) if r["auto_precision"] != "fp32" else ("fp32",):
            print(f"{p}: build {r['build_s_' + p]:.1f} s, model {r['model_s_' + p]:.1f} s, "
                  f"build_over_model {r['build_over_model_' + p]:.3f}  (target <= 1.15)")
        print(f"build fp32 / default: {r['build_fp32_over_default']:.2f}  (took {time.perf_counter() - started:.0f} s)")
        if args.json:
            print(json.dumps(r))
        return
    result = measure(copies=1, repeats=1) if args.smoke else measure()
    print(f"raw model.encode:          {result['encode_per_s']:.1f} passages/s")
    print(f"index build (length-sorted): {result['build_per_s']:.1f} passages/s")
    print(f"index build (corpus order):  {result['build_unsorted_per_s']:.1f} passages/s")
    print(f"build / encode:   {result['build_over_encode']:.3f}  (target >= 0.9)")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
