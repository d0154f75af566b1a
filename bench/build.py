"""Index-build throughput against raw `model.encode` over the same passages, in the same run.

The corpus is the seed reviews copied 6 times (each copy made unique so deduplication keeps it). The
build includes reading, repair, splitting, embedding with sentence vectors, BM25 and the atomic write.
Prints the ratio build passages/s over encode passages/s (target >= 0.9).
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

from _common import ROOT, timed

from qa.embed import Embedder
from qa.store import open_index

COPIES = 6


def main() -> None:
    embedder = Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        for n in range(COPIES):
            target = corpus / f"copy{n}"
            shutil.copytree(ROOT / "corpus" / "escape-2024", target)
            for f in target.iterdir():
                f.write_text(f.read_text(encoding="utf-8") + f"\nCopy {n}.\n", encoding="utf-8")
        store, _ = open_index(corpus, Path(tmp) / "warm", embedder, progress=False)  # warm-up
        texts = [p.text for p in store.passages]
        embedder.model.encode(texts[:64], batch_size=64)
        encode_s = build_s = 0.0
        for _ in range(2):  # alternate to share drift
            encode_s += timed(lambda: embedder.model.encode(texts, batch_size=64, normalize_embeddings=True,
                                                            show_progress_bar=False))
            build_s += timed(lambda: open_index(corpus, Path(tmp) / "index", embedder, rebuild=True, progress=False))
    n = len(texts) * 2
    result = {"passages": len(texts), "encode_per_s": round(n / encode_s, 1), "build_per_s": round(n / build_s, 1)}
    result["build_over_encode"] = round(result["build_per_s"] / result["encode_per_s"], 3)
    print(f"raw model.encode: {result['encode_per_s']:.1f} passages/s")
    print(f"index build:      {result['build_per_s']:.1f} passages/s")
    print(f"build / encode:   {result['build_over_encode']:.3f}  (target >= 0.9)")
    if "--json" in sys.argv:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
