"""Gradio app for film-review Q&A. Importing this file is cheap: `demo` is built, nothing is loaded.

`python app.py` (or `make run`) loads or builds the index, then serves. The environment is read here,
through qa/config.py, which lists every variable (QA_CORPUS_DIR, QA_INDEX_DIR, QA_MODEL, QA_PRECISION,
QA_AUTH, GRADIO_SERVER_PORT, ...).
"""

import os

from qa.embed import configure_offline

configure_offline()  # before gradio is imported: no analytics, no hub calls

from qa.config import AppConfig  # noqa: E402
from qa.observe import Observer, add_routes  # noqa: E402
from qa.serving import EngineLoader  # noqa: E402
from qa.sessions import SessionSweeper  # noqa: E402
from qa.ui import CSS, build_demo  # noqa: E402

CONFIG = AppConfig.from_env()
SETTINGS = CONFIG.settings
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")  # the Evaluate tab's small sets: skip ranx's 15 s compile
loader = EngineLoader(SETTINGS, reload_seconds=CONFIG.reload_seconds)
observer = Observer(loader, log_questions=CONFIG.log_questions)
sweeper = SessionSweeper(idle_seconds=CONFIG.session_idle_seconds)
demo = build_demo(loader, evals_dir=CONFIG.evals_dir, cache_dir=CONFIG.eval_cache, noop_endpoint=CONFIG.noop_endpoint,
                  ask_concurrency=CONFIG.ask_concurrency, outputs_root=CONFIG.eval_outputs_limit,
                  download_ttl=CONFIG.download_ttl, labels_dir=CONFIG.labels_dir, feedback_dir=CONFIG.feedback_dir,
                  observer=observer, sweeper=sweeper,
                  reviews_tab=CONFIG.reviews_editable)


def main() -> None:
    import logging
    import sys

    from qa.errors import QAError

    # The app's own notices (index reloads, refused indexes) on stderr; other libraries stay quiet.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger("qa").addHandler(handler)
    logging.getLogger("qa").setLevel(logging.INFO)
    # One JSON line per request (qa/observe.py) on stdout, where a log shipper reads it.
    requests = logging.StreamHandler(sys.stdout)
    requests.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger("qa.requests").addHandler(requests)
    logging.getLogger("qa.requests").propagate = False

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
    # `kill -HUP <pid>`: update the index from the corpus folder in the background, then serve it.
    import signal
    import threading

    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=loader.rebuild, daemon=True).start())
    app, _, _ = demo.queue(default_concurrency_limit=4).launch(
        server_name=CONFIG.server_name,
        server_port=CONFIG.server_port,
        ssr_mode=False,
        show_error=False,
        css=CSS,
        auth=CONFIG.auth,
        prevent_thread_lock=True,
        state_session_capacity=CONFIG.max_sessions,
    )
    add_routes(app, observer)  # GET /healthz and /metrics, outside auth: they hold no review text or question
    sweeper.start(demo.state_holder)  # lets go of idle sessions' state (qa/sessions.py)
    observer.watch_sessions(demo.state_holder, sweeper)
    demo.block_thread()


if __name__ == "__main__":
    main()
