"""Comparing two `qa eval --out` folders: the paired two-sided Student t-test per metric (ranx's
`compare`, or scipy's `ttest_rel` over the questions both runs kept when their passage labels differ),
win / tie / loss counts, and the replies that changed (answered, first line right) between the runs.
Significant at p < 0.05.
"""

from __future__ import annotations
import csv

from pathlib import Path

from ..errors import DatasetError
from .metrics import METRICS, public_name
from .reports import text_table


def compare_runs(out_a: Path, out_b: Path, metrics: list[str] | None = None) -> str:
    """Paired significance (two-sided paired t-test, ranx) per metric between two eval outputs."""
    from ranx import Qrels, Run, compare

    if not any((out / "run.trec").is_file() for out in (out_a, out_b)) and all(
            (out / "answers.csv").is_file() for out in (out_a, out_b)):  # only unanswerable questions
        return compare_replies(out_a / "answers.csv", out_b / "answers.csv", f"A:{out_a.name}", f"B:{out_b.name}")
    for out in (out_a, out_b):
        for name in ("run.trec", "qrels.trec"):
            if not (out / name).is_file():
                raise DatasetError(f"{out} has no {name}; run `qa eval DATASET --out {out}` first.")
    qrels_a = Qrels.from_file(str(out_a / "qrels.trec"), kind="trec")
    qrels_b = Qrels.from_file(str(out_b / "qrels.trec"), kind="trec")
    if qrels_a.to_dict() != qrels_b.to_dict():
        return _compare_own_labels(out_a, out_b, qrels_a, qrels_b, metrics or METRICS)
    runs = []
    for out in (out_a, out_b):
        run = Run.from_file(str(out / "run.trec"), kind="trec")
        run.name = out.name
        runs.append(run)
    if runs[0].name == runs[1].name:
        runs[0].name, runs[1].name = f"A:{runs[0].name}", f"B:{runs[1].name}"
    metrics = metrics or METRICS
    report = compare(qrels_a, runs=runs, metrics=metrics, max_p=0.05, stat_test="student",
                     make_comparable=True).to_dict()
    a, b = runs[0].name, runs[1].name
    rows = [("metric", a, b, "B-A", "p (paired t)", "B win/tie/loss", "")]
    for m in metrics:
        sa, sb = report[a]["scores"][m], report[b]["scores"][m]
        p = report[a]["comparisons"][b][m]
        wtl = report[b]["win_tie_loss"][a][m]
        rows.append((public_name(m), f"{sa:.4f}", f"{sb:.4f}", f"{sb - sa:+.4f}", f"{p:.4f}",
                     f"{wtl['W']}/{wtl['T']}/{wtl['L']}", "significant" if p < 0.05 else ""))
    lines = text_table(rows)
    n = len(qrels_a.to_dict())
    lines.append(f"{n} queries; two-sided paired Student t-test per metric (ranx), significant at p < 0.05.")
    if (out_a / "answers.csv").is_file() and (out_b / "answers.csv").is_file():
        lines += ["", compare_replies(out_a / "answers.csv", out_b / "answers.csv", a, b)]
    return "\n".join(lines)


def _compare_own_labels(out_a: Path, out_b: Path, qrels_a, qrels_b, metrics: list[str]) -> str:
    """Two runs whose passage labels differ, as when the chunker changed (passage ids and boundaries move):
    each run is scored per query against its own labels, and the paired t-test (scipy, as ranx's
    "student") runs over the questions both kept. Runs of different datasets share no question: refused."""
    from ranx import Run, evaluate
    from scipy.stats import ttest_rel

    common = sorted(qrels_a.to_dict().keys() & qrels_b.to_dict().keys())
    if not common:
        raise DatasetError(f"{out_a} and {out_b} share no scored question; compare runs of one dataset.")
    a, b = (f"A:{out_a.name}", f"B:{out_b.name}") if out_a.name == out_b.name else (out_a.name, out_b.name)
    per_query = []
    for out, qrels in ((out_a, qrels_a), (out_b, qrels_b)):
        run = Run.from_file(str(out / "run.trec"), kind="trec")
        scores = evaluate(qrels, run, metrics, return_mean=False, make_comparable=True)
        ids = list(qrels.to_dict())
        per_query.append({m: dict(zip(ids, scores[m])) for m in metrics})
    rows = [("metric", a, b, "B-A", "p (paired t)", "B win/tie/loss", "")]
    for m in metrics:
        va = [float(per_query[0][m][q]) for q in common]
        vb = [float(per_query[1][m][q]) for q in common]
        p = float(ttest_rel(va, vb).pvalue) if va != vb else 1.0
        p = 1.0 if p != p else p
        wins, losses = sum(y > x for x, y in zip(va, vb)), sum(y < x for x, y in zip(va, vb))
        rows.append((public_name(m), f"{sum(va) / len(va):.4f}", f"{sum(vb) / len(vb):.4f}",
                     f"{(sum(vb) - sum(va)) / len(va):+.4f}", f"{p:.4f}",
                     f"{wins}/{len(common) - wins - losses}/{losses}", "significant" if p < 0.05 else ""))
    lines = text_table(rows)
    lines.append(f"{len(common)} queries scored by both ({len(qrels_a.to_dict())} and {len(qrels_b.to_dict())}); "
                 "the passage labels differ (another chunker?), so each run is scored against its own; "
                 "two-sided paired Student t-test per metric (scipy), significant at p < 0.05.")
    if (out_a / "answers.csv").is_file() and (out_b / "answers.csv").is_file():
        lines += ["", compare_replies(out_a / "answers.csv", out_b / "answers.csv", a, b)]
    return "\n".join(lines)


def _reply_rows(path: Path) -> dict[str, dict]:
    with open(path, encoding="utf-8") as handle:
        return {r["query_id"]: r for r in csv.DictReader(handle)}


def compare_replies(path_a: Path, path_b: Path, name_a: str = "A", name_b: str = "B") -> str:
    """Paired t-tests (scipy) on per-question reply outcomes: answered (answerable questions), first
    sentence right (questions both runs answered), abstained (unanswerable questions)."""
    from scipy.stats import ttest_rel

    rows_a, rows_b = _reply_rows(path_a), _reply_rows(path_b)
    common = sorted(rows_a.keys() & rows_b.keys())
    outcomes = {
        "answered_rate": [(q, "answered") for q in common if rows_a[q]["answerable"] == "1"],
        "first_sentence_accuracy": [(q, "first_right") for q in common if rows_a[q]["answerable"] == "1"
                                    and rows_a[q]["answered"] == "1" and rows_b[q]["answered"] == "1"],
        "abstention_rate": [(q, "abstained") for q in common if rows_a[q]["answerable"] == "0"],
        "first_line_rate": [(q, "first_right") for q in common if rows_a[q]["answerable"] == "1"],
        "review_recall": [(q, "review_recall") for q in common if rows_a[q].get("review_recall")
                          and rows_b[q].get("review_recall")],
    }
    table = [("reply metric", name_a, name_b, "B-A", "p (paired t)", "questions", "")]
    for metric, keys in outcomes.items():
        if not keys:
            continue

        def value(row, column):
            return 1.0 - float(row["answered"]) if column == "abstained" else float(row[column])

        va = [value(rows_a[q], c) for q, c in keys]
        vb = [value(rows_b[q], c) for q, c in keys]
        p = float(ttest_rel(va, vb).pvalue) if va != vb else 1.0
        p = 1.0 if p != p else p  # nan when the differences are constant
        ma, mb = sum(va) / len(va), sum(vb) / len(vb)
        table.append((metric, f"{ma:.4f}", f"{mb:.4f}", f"{mb - ma:+.4f}", f"{p:.4f}", str(len(keys)),
                      "significant" if p < 0.05 else ""))
    return "\n".join(text_table(table))
