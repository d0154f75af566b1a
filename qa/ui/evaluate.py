"""The Evaluate tab: score retrieval and replies on a labelled set from `evals/` or the Label tab's
`labels/`, or load a `qa eval --out` folder (only from inside QA_EVAL_OUTPUTS once the app is shared).
Questions and passages of a set are untrusted: the misses table escapes every field.
"""

from __future__ import annotations

import html
from pathlib import Path

from ..errors import DatasetError, QAError
from ..retrieve import MODES, RetrievalSettings
from ..serving import EngineLoader
from .cards import escape_markdown

LABELS_PREFIX = "labels/"


def eval_datasets(evals_dir: Path, labels_dir: Path | None = None) -> list[str]:
    """The sets under evals_dir by name, then the label sets as "labels/<name>"."""
    from ..labels import label_sets

    names = sorted(d.name for d in evals_dir.iterdir() if (d / "queries.jsonl").is_file()) if evals_dir.is_dir() else []
    return names + [LABELS_PREFIX + name for name in (label_sets(labels_dir) if labels_dir is not None else [])]


def dataset_folder(name: str, evals_dir: Path, labels_dir: Path | None) -> Path:
    if name.startswith(LABELS_PREFIX) and labels_dir is not None:
        return labels_dir / name[len(LABELS_PREFIX):]
    return evals_dir / name


def misses_html(rows: list[dict]) -> str:
    """Eval queries, misses first; every field is escaped (questions and passages are untrusted)."""
    if not rows:
        return '<p class="qa-empty">No queries.</p>'
    out = ['<table class="qa-misses"><tr><th>query</th><th>question</th><th>first relevant</th>'
           "<th>top passage</th><th>source</th></tr>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(str(r.get(k, '')))}</td>" for k in
                                    ("query_id", "question", "first_relevant_rank", "top1_text", "top1_source")) + "</tr>")
    return "".join(out) + "</table>"


def _png(draw):
    """A matplotlib drawing (a function of a binary file object) as a PIL image, without a file on disk."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    draw(buffer)
    buffer.seek(0)
    return Image.open(buffer)


def eval_output_folder(typed: str, outputs_root: Path | None) -> Path:
    """The `qa eval --out` folder a visitor typed. With `outputs_root` (a shared app) it must lie inside
    that folder after resolving `..` and links, typed from the working folder or from inside the root.
    Raises DatasetError in one sentence otherwise."""
    out = Path(typed.strip())
    if outputs_root is None:
        return out
    root = Path(outputs_root).resolve()
    for candidate in [out] if out.is_absolute() else [out, root / out]:  # "eval-out/x" or just "x"
        resolved = candidate.resolve()
        if resolved == root or root in resolved.parents:
            return resolved
    raise DatasetError(f"This app loads eval outputs only from {outputs_root}; give a folder inside it.")


def run_evaluation(dataset_name: str | None, retriever: str, out_folder: str, loader: EngineLoader, evals_dir: Path,
                   cache_dir: Path, outputs_root: Path | None = None, labels_dir: Path | None = None
                   ) -> tuple[list[list], object, str, str, object]:
    """(metrics rows, recall plot, misses html, status, reliability plot) for a dataset under evals_dir,
    rendered from the EvalResult in memory, or for an existing `qa eval --out` folder when one is given
    (inside `outputs_root` when that is set: a shared app opens no other server path).
    A plot is an image, a file path, or None."""
    import csv
    import json

    from ..evals import (evaluate_dataset, load_dataset, metric_rows, open_dataset_engine, per_query_rows,
                        plot_recall, plot_reliability)

    def misses_first(rows: list[dict]) -> list[dict]:
        return sorted(rows, key=lambda r: (r["first_relevant_rank"] != "", -int(r["first_relevant_rank"] or 0)))

    try:
        if out_folder and out_folder.strip():
            out = eval_output_folder(out_folder, outputs_root)
            if not (out / "metrics.json").is_file():
                return [], None, "", f"{out} holds no metrics.json; give a folder written by qa eval --out.", None
            metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
            with open(out / "per_query.csv", encoding="utf-8") as handle:
                per_query = list(csv.DictReader(handle))
            plot, reliability = out / "recall_at_k.png", out / "reliability.png"
            return (metric_rows(metrics), str(plot) if plot.is_file() else None, misses_html(misses_first(per_query)),
                    f"Loaded {out}.", str(reliability) if reliability.is_file() else None)
        if not dataset_name:
            return [], None, "", "Choose a dataset.", None
        if dataset_name not in eval_datasets(evals_dir, labels_dir):
            where = f"{evals_dir}" + (f" (or, as labels/<set>, under {labels_dir})" if labels_dir else "")
            return [], None, "", f"There is no dataset named {dataset_name} under {where}.", None
        dataset = load_dataset(dataset_folder(dataset_name, evals_dir, labels_dir))
        engine = loader.get()
        if dataset.corpus_path is not None:
            engine, maps = open_dataset_engine(dataset, engine.settings, cache_dir, embedder=engine.embedder,
                                               progress=False)
        else:
            from ..corpus import read_corpus

            maps = read_corpus(engine.settings.corpus_dir).offset_maps
        result = evaluate_dataset(engine, dataset, maps, mode=retriever, k=10, progress=False)
        status = f"Evaluated {dataset_name} with {result.retriever}: {len(result.scored)} queries scored."
        recall = _png(lambda f: plot_recall(result, f)) if result.recall_curve else None
        reliability = _png(lambda f: plot_reliability(result.reliability, f, f"{result.dataset}: reliability of answers"))
        return (metric_rows(result.summary()), recall, misses_html(misses_first(per_query_rows(result, engine))), status,
                reliability)
    except QAError as exc:
        return [], None, "", str(exc), None


def add_evaluate_tab(loader: EngineLoader, evals_dir: Path, cache_dir: Path, outputs_root: Path | None,
                     labels_dir: Path | None):
    """The tab's layout and events, inside an open `gr.Blocks` and `gr.Tabs`; returns its dataset
    dropdown (refreshed on page load)."""
    import gradio as gr

    with gr.Tab("Evaluate"):
        gr.Markdown("Score retrieval on a labelled question set from `evals/` or the Label tab's "
                    "`labels/`, or load a `qa eval --out` folder.")
        with gr.Row():
            datasets = eval_datasets(evals_dir, labels_dir)
            dataset = gr.Dropdown(label="Dataset", choices=datasets, value=datasets[0] if datasets else None,
                                  elem_id="qa-eval-dataset")
            retriever = gr.Radio(list(MODES), value=RetrievalSettings.mode, label="Retriever",
                                 elem_id="qa-eval-retriever")
            out_folder = gr.Textbox(label="…or an eval --out folder", placeholder="eval-out/escape-hybrid",
                                    elem_id="qa-eval-out")
        run_btn = gr.Button("Run evaluation", variant="primary", elem_id="qa-eval-run")
        eval_status = gr.Markdown(elem_id="qa-eval-status")
        with gr.Row():
            metrics_table = gr.Dataframe(headers=["metric", "value"], datatype=["str", "number"],
                                         label="Metrics", interactive=False, elem_id="qa-eval-metrics")
            plot = gr.Image(label="Recall@k", type="pil", interactive=False, elem_id="qa-eval-plot")
            reliability_plot = gr.Image(label="Reliability of answers", type="pil", interactive=False,
                                        elem_id="qa-eval-reliability")
        gr.Markdown("**Queries, misses first**")
        misses = gr.HTML(elem_id="qa-eval-misses")

        def evaluate(name, mode, folder):
            rows, image, table, status, reliability = run_evaluation(name, mode, folder, loader, evals_dir,
                                                                      cache_dir, outputs_root, labels_dir)
            return rows, image, table, escape_markdown(status), reliability

        run_btn.click(evaluate, [dataset, retriever, out_folder],
                      [metrics_table, plot, misses, eval_status, reliability_plot],
                      api_visibility="private")
    return dataset


def evaluate_tab_on_load(name, evals_dir: Path, labels_dir: Path | None):
    """Label sets saved since the app started are offered on the next page load."""
    import gradio as gr

    return gr.update(choices=eval_datasets(evals_dir, labels_dir), value=name)
