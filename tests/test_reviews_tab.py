"""The Reviews tab in real Chromium against `python app.py`: add reviews, ask, delete, ask again."""

import shutil
import urllib.request

import pytest

from .conftest import ARTIFACTS, ROOT, AppServer
from .test_app import _ask, _page

LATE = ROOT / "tests" / "fixtures" / "late-review.md"
NEW_QUESTION = "Who is Zyrtalia Quenby?"


@pytest.fixture(scope="module")
def reviews_server(seed_index, tmp_path_factory):
    """Its own copies of the seed corpus and index: this tab writes to them."""
    corpus, index = seed_index
    root = tmp_path_factory.mktemp("reviews-tab")
    shutil.copytree(corpus, root / "corpus")
    shutil.copytree(index, root / "index")
    server = AppServer(root / "corpus", root / "index", root / "app.log")
    yield server
    server.stop()


def _open_tab(page, url):
    page.goto(url)
    page.wait_for_selector("#qa-question textarea")
    page.get_by_role("tab", name="Reviews").click()
    page.wait_for_function("() => document.querySelector('#qa-reviews-table').innerText.includes('002_03b15f6e9896f6a9.txt')")


def _upload(page, paths):
    page.locator("#qa-reviews-files input[type=file]").set_input_files([str(p) for p in paths])
    for p in paths:
        page.wait_for_function("name => document.querySelector('#qa-reviews-files').innerText.includes(name)",
                               arg=p.stem, timeout=30_000)  # the page splits name and suffix
    page.locator("#qa-reviews-upload").click()


def _status(page, text, timeout=120_000):
    page.wait_for_function("t => document.querySelector('#qa-reviews-status').innerText.includes(t)", arg=text,
                           timeout=timeout)
    return page.locator("#qa-reviews-status").inner_text()


def _cards_after_asking(page, question, turn):
    page.get_by_role("tab", name="Ask").click()
    _ask(page, question, turn)
    return page.locator("#qa-cards").inner_text()


def test_browser_add_a_review_ask_delete_it_ask_again(reviews_server, browser, tmp_path):
    context, page = _page(browser)
    _open_tab(page, reviews_server.url)
    table = page.locator("#qa-reviews-table").inner_text()
    assert "002_03b15f6e9896f6a9.txt" in table and "late-review" not in table

    # one bad file refuses the whole upload, in one sentence naming it; nothing is added
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"text": "fine"}\nnot json\n', encoding="utf-8")
    _upload(page, [LATE, bad])
    message = _status(page, "broken.jsonl")
    assert "not valid JSON" in message and "nothing was added" in message
    assert "late-review" not in page.locator("#qa-reviews-table").inner_text()

    # the good file alone lands, is listed, and answers the question only it answers
    page.locator("#qa-reviews-files button[aria-label='Clear']").first.click()
    _upload(page, [LATE])
    assert "Added 1 review" in _status(page, "Added")
    page.wait_for_function("() => document.querySelector('#qa-reviews-table').innerText.includes('late-review.md')")
    cards = _cards_after_asking(page, NEW_QUESTION, 1)
    assert "Zyrtalia Quenby" in cards and "Night Desk" in cards

    # delete it: the question is no longer answered from it
    page.get_by_role("tab", name="Reviews").click()
    chosen = page.locator("#qa-reviews-chosen input")
    chosen.click()
    page.get_by_role("option", name="Escape (2024)/late-review.md").click()
    page.locator("#qa-reviews-delete").click()
    assert "Deleted Escape (2024)/late-review.md" in _status(page, "Deleted")
    assert "late-review" not in page.locator("#qa-reviews-table").inner_text()
    assert "Zyrtalia" not in _cards_after_asking(page, NEW_QUESTION, 2)

    # the page counts as open, so its session is kept (qa/sessions.py)
    with urllib.request.urlopen(reviews_server.url + "metrics", timeout=10) as response:
        metrics = response.read().decode()
    assert any(line.startswith("qa_open_pages ") and float(line.split()[1]) >= 1 for line in metrics.splitlines())
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "reviews-tab.png"), full_page=True)
    context.close()


def test_browser_two_uploads_at_once_both_land(reviews_server, browser, tmp_path):
    first, second = tmp_path / "first.md", tmp_path / "second.md"
    first.write_text("---\ntitle: First at once\n---\nThe usher, Pellinore Vashti, sold the popcorn.\n", encoding="utf-8")
    second.write_text("---\ntitle: Second at once\n---\nMy seat neighbour, Quillon Ardmore, slept through it.\n",
                      encoding="utf-8")
    pages = [_page(browser) for _ in range(2)]
    for _, page in pages:
        _open_tab(page, reviews_server.url)
    for (_, page), path in zip(pages, (first, second)):
        page.locator("#qa-reviews-files input[type=file]").set_input_files(str(path))
        page.wait_for_function("name => document.querySelector('#qa-reviews-files').innerText.includes(name)",
                               arg=path.stem, timeout=30_000)
    for _, page in pages:  # both clicks before either build ends
        page.locator("#qa-reviews-upload").click()
    for _, page in pages:
        assert "Added 1 review" in _status(page, "Added")
    table = pages[1][1].locator("#qa-reviews-table").inner_text()
    assert "first.md" in table and "second.md" in table
    cards = _cards_after_asking(pages[0][1], "Who is Quillon Ardmore?", 1)
    assert "Quillon Ardmore" in cards
    for context, _ in pages:
        context.close()


def test_soak_bench_smoke_with_an_upload_through_the_tab(reviews_server):
    """bench/soak.py --smoke against this server: clients ask, chat and send bad input for 20 seconds, a
    review is uploaded through the Reviews tab's own event halfway, and nothing fails."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "bench/soak.py", "--smoke", "--json", "--url", reviews_server.url,
                          "--pid", str(reviews_server.proc.pid)], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-2000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["failures"] == 0 and result["upload"] == "added" and result["requests"] > 20
    assert result["new_review_after_build_s"] is not None  # the uploaded review answered its question
    assert result["healthz_not_200"] == 0
