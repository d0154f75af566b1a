"""The Ask tab: a chat beside numbered, attributed passage cards.

Everything a reader sees that comes from a review is escaped (qa/ui/cards.py: html.escape, and Markdown
punctuation in the chat), so review text is always shown as text. `respond` is a pure function of its
inputs and the shared read-only engine; each browser session keeps its own chat history. A finished turn
writes the conversation for download; a thumbs up or down on an answer is saved for the testers.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Iterator

from ..answer import answer_json
from ..chat import clean_question
from ..config import AppConfig
from ..engine import Engine
from ..errors import BadQuestion, QAError
from ..feedback import compact_answer
from ..records import Answer, source_line
from ..retrieve import Filters
from ..serving import EngineLoader
from .cards import ALL_FILMS, cards_html, escape_markdown, unescape_markdown

EXAMPLE_POOL = [  # shown when the corpus mentions the word, so examples fit the reviews loaded
    ("Who composed the score?", "score"),
    ("How is the cinematography?", "cinematography"),
    ("Did critics like the pacing?", "pacing"),
    ("Who plays the villain?", "villain"),
    ("What is the running time?", "running time"),
    ("What are the film's weaknesses?", "clichés"),
    ("What is the Rotten Tomatoes score?", "rotten"),
    ("Who directed the film?", "directed"),
    ("What is the film about?", "plot"),
    ("Is it worth seeing in a cinema?", "cinema"),
]


MAX_EXAMPLES = 6


MAX_DOWNLOADS = 256  # conversation files kept for download; the oldest go first


DOWNLOAD_TTL = AppConfig.download_ttl  # seconds a served copy of a conversation file is kept (each turn makes a new one)


ALL_REVIEWS = "All reviews"


OUTLET_PREFIX = "Outlet: "


def per_review_html(answer: Answer, engine: Engine) -> str:
    head = f'<p class="qa-coverage"><b>{html.escape(answer.coverage)}</b></p>'
    # Its own card ids: the ranked cards above already use qa-card-N, and an id names one element.
    return head + cards_html(answer.per_review, engine, "No review in scope.", id_prefix="qa-review-card")


def reply_markdown(answer: Answer) -> str:
    """An answer quotes (a blockquote per sentence, with its confidence); an abstention is one plain
    sentence, so the two never look alike."""
    if answer.answered and answer.kind != "fact":  # an opinion reply: one list item per review
        lines = ["\n".join(f"- {escape_markdown(line[2:])}" if line.startswith("- ") else escape_markdown(line)
                           for line in answer.summary.split("\n"))]
        lines.append(f"*Confidence of the first line: {answer.confidence:.0%}*")
    elif answer.answered:
        lines = ["> " + escape_markdown(line) for line in answer.summary.split("\n")]
        lines.append(f"*Confidence: {answer.confidence:.0%}*")
    else:
        lines = [escape_markdown(answer.summary)]
    extra = []
    if answer.used_history:  # only when an earlier turn was used
        extra.append(f"*Searched for: {escape_markdown(answer.query_used)}*")
    extra += [f"*{escape_markdown(n)}*" for n in answer.notices]
    extra.append(f"*{escape_markdown(answer.coverage)}*")
    return "\n\n".join(lines + extra)


def _text_of(message) -> str:
    content = message.get("content") if isinstance(message, dict) else message
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")


def user_turns(history: list) -> list[str]:
    """The reader's earlier questions as typed (the chat holds them escaped for display)."""
    return [unescape_markdown(_text_of(m)) for m in history or [] if isinstance(m, dict) and m.get("role") == "user"]


def _message(role: str, text: str) -> dict:
    return {"role": role, "content": [{"type": "text", "text": text}]}


def turn_markdown(question: str, reply: str, answer: Answer | None = None, reviews: dict | None = None) -> str:
    """One turn of the downloadable conversation: the question and the reply escaped exactly as the chat
    shows them, then each cited passage (or, for an abstention, each closest passage) with its source line."""
    lines = [f"**Question:** {escape_markdown(' '.join(question.split()))}", "", reply]
    if answer is not None and answer.hits and reviews is not None:
        if answer.answered:
            cited = sorted({s.rank for s in answer.answer_spans if s.kind == "sentence"})
            hits, head = [answer.hits[r - 1] for r in cited], "Cited passages:"
        else:
            hits, head = list(answer.hits), "Closest passages: none of them answers the question."
        lines += ["", f"*{escape_markdown(head)}*"]
        for hit in hits:
            source = source_line(reviews[hit.passage.review_id], hit.passage)
            lines += ["", f"\\[{hit.rank}\\] {escape_markdown(source)}", "",
                      "> " + escape_markdown(" ".join(hit.passage.text.split()))]
    return "\n".join(lines)


def conversation_markdown(turns: list[str]) -> str:
    """The whole conversation as one Markdown document, turns in order."""
    return "# Film review Q&A: conversation\n\n" + "\n\n---\n\n".join(turns) + "\n"


def write_conversation(turns: list[str], folder: Path, keep: int = MAX_DOWNLOADS) -> Path:
    """Write the conversation to folder/<content hash>/conversation.md (a path per content, so readers in
    other sessions never overwrite each other's file) and return the path. At most `keep` conversations
    stay in the folder, the newest: a server that runs for days keeps a bounded folder (a reader's
    download is served from Gradio's copy, so removing an old file breaks no open page at once)."""
    import hashlib
    import shutil

    text = conversation_markdown(turns)
    target = folder / hashlib.sha256(text.encode("utf-8")).hexdigest()[:16] / "conversation.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    entries = []
    for entry in folder.iterdir():
        try:
            entries.append((entry.stat().st_mtime, entry))
        except FileNotFoundError:  # another session pruned it first
            pass
    for _, old in sorted(entries, reverse=True)[keep:]:
        if old != target.parent:
            shutil.rmtree(old, ignore_errors=True)
    return target


def prune_served_copies(cache: Path, max_age: float, name: str = "conversation.md") -> int:
    """Delete Gradio's served copies of conversation files (<cache>/<hash>/conversation.md) older than
    `max_age` seconds, and their folders; returns how many went. Written by hand because Gradio 6.31's
    `delete_cache` left every copy in place in bench/soak.py (11,640 after 30 minutes)."""
    import time

    now, removed = time.time(), 0
    for path in Path(cache).glob(f"*/{name}"):
        try:
            if now - path.stat().st_mtime <= max_age:
                continue
            path.unlink()
        except FileNotFoundError:  # another request pruned it first
            continue
        removed += 1
        try:
            path.parent.rmdir()
        except OSError:  # not empty: something else lives there
            pass
    return removed


def respond(message: str, history: list, film: str | None, review_title: str | None, k: int,
            loader: EngineLoader) -> Iterator[tuple[list, str, str, str, str, str | None, dict | None]]:
    """One chat turn. Yields (history, cleared textbox, cards html, per-review html, searched-for, turn
    Markdown for the downloadable conversation, or None while the turn is not finished, and what a
    reader's vote on the reply records: {"answer": the answer object, "history", "film"}, or None for a
    reply that is not an answer)."""
    history = list(history or [])
    try:
        clean_question(message)
    except BadQuestion as exc:
        yield history + [_message("assistant", str(exc))], "", cards_html((), None), "", "", None, None
        return
    shown = history + [_message("user", escape_markdown(" ".join(str(message).split())))]
    if not loader.ready:
        yield (shown + [_message("assistant", "Loading the model and building the index; one moment…")],
               "", cards_html((), None, "Building the index…"), "", "", None, None)
    try:
        engine = loader.get()
        ids, outlet = None, None
        if review_title and review_title.startswith(OUTLET_PREFIX):
            outlet = review_title[len(OUTLET_PREFIX):]
        elif review_title and review_title != ALL_REVIEWS:
            ids = tuple(r.id for r in engine.reviews.values() if r.title == review_title)
        filters = Filters(film=None if film in (None, "", ALL_FILMS) else film, outlet=outlet, review_ids=ids)
        answer = engine.ask(message, user_turns(history), filters, engine.retrieval_settings(k=int(k)))
    except QAError as exc:
        text = escape_markdown(str(exc))
        yield (shown + [_message("assistant", text)], "", cards_html((), None), "", "", turn_markdown(message, text),
               None)
        return
    except Exception as exc:  # never a traceback in the chat
        text = f"Something went wrong ({exc.__class__.__name__}); please try again."
        yield (shown + [_message("assistant", text)], "", cards_html((), None), "", "", turn_markdown(message, text),
               None)
        return
    searched = f"Searched for: {escape_markdown(answer.query_used)}" if answer.used_history else ""
    reply = reply_markdown(answer)
    vote = {"answer": compact_answer(answer_json(answer, engine.reviews)), "history": user_turns(history),
            "film": filters.film, "versions": engine_versions(engine)}
    yield (shown + [_message("assistant", reply)], "", cards_html(answer.hits, engine, answer=answer),
           per_review_html(answer, engine), searched, turn_markdown(message, reply, answer, engine.reviews), vote)


def engine_versions(engine: Engine) -> dict:
    """What produced an answer: the index build and the models, for a vote on it."""
    from ..decide import MODEL_VERSION
    from ..rank import RANKER_VERSION
    from ..reader import READER_VERSION

    return {"index_built_at": engine.index_facts()["built_at"], "index_passages": len(engine.passages),
            "answer_model": MODEL_VERSION, "reader": READER_VERSION if engine.reader is not None else None,
            "ranker": RANKER_VERSION}


def record_vote(votes: dict, index, liked, feedback_dir: Path) -> str:
    """Save a reader's thumbs up or down on the chat message at `index` (Gradio's LikeData.index);
    `votes` maps each answer's position in the chat to what a vote on it records (replies that are not
    answers, such as "Please type a question", have none). Returns a short notice for the reader, or ""
    when nothing was saved."""
    from ..feedback import feedback_record, record_feedback

    position = index[0] if isinstance(index, (list, tuple)) else index
    vote = (votes or {}).get(position)
    if vote is None or not isinstance(liked, bool):
        return ""
    try:
        record_feedback(feedback_dir, feedback_record(vote["answer"], vote["history"], liked, vote["film"],
                                                      vote["versions"]))
    except OSError as exc:  # a full disk or a read-only folder: the reader hears it, the chat goes on
        return f"Your vote could not be saved ({exc.strerror or exc.__class__.__name__})."
    return "Thanks: your vote is saved for the testers."


def examples_for(engine: Engine) -> list[str]:
    text = " ".join(r.text.casefold() for r in engine.reviews.values())
    return [q for q, word in EXAMPLE_POOL if word in text][:MAX_EXAMPLES]


def add_ask_tab(loader: EngineLoader, downloads: Path, feedback_dir: Path, download_ttl: int, observer=None):
    """The tab's layout and events, inside an open `gr.Blocks` and `gr.Tabs`; returns the components its
    page-load event fills: (film, review, example buttons)."""
    import gradio as gr

    with gr.Tab("Ask"), gr.Row(equal_height=False):
        with gr.Column(scale=5):
            chatbot = gr.Chatbot(label="Conversation", height=460, buttons=["copy", "copy_all"],
                                 elem_id="qa-chat")
            with gr.Row():
                box = gr.Textbox(placeholder="Ask about the film, e.g. Who composed the score?", show_label=False,
                                 scale=6, elem_id="qa-question", max_lines=4, submit_btn=False)
                ask_btn = gr.Button("Ask", variant="primary", scale=1, elem_id="qa-ask")
            with gr.Row():
                example_btns = [gr.Button(visible=False, size="sm", elem_classes=["qa-example"])
                                for _ in range(MAX_EXAMPLES)]
            with gr.Row():
                film = gr.Dropdown(label="Film", choices=[ALL_FILMS], value=ALL_FILMS, visible=False,
                                   elem_id="qa-film")
                review = gr.Dropdown(label="Review or outlet", choices=[ALL_REVIEWS], value=ALL_REVIEWS, elem_id="qa-review")
                k = gr.Slider(1, 10, value=5, step=1, label="Passages (top k)", elem_id="qa-k")
            with gr.Row():
                clear = gr.Button("Clear chat", size="sm", elem_id="qa-clear")
                download = gr.DownloadButton("Download conversation", value=None, interactive=False,
                                             size="sm", elem_id="qa-download")
            turns = gr.State([])  # this session's turns as Markdown, for the download
            votes = gr.State({})  # chat position of each answer -> what a thumbs up or down on it records
        with gr.Column(scale=4):
            searched = gr.Markdown(elem_id="qa-searched")
            cards = gr.HTML(cards_html((), None), elem_id="qa-cards")
            with gr.Accordion("What each review says", open=False, elem_id="qa-per-review"):
                per_review = gr.HTML()

    def turn(message, history, film_value, review_value, k_value, done, voted):
        started, answer = time.perf_counter(), None
        for *shown, block, vote in respond(message, history, film_value, review_value, k_value, loader):
            if vote is not None:
                answer = vote["answer"]
            if block is not None and observer is not None:  # the turn's last output
                observer.record("chat", time.perf_counter() - started, "ok" if answer else "refused",
                                answer, message)
            if vote is not None:  # keyed by the reply's position in the chat, where a vote points
                voted = {**voted, len(shown[0]) - 1: vote}
            if block is None:
                yield *shown, done, gr.update(), voted
            else:
                done = [*done, block]
                yield (*shown, done, gr.update(value=str(write_conversation(done, downloads)), interactive=True),
                       voted)
                prune_gradio_copies()

    def prune_gradio_copies():
        """At most once a tenth of the TTL (the glob walks every cached file)."""
        if time.monotonic() - last_prune[0] >= download_ttl / 10:
            last_prune[0] = time.monotonic()
            prune_served_copies(Path(download.GRADIO_CACHE), download_ttl)

    last_prune = [0.0]  # the app's, shared by sessions: when Gradio's cache was last pruned

    inputs = [box, chatbot, film, review, k, turns, votes]
    outputs = [chatbot, box, cards, per_review, searched, turns, download, votes]
    box.submit(turn, inputs, outputs, api_visibility="private")
    ask_btn.click(turn, inputs, outputs, api_visibility="private")
    for btn in example_btns:
        btn.click(lambda q: q, btn, box, api_visibility="private").then(
            turn, inputs, outputs, api_visibility="private")
    clear.click(lambda: ([], cards_html((), None), "", "", [], gr.update(value=None, interactive=False), {}),
                None, [chatbot, cards, per_review, searched, turns, download, votes], api_visibility="private")

    def vote(voted, data: gr.LikeData):
        notice = record_vote(voted, data.index, data.liked, feedback_dir)
        if notice:
            gr.Info(notice)

    # Gradio finds the event-data parameter by its type; postponed annotations hide it as a string.
    vote.__annotations__["data"] = gr.LikeData

    chatbot.like(vote, votes, None, api_visibility="private")
    return film, review, example_btns


def ask_tab_on_load(loader: EngineLoader) -> list:
    """What the tab shows when a page opens: the film choices (shown for more than one film), the review
    and outlet choices, and the example questions that fit the reviews loaded."""
    import gradio as gr

    engine = loader.get()
    films = engine.films()
    titles = sorted({r.title for r in engine.reviews.values()})
    titles += sorted({OUTLET_PREFIX + r.source.outlet for r in engine.reviews.values() if r.source.outlet})
    examples = examples_for(engine)
    updates = [gr.update(choices=[ALL_FILMS, *films], visible=len(films) > 1),
               gr.update(choices=[ALL_REVIEWS, *titles])]
    updates += [gr.update(value=examples[i], visible=True) if i < len(examples) else gr.update(visible=False)
                for i in range(MAX_EXAMPLES)]
    return updates
