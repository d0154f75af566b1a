"""Per-session state a long-running server lets go of.

Gradio keeps a `SessionState` per session hash (its `state_holder`): a copy of every component's config
(about 140 KB for this app, measured with tracemalloc) plus the session's `gr.State` values. It drops one
only when more than `state_session_capacity` (10,000 by default) exist, and a closed page's state lingers
an hour; so every new reader or API client adds 140 KB that stays, which was the soak's memory growth
(about 65 new sessions a minute, 9 MB a minute).

`SessionSweeper` applies two rules, every `every_seconds` on a daemon thread:
- a session whose page is open (a `load` event came and no `unload` yet) is kept, however long it idles;
- any other session (an API client, a closed page) is dropped once unused for `idle_seconds`.
The capacity stays as a backstop (`QA_MAX_SESSIONS`, passed to `launch`). After each sweep the freed heap
is handed back to the OS (`release_freed_heap`), so RSS falls back after a transient peak.
"""

from __future__ import annotations

import ctypes
import datetime
import threading
import logging
from functools import lru_cache

log = logging.getLogger(__name__)


class SessionSweeper:
    def __init__(self, idle_seconds: float = 300.0, every_seconds: float = 30.0):
        self.idle_seconds = idle_seconds
        self.every_seconds = every_seconds
        self.open_pages: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.dropped = 0  # sessions let go since start

    def page_opened(self, session_hash: str | None) -> None:
        if session_hash:
            with self._lock:
                self.open_pages.add(session_hash)

    def page_closed(self, session_hash: str | None) -> None:
        with self._lock:
            self.open_pages.discard(session_hash)

    def sweep(self, holder, now: datetime.datetime | None = None) -> int:
        """Drop from Gradio's `holder` every session not on an open page and unused for `idle_seconds`;
        returns how many were dropped."""
        now = now or datetime.datetime.now()
        with self._lock:
            keep = set(self.open_pages)
        idle = datetime.timedelta(seconds=self.idle_seconds)
        with holder.lock:
            stale = [sid for sid, used in list(holder.time_last_used.items())
                     if sid not in keep and now - used > idle]
            for sid in stale:
                holder.session_data.pop(sid, None)
                holder.time_last_used.pop(sid, None)
        self.dropped += len(stale)
        return len(stale)

    def attach(self, demo) -> None:
        """Track open pages through the app's own page events (inside `gr.Blocks`)."""
        import gradio as gr

        def opened(request: gr.Request):
            self.page_opened(request.session_hash)

        def closed(request: gr.Request):
            self.page_closed(request.session_hash)

        # Gradio finds the request parameter by its type; postponed annotations hide it as a string.
        opened.__annotations__["request"] = closed.__annotations__["request"] = gr.Request
        demo.load(opened, None, None, api_visibility="private")
        demo.unload(closed)

    def start(self, holder) -> None:
        def run():
            while not self._stop.wait(self.every_seconds):
                try:
                    self.sweep(holder)
                    release_freed_heap()
                except Exception:  # the sweeper must outlive any surprise; the next round tries again
                    log.exception("The session sweep failed; trying again in %s s.", self.every_seconds)

        threading.Thread(target=run, name="session-sweeper", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()


@lru_cache(maxsize=1)
def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to hand back this way
        return None


def release_freed_heap() -> None:
    """Hand the heap pages freed since the last call back to the OS (glibc's `malloc_trim`). glibc keeps
    freed pages for reuse, so a transient peak (an index rebuilt in-process, an old index let go after
    a swap) otherwise stays in RSS for good; a no-op where libc is not glibc."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
