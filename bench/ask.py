"""In-process `ask` p50 against its floor, measured in the same run.

The floor is what `ask` cannot avoid: encode(question) with the same model plus an exact FAISS search.
Our pipeline adds BM25, fusion, the per-review cap, sentence highlights, coverage and the reply. The
query-embedding cache is switched off here, so every ask pays for its encode like the floor does.
Prints the retrieval alone (`Engine.search`: BM25, fusion, the learned ranker, the cap, highlights) over
the floor as search_over_floor (target <= 1.25), the whole ask (retrieval plus the answer decision, whose
reader encodes the question's dozen best candidate sentences) as ask_p50_ms (target <= 150 ms) and
ask_over_floor, and the hybrid retriever's ask (no learned ranker) in the same run. The reader's token
cache is switched off too, so every ask reads its sentences afresh. opinion_ask_p50_ms times opinion
questions (every sentence of the reviews in scope scored, no reader), chat_ask_p50_ms the last question of
short chats (two of the five are read both stand-alone and folded), and all_ask_p50_ms the three mixed;
the opinion model's sentiment cache is cleared before each of those, so VADER runs on every sentence.
"""

import json
import sys
import tempfile
from pathlib import Path

from _common import CHATS, OPINION_QUESTIONS, QUESTIONS, ROOT, p50, timed

from qa.embed import Embedder
from qa.engine import Engine, Settings
from qa.opinion import sentiment
from qa.retrieve import RetrievalSettings

ROUNDS = 15


def measure(embedder: Embedder | None = None, rounds: int = ROUNDS, smoke: bool = False) -> dict:
    embedder = embedder or Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine.open(Settings(corpus_dir=ROOT / "corpus", index_dir=Path(tmp) / "index", query_cache=0),
                             embedder=embedder, progress=False)
        saved_cache, embedder.query_cache_size = embedder.query_cache_size, 0
        if engine.reader is not None:
            engine.reader.cache_size = 0
        questions, opinions, chats = (QUESTIONS[:2], OPINION_QUESTIONS[:1], CHATS[:1]) if smoke else \
            (QUESTIONS, OPINION_QUESTIONS, CHATS)  # --smoke: a couple of each, the script still runs
        try:
            index = engine.store.vectors
            model = embedder.model

            def floor(q):
                v = model.encode([q], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
                index.search(v, 5)

            hybrid = engine.retrieval_settings(mode="hybrid")
            for q in questions:  # warm-up
                floor(q)
                engine.ask(q)
                engine.ask(q, retrieval=hybrid)
                engine.search(q)
            for q in opinions:
                engine.ask(q)
            for q, history in chats:
                engine.ask(q, history)
            floor_s, ask_s, hybrid_s, search_s, opinion_s, chat_s = [], [], [], [], [], []
            for _ in range(rounds):
                for q in questions:  # interleaved, so drift on a shared machine hits all alike
                    floor_s.append(timed(lambda: floor(q)))
                    ask_s.append(timed(lambda: engine.ask(q)))
                    hybrid_s.append(timed(lambda: engine.ask(q, retrieval=hybrid)))
                    search_s.append(timed(lambda: engine.search(q)))
                for q in opinions:
                    sentiment.cache_clear()  # every ask scores its sentences afresh, as a new film's would
                    opinion_s.append(timed(lambda: engine.ask(q)))
                for q, history in chats:
                    sentiment.cache_clear()
                    chat_s.append(timed(lambda: engine.ask(q, history)))
        finally:
            embedder.query_cache_size = saved_cache
    result = {"ask_p50_ms": round(p50(ask_s) * 1000, 2), "floor_p50_ms": round(p50(floor_s) * 1000, 2),
              "hybrid_ask_p50_ms": round(p50(hybrid_s) * 1000, 2), "search_p50_ms": round(p50(search_s) * 1000, 2),
              "opinion_ask_p50_ms": round(p50(opinion_s) * 1000, 2), "chat_ask_p50_ms": round(p50(chat_s) * 1000, 2),
              "all_ask_p50_ms": round(p50(ask_s + opinion_s + chat_s) * 1000, 2),
              "retriever": RetrievalSettings().mode}
    result["search_over_floor"] = round(result["search_p50_ms"] / result["floor_p50_ms"], 3)
    result["ask_over_floor"] = round(result["ask_p50_ms"] / result["floor_p50_ms"], 3)
    result["hybrid_ask_over_floor"] = round(result["hybrid_ask_p50_ms"] / result["floor_p50_ms"], 3)
    return result


def main() -> None:
    result = measure(rounds=1, smoke=True) if "--smoke" in sys.argv else measure()
    print(f"floor (encode + FAISS search) p50: {result['floor_p50_ms']:.2f} ms")
    print(f"search ({result['retriever']}, cap, highlights) p50: {result['search_p50_ms']:.2f} ms")
    print(f"search / floor: {result['search_over_floor']:.3f}  (target <= 1.25 with the learned ranker)")
    print(f"ask (search plus the answer decision and its reader) p50: {result['ask_p50_ms']:.2f} ms  (target <= 150 ms)")
    print(f"ask / floor: {result['ask_over_floor']:.3f}")
    print(f"opinion ask p50: {result['opinion_ask_p50_ms']:.2f} ms; chat ask p50: {result['chat_ask_p50_ms']:.2f} ms; "
          f"all asks p50: {result['all_ask_p50_ms']:.2f} ms  (target <= 150 ms)")
    print(f"ask with --retriever hybrid / floor: {result['hybrid_ask_over_floor']:.3f}")
    if "--json" in sys.argv:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
