"""The Reviews tab: add reviews from the browser (files or a pasted review), list them, delete one.

The checks and writes are qa/uploads.py's; after a change the served corpus is re-indexed in-process
(`EngineLoader.rebuild`: only changed files are embedded) and the new index swapped in as a hot reload
does, with the tab's progress bar following the build's. app.py adds the tab only for a signed-in user
(QA_AUTH) or on a loopback address. Review text reaches the page only as table cells (text, not markup).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import QAError
from ..serving import EngineLoader
from ..uploads import UploadError, add_files, add_pasted, delete_file
from .cards import escape_markdown

HEADERS = ["file", "film", "title", "outlet", "characters"]


def review_rows(engine) -> list[list]:
    """One row per review served: its file (under the corpus folder), film, title, outlet, length."""
    rows = [[r.source.path or "", r.film, r.title, r.source.outlet or "", len(r.text)] for r in engine.reviews.values()]
    return sorted(rows, key=lambda row: (row[1], row[0], row[2]))


def file_choices(engine) -> list[str]:
    return sorted({r.source.path for r in engine.reviews.values() if r.source.path})


def _served(loader: EngineLoader, relpaths: list[str]) -> bool:
    served = {r.source.path for r in loader.get().reviews.values()}
    return all(p in served for p in relpaths)


def _reindex(loader: EngineLoader, undo) -> str | None:
    """Re-index and swap; on a refused build, `undo()` takes the change back and the reason is returned."""
    outcome = loader.rebuild(wait=True, progress=True)
    if outcome.startswith("refused"):
        undo()
        return outcome.split(": ", 1)[-1]
    return None


def upload_files(paths: list[str] | None, film: str, loader: EngineLoader) -> str:
    """Add uploaded files (Gradio's temporary copies, named as the user's files) for `film`; returns
    the status sentence. Raises nothing: a refusal is the status."""
    try:
        files = [(Path(p).name, Path(p).read_bytes()) for p in (paths or [])]
        if not (film or "").strip():
            raise UploadError("Choose or type the film the reviews are about.")
        corpus = loader.settings.corpus_dir
        added = add_files(corpus, files, film)
    except OSError as exc:
        return f"The upload could not be read ({exc.strerror or exc}); nothing was added."
    except QAError as exc:
        return str(exc)
    failed = _reindex(loader, lambda: [(Path(corpus) / a.relpath).unlink(missing_ok=True) for a in added])
    if failed:
        return f"The reviews could not be indexed, so they were not added: {failed}"
    reviews = sum(a.reviews for a in added)
    notes = "".join(f" {a.relpath}: {a.note}" for a in added if a.note)
    where = ", ".join(a.relpath for a in added)
    them = "it" if reviews == 1 else "them"
    when = "now search" if _served(loader, [a.relpath for a in added]) else "will search"  # a swap may lag
    return f"Added {reviews} review{'s' * (reviews != 1)} ({where}); questions {when} {them}.{notes}"


def paste_review(film: str, title: str, outlet: str, url: str, text: str, loader: EngineLoader) -> str:
    try:
        if not (film or "").strip():
            raise UploadError("Choose or type the film the review is about.")
        corpus = loader.settings.corpus_dir
        added = add_pasted(corpus, film, title, text, outlet, url)
    except QAError as exc:
        return str(exc)
    failed = _reindex(loader, lambda: (Path(corpus) / added.relpath).unlink(missing_ok=True))
    if failed:
        return f"The review could not be indexed, so it was not added: {failed}"
    return f"Added the review “{title.strip()}” ({added.relpath}); questions now search it."


def delete_review_file(relpath: str | None, loader: EngineLoader) -> str:
    if not relpath:
        return "Choose the review file to delete."
    if file_choices(loader.get()) == [relpath]:
        return "This is the corpus's only review file; add another before deleting it."
    corpus = Path(loader.settings.corpus_dir)
    try:
        held = (corpus / relpath).read_bytes()
        delete_file(corpus, relpath)
    except OSError as exc:
        return f"{relpath} could not be read ({exc.strerror or exc}); nothing was deleted."
    except QAError as exc:
        return str(exc)
    failed = _reindex(loader, lambda: (corpus / relpath).write_bytes(held))
    if failed:
        return f"The index could not be updated, so {relpath} was put back: {failed}"
    return f"Deleted {relpath}; questions no longer search it."


def add_reviews_tab(loader: EngineLoader):
    """The tab's layout and events, inside an open `gr.Blocks`; returns the components its page-load
    event fills: (film, table, file)."""
    import gradio as gr

    with gr.Tab("Reviews"):
        gr.Markdown("Add reviews (files: .txt, .md, .jsonl, .csv, .html; or paste one), see those served, "
                    "delete one. Each change is indexed at once (only the changed files are embedded) and "
                    "served without a restart.")
        with gr.Row():
            film = gr.Dropdown(label="Film", choices=[], allow_custom_value=True, elem_id="qa-reviews-film", scale=2)
            files = gr.File(label="Review files", file_count="multiple", type="filepath", elem_id="qa-reviews-files",
                            scale=4)
        upload_btn = gr.Button("Add files", variant="primary", elem_id="qa-reviews-upload")
        with gr.Accordion("…or paste a review", open=False, elem_id="qa-reviews-paste"):
            with gr.Row():
                title = gr.Textbox(label="Title", elem_id="qa-reviews-title")
                outlet = gr.Textbox(label="Outlet", elem_id="qa-reviews-outlet")
                url = gr.Textbox(label="URL", elem_id="qa-reviews-url")
            text = gr.Textbox(label="Review text", lines=6, elem_id="qa-reviews-text")
            paste_btn = gr.Button("Add this review", elem_id="qa-reviews-add-pasted")
        status = gr.Markdown(elem_id="qa-reviews-status")
        table = gr.Dataframe(headers=HEADERS, datatype=["str", "str", "str", "str", "number"], interactive=False,
                             label="Reviews served", elem_id="qa-reviews-table")
        with gr.Row():
            chosen = gr.Dropdown(label="Review file to delete", choices=[], elem_id="qa-reviews-chosen", scale=4)
            delete_btn = gr.Button("Delete", variant="stop", elem_id="qa-reviews-delete", scale=1)

        def refreshed(message: str):
            engine = loader.get()
            # file names and titles come from the uploader: shown as text, never markup
            return (gr.update(value=escape_markdown(message)), review_rows(engine), gr.update(choices=file_choices(engine), value=None),
                    gr.update(choices=engine.films()))

        def on_upload(paths, film_value, progress=gr.Progress(track_tqdm=True)):
            progress(0, desc="Checking the files")
            message = upload_files(paths, film_value, loader)
            return (*refreshed(message), None if message.startswith("Added") else gr.update())  # kept to fix

        def on_paste(film_value, title_value, outlet_value, url_value, text_value,
                     progress=gr.Progress(track_tqdm=True)):
            progress(0, desc="Checking the review")
            message = paste_review(film_value, title_value, outlet_value, url_value, text_value, loader)
            cleared = message.startswith("Added")
            return (*refreshed(message), *([""] * 4 if cleared else [gr.update()] * 4))

        def on_delete(relpath, progress=gr.Progress(track_tqdm=True)):
            progress(0, desc="Deleting")
            return refreshed(delete_review_file(relpath, loader))

        outputs = [status, table, chosen, film]
        upload_btn.click(on_upload, [files, film], [*outputs, files], api_visibility="private",
                         concurrency_limit=None)
        paste_btn.click(on_paste, [film, title, outlet, url, text], [*outputs, title, outlet, url, text],
                        api_visibility="private", concurrency_limit=None)
        delete_btn.click(on_delete, chosen, outputs, api_visibility="private", concurrency_limit=None)
    return film, table, chosen


def reviews_tab_on_load(loader: EngineLoader):
    """What the tab shows when a page opens: (film choices, table rows, file choices)."""
    import gradio as gr

    engine = loader.get()
    films = engine.films()
    return (gr.update(choices=films, value=films[0] if films else None), review_rows(engine),
            gr.update(choices=file_choices(engine), value=None))
