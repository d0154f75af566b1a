"""Idle sessions' state is let go (qa/sessions.py), on Gradio's own state holder."""

import datetime

import pytest

from qa.sessions import SessionSweeper


@pytest.fixture()
def holder():
    from qa.embed import configure_offline

    configure_offline()
    import gradio as gr
    from gradio.state_holder import StateHolder

    with gr.Blocks() as demo:
        gr.State([])
        gr.Textbox()
    holder = StateHolder()
    holder.set_blocks(demo)
    return holder


def test_sessions_without_an_open_page_go_once_idle_and_open_pages_stay(holder):
    sweeper = SessionSweeper(idle_seconds=300)
    for sid in ("api-client", "closed-page", "open-page", "recent"):
        holder[sid]
    sweeper.page_opened("open-page")
    sweeper.page_opened("closed-page")
    sweeper.page_closed("closed-page")
    later = datetime.datetime.now() + datetime.timedelta(seconds=301)
    holder.time_last_used["recent"] = later - datetime.timedelta(seconds=10)
    assert sweeper.sweep(holder, now=later) == 2
    assert set(holder.session_data) == {"open-page", "recent"} == set(holder.time_last_used)
    assert sweeper.dropped == 2
    holder["api-client"]  # a client that comes back starts a fresh session, as after Gradio's own eviction
    assert "api-client" in holder.session_data


def test_nothing_goes_before_the_idle_time(holder):
    sweeper = SessionSweeper(idle_seconds=300)
    for i in range(5):
        holder[f"s{i}"]
    assert sweeper.sweep(holder) == 0 and len(holder.session_data) == 5


def test_freed_heap_goes_back_to_the_os():
    """A transient peak does not stay in RSS: after freeing 200 MB of small blocks, malloc_trim hands
    the pages back (on glibc; elsewhere the call is a no-op and the test is skipped)."""
    from pathlib import Path

    from qa.sessions import _libc, release_freed_heap

    if _libc() is None:
        pytest.skip("not glibc")

    def rss_mb() -> float:
        line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    release_freed_heap()
    before = rss_mb()
    blocks = [bytearray(1000) for _ in range(200_000)]  # small blocks: the heap, not mmap
    top = [bytearray(1000) for _ in range(10)]  # still in use above them, so glibc cannot trim on free
    peak = rss_mb()
    del blocks
    kept = rss_mb()
    release_freed_heap()
    assert peak - before > 150 and kept - before > 0.8 * (peak - before)  # glibc kept the freed pages
    assert rss_mb() - before < 0.3 * (peak - before) and top  # and handed them back when asked
