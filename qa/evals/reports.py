"""What an eval run writes and shows: per-query rows (misses first), the metric table, report.md,
the recall@k curve and the reliability plot (matplotlib, Agg), and the files of `qa eval --out`:
metrics.json, per_query.csv, answers.csv, run.trec, qrels.trec (and review_* for review-level labels).
Recall@k on the plot is the mean over scored queries of relevant passages in the top k / relevant in pool.
"""

from __future__ import annotations
import csv
import json

from pathlib import Path

from ..records import source_line
from .metrics import EvalResult, QueryResult


def _source(engine, position: int) -> str:
    p = engine.passages[position]
    return source_line(engine.reviews[p.review_id], p)


def _snippet(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


PER_QUERY_FIELDS = ["query_id", "kind", "question", "query_used", "first_relevant_rank", "relevant_in_pool",
                    *(f"top{n}_{part}" for n in range(1, 4) for part in ("text", "source", "relevant"))]


def per_query_rows(result: EvalResult, engine) -> list[dict]:
    """One row per query (PER_QUERY_FIELDS): its first relevant rank and its top 3 passages with sources."""
    rows = []
    for r in result.results:
        row = {"query_id": r.query.id, "kind": r.query.kind, "question": r.query.text, "query_used": r.query_used,
               "first_relevant_rank": "" if r.first_relevant is None else r.first_relevant,
               "relevant_in_pool": len(r.relevant)}
        for n, i in enumerate(r.ranked[:3], 1):
            row.update({f"top{n}_text": _snippet(engine.passages[i].text), f"top{n}_source": _source(engine, i),
                        f"top{n}_relevant": int(i in r.relevant)})
        rows.append(row)
    return rows


def metric_rows(summary: dict) -> list[list]:
    """[name, value] rows of a metrics summary (EvalResult.summary() or a metrics.json), for a table."""
    skip = {"dataset", "retriever", "k", "per_review_cap", "queries", "excluded", "per_kind", "recall_curve",
            "reliability", "unanswerable", "review_queries"}
    return [["queries scored", summary.get("queries")]] + [[name, value] for name, value in summary.items()
                                                            if name not in skip]


def write_outputs(result: EvalResult, engine, out: Path) -> None:
    """metrics.json, per_query.csv, run.trec, qrels.trec, review_run.trec, review_qrels.trec, answers.csv,
    report.md, recall_at_k.png and reliability.png in `out`."""
    from ranx import Qrels, Run

    out.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    summary["per_kind"] = result.per_kind
    summary["recall_curve"] = result.recall_curve
    summary["reliability"] = result.reliability
    (out / "metrics.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with open(out / "per_query.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, PER_QUERY_FIELDS, restval="")
        writer.writeheader()
        writer.writerows(per_query_rows(result, engine))
    if result.run:
        Run(result.run, name=f"{result.dataset}-{result.retriever}").save(str(out / "run.trec"), kind="trec")
        Qrels(result.qrels).save(str(out / "qrels.trec"), kind="trec")
    if result.review_run:
        Run(result.review_run, name=f"{result.dataset}-{result.retriever}-maxp").save(str(out / "review_run.trec"),
                                                                                      kind="trec")
        Qrels(result.review_qrels).save(str(out / "review_qrels.trec"), kind="trec")
    with open(out / "answers.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["query_id", "answerable", "answered", "confidence", "first_right", "reply_precision", "reply",
                         "review_recall"])
        for r in result.results:
            if r.reply is None or (r.excluded and r.query.answerable):
                continue
            right = r.reply.sentences_right
            writer.writerow([r.query.id, int(r.query.answerable), int(r.reply.answered), r.reply.confidence,
                             int(r.reply.first_right), round(sum(right) / len(right), 4) if right else "",
                             r.reply.summary, "" if r.reply.review_recall is None else round(r.reply.review_recall, 4)])
    (out / "report.md").write_text(report_markdown(result, engine), encoding="utf-8")
    plot_recall(result, out / "recall_at_k.png")
    plot_reliability(result.reliability, out / "reliability.png", f"{result.dataset}: reliability of answers")


def plot_recall(result: EvalResult, path) -> None:
    """Recall@k against k, as a PNG written to `path` (a file name or a binary file object)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ks = sorted(result.recall_curve)
    ax.plot(ks, [result.recall_curve[k] for k in ks], marker="o")
    ax.set_xlabel("k")
    ax.set_ylabel("Recall@k (passages)")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(ks or [1])
    ax.grid(alpha=0.3)
    ax.set_title(f"{result.dataset}: {result.retriever}, {len(result.scored)} queries")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_reliability(table: list[dict], path, title: str) -> None:
    """Accuracy against mean confidence per bin (each dot labelled with its question count), beside the
    diagonal, as a PNG written to `path` (a file name or a binary file object)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    if table:
        ax.plot([r["confidence"] for r in table], [r["accuracy"] for r in table], marker="o", label="answered questions")
        for r in table:
            ax.annotate(str(r["count"]), (r["confidence"], r["accuracy"]), textcoords="offset points", xytext=(4, -10),
                        fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence (mean per bin)")
    ax.set_ylabel("share whose first reply sentence answers")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def reply_problems(result: EvalResult) -> list[QueryResult]:
    """Wrong answers (answered, first sentence wrong) then false abstentions, then answers to
    unanswerable questions."""
    judged = [r for r in result.results if r.reply is not None]
    wrong = [r for r in judged if r.query.answerable and not r.excluded and r.reply.answered and not r.reply.first_right]
    missed = [r for r in judged if r.query.answerable and not r.excluded and not r.reply.answered]
    false = [r for r in judged if not r.query.answerable and r.reply.answered]
    return wrong + missed + false


def misses_first(result: EvalResult) -> list[QueryResult]:
    """Scored queries, misses first, then by rank of the first relevant passage, worst first."""
    return sorted(result.scored, key=lambda r: (r.first_relevant is not None, -(r.first_relevant or 0)))


def report_markdown(result: EvalResult, engine) -> str:
    lines = [f"# Eval: {result.dataset} ({result.retriever}, k={result.k}, per-review cap {result.per_review_cap})", "",
             f"{len(result.scored)} queries scored; {len(result.results) - len(result.scored)} left out "
             "(no relevant passage in their pool).", "", "| metric | value |", "|---|---|"]
    lines += [f"| {m} | {v:.4f} |" for m, v in result.metrics.items()]
    if result.per_kind:
        lines += ["", "| kind | queries | mrr@10 | hit@5 |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['queries']} | {v['mrr@10']:.4f} | {v['hit@5']:.4f} |" for k, v in result.per_kind.items()]
    if result.answers:
        lines += ["", "## Replies", "", "| metric | value |", "|---|---|"]
        lines += [f"| {m} | {v:.4f} |" for m, v in result.answers.items()]
        if result.reliability:
            lines += ["", "| confidence bin | questions | mean confidence | accuracy |", "|---|---|---|---|"]
            lines += [f"| {r['bin']} | {r['count']} | {r['confidence']:.3f} | {r['accuracy']:.3f} |" for r in result.reliability]
        problems = reply_problems(result)
        if problems:
            lines += ["", "### Wrong answers, false abstentions, answers to unanswerable questions", ""]
            for r in problems:
                if not r.query.answerable:
                    what = "answered an unanswerable question"
                elif r.reply.answered:
                    what = "wrong first sentence"
                else:
                    what = "false abstention"
                reply = " / ".join(r.reply.summary.split("\n"))
                lines.append(f"- {r.query.id}: {r.query.text} ({what}, confidence {r.reply.confidence:.2f}): {_snippet(reply, 200)}")
    lines += ["", "## Queries, misses first", ""]
    for r in misses_first(result):
        status = "MISS" if r.first_relevant is None else f"first relevant at rank {r.first_relevant}"
        lines.append(f"### {r.query.id}: {r.query.text} ({status})")
        if r.query_used != r.query.text:
            lines.append(f"- searched for: {r.query_used}")
        if r.query.answers:
            lines.append(f"- answers: {' | '.join(r.query.answers)}")
        for n, i in enumerate(r.ranked[:3], 1):
            mark = "✓" if i in r.relevant else "✗"
            lines.append(f"- {n}. {mark} {_snippet(engine.passages[i].text, 140)} ({_source(engine, i)})")
        lines.append("")
    excluded = [r for r in result.results if r.excluded]
    if excluded:
        lines += ["## Left out (no relevant passage in the pool)", ""]
        lines += [f"- {r.query.id}: {r.query.text}" for r in excluded]
    return "\n".join(lines) + "\n"


def text_table(rows: list[tuple[str, ...]]) -> list[str]:
    """Left-aligned columns, the first row a header underlined with dashes."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines
