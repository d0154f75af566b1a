"""Shared fixtures: the real model and the seed index are built once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from qa.embed import configure_offline  # light: the model loads on first use

configure_offline()  # the app's own offline settings, before gradio or the model is imported
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")  # as the CLI does for small eval sets: no 15 s compile

ROOT = Path(__file__).resolve().parent.parent
SEED_CORPUS = ROOT / "corpus"
SEED_002 = SEED_CORPUS / "escape-2024" / "002_03b15f6e9896f6a9.txt"
ARTIFACTS = ROOT / "test-artifacts"
MODEL_FIXTURES = {"embedder", "seed_index", "engine", "app_server", "xss_server"}
BROWSER_FIXTURES = {"browser"}


def pytest_collection_modifyitems(config, items):
    """`slow`: the test uses the real model (through a fixture, or a marked CLI subprocess); `browser`: it
    drives Chromium. `make test-fast` runs the rest."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & MODEL_FIXTURES:
            item.add_marker(pytest.mark.slow)
        if used & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def embedder():
    from qa.embed import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, embedder):
    """(corpus dir, index dir) of the seed corpus, built once."""
    from qa.build import open_index

    folder = tmp_path_factory.mktemp("seed") / "index"
    open_index(SEED_CORPUS, folder, embedder, progress=False)
    return SEED_CORPUS, folder


@pytest.fixture(scope="session")
def engine(seed_index, embedder):
    from qa.engine import Engine, Settings

    corpus, folder = seed_index
    return Engine.open(Settings(corpus_dir=corpus, index_dir=folder), embedder=embedder, progress=False)


@pytest.fixture
def corpus_copy(tmp_path):
    """A writable copy of the seed corpus."""
    target = tmp_path / "corpus"
    shutil.copytree(SEED_CORPUS, target)
    return target


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`python app.py` in a subprocess on a free port on 127.0.0.1."""

    def __init__(self, corpus: Path, index: Path, log_path: Path, extra_env: dict | None = None):
        import subprocess

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.corpus, self.index = corpus, index
        env = {**os.environ, "GRADIO_SERVER_PORT": str(self.port), "GRADIO_SERVER_NAME": "127.0.0.1",
               "QA_CORPUS_DIR": str(corpus), "QA_INDEX_DIR": str(index), "PYTHONUNBUFFERED": "1",
               **(extra_env or {})}
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen([os.sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        self._wait()

    def _wait(self, timeout: float = 180) -> None:
        import time
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"app.py did not answer within {timeout}s: {self.log_path.read_text()[-2000:]}")

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except Exception:
            self.proc.kill()
        self._log.close()


@pytest.fixture(scope="session")
def app_server(seed_index, tmp_path_factory):
    corpus, index = seed_index
    labels = tmp_path_factory.mktemp("labels")  # the Label tab's sets, never in the repository
    server = AppServer(corpus, index, tmp_path_factory.mktemp("app") / "app.log",
                       extra_env={"QA_LABELS_DIR": str(labels), "QA_FEEDBACK_DIR": str(labels.parent / "feedback")})
    server.labels_dir, server.feedback_dir = labels, labels.parent / "feedback"
    yield server
    server.stop()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        message = "Chromium is missing: install it with `sudo apt-get install chromium` (make test does this as root)."
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
