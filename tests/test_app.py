"""The real app: `python app.py` on 127.0.0.1, driven through gradio_client and real Chromium."""

import re
from urllib.parse import urlparse

import pytest

from .conftest import ARTIFACTS, AppServer

SEED_QUESTIONS = [
    # question, review that must be cited first, words in its passage
    ("Who composed the score?", "escape-2024/002_03b15f6e9896f6a9", "Dalpalan"),
    ("What is the Rotten Tomatoes score?", "escape-2024/000_c5d586a175a2a666", "71% critics, 87% audience"),
    ("Where did the reviewer watch the film?", "escape-2024/001_ab617f7258eed2b4", "Buena Park"),
]


def _page(browser, requests_seen=None, dialogs=None):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    if requests_seen is not None:
        page.on("request", lambda r: requests_seen.append(r.url))
    if dialogs is not None:
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return context, page


def _ask(page, question, turn):
    box = page.locator("#qa-question textarea")
    box.fill(question)
    box.press("Enter")
    # wait for this turn's bot message (user + bot per turn)
    page.wait_for_function(
        "n => document.querySelectorAll('#qa-chat .message-row.bot-row').length >= n "
        "&& document.querySelector('#qa-card-1') !== null",
        arg=turn, timeout=60_000)
    page.wait_for_timeout(300)


def test_browser_answers_cite_the_right_review_and_stay_local(app_server, browser):
    seen: list[str] = []
    context, page = _page(browser, requests_seen=seen)
    page.goto(app_server.url)
    page.wait_for_selector("#qa-question textarea")
    for turn, (question, review_id, words) in enumerate(SEED_QUESTIONS, 1):
        _ask(page, question, turn)
        page.wait_for_function(
            "([rid, words]) => { const c = document.querySelector('#qa-card-1');"
            " return c && c.dataset.reviewId === rid && c.innerText.includes(words); }",
            arg=[review_id, words], timeout=60_000)
        card = page.locator("#qa-card-1")
        assert card.get_attribute("data-review-id") == review_id
        assert words in card.locator("mark").inner_text() or words in card.inner_text()
        assert "¶" in card.inner_text() and "chars" in card.inner_text()
        last_reply = page.locator("#qa-chat .bot").last.inner_text()
        cited = re.findall(r"\[(\d+)\]", last_reply)  # an answer cites cards; an abstention cites none
        assert all(page.locator(f"#qa-card-{n}").count() == 1 for n in cited)
        assert bool(cited) != last_reply.startswith("The reviews don't say")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
    hosts = {urlparse(u).hostname for u in seen if urlparse(u).scheme in ("http", "https", "ws", "wss")}
    assert hosts <= {"127.0.0.1"}, hosts
    context.close()


def test_browser_abstention_looks_unlike_an_answer(app_server, browser):
    context, page = _page(browser)
    page.goto(app_server.url)
    page.wait_for_selector("#qa-question textarea")
    _ask(page, "Who composed the score?", 1)
    answer_reply = page.locator("#qa-chat .bot").last
    assert answer_reply.locator("blockquote").count() >= 1  # an answer quotes
    assert page.locator("#qa-card-1 .qa-answer").inner_text() == "Dalpalan"  # the exact answer, marked
    _ask(page, "What is the capital of France?", 2)
    page.wait_for_function("() => document.querySelector('#qa-cards .qa-closest') !== null", timeout=60_000)
    reply = page.locator("#qa-chat .bot").last
    assert reply.inner_text().startswith("The reviews don't say")
    assert reply.locator("blockquote").count() == 0  # an abstention does not
    assert "0 of 3 reviews address this question" in reply.inner_text()
    assert "none of them answers" in page.locator("#qa-cards").inner_text()
    assert page.locator("#qa-cards .qa-card").count() >= 1  # the closest passages stay
    assert "closest match" in page.locator("#qa-card-1 .qa-match").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "abstention.png"), full_page=True)
    context.close()


def test_browser_follow_up_example_click_and_clear(app_server, browser):
    context, page = _page(browser)
    page.goto(app_server.url)
    page.wait_for_selector("#qa-question textarea")
    example = page.locator(".qa-example", has_text="Who composed the score?")
    example.wait_for(timeout=30_000)
    example.click()
    page.wait_for_function("() => document.querySelector('#qa-card-1') !== null", timeout=60_000)
    page.wait_for_function("() => document.querySelector('#qa-card-1').innerText.includes('Dalpalan')", timeout=60_000)
    _ask(page, "What else has he worked on?", 2)
    page.wait_for_function("() => document.querySelector('#qa-searched').innerText.includes("
                           "'Who composed the score? What else has he worked on?')", timeout=60_000)
    page.locator("#qa-clear").click()
    page.wait_for_function("() => document.querySelector('#qa-card-1') === null", timeout=30_000)
    box = page.locator("#qa-question textarea")
    box.fill("   ")
    box.press("Enter")
    page.wait_for_function("() => document.querySelector('#qa-chat').innerText.includes('Please type a question.')",
                           timeout=30_000)
    context.close()


def test_two_readers_keep_separate_histories(app_server, browser):
    ctx_a, page_a = _page(browser)
    ctx_b, page_b = _page(browser)
    for page in (page_a, page_b):
        page.goto(app_server.url)
        page.wait_for_selector("#qa-question textarea")
    page_a.locator("#qa-question textarea").fill("Who composed the score?")
    page_b.locator("#qa-question textarea").fill("Where did the reviewer watch the film?")
    page_a.locator("#qa-question textarea").press("Enter")
    page_b.locator("#qa-question textarea").press("Enter")
    page_a.wait_for_function("() => document.querySelector('#qa-card-1')?.innerText.includes('Dalpalan')", timeout=60_000)
    page_b.wait_for_function("() => document.querySelector('#qa-card-1')?.innerText.includes('Buena Park')", timeout=60_000)
    chat_a = page_a.locator("#qa-chat").inner_text()
    chat_b = page_b.locator("#qa-chat").inner_text()
    assert "Who composed the score?" in chat_a and "Where did the reviewer" not in chat_a
    assert "Where did the reviewer watch the film?" in chat_b and "Who composed the score?" not in chat_b
    ctx_a.close()
    ctx_b.close()


def test_gradio_client_ask_endpoint(app_server):
    from gradio_client import Client

    client = Client(app_server.url, verbose=False)
    result = client.predict("Who composed the score?", "", 3, [], api_name="/ask")
    assert result["question"] == "Who composed the score?" and len(result["hits"]) >= 3
    top = result["hits"][0]
    assert top["review_id"] == "escape-2024/002_03b15f6e9896f6a9" and "Dalpalan" in top["text"]
    assert {"rank", "score", "text", "highlight", "review_id", "title", "outlet", "paragraph", "start", "end"} <= set(top)
    assert result["answered"] is True and 0 < result["confidence"] <= 1
    assert any(s["kind"] == "answer" for s in result["answer_spans"])
    none = client.predict("What is the capital of France?", "", 3, [], api_name="/ask")
    assert none["answered"] is False and none["answer_spans"] == [] and none["hits"]
    follow = client.predict("What else has he worked on?", "", 3, ["Who composed the score?"], api_name="/ask")
    assert follow["query_used"] == "Who composed the score? What else has he worked on?"
    with pytest.raises(Exception, match="Please type a question"):
        client.predict("   ", "", 3, [], api_name="/ask")
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert names == {"/ask"}


def test_ask_answers_one_plain_http_request_as_the_readme_shows(app_server):
    import httpx

    url = app_server.url + "gradio_api/run/ask"
    with httpx.Client(timeout=60) as http:
        body = {"data": ["Who composed the score?", "", 3, []], "session_hash": "test-tool"}
        first = http.post(url, json=body)
        again = http.post(url, json=body)  # the same session is reused
        empty = http.post(url, json={"data": ["   ", "", 3, []], "session_hash": "test-tool"})
    assert first.status_code == again.status_code == 200
    result = first.json()["data"][0]
    assert result == again.json()["data"][0]
    assert len(result["hits"]) == 3 and result["hits"][0]["review_id"] == "escape-2024/002_03b15f6e9896f6a9"
    assert empty.status_code >= 400 and "Please type a question" in empty.text and "Traceback" not in empty.text


def test_healthz_metrics_and_one_log_line_per_request(app_server):
    """/healthz names the index it serves; /metrics parses with Prometheus' own parser and counts the
    request just made; the request's JSON log line says what happened but not the question."""
    import json

    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    question = "Who composed the score? healthz-probe"
    with httpx.Client(timeout=60) as http:
        health = http.get(app_server.url + "healthz")
        http.post(app_server.url + "gradio_api/run/ask", json={"data": [question, "", 3, []]})
        metrics = http.get(app_server.url + "metrics")
    assert health.status_code == 200
    facts = health.json()
    assert facts["status"] == "ok" and facts["passages"] > 0 and facts["reviews"] == 3 and facts["built_at"]
    assert "MiniLM" in facts["model"]
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(metrics.text) for s in family.samples}
    assert samples[("qa_requests_total", (("endpoint", "ask"), ("outcome", "ok")))] >= 1
    assert samples[("qa_request_seconds_count", (("endpoint", "ask"),))] >= 1
    assert samples[("qa_passages", ())] == facts["passages"] and samples[("qa_reviews", ())] == 3
    assert samples[("process_resident_memory_bytes", ())] > 50e6
    assert ("qa_index_refusals", ()) in samples and ("qa_index_reloads", ()) in samples
    lines = [json.loads(line) for line in app_server.log().splitlines() if line.startswith('{"time"')]
    asked = [line for line in lines if line["endpoint"] == "ask" and line["answered"] is not None]
    assert asked and {"latency_ms", "outcome", "kind", "index_version"} <= set(asked[-1])
    assert asked[-1]["index_version"] == facts["built_at"]
    assert "healthz-probe" not in app_server.log()  # questions stay out of the log unless QA_LOG_QUESTIONS=1


XSS_REVIEW = """---
film: Evil Film
title: "<script>alert('title')</script>Evil review"
outlet: "<img src=x onerror=alert('outlet')>"
url: "javascript:alert('url')"
---
The score is <script>alert(1)</script> loud and the music is <img src=x onerror=alert(2)> everywhere.
Read more [here](javascript:alert(3)) about the score and <a href="javascript:alert(4)">the music</a>.
The score's motif is AAAA""" + "B" * 3000 + """ and it never breaks.
"""


@pytest.fixture(scope="module")
def xss_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("xss")
    (root / "corpus").mkdir()
    (root / "corpus" / "evil.md").write_text(XSS_REVIEW)
    (root / "corpus" / "plain.txt").write_text("---\nfilm: Plain Film\n---\nA calm film with a quiet score.\n")
    evil_set = root / "evals" / "evil"
    evil_set.mkdir(parents=True)
    (evil_set / "queries.jsonl").write_text(
        '{"_id": "x1", "text": "<img src=x onerror=alert(5)>What about the score?", "answers": ["loud"]}\n'
        '{"_id": "x2", "text": "[link](javascript:alert(6)) the music?", "answers": ["nothing matches this"]}\n')
    server = AppServer(root / "corpus", root / "index", root / "app.log",
                       extra_env={"QA_EVALS_DIR": str(root / "evals"), "QA_EVAL_CACHE": str(root / "cache")})
    yield server
    server.stop()


def test_review_html_is_shown_as_text_never_run(xss_server, browser):
    dialogs: list[str] = []
    context, page = _page(browser, dialogs=dialogs)
    page.goto(xss_server.url)
    page.wait_for_selector("#qa-question textarea")
    _ask(page, "What about the score and the music?", 1)
    page.locator("#qa-per-review").click()  # open "What each review says" too
    page.wait_for_timeout(800)
    cards = page.locator("#qa-cards").inner_text()
    assert "<script>alert(1)</script>" in cards
    assert "<img src=x onerror=alert(2)>" in cards
    assert "[here](javascript:alert(3))" in cards
    assert "<script>alert('title')</script>Evil review" in cards
    assert "<img src=x onerror=alert('outlet')>" in cards
    assert page.locator("#qa-cards a[href^='javascript']").count() == 0
    assert page.locator("#qa-cards img, #qa-cards script, #qa-chat img").count() == 0
    assert page.locator("#qa-chat a[href^='javascript']").count() == 0
    chat = page.locator("#qa-chat").inner_text()
    if "The reviews don't say" not in chat:  # an answer quotes the hostile sentence, as text
        assert "<script>alert(1)</script>" in chat or "<img src=x onerror=alert(2)>" in chat
    _ask(page, "Is the <img src=x onerror=alert(7)> score <b>loud</b>?", 2)  # the question is echoed as text
    chat = page.locator("#qa-chat").inner_text()
    assert "<img src=x onerror=alert(7)>" in chat and "<b>loud</b>" in chat
    assert page.locator("#qa-chat img, #qa-chat b").count() == 0
    # a 3,000-character unbroken string wraps inside its card instead of widening the page
    assert page.evaluate("() => Array.from(document.querySelectorAll('#qa-cards .qa-text'))"
                         ".every(t => t.scrollWidth <= t.clientWidth + 1)")
    # the film selector appears because this corpus holds two films
    assert page.locator("#qa-film").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "xss.png"), full_page=True)
    page.wait_for_timeout(500)
    assert dialogs == []
    context.close()


def test_browser_evaluate_tab_runs_a_dataset(app_server, browser):
    context, page = _page(browser)
    page.goto(app_server.url)
    page.wait_for_selector("#qa-question textarea")
    page.get_by_role("tab", name="Evaluate").first.click()
    page.locator("#qa-eval-run").click()
    page.wait_for_selector("#qa-eval-misses table", timeout=120_000)
    assert "60 queries scored" in page.locator("#qa-eval-status").inner_text()
    metrics = page.locator("#qa-eval-metrics").inner_text()
    assert "mrr@10" in metrics and "review_hit@5" in metrics
    assert page.locator("#qa-eval-misses tr").count() == 61
    assert page.locator("#qa-eval-plot img").count() == 1
    assert page.locator("#qa-eval-reliability img").count() == 1
    assert "first_sentence_accuracy" in metrics
    context.close()


def test_eval_tab_shows_hostile_text_inertly(xss_server, browser):
    dialogs: list[str] = []
    context, page = _page(browser, dialogs=dialogs)
    page.goto(xss_server.url)
    page.wait_for_selector("#qa-question textarea")
    page.get_by_role("tab", name="Evaluate").first.click()
    page.locator("#qa-eval-run").click()
    page.wait_for_selector("#qa-eval-misses table", timeout=120_000)
    table = page.locator("#qa-eval-misses").inner_text()
    assert "<img src=x onerror=alert(5)>What about the score?" in table
    assert "<script>alert(1)</script>" in table  # the top passage, shown as text
    assert page.locator("#qa-eval-misses img, #qa-eval-misses script, #qa-eval-misses a").count() == 0
    page.wait_for_timeout(500)
    assert dialogs == []
    context.close()


def test_start_up_prints_no_warning(app_server):
    import warnings

    from qa.serving import EngineLoader
    from qa.ui import build_demo

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning raised while the Blocks are built fails here
        build_demo(EngineLoader(None, opener=lambda _: None))
    printed = [line for line in app_server.log().splitlines() if re.search(r"warn", line, re.I)]
    assert printed == [], printed


def test_browser_tab_strip_shows_each_tab_once(app_server, browser):
    context, page = _page(browser)
    page.goto(app_server.url)
    page.wait_for_selector("#qa-question textarea")

    def visible_tabs():
        return [t.inner_text().strip() for t in page.get_by_role("tab").all() if t.is_visible()]

    tabs = ["Ask", "Label", "Reviews", "Evaluate"]  # Reviews: a loopback address (see test_config)
    assert visible_tabs() == tabs
    for name in ("Evaluate", "Ask", "Label", "Reviews", "Evaluate"):
        page.get_by_role("tab", name=name).first.click()
        page.wait_for_timeout(300)
        assert visible_tabs() == tabs, name
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"tabs-{name.lower()}.png"))
    context.close()


def test_browser_download_conversation(app_server, browser):
    context, page = _page(browser)
    page.goto(app_server.url)
    page.wait_for_selector("#qa-question textarea")
    assert page.locator("#qa-download").is_disabled()  # nothing to take yet
    _ask(page, "Who composed the score?", 1)
    _ask(page, "What is the Rotten Tomatoes score?", 2)
    page.wait_for_function("() => !document.querySelector('#qa-download').disabled", timeout=30_000)
    page.wait_for_timeout(500)
    with page.expect_download(timeout=30_000) as info:
        page.locator("#qa-download").click()
    download = info.value
    assert download.suggested_filename == "conversation.md"
    ARTIFACTS.mkdir(exist_ok=True)
    saved = ARTIFACTS / "conversation.md"
    download.save_as(str(saved))
    text = saved.read_text(encoding="utf-8")
    assert text.count("**Question:**") == 2
    assert text.index("Who composed the score?") < text.index("What is the Rotten Tomatoes score?")
    assert "Dalpalan" in text and "71% critics, 87% audience" in text.replace("\\", "")
    assert re.search(r"\\\[1\\\] .* · ¶ \d+ · chars \d+–\d+", text)  # a cited passage with its source line
    context.close()


def _label_question(page, question):
    page.locator("#qa-label-question textarea").fill(question)
    page.locator("#qa-label-search").click()
    page.wait_for_function("q => document.querySelector('#qa-label-status')?.innerText.includes('passages')",
                           arg=question, timeout=60_000)


def test_browser_label_tab_saves_three_questions_that_qa_eval_scores(app_server, browser):
    """Label one question with a ticked passage and an exact span selected in the passage text, one as
    unanswerable, and a third with a ticked passage, in one visit (the first question's ticks once made
    the next Save fail with "... is not in the list of choices"); then `qa eval` on the saved folder
    gives the metrics those labels imply (MRR@10 = 1 / rank of the first passage holding the span)."""
    import json
    import subprocess
    import sys

    from .conftest import ROOT

    context, page = _page(browser)
    page.goto(app_server.url)
    page.get_by_role("tab", name="Label").click()
    page.locator("#qa-label-set textarea").fill("browser-set")
    _label_question(page, "Who composed the score?")
    cards = page.locator("#qa-label-cards .qa-card")
    texts = [cards.nth(i).inner_text() for i in range(cards.count())]
    rank = next(i for i, t in enumerate(texts, 1) if "Dalpalan" in t)
    page.locator("#qa-label-answers label").nth(rank - 1).click()
    page.locator("#qa-label-pick input").click()
    page.get_by_role("option", name=re.compile(rf"^\[{rank}\] ")).click()
    box = page.locator("#qa-label-text textarea")
    page.wait_for_function("() => document.querySelector('#qa-label-text textarea').value.includes('Dalpalan')",
                           timeout=30_000)
    start = box.input_value().index("Dalpalan")
    box.evaluate("(el, [s, e]) => { el.focus(); el.setSelectionRange(s, e);"
                 " el.dispatchEvent(new Event('select', {bubbles: true})); }", [start, start + len("Dalpalan")])
    page.wait_for_function("() => document.querySelector('#qa-label-exact').innerText.includes('Dalpalan')",
                           timeout=30_000)
    page.locator("#qa-label-save").click()
    page.wait_for_function("() => document.querySelector('#qa-label-status').innerText.includes('Saved')",
                           timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "label-tab.png"), full_page=True)  # the exact answer selected, saved
    _label_question(page, "Is there a post-credits scene?")
    page.locator("#qa-label-unanswerable input").check()
    page.locator("#qa-label-save").click()
    page.wait_for_function("() => document.querySelector('#qa-label-status').innerText.includes('post-credits')",
                           timeout=30_000)
    page.locator("#qa-label-unanswerable input").uncheck()
    _label_question(page, "Is the acting good?")
    page.locator("#qa-label-answers label").nth(0).click()
    page.locator("#qa-label-save").click()
    page.wait_for_function("() => document.querySelector('#qa-label-status').innerText.includes('acting')",
                           timeout=30_000)
    assert "not in the list" not in page.locator("body").inner_text()
    context.close()

    folder = app_server.labels_dir / "browser-set"
    queries = [json.loads(line) for line in (folder / "queries.jsonl").read_text().splitlines()]
    assert [q["text"] for q in queries] == ["Who composed the score?", "Is there a post-credits scene?",
                                            "Is the acting good?"]
    assert queries[0]["answers"] == ["Dalpalan"] and queries[1]["metadata"]["answerable"] is False
    corpus, index = app_server.corpus, app_server.index
    proc = subprocess.run([sys.executable, "-m", "qa", "eval", str(folder), "--corpus", str(corpus), "--index",
                           str(index), "--json"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (metrics["queries"], metrics["unanswerable"]) == (2, 1)
    assert metrics["hit@10"] == 1.0  # each labelled question's ticked passage is among the top 10
    # The score question's passage is where the Label tab showed it; the acting question's ticked passage
    # may move in the reply's order (an opinion reply puts the passages it quotes first).
    assert (1 / rank) / 2 < metrics["mrr@10"] <= (1 / rank + 1.0) / 2 + 1e-4


def test_browser_opinion_reply_and_a_three_turn_chat(app_server, browser):
    """ "Is the acting good?" gets one line per review that judges the acting, each with its source and
    citation; in a three-turn chat the stand-alone "Is it scary?" and "Should I see it?" are not folded
    into the score question (no "Searched for"), and "And the cinematography?" shows what was searched."""
    context, page = _page(browser)
    page.goto(app_server.url)
    page.wait_for_selector("#qa-question textarea")
    _ask(page, "Is the acting good?", 1)
    page.wait_for_function("() => document.querySelectorAll('#qa-chat li').length >= 2", timeout=60_000)
    items = page.locator("#qa-chat li").all_inner_texts()
    assert all(re.search(r"\[\d+\]", item) for item in items), items
    assert "judge the acting" in page.locator("#qa-chat").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "opinion-acting.png"))
    page.locator("#qa-clear").click()
    page.wait_for_function("() => document.querySelector('#qa-card-1') === null", timeout=30_000)
    _ask(page, "Who composed the score?", 1)
    page.wait_for_function("() => document.querySelector('#qa-card-1').innerText.includes('Dalpalan')", timeout=60_000)
    _ask(page, "Is it scary?", 2)
    _ask(page, "Should I see it?", 3)
    page.wait_for_function("() => document.querySelector('#qa-chat').innerText.includes('overall verdict')",
                           timeout=60_000)
    chat = page.locator("#qa-chat").inner_text()
    assert "Searched for" not in chat and "must-watch" in chat
    page.evaluate("""() => {  // unroll the chat's scroll box so the screenshot shows all three turns
        const chat = document.querySelector('#qa-chat');
        for (const el of [chat, ...chat.querySelectorAll('*')]) {
            const style = getComputedStyle(el);
            if (el === chat || style.overflowY === 'auto' || style.overflowY === 'scroll') {
                el.style.height = 'auto'; el.style.maxHeight = 'none'; el.style.overflowY = 'visible';
            }
        }
    }""")
    page.locator("#qa-chat").screenshot(path=str(ARTIFACTS / "three-turn-chat.png"))
    _ask(page, "And the cinematography?", 4)
    page.wait_for_function("() => document.querySelector('#qa-chat').innerText.includes("
                           "'Searched for: How is the cinematography?')", timeout=60_000)
    context.close()


def test_browser_thumbs_up_and_down_are_saved_and_counted(app_server, browser):
    import json
    import subprocess
    import sys

    from .conftest import ROOT

    context, page = _page(browser)
    page.goto(app_server.url)
    page.wait_for_selector("#qa-question textarea")
    _ask(page, "Who composed the score?", 1)
    _ask(page, "What is the capital of France?", 2)
    # each answer has its own buttons, in chat order (they sit beside the message row, not in it)
    chat = page.locator("#qa-chat")
    chat.get_by_role("button", name="Like", exact=True).nth(0).click()
    chat.get_by_role("button", name="Dislike", exact=True).nth(1).click()
    path = app_server.feedback_dir / "feedback.jsonl"
    for _ in range(100):
        if path.exists() and len(path.read_text().splitlines()) >= 2:
            break
        page.wait_for_timeout(100)
    context.close()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["question"], r["liked"]) for r in records[-2:]] == [("Who composed the score?", True),
                                                                  ("What is the capital of France?", False)]
    stats = subprocess.run([sys.executable, "-m", "qa", "feedback", "stats", "--feedback", str(app_server.feedback_dir),
                            "--json"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    counts = json.loads(stats.stdout.strip().splitlines()[-1])
    assert counts["liked"] >= 1 and counts["disliked"] >= 1
