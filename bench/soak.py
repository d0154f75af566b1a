"""Soak: N clients for T minutes against the real app over HTTP, with a review upload in the middle.

    python bench/soak.py [--clients 16] [--minutes 60] [--json] [--smoke]

Starts `python app.py` on a copy of the seed corpus (its own index folder, temp folder and Gradio cache,
hot reload every 2 s). Each client loops over: a good question on the `ask` endpoint, a follow-up with
history, bad input (empty, 5,000 characters, markup), and a chat turn through the page's own queue
(`/gradio_api/queue/join`, as the browser sends it), which writes a conversation file for download.
Halfway, a new review is uploaded through the Reviews tab's own event (`/gradio_api/upload`, then the
tab's "Add files" event through the queue, as the page sends them), which re-indexes in the server; the
question only that review answers is asked until it is answered. `/healthz` is timed every 5 s.

Prints: requests, failures that were not bad input, p95 per minute (minute 2 and the last), the server's
RSS over time (minute 2, minute 10, two minutes after the swap, the last minute) and its slope after
minute 10 (least squares), the seconds from the upload's end to the new review among the hits, /healthz
latency, and the files left in the app's temp folders. Targets (issue 35): 0 failures, RSS slope after
minute 10 <= 0.5 MB/min, last minute <= 1.05x minute 10, p95 late/early <= 1.3, /healthz < 50 ms.
`--smoke` (2 clients, 0.5 minute, the upload at 0.25) only shows the script still runs (tests/test_bench.py).
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

from _common import OPINION_QUESTIONS, QUESTIONS, ROOT

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
        self.upload_fn: int | None = None

    def find_events(self, http) -> None:
        """The page's chat-turn event (its outputs include the download button) and the Reviews tab's
        upload event (its inputs include the file box)."""
        config = http.get(self.url + "config").json()
        by_elem = {c.get("props", {}).get("elem_id"): c["id"] for c in config["components"]}
        for i, dep in enumerate(config["dependencies"]):
            if by_elem.get("qa-download") in dep["outputs"] and by_elem.get("qa-question") in dep["inputs"]:
                self.chat_fn = dep.get("id", i)
                self.chat_inputs = len(dep["inputs"])
            if by_elem.get("qa-reviews-files") in dep["inputs"] and self.upload_fn is None:
                self.upload_fn = dep.get("id", i)
        if self.chat_fn is None or self.upload_fn is None:
            raise SystemExit("the chat or upload event was not found in /config")

    def queued(self, http, fn: int, data: list, session: str) -> dict:
        """One event through the queue, read to its end as the page reads it."""
        joined = http.post(self.url + "gradio_api/queue/join",
                           json={"data": data, "fn_index": fn, "session_hash": session,
                                 "event_data": None, "trigger_id": None})
        if joined.status_code != 200:
            return {"status": joined.status_code, "body": joined.text}
        with http.stream("GET", self.url + "gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("msg") == "process_completed":
                        ok = message.get("success", False)
                        return {"status": 200 if ok else 500, "body": json.dumps(message)[:2000]}
        return {"status": 599, "body": "the queue stream ended without a result"}

    def upload(self, http, name: str, text: str, film: str) -> dict:
        """A review file through the Reviews tab: uploaded as the page uploads it, then "Add files"."""
        sent = http.post(self.url + "gradio_api/upload", files={"files": (name, text.encode("utf-8"), "text/markdown")})
        if sent.status_code != 200:
            return {"status": sent.status_code, "body": sent.text}
        files = [{"path": sent.json()[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}]
        return self.queued(http, self.upload_fn, [files, film], "soak-upload")

    def ask(self, http, question: str, history: list[str], session: str) -> dict:
        reply = http.post(self.url + "gradio_api/run/ask", json={"data": [question, "", 5, history],
                                                                 "session_hash": session})
        return {"status": reply.status_code, "body": reply.text}

    def chat(self, http, question: str, session: str) -> dict:
        """One chat turn through the queue."""
        data = [question, [], "All films", "All reviews", 5] + [None] * (self.chat_inputs - 5)  # states: server-side
        return self.queued(http, self.chat_fn, data, session)

    def client(self, n: int) -> None:
        import httpx

        rng = random.Random(n)
        sent = 0
        with httpx.Client(timeout=120) as http:
            while not self.stop.is_set():
                kind = rng.choice(["good", "good", "follow-up", "bad", "chat", "new"])
                session = f"soak-{n}-{sent // 50}"  # a reader's tab sends 50 requests, then a new reader comes
                sent += 1
                question = rng.choice(QUESTIONS + OPINION_QUESTIONS)
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
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--download-ttl", type=int, default=300,
                        help="the app's QA_DOWNLOAD_TTL: shorter than the soak, to show the cache levels off")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="2 clients for 20 seconds: the script still runs")
    parser.add_argument("--url", help="soak an app already running there instead of starting one (the upload "
                                      "lands in its corpus)")
    parser.add_argument("--pid", type=int, help="with --url: the app's process id, for its RSS")
    args = parser.parse_args()
    if args.smoke:
        args.clients, args.minutes = 2, 1 / 3
    work = Path(tempfile.mkdtemp(prefix="qa-soak-"))
    if args.url:
        return soak_and_report(args, args.url.rstrip("/") + "/", args.pid, None, work, work / "tmp")
    corpus, index, temp = work / "corpus", work / "index", work / "tmp"
    shutil.copytree(ROOT / "corpus", corpus)
    temp.mkdir()
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "QA_CORPUS_DIR": str(corpus), "QA_INDEX_DIR": str(index),
           "QA_RELOAD_SECONDS": "2", "TMPDIR": str(temp), "GRADIO_TEMP_DIR": str(temp / "gradio"),
           "QA_DOWNLOAD_TTL": str(args.download_ttl), "MALLOC_ARENA_MAX": "2",  # as `make run` serves
           "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1,localhost"}
    log = open(work / "app.log", "w")  # closed with the process; read after it ends
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    log.close()
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
    return soak_and_report(args, url, server.pid, server, work, temp)


def soak_and_report(args, url: str, pid: int | None, server, work: Path, temp: Path) -> int:
    """Soak the app at `url` (its process `pid`, or None: no RSS), then stop `server` if we started it."""
    import httpx
    import numpy as np

    temp.mkdir(exist_ok=True)
    soak = Soak(url)
    with httpx.Client(timeout=30) as http:
        soak.find_events(http)
    t0 = time.monotonic()
    rss: list[tuple[float, float]] = []
    files: list[tuple[float, int]] = []
    health: list[tuple[float, float, int]] = []  # (time, seconds, status) of GET /healthz
    threads = [threading.Thread(target=soak.client, args=(n,), daemon=True) for n in range(args.clients)]
    for t in threads:
        t.start()
    total_s = args.minutes * 60
    built_at = None
    build_seconds = None
    upload_outcome = None
    with httpx.Client(timeout=60) as http:
        while (now := time.monotonic()) - t0 < total_s:
            rss.append((now - t0, rss_mb(pid) if pid else float("nan")))
            files.append((now - t0, count_files(temp)))
            started = time.monotonic()
            try:
                status = http.get(url + "healthz").status_code
            except httpx.HTTPError:
                status = 0
            health.append((started - t0, time.monotonic() - started, status))
            if built_at is None and now - t0 >= total_s / 2:
                started = time.monotonic()
                out = soak.upload(http, "late.md", NEW_REVIEW, "Escape (2024)")
                built_at = time.monotonic()
                build_seconds = built_at - started
                upload_outcome = out["body"] if out["status"] != 200 or "Added" not in out["body"] else "added"
                if upload_outcome != "added":
                    print(f"the upload failed: {out['status']} {out['body'][:500]}", file=sys.stderr)
            time.sleep(5)
    soak.stop.set()
    for t in threads:
        t.join(timeout=150)
    if server is not None:
        server.terminate()
        server.wait(timeout=30)

    minute = lambda s: int((s - t0) // 60)  # noqa: E731
    per_minute: dict[int, list[float]] = {}
    for started, took, _ in soak.samples:
        per_minute.setdefault(minute(started), []).append(took)
    last = max(per_minute) - 1 if len(per_minute) > 2 else max(per_minute)  # the last full minute
    early_rss = [mb for t, mb in rss if 60 <= t < 120]
    warm = min(600.0, total_s / 6)  # minute 10 (a sixth of a short run)
    warm_rss = [mb for t, mb in rss if warm <= t < warm + 60]
    after_warm = [(t, mb) for t, mb in rss if t >= warm] if pid else []
    slope = float(np.polyfit([t / 60 for t, _ in after_warm], [mb for _, mb in after_warm], 1)[0]) \
        if len(after_warm) > 2 else float("nan")
    health_ms = sorted(s * 1000 for _, s, _ in health)
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
        "rss_minute_10_mb": round(max(warm_rss or [rss[-1][1]]), 1),
        "rss_slope_after_minute_10_mb_per_min": round(slope, 3),
        "healthz_p50_ms": round(health_ms[len(health_ms) // 2], 1),
        "healthz_p95_ms": round(p95(health_ms), 1), "healthz_max_ms": round(health_ms[-1], 1),
        "healthz_not_200": sum(1 for *_, status in health if status != 200),
        "upload": upload_outcome,
        "build_s": round(build_seconds or 0, 1),
        "new_review_after_build_s": round(soak.new_seen_at - built_at, 1) if soak.new_seen_at and built_at else None,
        "temp_files_max": max(n for _, n in files), "temp_files_end": files[-1][1],
        "reloads_logged": (work / "app.log").read_text().count("Reloaded the index")
        if (work / "app.log").is_file() else None,
    }
    result["p95_late_over_early"] = round(result["p95_last_minute_ms"] / result["p95_first_minute_ms"], 3)
    result["rss_late_over_early"] = round(result["rss_late_mb"] / result["rss_early_mb"], 3)
    result["rss_late_over_after_swap"] = round(result["rss_late_mb"] / result["rss_after_swap_mb"], 3)
    result["rss_late_over_minute_10"] = round(result["rss_late_mb"] / result["rss_minute_10_mb"], 3)
    print(f"{result['requests']} requests from {args.clients} clients over {args.minutes} min; "
          f"{result['failures']} failed (bad input refused: {soak.bad_refused})")
    for failure in soak.failures[:10]:
        print(f"  {failure}")
    print(f"p95 minute 2: {result['p95_first_minute_ms']} ms, last minute: {result['p95_last_minute_ms']} ms "
          f"(late/early {result['p95_late_over_early']}, target <= 1.3)")
    print(f"RSS minute 2: {result['rss_early_mb']} MB, 2 min after the swap: {result['rss_after_swap_mb']} MB, "
          f"last minute: {result['rss_late_mb']} MB (late/after swap {result['rss_late_over_after_swap']}, "
          f"target <= 1.05; late/minute 2 {result['rss_late_over_early']})")
    print(f"RSS minute 10: {result['rss_minute_10_mb']} MB; last minute over minute 10: "
          f"{result['rss_late_over_minute_10']} (target <= 1.05); slope after minute 10: "
          f"{result['rss_slope_after_minute_10_mb_per_min']} MB/min (target <= 0.5)")
    print(f"/healthz: p50 {result['healthz_p50_ms']} ms, p95 {result['healthz_p95_ms']} ms, max "
          f"{result['healthz_max_ms']} ms (target < 50); not 200: {result['healthz_not_200']}")
    print(f"upload through the Reviews tab in the middle ({result['upload']}): {result['build_s']} s; the new review answered "
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
    return 0 if result["failures"] == 0 and upload_outcome == "added" else 1


if __name__ == "__main__":
    sys.exit(main())
