"""The web app: one module per tab, composed here.

    ask       the chat beside attributed passage cards; conversation download; readers' votes
    label     testers label their own questions into a BEIR folder for `qa eval`
    reviews   add reviews from the browser (files or pasted), list and delete them (only for a signed-in
              user or on a loopback address; app.py decides)
    evaluate  score a labelled set, or load a `qa eval --out` folder
    api       POST /gradio_api/run/ask, the same fields as `qa ask --json`
    cards     what the tabs share: passage cards, escaping, the film list's "all films", the style sheet

Each tab module imports only `cards` of its siblings, so nothing imports a module that imports it back.
Building the app loads no model and reads no index; that happens on first use.
"""

from __future__ import annotations

from pathlib import Path

from ..config import EVAL_CACHE, EVALS_DIR, LABELS_DIR, default_feedback_dir
from ..serving import EngineLoader
from .api import add_endpoints, api_ask  # noqa: F401
from .ask import (DOWNLOAD_TTL, add_ask_tab, ask_tab_on_load, conversation_markdown, per_review_html,  # noqa: F401
                  prune_served_copies, record_vote, reply_markdown, respond, turn_markdown, user_turns,
                  write_conversation)
from .cards import ALL_FILMS, CSS, cards_html, escape_markdown, unescape_markdown  # noqa: F401
from .evaluate import add_evaluate_tab, eval_output_folder, evaluate_tab_on_load, run_evaluation  # noqa: F401
from .label import add_label_tab


def build_demo(loader: EngineLoader, evals_dir: Path = EVALS_DIR, cache_dir: Path = EVAL_CACHE,
               noop_endpoint: bool = False, ask_concurrency: int = 8, outputs_root: Path | None = None,
               download_ttl: int = DOWNLOAD_TTL, labels_dir: Path = LABELS_DIR, feedback_dir: Path | None = None,
               observer=None, sweeper=None, reviews_tab: bool = False):
    """The Blocks app: the tabs and endpoints above, and the page-load events that fill them.
    Label sets are saved under `labels_dir`; readers' votes go to `feedback_dir` (default: `feedback/`
    beside the index folder). `observer` (qa/observe.py) counts and logs each chat turn and `ask` call;
    `sweeper` (qa/sessions.py) learns which sessions have a page open. `reviews_tab` adds the Reviews tab."""
    import tempfile

    import gradio as gr

    if feedback_dir is None:
        feedback_dir = default_feedback_dir(loader.settings)
    # Conversation files for download; removed with the process (Gradio serves copies from its own cache,
    # pruned after chat turns once older than the TTL, so a server that runs for days keeps a bounded cache).
    downloads_dir = tempfile.TemporaryDirectory(prefix="qa-conversations-")
    with gr.Blocks(title="Film review Q&A") as demo:
        demo.downloads_dir = downloads_dir  # kept alive as long as the app
        if sweeper is not None:
            sweeper.attach(demo)
        gr.Markdown("## Ask the reviews\nEvery answer quotes the reviews and shows where each passage comes from.")
        with gr.Tabs():
            film, review, example_btns = add_ask_tab(loader, Path(downloads_dir.name), feedback_dir, download_ttl,
                                                     observer)
            label_film = add_label_tab(loader, labels_dir)

            def on_load_all():
                film_update, *rest = ask_tab_on_load(loader)
                return [film_update, *rest, gr.update(choices=film_update.get("choices", [ALL_FILMS]))]

            demo.load(on_load_all, None, [film, review, *example_btns, label_film], api_visibility="private")

            if reviews_tab:
                from .reviews import add_reviews_tab, reviews_tab_on_load

                reviews_outputs = add_reviews_tab(loader)
                demo.load(lambda: reviews_tab_on_load(loader), None, list(reviews_outputs), api_visibility="private")

            dataset = add_evaluate_tab(loader, evals_dir, cache_dir, outputs_root, labels_dir)
            demo.load(lambda name: evaluate_tab_on_load(name, evals_dir, labels_dir), dataset, dataset,
                      api_visibility="private")

        add_endpoints(loader, ask_concurrency, noop_endpoint, observer)
    return demo
