"""Coalescing concurrent calls into one batched call: questions that arrive while the model is busy
are encoded together in its next forward pass.

One question never waits for company: the first caller runs at once, alone. Callers that arrive while
a batch is running queue up, and the next of them to find the model free takes everything queued (up
to `max_batch`) and runs it as one batch. On 2 CPU cores one MiniLM forward pass of 8 short questions
costs about 2-3 single ones, so under load each question costs far less, and with no load nothing
changes. Errors reach only the callers whose batch raised them.

Hand-written because the libraries at hand batch elsewhere: Gradio's `batch=True` batches a whole
event, so one bad question (an empty one, say) would fail every request sharing its batch, and it
would not cover the chat events or the CLI.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Call(Generic[T]):
    __slots__ = ("item", "result", "error", "done")

    def __init__(self, item: T):
        self.item = item
        self.result = None
        self.error: BaseException | None = None
        self.done = False


class Coalescer(Generic[T, R]):
    """`run(item)` returns `batch_fn([..., item, ...])[its index]`, sharing batch_fn calls between threads.

    batch_fn takes a list of items and returns a sequence of results in the same order. At most one
    batch_fn call runs at a time; a caller's item is in exactly one call.
    """

    def __init__(self, batch_fn: Callable[[list[T]], Sequence[R]], max_batch: int = 32):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._batch_fn = batch_fn
        self._max_batch = max_batch
        self._changed = threading.Condition()
        self._queue: list[_Call[T]] = []
        self._running = False
        self.batches = 0  # calls of batch_fn so far (for tests and benchmarks)

    def run(self, item: T) -> R:
        call = _Call(item)
        with self._changed:
            self._queue.append(call)
            while not call.done:
                if self._running:
                    self._changed.wait()
                    continue
                self._running = True
                self.batches += 1
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                self._changed.release()
                try:
                    self._run_batch(batch)
                finally:
                    self._changed.acquire()
                    self._running = False
                    self._changed.notify_all()
        if call.error is not None:
            raise call.error
        return call.result

    def _run_batch(self, batch: list[_Call[T]]) -> None:
        try:
            results = self._batch_fn([c.item for c in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(batch)} items")
            for call, result in zip(batch, results):
                call.result = result
        except BaseException as exc:  # handed to each waiting caller, raised in its own thread
            for call in batch:
                call.error = exc
        for call in batch:
            call.done = True
