"""Child process for bench/run.py: build an index of about N passages; print passages, RSS before and
at peak (MB), and build seconds.

`stub` replaces the model call with a constant-time stand-in of the same output shapes, so a build of
100k passages fits in the benchmark's time; it measures what the pipeline itself holds in memory (texts,
vectors, sentence vectors, BM25), which is what must stay bounded. `real` uses the real model.
"""

import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from _common import ROOT  # noqa: F401  (puts the project on sys.path)

from build import make_corpus
from qa.embed import Embedder, ModelInfo
from qa.build import open_index


class StubEmbedder:
    info = ModelInfo("stub", "stub", 384, 256)
    precision = "fp32"  # the store records it in the manifest

    def encode_passages(self, texts, spans, **_):
        rng = np.random.default_rng(len(texts))
        vectors = rng.standard_normal((len(texts), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors, [np.ones((len(s), 384), dtype=np.float32) / 19.6 for s in spans]


def _rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    passages, mode = int(sys.argv[1]), sys.argv[2]
    embedder = StubEmbedder() if mode == "stub" else Embedder()
    import bm25s, faiss, pysbd, sentence_transformers  # noqa: F401,E401  (imports are not the build's memory)
    from qa.store import library_versions

    library_versions()
    with tempfile.TemporaryDirectory() as tmp:
        make_corpus(Path(tmp) / "corpus", max(1, round(passages / 52)))
        base = _rss_mb()
        peak = [base]
        done = threading.Event()

        def sample():  # ru_maxrss would include the import spike; sample the build itself
            while not done.wait(0.02):
                peak[0] = max(peak[0], _rss_mb())

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.perf_counter()
        try:
            store, _ = open_index(Path(tmp) / "corpus", Path(tmp) / "index", embedder, progress=False)
        finally:
            done.set()
            sampler.join()
        seconds = time.perf_counter() - started
        peak = max(peak[0], _rss_mb())
    print(f"{len(store.passages)} {base:.1f} {peak:.1f} {seconds:.1f}")


if __name__ == "__main__":
    main()
