"""The engine a server shares between users, swapped for a newer index without a restart.

A build (`qa index`, here or in another process) commits an index by renaming a finished folder into
place, manifest last (qa/build.py), so a changed `manifest.json` means a new commit, as a search engine
reopens its reader when a new commit lands. `EngineLoader` polls the manifest's content hash every
`reload_seconds` on a daemon thread; on a change it opens the new index in the background with the same
model (`Engine.reopen`) and swaps it in under a lock. A request holds the engine it got from `get()`, so
requests in flight finish on the old index, which is freed when the last of them lets go. A new index
that cannot be opened (half-written, corrupt, another model) is refused with one log line and the old
one keeps serving; it is tried again when the manifest changes again. `rebuild` updates the index from
the served corpus folder in-process (app.py runs it on SIGHUP), then swaps it in the same way.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Callable

from .engine import Engine, Settings, update_index
from .errors import QAError
from .store import MANIFEST

log = logging.getLogger(__name__)


def manifest_digest(index_dir: Path) -> str | None:
    """sha256 of the index's manifest, or None while there is none (between a swap's two renames)."""
    try:
        return hashlib.sha256((Path(index_dir) / MANIFEST).read_bytes()).hexdigest()
    except OSError:
        return None


class EngineLoader:
    """Opens the engine once, on first use (or at start-up), shares it read-only between users, and,
    when `reload_seconds` > 0, swaps in each newer index committed to its folder."""

    def __init__(self, settings: Settings, opener: Callable[[Settings], Engine] | None = None,
                 reload_seconds: float = 0.0):
        self.settings = settings
        self._opener = opener or (lambda s: Engine.open(s, progress=False))
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._reload_seconds = reload_seconds
        self._digest: str | None = None  # of the manifest the engine serves, or last refused
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.reloads = 0
        self.refusals = 0  # newer indexes refused since start
        self.failure: str | None = None  # why the first load failed, for /healthz
        self._building = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._engine is not None

    @property
    def current(self) -> Engine | None:
        """The engine now served, or None before the first load; never loads anything."""
        return self._engine

    def get(self) -> Engine:
        with self._lock:
            if self._engine is None:
                try:
                    self._engine = self._opener(self.settings)
                except Exception as exc:
                    self.failure = str(exc) or exc.__class__.__name__
                    raise
                self.failure = None
                self._digest = manifest_digest(self._engine.settings.index_dir)
                if self._reload_seconds > 0 and self._watcher is None:
                    self._watcher = threading.Thread(target=self._watch, name="index-reload", daemon=True)
                    self._watcher.start()
            return self._engine

    def check_for_update(self) -> str:
        """One poll: "unchanged", "reloaded", or "refused: <the one-sentence reason>"."""
        current = self._engine
        if current is None:
            return "unchanged"
        digest = manifest_digest(current.settings.index_dir)
        if digest is None or digest == self._digest:
            return "unchanged"
        try:
            fresh = current.reopen()  # slow part, outside the lock: requests keep being served
        except QAError as exc:
            if manifest_digest(current.settings.index_dir) == digest:  # not a build racing the read
                self._digest = digest
                self.refusals += 1
                log.warning("A new index at %s was refused; still serving the previous one: %s",
                            current.settings.index_dir, exc)
            return f"refused: {exc}"
        with self._lock:
            self._engine = fresh
            self._digest = digest
            self.reloads += 1
        log.info("Reloaded the index at %s: %d reviews, %d passages.", current.settings.index_dir,
                    len(fresh.reviews), len(fresh.passages))
        return "reloaded"

    def rebuild(self, wait: bool = False, progress: bool = False) -> str:
        """Update the index from the served corpus folder with the loaded model (as `qa index` would,
        embedding only changed files), then swap it in; one build at a time. Returns the outcome of
        `check_for_update`, or "busy" when a rebuild is already running and `wait` is false. With `wait`
        (the Reviews tab), a call made during a build runs after it, so files written while the first
        build read the folder are indexed too: two uploads at once both land. `progress` shows tqdm bars
        (the tab's progress bar follows them)."""
        if not self._building.acquire(blocking=wait):
            return "busy"
        try:
            current = self.get()
            _, report = update_index(current.settings, current.embedder, progress=progress)
            log.info("Rebuilt from %s: %s", current.settings.corpus_dir, report.summary())
            return self.check_for_update()
        except QAError as exc:
            log.warning("The rebuild from %s failed; still serving the previous index: %s",
                        self.settings.corpus_dir, exc)
            return f"refused: {exc}"
        finally:
            self._building.release()

    def _watch(self) -> None:
        while not self._stop.wait(self._reload_seconds):
            try:
                self.check_for_update()
            except Exception:  # the watcher must outlive any surprise; the old index keeps serving
                log.exception("The index reload check failed; still serving the previous index.")

    def stop(self) -> None:
        self._stop.set()
