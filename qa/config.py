"""Settings from the environment, read in one place for the two edges (app.py and cli.py).

Nothing deeper reads the environment: the engine, store and retriever take settings as arguments.

    QA_CORPUS_DIR   review folder                        (default corpus/)
    QA_INDEX_DIR    index folder                         (default index/)
    QA_MODEL        sentence-transformers name or folder (default: the packaged all-MiniLM-L6-v2)
    QA_PRECISION    auto, fp32 or bf16                   (default auto)
    QA_QUERY_CACHE  questions whose vectors are cached   (default 1024)
    QA_EVALS_DIR    datasets the Evaluate tab offers     (default evals/)
    QA_EVAL_CACHE   where dataset corpora are indexed    (default .cache/evals)
    QA_EVAL_OUTPUTS the only folder the Evaluate tab loads `qa eval --out` folders from once the app is
                    shared (QA_AUTH set or a non-loopback address)   (default eval-out)
    QA_ASK_CONCURRENCY  queued `ask` calls run at once   (default 8)
    QA_RELOAD_SECONDS   how often the app looks for a newer index, 0 never (default 2)
    QA_DOWNLOAD_TTL     seconds a conversation download stays served          (default 3600)
    QA_LABELS_DIR   where the Label tab saves label sets (default labels/)
    QA_FEEDBACK_DIR where readers' votes are saved        (default feedback/ beside the index folder)
    QA_BENCH_NOOP   1 adds a do-nothing `noop` endpoint for bench/run.py
    QA_AUTH         user:password turns on basic auth
    QA_LOG_QUESTIONS  1 puts each question in its request log line (off: questions may be private)
    QA_SESSION_IDLE_SECONDS  a session with no open page is let go after this long unused (default 300)
    QA_MAX_SESSIONS sessions kept at most, the oldest let go first (default 2000)
    GRADIO_SERVER_NAME / GRADIO_SERVER_PORT             (default 127.0.0.1:7860)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .engine import Settings

EVALS_DIR = Path("evals")
EVAL_CACHE = Path(".cache/evals")
EVAL_OUTPUTS = Path("eval-out")
LABELS_DIR = Path("labels")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def default_feedback_dir(settings: Settings | None) -> Path:
    """`feedback/` beside the index folder (not inside it: a build swaps the index folder whole)."""
    return Path(settings.index_dir if settings is not None else Settings().index_dir).parent / "feedback"


def settings_from_env(environ: Mapping[str, str] = os.environ) -> Settings:
    """The engine's Settings, each field from its variable when set, else the dataclass default."""
    default = Settings()
    return Settings(
        corpus_dir=Path(environ.get("QA_CORPUS_DIR") or default.corpus_dir),
        index_dir=Path(environ.get("QA_INDEX_DIR") or default.index_dir),
        model=environ.get("QA_MODEL") or default.model,
        query_cache=int(environ.get("QA_QUERY_CACHE") or default.query_cache),
        precision=environ.get("QA_PRECISION") or default.precision,
    )


@dataclass(frozen=True)
class AppConfig:
    """What app.py serves with: the engine settings and the web app's own."""

    settings: Settings = field(default_factory=Settings)
    evals_dir: Path = EVALS_DIR
    eval_cache: Path = EVAL_CACHE
    eval_outputs: Path = EVAL_OUTPUTS
    ask_concurrency: int = 8
    reload_seconds: float = 2.0
    download_ttl: int = 3600
    labels_dir: Path = LABELS_DIR
    feedback_dir: Path | None = None  # None: default_feedback_dir(settings)
    noop_endpoint: bool = False
    auth: tuple[str, str] | None = None
    server_name: str = "127.0.0.1"
    server_port: int = 7860
    log_questions: bool = False
    session_idle_seconds: float = 300.0
    max_sessions: int = 2000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "AppConfig":
        auth = environ.get("QA_AUTH")
        return cls(settings=settings_from_env(environ),
                   evals_dir=Path(environ.get("QA_EVALS_DIR") or EVALS_DIR),
                   eval_cache=Path(environ.get("QA_EVAL_CACHE") or EVAL_CACHE),
                   eval_outputs=Path(environ.get("QA_EVAL_OUTPUTS") or EVAL_OUTPUTS),
                   ask_concurrency=int(environ.get("QA_ASK_CONCURRENCY") or cls.ask_concurrency),
                   reload_seconds=float(environ.get("QA_RELOAD_SECONDS") or cls.reload_seconds),
                   download_ttl=int(environ.get("QA_DOWNLOAD_TTL") or cls.download_ttl),
                   labels_dir=Path(environ.get("QA_LABELS_DIR") or LABELS_DIR),
                   feedback_dir=Path(environ["QA_FEEDBACK_DIR"]) if environ.get("QA_FEEDBACK_DIR") else None,
                   noop_endpoint=environ.get("QA_BENCH_NOOP") == "1",
                   auth=tuple(auth.split(":", 1)) if auth and ":" in auth else None,
                   server_name=environ.get("GRADIO_SERVER_NAME") or cls.server_name,
                   server_port=int(environ.get("GRADIO_SERVER_PORT") or cls.server_port),
                   log_questions=environ.get("QA_LOG_QUESTIONS") == "1",
                   session_idle_seconds=float(environ.get("QA_SESSION_IDLE_SECONDS") or cls.session_idle_seconds),
                   max_sessions=int(environ.get("QA_MAX_SESSIONS") or cls.max_sessions))

    @property
    def reviews_editable(self) -> bool:
        """The Reviews tab (adding and deleting reviews) is offered: to signed-in users, or on this machine."""
        return self.auth is not None or self.server_name in LOOPBACK

    @property
    def shared(self) -> bool:
        """Others can reach the app: it asks for a password or listens beyond this machine."""
        return self.auth is not None or self.server_name not in LOOPBACK

    @property
    def eval_outputs_limit(self) -> Path | None:
        """Where the Evaluate tab may load eval outputs from: anywhere locally, one folder when shared."""
        return self.eval_outputs if self.shared else None
