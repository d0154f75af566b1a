"""Build throughput and ask p50 at fp32 and at the default precision (what `auto` picks), in one run.

Builds alternate between the two precisions over the same corpus (the seed reviews copied several
times); questions alternate too, on the seed index, with the query cache off. Prints the precision
`auto` chose and why, and the ratios default / fp32 (on a CPU with native bf16 the target is a build
at least 2.5x as fast and an ask no slower; elsewhere auto is fp32 and both ratios are 1 by definition).
"""

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import QUESTIONS, ROOT, p50, timed
from build import make_corpus

from qa.embed import Embedder
from qa.engine import Engine, Settings
from qa.precision import resolve
from qa.build import open_index


def measure(embedder: Embedder | None = None, copies: int = 6, repeats: int = 2, rounds: int = 10) -> dict:
    embedder = embedder or Embedder()
    chosen, why = resolve("auto")
    precisions = ["fp32", chosen] if chosen != "fp32" else ["fp32"]
    saved, saved_cache = embedder.precision, embedder.query_cache_size
    embedder.query_cache_size = 0  # every ask pays for its encode, as in bench/ask.py
    build_s = dict.fromkeys(precisions, 0.0)
    ask_s: dict[str, list[float]] = {p: [] for p in precisions}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "corpus"
            make_corpus(corpus, copies)
            for p in precisions:  # warm-up, and the bf16 copy of the model is made here, not timed
                embedder.precision = p
                store, _ = open_index(corpus, Path(tmp) / f"warm-{p}", embedder, progress=False)
            for _ in range(repeats):
                for p in precisions:
                    embedder.precision = p
                    build_s[p] += timed(lambda: open_index(corpus, Path(tmp) / f"index-{p}", embedder,
                                                           rebuild=True, progress=False))
            passages = len(store.passages)
            engine = Engine.open(Settings(corpus_dir=ROOT / "corpus", index_dir=Path(tmp) / "seed", query_cache=0,
                                          precision="fp32"), embedder=embedder, progress=False)
            for p in precisions:
                embedder.precision = p
                for q in QUESTIONS:
                    engine.ask(q)
            for _ in range(rounds):
                for q in QUESTIONS:
                    for p in precisions:
                        embedder.precision = p
                        ask_s[p].append(timed(lambda: engine.ask(q)))
    finally:
        embedder.precision, embedder.query_cache_size = saved, saved_cache
    out = {"auto_precision": chosen, "auto_why": why, "build_passages": passages}
    for p in precisions:
        out[f"build_per_s_{p}"] = round(passages * repeats / build_s[p], 1)
        out[f"ask_p50_ms_{p}"] = round(p50(ask_s[p]) * 1000, 2)
    out["build_default_over_fp32"] = round(out[f"build_per_s_{chosen}"] / out["build_per_s_fp32"], 3)
    out["ask_default_over_fp32"] = round(out[f"ask_p50_ms_{chosen}"] / out["ask_p50_ms_fp32"], 3)
    return out


def vector_agreement(embedder: Embedder | None = None) -> dict:
    """Cosine between fp32 and bf16 vectors of the seed passages (min and mean), and top-10 overlap of
    their neighbour lists for the seed questions."""
    embedder = embedder or Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        store, _ = open_index(ROOT / "corpus", Path(tmp) / "i", embedder, progress=False)
    texts = [p.text for p in store.passages]
    saved = embedder.precision
    try:
        vectors = {}
        for p in ("fp32", "bf16"):
            embedder.precision = p
            vectors[p] = (embedder.encode(texts), embedder.encode(QUESTIONS))
    finally:
        embedder.precision = saved
    cos = (vectors["fp32"][0] * vectors["bf16"][0]).sum(axis=1)
    overlap = []
    for i in range(len(QUESTIONS)):
        top = {p: set(np.argsort(-(vectors[p][0] @ vectors[p][1][i]))[:10]) for p in vectors}
        overlap.append(len(top["fp32"] & top["bf16"]) / 10)
    return {"cos_min": round(float(cos.min()), 5), "cos_mean": round(float(cos.mean()), 5),
            "top10_overlap": round(float(np.mean(overlap)), 3)}


def main() -> None:
    result = measure(copies=1, repeats=1, rounds=1) if "--smoke" in sys.argv else measure()
    print(f"auto chose {result['auto_precision']}: {result['auto_why']}")
    for p in ("fp32", "bf16"):
        if f"build_per_s_{p}" in result:
            print(f"{p}: build {result[f'build_per_s_{p}']:.1f} passages/s, ask p50 {result[f'ask_p50_ms_{p}']:.2f} ms")
    print(f"build default / fp32: {result['build_default_over_fp32']:.3f}  (target >= 2.5 where bf16 is native)")
    print(f"ask p50 default / fp32: {result['ask_default_over_fp32']:.3f}  (target <= 1.0)")
    if "--agreement" in sys.argv:
        result.update(vector_agreement())
        print(f"bf16 vs fp32 vectors: cosine min {result['cos_min']}, mean {result['cos_mean']}; "
              f"top-10 overlap {result['top10_overlap']}")
    if "--json" in sys.argv:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
