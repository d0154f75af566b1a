"""Gradio app for film-review Q&A. Importing this file is cheap: `demo` is built, nothing is loaded.

`python app.py` (or `make run`) loads or builds the index, then serves. Environment, read only here:
QA_CORPUS_DIR, QA_INDEX_DIR, QA_MODEL, QA_PRECISION (auto, fp32 or bf16; default auto), QA_EVALS_DIR (default evals/); GRADIO_SERVER_NAME (default 127.0.0.1) and GRADIO_SERVER_PORT
(default 7860); QA_AUTH=user:password turns on basic auth for sharing on a network; QA_QUERY_CACHE
(questions whose vectors are cached, default 1024); QA_ASK_CONCURRENCY (queued `ask` calls run at once,
default 8); QA_BENCH_NOOP=1 adds a do-nothing `noop` endpoint
that bench/run.py uses as the server's own floor.
"""

import os
from pathlib import Path

from qa.embed import configure_offline

configure_offline()  # before gradio is imported: no analytics, no hub calls

from qa.engine import Settings  # noqa: E402
from qa.ui import CSS, EngineLoader, build_demo  # noqa: E402

SETTINGS = Settings(
    corpus_dir=Path(os.environ.get("QA_CORPUS_DIR", "corpus")),
    index_dir=Path(os.environ.get("QA_INDEX_DIR", "index")),
    model=os.environ.get("QA_MODEL") or None,
    query_cache=int(os.environ.get("QA_QUERY_CACHE", "1024")),
    precision=os.environ.get("QA_PRECISION") or "auto",
)
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")  # the Evaluate tab's small sets: skip ranx's 15 s compile
loader = EngineLoader(SETTINGS)
demo = build_demo(loader, evals_dir=Path(os.environ.get("QA_EVALS_DIR", "evals")),
                  cache_dir=Path(os.environ.get("QA_EVAL_CACHE", ".cache/evals")),
                  noop_endpoint=os.environ.get("QA_BENCH_NOOP") == "1",
                  ask_concurrency=int(os.environ.get("QA_ASK_CONCURRENCY", "8")))


def main() -> None:
    import sys

    from qa.errors import QAError

    print(f"Loading the index from {SETTINGS.index_dir} (building it from {SETTINGS.corpus_dir} if needed)…",
          flush=True)
    try:
        engine = loader.get()
    except (QAError, ValueError) as exc:  # ValueError: a bad setting such as QA_PRECISION
        sys.exit(f"error: {exc}")
    print(engine.report.summary(), flush=True)
    print(f"precision: {engine.embedder.precision} ({engine.precision_note})", flush=True)
    for warning in engine.report.warnings:
        print(f"warning: {warning}", flush=True)
    auth = os.environ.get("QA_AUTH")
    demo.queue(default_concurrency_limit=4).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        ssr_mode=False,
        show_error=False,
        css=CSS,
        auth=tuple(auth.split(":", 1)) if auth and ":" in auth else None,
    )


if __name__ == "__main__":
    main()
