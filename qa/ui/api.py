"""The app's programmatic endpoint: POST /gradio_api/run/ask answers a question with the same fields as
`qa ask --json` (and, for benchmarks only, a do-nothing `noop`)."""

from __future__ import annotations

import time

from ..answer import answer_json
from ..errors import QAError
from ..retrieve import Filters
from ..serving import EngineLoader

def api_ask(question: str, loader: EngineLoader, film: str = "", k: int = 5,
            history: list[str] | None = None) -> dict:
    engine = loader.get()
    answer = engine.ask(question, history or (), Filters(film=film or None), engine.retrieval_settings(k=int(k)))
    return answer_json(answer, engine.reviews)


def add_endpoints(loader: EngineLoader, ask_concurrency: int = 8, noop_endpoint: bool = False, observer=None) -> None:
    """The endpoints, inside an open `gr.Blocks` but outside `gr.Tabs` (a gr.Api inside it is taken for a
    tab: a duplicate tab button)."""
    import gradio as gr

    def ask(question: str, film: str = "", k: int = 5, history: list[str] | None = None) -> dict:
        """Answer a question: the same fields as `qa ask --json`."""
        started = time.perf_counter()
        try:
            answer = api_ask(question, loader, film, k, history)
        except QAError as exc:
            if observer is not None:
                observer.record("ask", time.perf_counter() - started, "refused", None, question)
            raise gr.Error(str(exc), print_exception=False) from exc
        except Exception:
            if observer is not None:
                observer.record("ask", time.perf_counter() - started, "error", None, question)
            raise
        if observer is not None:
            observer.record("ask", time.perf_counter() - started, "ok", answer, question)
        return answer

    # queue=False: plain HTTP clients get one request per call (POST /gradio_api/run/ask) instead of
    # the queue's join + event stream; gradio_client still comes through the queue. Questions that
    # run at the same time share the model's forward passes (qa/batching.py).
    gr.api(ask, api_name="ask", queue=False, concurrency_limit=ask_concurrency, concurrency_id="model")
    if noop_endpoint:
        def noop(question: str, film: str = "", k: int = 5, history: list[str] | None = None) -> dict:
            """Does nothing: the server's own cost per call, for benchmarks."""
            return {}

        gr.api(noop, api_name="noop", queue=False)
