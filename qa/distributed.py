"""Index builds on Ray: the embedding step runs on Ray Data, the rest of the build stays as it is.

`qa index --engine ray` reads the corpus, plans the build and writes the index exactly as a local build
does (same passages, same manifest, same crash-safe temp folder); only the passages to embed go through
`ray.data.from_items(...).map_batches(EmbedWorker, concurrency=workers)`, where each worker is an actor
that loads the model once. It joins the cluster named by RAY_ADDRESS (Ray's own variable; a cluster with
token authentication also needs Ray's RAY_AUTH_MODE=token and RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH) or,
without it, always starts its own local runtime with `workers` CPUs (`address="local"`), whatever other
cluster, or stale "current cluster" file, the machine has. Ray restarts a worker that dies and retries its batches, so a killed
worker costs time, not the build. Ray is optional: without it, one sentence says how to install it.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Iterator

import numpy as np

from .errors import QAError

RAY_HINT = "pip install 'ray[data]'"
AUTH_HINT = ("the cluster asks for a token: give the build Ray's RAY_AUTH_MODE=token and RAY_AUTH_TOKEN "
             "(or RAY_AUTH_TOKEN_PATH), the token `ray get-auth-token` prints on the head node")
RAY_BATCH = 64  # passages per Ray task: small enough that two workers share even a small corpus
OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM", "NUMBA_DISABLE_JIT")


class RayUnavailable(QAError):
    """Ray is not installed, or no cluster could be joined or started."""


class EmbedWorker:
    """A Ray Data actor: loads the model once, then embeds batches of passages. The model and precision
    are class attributes of a subclass `ray_embed` makes per build, so no constructor argument sits in
    Ray's object store (an actor that Ray restarts must be able to rebuild itself)."""

    model: str | None = None
    precision: str = "fp32"

    def __init__(self):
        from .embed import Embedder

        self.embedder = Embedder(self.model, query_cache_size=0, precision=self.precision)

    def __call__(self, batch: dict) -> dict:
        spans = [[tuple(span) for span in json.loads(s)] for s in batch["spans"]]
        vectors, sentences = self.embedder.encode_passages(list(batch["text"]), spans, sort_by_length=True)
        return {"position": batch["position"], "vector": np.asarray(vectors, dtype=np.float32),
                "sentences": np.array([np.asarray(s, dtype=np.float16).tobytes() for s in sentences], dtype=object),
                "count": np.array([len(s) for s in sentences], dtype=np.int64)}


def preflight() -> None:
    """Fail before the model loads: Ray missing, or RAY_ADDRESS naming a cluster that does not answer."""
    require_ray()
    address = os.environ.get("RAY_ADDRESS")
    if address and not _reachable(address):
        raise RayUnavailable(f"Ray could not join the cluster at RAY_ADDRESS={address}: nothing answers there.")


def require_ray():
    """The ray module, or one sentence with the install hint."""
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable(f"--engine ray needs Ray, which is not installed: {RAY_HINT}") from exc
    return ray


def _refused_for_token(exc: BaseException) -> bool:
    """Whether Ray refused to join for want of the cluster's token (its AuthenticationError, or the
    InvalidAuthToken / UNAUTHENTICATED status its RPCs raise)."""
    if type(exc).__name__ == "AuthenticationError":
        return True
    text = f"{type(exc).__name__} {exc}".lower()
    return any(sign in text for sign in ("invalidauthtoken", "invalid auth token", "unauthenticated",
                                         "authentication token"))


def _reachable(address: str, timeout: float = 3.0) -> bool:
    """Whether a `host:port` (or `ray://host:port`) cluster address accepts a connection; other forms
    ("auto") are left to Ray. Ray itself keeps retrying an address that is down for minutes."""
    import socket

    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return True
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def ray_embed(texts: list[str], spans: list[list[tuple[int, int]]], positions: list[int], model: str | None,
              precision: str, dim: int, workers: int = 2) -> Iterator[tuple[np.ndarray, np.ndarray, list[np.ndarray]]]:
    """Embed passages on Ray; yields (positions, vectors, sentence vectors per passage) in input order."""
    require_ray()
    import ray
    import ray.data  # noqa: F401  (configures its loggers; quieten them after)

    for name in ("ray", "ray.data", "ray.data._internal.execution.streaming_executor"):
        logging.getLogger(name).setLevel(logging.ERROR)  # Ray Data logs every stage; the build has its own bar
    started_here = False
    if not ray.is_initialized():
        preflight()
        env = {name: os.environ[name] for name in OFFLINE_ENV if name in os.environ}
        address = os.environ.get("RAY_ADDRESS")
        try:
            # "local": a new runtime of our own, never a cluster found through Ray's current-cluster file.
            ray.init(address=address or "local", num_cpus=None if address else workers,
                     include_dashboard=False, log_to_driver=False, configure_logging=False,
                     runtime_env={"env_vars": env})
        except Exception as exc:  # any failure to join or start a cluster becomes one sentence
            where = f"the cluster at RAY_ADDRESS={address}" if address else "a local cluster"
            if _refused_for_token(exc):
                raise RayUnavailable(f"Ray refused to let this build join {where}: {AUTH_HINT}.") from exc
            raise RayUnavailable(f"Ray could not start or join {where} ({exc.__class__.__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}).") from exc
        started_here = True
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        rows = [{"position": p, "text": t, "spans": json.dumps(s)} for p, t, s in zip(positions, texts, spans)]
        per_task = max(1, min(RAY_BATCH, -(-len(rows) // workers)))  # every worker gets work, even on a small corpus
        dataset = ray.data.from_items(rows, override_num_blocks=-(-len(rows) // per_task))
        worker = type("EmbedWorker", (EmbedWorker,), {"model": model, "precision": precision})
        # Ray Data's actors restart when they die and their batches are retried (its defaults).
        embedded = dataset.map_batches(worker, batch_size=per_task, concurrency=workers, num_cpus=1)
        for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
            sentences = [np.frombuffer(raw, dtype=np.float16).reshape(int(n), dim)
                         for raw, n in zip(batch["sentences"], batch["count"])]
            yield np.asarray(batch["position"], dtype=np.int64), np.asarray(batch["vector"], dtype=np.float32), sentences
    finally:
        if started_here:
            ray.shutdown()
