"""Soak: N clients for T minutes against the real app over HTTP, with an index update in the middle.

    python bench/soak.py [--clients 16] [--minutes 30] [--json]

Starts `python app.py` on a copy of the seed corpus (its own index folder, temp folder and Gradio cache,
hot reload every 2 s). Each client loops over: a good question on the `ask` endpoint, a follow-up with
history, bad input (empty, 5,000 characters, markup), and a chat turn through the page's own queue
(`/gradio_api/queue/join`, as the browser sends it), which writes a conversation file for download.
Halfway, a new review is added and `qa index` runs beside the server; the question only that review
answers is asked until it is answered.

Prints: requests, failures that were not bad input, p95 per minute (first full minute and last),
the server's RSS over time (minute 2, two minutes after the swap, the last minute), the seconds from the build's end
to the new review among the hits, and the files left in the app's temp folders. Targets (issue 26):
0 failures, RSS late/early <= 1.05, p95 late/early <= 1.3, temp files bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import QUESTIONS, ROOT

# a review that alone answers the new question ("Zyrtalia Quenby")
NEW_REVIEW = (ROOT / "tests" / "fixtures" / "late-review.md").read_text(encoding="utf-8")
NEW_QUESTION = "Who is Zyrtalia Quenby?"
BAD = ["", "   ", "x" * 5000, "<script>alert(1)</script>?", "[a](javascript:alert(1))"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def count_files(folder: Path) -> int:
    """Files under folder; os.walk skips what the app deletes while we count."""
    return sum(len(files) for _, _, files in os.walk(folder))


class Soak:
    def __init__(self, url: str):
        self.url = url
        self.lock = threading.Lock()
        self.samples: list[tuple[float, float, str]] = []  # (time, seconds, kind)
        self.failures: list[str] = []
        self.bad_refused = 0
        self.new_seen_at: float | None = None
        self.stop = threading.Event()
        self.chat_fn: int | None = None

    def find_chat_event(self, http) -> None:
        """The page's chat-turn event: the one whose outputs include the download button."""
        config = http.get(self.url + "config").json()
        by_elem = {c.get("props", {}).get("elem_id"): c["id"] for c in config["components"]}
        for i, dep in enumerate(config["dependencies"]):
            if by_elem.get("qa-download") in dep["outputs"] and by_elem.get("qa-question") in dep["inputs"]:
                self.chat_fn = dep.get("id", i)
                self.chat_inputs = len(dep["inputs"])
                return
        raise SystemExit("the chat event was not found in /config")

    def ask(self, http, question: str, history: list[str], session: str) -> dict:
        reply = http.post(self.url + "gradio_api/run/ask", json={"data": [question, "", 5, history],
                                                                 "session_hash": session})
        return {"status": reply.status_code, "body": reply.text}

    def chat(self, http, question: str, session: str) -> dict:
        """One chat turn through the queue, read to its end as the page reads it."""
        data = [question, [], "All films", "All reviews", 5] + [None] * (self.chat_inputs - 5)  # states: server-side
        joined = http.post(self.url + "gradio_api/queue/join",
                           json={"data": data, "fn_index": self.chat_fn, "session_hash": session,
                                 "event_data": None, "trigger_id": None})
        if joined.status_code != 200:
            return {"status": joined.status_code, "body": joined.text}
        with http.stream("GET", self.url + "gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("msg") == "process_completed":
                        ok = message.get("success", False)
                        return {"status": 200 if ok else 500, "body": json.dumps(message)[:300]}
        return {"status": 599, "body": "the queue stream ended without a result"}

    def client(self, n: int) -> None:
        import httpx

        rng = random.Random(n)
        sent = 0
        with httpx.Client(timeout=120) as http:
            while not self.stop.is_set():
                kind = rng.choice(["good", "good", "follow-up", "bad", "chat", "new"])
                session = f"soak-{n}-{sent // 50}"  # a reader's tab sends 50 requests, then a new reader comes
                sent += 1
                question = rng.choice(QUESTIONS)
                started = time.monotonic()
                try:
                    if kind == "good":
                        out = self.ask(http, question, [], session)
                    elif kind == "follow-up":
                        out = self.ask(http, "And who plays the lead?", [question], session)
                    elif kind == "bad":
                        out = self.ask(http, rng.choice(BAD), [], session)
                    elif kind == "chat":
                        out = self.chat(http, question, session)
                    else:
                        out = self.ask(http, NEW_QUESTION, [], session)
                except Exception as exc:  # a dropped connection is a failure like any other
                    out = {"status": 0, "body": f"{type(exc).__name__}: {exc}"}
                took = time.monotonic() - started
                with self.lock:
                    if kind == "bad" and out["status"] != 200:
                        self.bad_refused += 1
                    elif out["status"] != 200:
                        self.failures.append(f"{kind}: {out['status']} {out['body'][:200]}")
                    else:
                        self.samples.append((started, took, kind))
                        if kind == "new" and self.new_seen_at is None and "Zyrtalia" in out["body"] and \
                                '"hits"' in out["body"] and "Zyrtalia Quenby" in out["body"].split('"hits"', 1)[1]:
                            self.new_seen_at = time.monotonic()


def p95(values: list[float]) -> float:
    values = sorted(values)
    return values[int(0.95 * (len(values) - 1))] if values else float("nan")


def main() -> int:
    import httpx

    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--download-ttl", type=int, default=300,
                        help="the app's QA_DOWNLOAD_TTL: shorter than the soak, to show the cache levels off")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qa-soak-"))
    corpus, index, temp = work / "corpus", work / "index", work / "tmp"
    shutil.copytree(ROOT / "corpus", corpus)
    temp.mkdir()
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "QA_CORPUS_DIR": str(corpus), "QA_INDEX_DIR": str(index),
           "QA_RELOAD_SECONDS": "2", "TMPDIR": str(temp), "GRADIO_TEMP_DIR": str(temp / "gradio"),
           "QA_DOWNLOAD_TTL": str(args.download_ttl), "MALLOC_ARENA_MAX": "2",  # as `make run` serves
           "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1,localhost"}
    log = open(work / "app.log", "w")
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        server.kill()
        raise SystemExit(f"the app did not start: {(work / 'app.log').read_text()[-2000:]}")
    soak = Soak(url)
    with httpx.Client(timeout=30) as http:
        soak.find_chat_event(http)
    t0 = time.monotonic()
    rss: list[tuple[float, float]] = []
    files: list[tuple[float, int]] = []
    threads = [threading.Thread(target=soak.client, args=(n,), daemon=True) for n in range(args.clients)]
    for t in threads:
        t.start()
    total_s = args.minutes * 60
    built_at = None
    build_seconds = None
    while (now := time.monotonic()) - t0 < total_s:
        rss.append((now - t0, rss_mb(server.pid)))
        files.append((now - t0, count_files(temp)))
        if built_at is None and now - t0 >= total_s / 2:
            (corpus / "late.md").write_text(NEW_REVIEW, encoding="utf-8")
            started = time.monotonic()
            build = subprocess.run([sys.executable, "-m", "qa", "index", "--corpus", str(corpus), "--index", str(index)],
                                   cwd=ROOT, capture_output=True, text=True, env={**env, "TMPDIR": tempfile.gettempdir()})
            built_at = time.monotonic()
            build_seconds = built_at - started
            if build.returncode != 0:
                print(f"qa index failed: {build.stderr[-500:]}", file=sys.stderr)
        time.sleep(5)
    soak.stop.set()
    for t in threads:
        t.join(timeout=150)
    server.terminate()
    server.wait(timeout=30)
    log.close()

    minute = lambda s: int((s - t0) // 60)  # noqa: E731
    per_minute: dict[int, list[float]] = {}
    for started, took, _ in soak.samples:
        per_minute.setdefault(minute(started), []).append(took)
    last = max(per_minute) - 1 if len(per_minute) > 2 else max(per_minute)  # the last full minute
    early_rss = [mb for t, mb in rss if 60 <= t < 120]
    late_rss = [mb for t, mb in rss if t >= total_s - 60]
    settled = (built_at - t0 + 120) if built_at else total_s  # two minutes after the swap
    settled_rss = [mb for t, mb in rss if settled <= t < settled + 60]
    result = {
        "clients": args.clients, "minutes": args.minutes, "requests": len(soak.samples) + len(soak.failures) + soak.bad_refused,
        "failures": len(soak.failures), "bad_input_refused": soak.bad_refused,
        "p95_first_minute_ms": round(p95(per_minute[1 if len(per_minute) > 2 else 0]) * 1000, 1),
        "p95_last_minute_ms": round(p95(per_minute[last]) * 1000, 1),
        "rss_early_mb": round(max(early_rss or [rss[0][1]]), 1), "rss_late_mb": round(max(late_rss or [rss[-1][1]]), 1),
        "rss_after_swap_mb": round(max(settled_rss or [rss[-1][1]]), 1),
        "build_s": round(build_seconds or 0, 1),
        "new_review_after_build_s": round(soak.new_seen_at - built_at, 1) if soak.new_seen_at and built_at else None,
        "temp_files_max": max(n for _, n in files), "temp_files_end": files[-1][1],
        "reloads_logged": (work / "app.log").read_text().count("Reloaded the index"),
    }
    result["p95_late_over_early"] = round(result["p95_last_minute_ms"] / result["p95_first_minute_ms"], 3)
    result["rss_late_over_early"] = round(result["rss_late_mb"] / result["rss_early_mb"], 3)
    result["rss_late_over_after_swap"] = round(result["rss_late_mb"] / result["rss_after_swap_mb"], 3)
    print(f"{result['requests']} requests from {args.clients} clients over {args.minutes} min; "
          f"{result['failures']} failed (bad input refused: {soak.bad_refused})")
    for failure in soak.failures[:10]:
        print(f"  {failure}")
    print(f"p95 minute 2: {result['p95_first_minute_ms']} ms, last minute: {result['p95_last_minute_ms']} ms "
          f"(late/early {result['p95_late_over_early']}, target <= 1.3)")
    print(f"RSS minute 2: {result['rss_early_mb']} MB, 2 min after the swap: {result['rss_after_swap_mb']} MB, "
          f"last minute: {result['rss_late_mb']} MB (late/after swap {result['rss_late_over_after_swap']}, "
          f"target <= 1.05; late/minute 2 {result['rss_late_over_early']})")
    print(f"index update in the middle: build {result['build_s']} s; the new review answered "
          f"{result['new_review_after_build_s']} s after it (target <= 10); reloads logged: {result['reloads_logged']}")
    print(f"files in the app's temp folders: at most {result['temp_files_max']}, at the end {result['temp_files_end']}")
    for (t, mb), (_, n) in list(zip(rss, files))[:: max(1, len(rss) // 12)]:
        print(f"  t={t / 60:5.1f} min  RSS {mb:7.1f} MB  temp files {n}")
    by_folder: dict[str, int] = {}
    for root, _, names in os.walk(temp):
        top = Path(root).relative_to(temp).parts[:2]
        by_folder["/".join(top) or "."] = by_folder.get("/".join(top) or ".", 0) + len(names)
    print("  temp files by folder:", dict(sorted(by_folder.items(), key=lambda kv: -kv[1])[:5]))
    if args.json:
        print(json.dumps(result))
    shutil.rmtree(work, ignore_errors=True)
    return 0 if result["failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
