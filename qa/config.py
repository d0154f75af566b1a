"""Settings from the environment, read in one place for the two edges (app.py and cli.py).

Nothing deeper reads the environment: the engine, store and retriever take settings as arguments.

    QA_CORPUS_DIR   review folder                        (default corpus/)
    QA_INDEX_DIR    index folder                         (default index/)
    QA_MODEL        sentence-transformers name or folder (default: the packaged all-MiniLM-L6-v2)
    QA_PRECISION    auto, fp32 or bf16                   (default auto)
    QA_QUERY_CACHE  questions whose vectors are cached   (default 1024)
    QA_EVALS_DIR    datasets the Evaluate tab offers     (default evals/)
    QA_EVAL_CACHE   where dataset corpora are indexed    (default .cache/evals)
    QA_ASK_CONCURRENCY  queued `ask` calls run at once   (default 8)
    QA_BENCH_NOOP   1 adds a do-nothing `noop` endpoint for bench/run.py
    QA_AUTH         user:password turns on basic auth
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
    ask_concurrency: int = 8
    noop_endpoint: bool = False
    auth: tuple[str, str] | None = None
    server_name: str = "127.0.0.1"
    server_port: int = 7860

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "AppConfig":
        auth = environ.get("QA_AUTH")
        return cls(settings=settings_from_env(environ),
                   evals_dir=Path(environ.get("QA_EVALS_DIR") or EVALS_DIR),
                   eval_cache=Path(environ.get("QA_EVAL_CACHE") or EVAL_CACHE),
                   ask_concurrency=int(environ.get("QA_ASK_CONCURRENCY") or cls.ask_concurrency),
                   noop_endpoint=environ.get("QA_BENCH_NOOP") == "1",
                   auth=tuple(auth.split(":", 1)) if auth and ":" in auth else None,
                   server_name=environ.get("GRADIO_SERVER_NAME") or cls.server_name,
                   server_port=int(environ.get("GRADIO_SERVER_PORT") or cls.server_port))
