"""Index-build throughput against raw `model.encode` over the same passages, in the same run.

The corpus is the seed reviews copied several times (each copy made unique so deduplication keeps it).
The build includes reading, repair, splitting, embedding with sentence vectors, BM25 and the atomic write.
It is measured with passages sorted by length before batching (the default) and without, to show what
the sort saves. Prints build passages/s over encode passages/s (target >= 0.9).
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

from _common import ROOT, timed

from qa.embed import Embedder
from qa.build import open_index


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


def main() -> None:
    result = measure()
    print(f"raw model.encode:          {result['encode_per_s']:.1f} passages/s")
    print(f"index build (length-sorted): {result['build_per_s']:.1f} passages/s")
    print(f"index build (corpus order):  {result['build_unsorted_per_s']:.1f} passages/s")
    print(f"build / encode:   {result['build_over_encode']:.3f}  (target >= 0.9)")
    if "--json" in sys.argv:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
