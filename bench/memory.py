"""What each part of a serving process costs in memory, measured step by step in one process.

    python bench/memory.py [--json] [--smoke]

RSS (from /proc) after: importing torch, gradio and the project; opening the engine on the seed index
(the model, the index, the fitted models); asking every bench question (the warm caches). Then, by
tracemalloc, the bytes of: one Gradio session of this app (`SessionState`, what a new reader or API
client adds until qa/sessions.py lets it go), the question cache, the reader's token cache and VADER's
sentence cache as they stand, and each cache's bound. --smoke: a few questions and sessions.
"""

from __future__ import annotations

import json
import sys
import tempfile
import tracemalloc
from pathlib import Path

from _common import CHATS, OPINION_QUESTIONS, QUESTIONS, ROOT


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def traced(make) -> tuple[object, int]:
    """(what `make()` returns, the bytes it left allocated)."""
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    out = make()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return out, sum(s.size_diff for s in after.compare_to(before, "filename"))


def measure(smoke: bool = False) -> dict:
    from qa.embed import configure_offline

    configure_offline()
    out = {"rss_start_mb": round(rss_mb(), 1)}
    import gradio  # noqa: F401
    import torch  # noqa: F401

    from qa.engine import Engine, Settings
    from qa.opinion import sentiment
    from qa.reader import TOKEN_CACHE, TOKEN_CACHE_BYTES

    out["rss_imports_mb"] = round(rss_mb(), 1)
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine.open(Settings(corpus_dir=ROOT / "corpus", index_dir=Path(tmp) / "index"), progress=False)
        out["rss_engine_mb"] = round(rss_mb(), 1)
        out["passages"] = len(engine.passages)
        questions = QUESTIONS[:2] if smoke else QUESTIONS
        for q in [*questions, *(OPINION_QUESTIONS[:1] if smoke else OPINION_QUESTIONS)]:
            engine.ask(q)
        for q, history in CHATS[:1] if smoke else CHATS:
            engine.ask(q, history)
        out["rss_warm_mb"] = round(rss_mb(), 1)
        query_cache, reader_cache = engine.embedder._cache, engine.reader._cache
        out["query_cache"] = {"entries": len(query_cache), "bytes": query_cache.bytes,
                              "bound_entries": query_cache.max_entries, "bound_bytes": query_cache.max_bytes}
        out["reader_cache"] = {"entries": len(reader_cache), "bytes": reader_cache.bytes,
                               "bound_entries": TOKEN_CACHE, "bound_bytes": TOKEN_CACHE_BYTES}
        info = sentiment.cache_info()
        out["vader_cache"] = {"entries": info.currsize, "bound_entries": info.maxsize}

        import app
        from gradio.state_holder import StateHolder

        holder = StateHolder()
        holder.set_blocks(app.demo)
        holder.capacity = 10**6
        sessions = 20 if smoke else 200
        _, allocated = traced(lambda: [holder[f"s{i}"] for i in range(sessions)])
        out["session_bytes"] = round(allocated / sessions)
    return out


def main() -> None:
    result = measure(smoke="--smoke" in sys.argv)
    print(f"RSS: start {result['rss_start_mb']} MB; torch, gradio and the project imported "
          f"{result['rss_imports_mb']} MB; engine open ({result['passages']} passages) {result['rss_engine_mb']} MB; "
          f"after the bench questions {result['rss_warm_mb']} MB")
    for name in ("query_cache", "reader_cache"):
        c = result[name]
        print(f"{name}: {c['entries']} entries, {c['bytes'] / 1e6:.2f} MB (bound {c['bound_entries']} entries, "
              f"{c['bound_bytes'] / 2**20:.0f} MiB)")
    print(f"vader_cache: {result['vader_cache']['entries']} sentences (bound {result['vader_cache']['bound_entries']})")
    print(f"one Gradio session of this app: {result['session_bytes'] / 1024:.0f} KB")
    if "--json" in sys.argv:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
