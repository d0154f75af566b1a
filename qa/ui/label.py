"""The Label tab: a tester searches their own reviews, marks what answers, and saves a BEIR folder.

Pure functions of their inputs, the shared engine and the labels root (the layout in `add_label_tab`
only wires them up). A passage is named by its value "review-id@start-end" (offsets into the repaired
review text the reader sees); an exact answer is selected with the mouse in the passage's text box and
kept in the tab's state as repaired offsets too. Saving turns both into raw offsets (qa/repair.py
`raw_span`), as every eval set stores them, so `qa eval` reads the folder with no conversion.
Review text reaches the page only through `cards_html` (escaped) and a text box (text, never markup).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..chat import clean_question
from ..errors import BadQuestion, QAError
from ..labels import Label, LabelSet
from ..retrieve import Filters
from ..serving import EngineLoader
from .cards import ALL_FILMS, cards_html, escape_markdown

LABEL_K = 10  # passages shown first; "Show more" adds LABEL_MORE
LABEL_MORE = 5


def passage_value(review_id: str, start: int, end: int) -> str:
    return f"{review_id}@{start}-{end}"


def parse_value(value: str) -> tuple[str, int, int]:
    review_id, _, span = value.rpartition("@")
    start, _, end = span.partition("-")
    return review_id, int(start), int(end)


@lru_cache(maxsize=2)
def _offset_maps(corpus_dir: str, built_at: str) -> dict:
    from ..corpus import read_corpus

    return read_corpus(corpus_dir).offset_maps


def offset_maps(engine) -> dict:
    """Review id -> OffsetMap for the corpus the engine serves, read once per index build."""
    return _offset_maps(str(engine.settings.corpus_dir), str(engine.index_facts()["built_at"]))


def empty_state() -> dict:
    """The tab's per-session state: the label being edited (its id and question once saved or opened),
    how many passages are shown, the passages, the exact answers selected, and what an opened label
    holds outside the passages shown (kept on saving)."""
    return {"query_id": "", "question": None, "k": LABEL_K, "hits": [], "exact": [], "kept": [],
            "kept_negatives": [], "kept_stances": {}, "metadata": {}}


def _history(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _film(value: str | None) -> str | None:
    return None if value in (None, "", ALL_FILMS) else value


def search(question: str, history_text: str, film: str | None, state: dict, loader: EngineLoader,
           k: int | None = None) -> tuple[str, list[tuple[str, str]], dict, str]:
    """(cards html, passage choices (label, value), new state, status) for the question's ranked passages."""
    state = {**empty_state(), **(state or {})}
    try:
        clean_question(question)
        engine = loader.get()
        k = int(k or state["k"])
        result = engine.search(question, _history(history_text), Filters(film=_film(film)),
                               engine.retrieval_settings(k=k))
    except (BadQuestion, QAError) as exc:
        return "", [], state, str(exc)
    hits = []
    for hit in result.hits:
        p = hit.passage
        review = engine.reviews[p.review_id]
        hits.append({"value": passage_value(p.review_id, p.start, p.end), "rank": hit.rank, "review_id": p.review_id,
                     "start": p.start, "end": p.end, "text": p.text,
                     "label": f"[{hit.rank}] {review.title} · ¶ {p.paragraph}"})
    state = {**state, "k": k, "hits": hits}
    choices = [(h["label"], h["value"]) for h in hits]
    # Own card ids (the Ask tab's qa-card-N are on the same page) and no answer badge: a search decides nothing.
    return (cards_html(tuple(result.hits), engine, id_prefix="qa-label-card", decided=False), choices, state,
            f"{len(hits)} passages; mark what answers.")


def passage_text(value: str | None, state: dict) -> str:
    hit = next((h for h in (state or {}).get("hits", []) if h["value"] == value), None)
    return hit["text"] if hit else ""


def _code_points(text: str, utf16_index: int) -> int:
    """A browser's selection offset (UTF-16 code units) as a Python string index: they differ after any
    character outside the Basic Multilingual Plane, such as an emoji."""
    return len(text.encode("utf-16-le")[: 2 * max(0, utf16_index)].decode("utf-16-le", errors="ignore"))


def select_answer(value: str | None, selected: tuple[int, int] | list[int] | None, selected_text: str | None,
                  state: dict) -> tuple[dict, str]:
    """Keep the text selected inside a passage (browser offsets, in UTF-16 code units) as an exact answer;
    (state, status). The selected text must match the passage, or the box was edited."""
    hit = next((h for h in (state or {}).get("hits", []) if h["value"] == value), None)
    if hit is None or not selected:
        return state, "Choose a passage, then select the answer in its text."
    s, e = (_code_points(hit["text"], int(i)) for i in selected[:2])
    while s < e and hit["text"][s].isspace():
        s += 1
    while e > s and hit["text"][e - 1].isspace():
        e -= 1
    if e <= s:
        return state, "Select some words of the passage."
    if selected_text is not None and selected_text.strip() != hit["text"][s:e]:
        return state, "The passage text was changed; choose the passage again and select the answer."
    span = {"value": value, "review_id": hit["review_id"], "start": hit["start"] + s, "end": hit["start"] + e,
            "text": hit["text"][s:e]}
    exact = [x for x in state.get("exact", []) if (x["review_id"], x["start"], x["end"]) !=
             (span["review_id"], span["start"], span["end"])]
    return {**state, "exact": [*exact, span]}, f"Exact answer: “{span['text']}”"


def exact_summary(state: dict) -> str:
    exact = (state or {}).get("exact", [])
    if not exact:
        return "No exact answer selected."
    return "Exact answers: " + "; ".join(f"“{escape_markdown(x['text'])}”" for x in exact)


def build_label(question: str, history_text: str, film: str | None, answers: list[str], negatives: list[str],
                unanswerable: bool, state: dict, maps: dict, praising: list[str] | None = None,
                criticising: list[str] | None = None) -> Label:
    """The Label the tab's marks mean: evidence = each exact answer, plus each passage marked as
    answering that holds no exact answer (as a whole), plus what an opened label held outside the passages
    shown (and its negatives and metadata); all in raw offsets. An answering passage also ticked as
    praising is labelled positive, as criticising negative, as both mixed (an opinion question's stance)."""
    exact = state.get("exact", []) + state.get("kept", [])
    evidence, texts = [], []
    for x in exact:
        evidence.append((x["review_id"], x["start"], x["end"]))
        texts.append(x["text"])
    for value in answers or []:
        review_id, start, end = parse_value(value)
        if not any(x["review_id"] == review_id and start <= x["start"] and x["end"] <= end for x in exact):
            evidence.append((review_id, start, end))
    raw = []
    stances = dict(state.get("kept_stances") or {})
    for review_id, start, end in evidence:
        mapping = maps.get(review_id)
        raw.append((review_id, *(mapping.raw_span(start, end) if mapping is not None else (start, end))))
        inside = [v for v in (answers or []) if _inside(v, review_id, start, end)]
        good = any(v in (praising or []) for v in inside)
        bad = any(v in (criticising or []) for v in inside)
        if inside:  # shown with its passage: the ticks say its stance, not what was saved before
            stances.pop(raw[-1], None)
        if good or bad:
            stances[raw[-1]] = "mixed" if good and bad else "positive" if good else "negative"
    negatives = list(dict.fromkeys([*(negatives or ()), *state.get("kept_negatives", ())]))
    return Label(state.get("query_id", ""), " ".join(question.split()), tuple(_history(history_text)), _film(film),
                 answerable=not unanswerable, answers=tuple(dict.fromkeys(t for t in texts if t)),
                 evidence=tuple(raw), negatives=tuple(negatives), metadata=dict(state.get("metadata") or {}),
                 stances={span: stance for span, stance in stances.items() if span in raw})


def _inside(value: str, review_id: str, start: int, end: int) -> bool:
    """Whether the passage choice `value` holds the span (review id, start, end)."""
    rid, s, e = parse_value(value)
    return rid == review_id and s <= start and end <= e


def save(set_name: str, question: str, history_text: str, film: str | None, answers: list[str],
         negatives: list[str], unanswerable: bool, state: dict, loader: EngineLoader,
         labels_root: Path, praising: list[str] | None = None,
         criticising: list[str] | None = None) -> tuple[str, list[tuple[str, str]], dict]:
    """(status, saved questions, state) after saving the marks to the set."""
    try:
        clean_question(question)
        label_set = LabelSet(labels_root, set_name)
        label = build_label(question, history_text, film, answers, negatives, unanswerable, state,
                            offset_maps(loader.get()), praising, criticising)
        saved = label_set.save(label)
    except (BadQuestion, QAError) as exc:
        return str(exc), saved_choices(set_name, labels_root), state
    return (f"Saved “{saved.question}” to {label_set.name} as {saved.query_id}.",
            saved_choices(set_name, labels_root), {**state, "query_id": saved.query_id, "question": saved.question})


def saved_choices(set_name: str, labels_root: Path) -> list[tuple[str, str]]:
    try:
        return [(x.question + ("" if x.answerable else " (unanswerable)"), x.query_id)
                for x in LabelSet(labels_root, set_name).labels()]
    except QAError:
        return []


def open_label(set_name: str, query_id: str | None, loader: EngineLoader, labels_root: Path):
    """Everything the tab shows for a saved question: (question, history, film, unanswerable, cards,
    choices, answers checked, negatives checked, state, status)."""
    try:
        label = LabelSet(labels_root, set_name).get(query_id or "")
    except QAError as exc:
        label, problem = None, str(exc)
    else:
        problem = f"There is no saved question {query_id} in {set_name}."
    if label is None:
        return ("", "", ALL_FILMS, False, "", [], [], [], empty_state(), problem)
    engine = loader.get()
    maps = offset_maps(engine)
    spans = []
    for review_id, start, end in label.evidence:
        mapping = maps.get(review_id)
        spans.append((review_id, *(mapping.span(start, end) if mapping is not None else (start, end))))
    history_text = "\n".join(label.history)
    cards, choices, state, status = search(label.question, history_text, label.film,
                                           {"query_id": label.query_id, "question": label.question}, loader)
    answers, exact, kept, shown_stances = [], [], [], {}
    for (review_id, start, end), raw in zip(spans, label.evidence):
        if raw in label.stances:
            hit = next((h for h in state["hits"] if h["review_id"] == review_id and h["start"] <= start
                        and end <= h["end"]), None)
            if hit is not None:
                shown_stances[hit["value"]] = label.stances[raw]
    for review_id, start, end in spans:
        hit = next((h for h in state["hits"] if h["review_id"] == review_id and h["start"] <= start and end <= h["end"]),
                   None)
        if hit is None:  # not among the passages shown: kept as it is, so saving again loses nothing
            text = engine.reviews[review_id].text[start:end] if review_id in engine.reviews else ""
            kept.append({"review_id": review_id, "start": start, "end": end, "text": text})
            continue
        if (start, end) == (hit["start"], hit["end"]):
            answers.append(hit["value"])
        else:
            text = engine.reviews[review_id].text[start:end]
            exact.append({"value": hit["value"], "review_id": review_id, "start": start, "end": end, "text": text})
    shown = {h["value"] for h in state["hits"]}
    metadata = {k: v for k, v in label.metadata.items() if k != "needs_label"}  # a tester is labelling it now
    state = {**state, "exact": exact, "kept": kept, "kept_negatives": [n for n in label.negatives if n not in shown],
             "kept_stances": dict(label.stances), "shown_stances": shown_stances, "metadata": metadata}
    note = f" {len(kept)} marked answers lie outside the passages shown and are kept." if kept else ""
    return (label.question, history_text, label.film or ALL_FILMS, not label.answerable, cards, choices,
            answers, [n for n in label.negatives if n in shown], state, f"Opened {label.query_id}. {status}{note}")


def delete(set_name: str, query_id: str | None, labels_root: Path) -> tuple[str, list[tuple[str, str]]]:
    try:
        removed = LabelSet(labels_root, set_name).delete(query_id or "")
    except QAError as exc:
        return str(exc), saved_choices(set_name, labels_root)
    status = f"Deleted {query_id}." if removed else f"There is no saved question {query_id} in {set_name}."
    return status, saved_choices(set_name, labels_root)


def add_label_tab(loader: EngineLoader, labels_root: Path):
    """The tab's layout and events, inside an open `gr.Blocks`; returns its film dropdown (filled on load)."""
    import gradio as gr

    with gr.Tab("Label"):
        gr.Markdown("Label questions on these reviews for `qa eval`: search, tick the passages that answer "
                    "(and those that do not), select the exact answer in a passage's text, or mark the "
                    f"question unanswerable; **Save** writes a BEIR folder under `{labels_root}`.")
        state = gr.State(empty_state())
        with gr.Row():
            set_name = gr.Textbox(label="Label set", value="my-labels", elem_id="qa-label-set", scale=2)
            saved = gr.Dropdown(label="Saved questions", choices=saved_choices("my-labels", labels_root), value=None,
                                elem_id="qa-label-saved", scale=4)
            open_btn = gr.Button("Open", size="sm", elem_id="qa-label-open", scale=1)
            delete_btn = gr.Button("Delete", size="sm", variant="stop", elem_id="qa-label-delete", scale=1)
        with gr.Row():
            question = gr.Textbox(label="Question", elem_id="qa-label-question", scale=4)
            history = gr.Textbox(label="Earlier questions, one a line (optional)", lines=1, elem_id="qa-label-history",
                                 scale=3)
            film = gr.Dropdown(label="Film", choices=[ALL_FILMS], value=ALL_FILMS, elem_id="qa-label-film", scale=2)
        with gr.Row():
            search_btn = gr.Button("Search", variant="primary", elem_id="qa-label-search")
            more_btn = gr.Button(f"Show {LABEL_MORE} more", elem_id="qa-label-more")
        status = gr.Markdown(elem_id="qa-label-status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=4):
                answers = gr.CheckboxGroup(label="Passages that answer", choices=[], elem_id="qa-label-answers")
                negatives = gr.CheckboxGroup(label="Passages that do not answer", choices=[],
                                             elem_id="qa-label-negatives")
                with gr.Accordion("Opinion questions: the review's stance in each answering passage", open=False):
                    praising = gr.CheckboxGroup(label="Answering passages that praise", choices=[],
                                                elem_id="qa-label-praising")
                    criticising = gr.CheckboxGroup(label="Answering passages that criticise (both ticked: mixed)",
                                                   choices=[], elem_id="qa-label-criticising")
                pick = gr.Dropdown(label="Select the exact answer in passage…", choices=[], value=None,
                                   elem_id="qa-label-pick")
                text = gr.Textbox(label="…by selecting it here with the mouse", lines=6, elem_id="qa-label-text")
                exact = gr.Markdown("No exact answer selected.", elem_id="qa-label-exact")
                clear_exact = gr.Button("Clear exact answers", size="sm", elem_id="qa-label-clear-exact")
                unanswerable = gr.Checkbox(label="These reviews do not answer this question",
                                           elem_id="qa-label-unanswerable")
                save_btn = gr.Button("Save", variant="primary", elem_id="qa-label-save")
            with gr.Column(scale=5):
                cards = gr.HTML(elem_id="qa-label-cards")

        def on_search(q, h, f, st, ticked_answers, ticked_negatives, more=False):
            st = st or empty_state()
            k = st.get("k", LABEL_K) + LABEL_MORE if more else LABEL_K
            if not more and " ".join((q or "").split()) != st.get("question"):
                st = empty_state()  # another question starts a new label; the opened or saved one stays edited
                ticked_answers, ticked_negatives = [], []
            html, choices, st, message = search(q, h, f, st, loader, k=k)
            # Ticks survive only on passages still listed: a tick on a passage of another question's
            # search is no choice any more, and Gradio refuses the next Save over it.
            valid = {value for _, value in choices}
            return (html, gr.update(choices=choices, value=[v for v in ticked_answers or [] if v in valid]),
                    gr.update(choices=choices, value=[v for v in ticked_negatives or [] if v in valid]),
                    gr.update(choices=choices, value=None), "", st, escape_markdown(message), exact_summary(st),
                    gr.update(choices=choices, value=[]), gr.update(choices=choices, value=[]))

        outs = [cards, answers, negatives, pick, text, state, status, exact, praising, criticising]
        ins = [question, history, film, state, answers, negatives]
        search_btn.click(on_search, ins, outs, api_visibility="private")
        question.submit(on_search, ins, outs, api_visibility="private")
        more_btn.click(lambda q, h, f, st, a, n: on_search(q, h, f, st, a, n, more=True), ins, outs,
                       api_visibility="private")
        pick.change(passage_text, [pick, state], text, api_visibility="private")

        def on_select(value, st, evt: gr.SelectData):
            st, message = select_answer(value, evt.index if isinstance(evt.index, (list, tuple)) else None,
                                        evt.value if isinstance(evt.value, str) else None, st)
            return st, exact_summary(st), escape_markdown(message)

        on_select.__annotations__["evt"] = gr.SelectData  # found by type; postponed annotations hide it
        text.select(on_select, [pick, state], [state, exact, status], api_visibility="private")
        clear_exact.click(lambda st: ({**st, "exact": []}, exact_summary({})), state, [state, exact],
                          api_visibility="private")

        def on_save(name, q, h, f, a, n, u, st, good, bad):
            message, choices, st = save(name, q, h, f, a, n, u, st, loader, labels_root, good, bad)
            return escape_markdown(message), gr.update(choices=choices, value=st.get("query_id") or None), st

        save_btn.click(on_save, [set_name, question, history, film, answers, negatives, unanswerable, state,
                                 praising, criticising], [status, saved, state], api_visibility="private")
        set_name.change(lambda name: gr.update(choices=saved_choices(name, labels_root), value=None), set_name, saved,
                        api_visibility="private")

        def on_open(name, query_id):
            q, h, f, u, html, choices, a, n, st, message = open_label(name, query_id, loader, labels_root)
            shown = st.get("shown_stances", {})
            good = [v for v in a if shown.get(v) in ("positive", "mixed")]
            bad = [v for v in a if shown.get(v) in ("negative", "mixed")]
            return (q, h, f, u, html, gr.update(choices=choices, value=a), gr.update(choices=choices, value=n),
                    gr.update(choices=choices, value=None), "", st, escape_markdown(message), exact_summary(st),
                    gr.update(choices=choices, value=good), gr.update(choices=choices, value=bad))

        open_btn.click(on_open, [set_name, saved],
                       [question, history, film, unanswerable, cards, answers, negatives, pick, text, state, status,
                        exact, praising, criticising], api_visibility="private")

        def on_delete(name, query_id):
            message, choices = delete(name, query_id, labels_root)
            return escape_markdown(message), gr.update(choices=choices, value=None)

        delete_btn.click(on_delete, [set_name, saved], [status, saved], api_visibility="private")

    return film
