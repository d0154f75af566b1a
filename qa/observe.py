"""What an operator watches a long-running server by: health, metrics, one log line per request.

- `GET /healthz`: 200 with the index version (its manifest's build time), the model and the counts when
  the server can answer, 503 with the reason while it cannot (no index loaded yet, or it failed to load).
- `GET /metrics`: Prometheus' text format from the kept client library (`prometheus_client`), on a
  registry of our own: requests by endpoint and outcome (`qa_requests_total`), whole-request latency
  per endpoint (`qa_request_seconds`, a histogram; the Label tab's "search" is the retrieval alone),
  replies by kind and whether they answered (`qa_replies_total`), index reloads and refused indexes
  (`qa_index_reloads_total`, `qa_index_refusals_total`), the passages and reviews served
  (`qa_passages`, `qa_reviews`), the sessions held and those with a page open (`qa_sessions`,
  `qa_open_pages`) and the process's RSS (`process_resident_memory_bytes`).
- One JSON log line per request on the `qa.requests` logger: time, endpoint, latency_ms, outcome,
  answered, kind, index version; the question only when `log_questions` is on (QA_LOG_QUESTIONS=1),
  since readers' questions may be private.
"""

from __future__ import annotations

import json
import logging
import time

log = logging.getLogger("qa.requests")
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Observer:
    """Metrics and request logging for one server process (see the module docstring)."""

    def __init__(self, loader=None, log_questions: bool = False):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

        self.loader = loader
        self.log_questions = log_questions
        self.registry = CollectorRegistry()
        self.requests = Counter("qa_requests", "Requests by endpoint and outcome.", ["endpoint", "outcome"],
                                registry=self.registry)
        self.latency = Histogram("qa_request_seconds", "Whole-request latency by endpoint.", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.replies = Counter("qa_replies", "Replies by question kind and whether they answered.",
                               ["kind", "answered"], registry=self.registry)
        Gauge("qa_index_reloads", "Newer indexes swapped in since start.", registry=self.registry
              ).set_function(lambda: getattr(self.loader, "reloads", 0))
        Gauge("qa_index_refusals", "Newer indexes refused (corrupt, half-written or mismatched) since start.",
              registry=self.registry).set_function(lambda: getattr(self.loader, "refusals", 0))
        Gauge("qa_passages", "Passages in the index served.", registry=self.registry
              ).set_function(lambda: self._count("passages"))
        Gauge("qa_reviews", "Reviews in the index served.", registry=self.registry
              ).set_function(lambda: self._count("reviews"))
        ProcessCollector(registry=self.registry)
        self._sessions = None  # Gradio's state holder, once the server runs (watch_sessions)
        Gauge("qa_sessions", "Sessions whose state the server holds (qa/sessions.py lets idle ones go).",
              registry=self.registry).set_function(lambda: len(getattr(self._sessions, "session_data", ())))

        self._sweeper = None
        Gauge("qa_open_pages", "Sessions with the web page open (their state is kept while it is).",
              registry=self.registry).set_function(lambda: len(getattr(self._sweeper, "open_pages", ())))

    def watch_sessions(self, holder, sweeper=None) -> None:
        self._sessions, self._sweeper = holder, sweeper

    def _count(self, what: str) -> int:
        engine = getattr(self.loader, "current", None)
        return len(getattr(engine, what)) if engine is not None else 0

    def record(self, endpoint: str, seconds: float, outcome: str, answer: dict | None = None,
               question: str | None = None) -> None:
        """Count one finished request and write its log line. `answer` is the reply's JSON object
        (qa.answer.answer_json), or None when there was none (a refused question, an error)."""
        self.requests.labels(endpoint, outcome).inc()
        self.latency.labels(endpoint).observe(seconds)
        answered = None if answer is None else bool(answer.get("answered"))
        kind = None if answer is None else answer.get("kind", "fact")
        if answer is not None:
            self.replies.labels(kind, "yes" if answered else "no").inc()
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z", "endpoint": endpoint,
                "latency_ms": round(seconds * 1000, 1), "outcome": outcome, "answered": answered, "kind": kind,
                "index_version": self.index_version()}
        if self.log_questions and question is not None:
            line["question"] = question
        log.info(json.dumps(line, ensure_ascii=False))

    def index_version(self) -> str | None:
        engine = getattr(self.loader, "current", None)
        return None if engine is None else engine.index_facts()["built_at"]

    def metrics_text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def health(self) -> tuple[int, dict]:
        """(HTTP status, body): 200 with the index facts when an index is loaded, else 503 and why."""
        engine = getattr(self.loader, "current", None)
        if engine is None:
            why = getattr(self.loader, "failure", None) or "The index is still loading."
            return 503, {"status": "unavailable", "reason": why}
        return 200, {"status": "ok", **engine.index_facts()}


def add_routes(app, observer: Observer) -> None:
    """GET /healthz and /metrics on the server's FastAPI app, ahead of Gradio's own routes."""
    from fastapi.responses import JSONResponse, Response
    from fastapi.routing import APIRoute
    from prometheus_client import CONTENT_TYPE_LATEST

    async def healthz() -> JSONResponse:  # on the event loop: no wait for a worker thread under load
        status, body = observer.health()
        return JSONResponse(body, status_code=status)

    def metrics() -> Response:
        return Response(observer.metrics_text(), media_type=CONTENT_TYPE_LATEST)

    app.router.routes[0:0] = [APIRoute("/healthz", healthz, methods=["GET"]),
                              APIRoute("/metrics", metrics, methods=["GET"])]
