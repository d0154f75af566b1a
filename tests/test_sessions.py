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
