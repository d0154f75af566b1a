"""The ranking table of issue 12: dense, BM25, hybrid and the learned ranker on every reported set.

    python train/subjqa.py --scope item            # once
    python bench/rank_table.py [--subjqa .cache/subjqa] [--json]

Reported sets: the SubjQA dev splits searched per item (books, electronics, grocery, restaurants,
tripadvisor; never the movies dev/test splits) and evals/escape, each scored by `qa eval`'s own
evaluate_dataset (k=10). The SubjQA dev sets are also pooled (query ids prefixed by their set) for one
paired t-test of each retriever against hybrid (ranx.compare, two-sided Student's t), and evals/escape
is tested on its own. Per question kind on evals/escape too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

from qa.embed import Embedder, configure_offline  # noqa: E402
from qa.engine import Settings  # noqa: E402
from qa.evals import evaluate_dataset, load_dataset, open_dataset_engine  # noqa: E402

DEV = [f"{d}-dev-item" for d in ("books", "electronics", "grocery", "restaurants", "tripadvisor")]
MODES = ("dense", "bm25", "hybrid", "ranked")
SHOWN = ("mrr@10", "hit@1", "hit@5", "ndcg@10")


def p_values(qrels: dict, runs: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Two-sided paired Student's t p-value of each mode against hybrid, per metric (ranx.compare)."""
    from ranx import Qrels, Run, compare

    names = list(runs)
    report = compare(Qrels(qrels), [Run(runs[m], name=m) for m in names],
                     ["mrr@10", "hit_rate@1", "hit_rate@5", "ndcg@10"], stat_test="student", max_p=0.05,
                     make_comparable=True).to_dict()
    return {mode: {m.replace("hit_rate", "hit"): float(f"{float(v):.3g}") for m, v in report[mode]["comparisons"]["hybrid"].items()}
            for mode in names if mode != "hybrid"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjqa", default=".cache/subjqa")
    parser.add_argument("--cache", default=".cache/evals")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="evals/escape only, no SubjQA: the script still runs")
    args = parser.parse_args(argv)
    configure_offline()
    embedder = Embedder()
    sets = [(name, Path(args.subjqa) / name) for name in ([] if args.smoke else DEV)] + [("escape", ROOT / "evals" / "escape")]
    rows, pooled_qrels, pooled_runs, escape = [], {}, {m: {} for m in MODES}, {}
    for name, folder in sets:
        if not (folder / "queries.jsonl").is_file():
            print(f"error: {folder} is missing; run python train/subjqa.py --scope item first.", file=sys.stderr)
            return 2
        dataset = load_dataset(folder)
        if args.smoke:  # six questions are enough to show the script still runs
            dataset.queries = dataset.queries[:6]
        engine, maps = open_dataset_engine(dataset, Settings(), Path(args.cache), embedder=embedder, progress=False)
        for mode in MODES:
            result = evaluate_dataset(engine, dataset, maps, mode=mode, k=10, progress=False)
            rows.append({"dataset": name, "retriever": mode, "queries": len(result.scored),
                         **{m: result.metrics[m] for m in SHOWN}})
            if name == "escape":
                escape[mode] = result
            else:
                pooled_qrels.update({f"{name}/{q}": v for q, v in result.qrels.items()})
                pooled_runs[mode].update({f"{name}/{q}": v for q, v in result.run.items()})
    pooled = p_values(pooled_qrels, pooled_runs) if pooled_qrels else {}
    escape_p = p_values(escape["hybrid"].qrels, {m: escape[m].run for m in MODES})
    print("| dataset | retriever | queries | " + " | ".join(SHOWN) + " |")
    print("|---|---|---|" + "---|" * len(SHOWN))
    for r in rows:
        print(f"| {r['dataset']} | {r['retriever']} | {r['queries']} | " + " | ".join(f"{r[m]:.4f}" for m in SHOWN) + " |")
    from ranx import Qrels, Run, evaluate

    print("\nSubjQA dev sets pooled (" + str(len(pooled_qrels)) + " queries):")
    for mode in MODES if pooled_qrels else ():
        means = evaluate(Qrels(pooled_qrels), Run(pooled_runs[mode]), ["mrr@10", "hit_rate@1", "hit_rate@5", "ndcg@10"],
                         make_comparable=True)
        ps = pooled.get(mode, {})
        print(f"  {mode:7s} " + "  ".join(f"{m.replace('hit_rate', 'hit')} {v:.4f}" +
                                          (f" (p {ps[m.replace('hit_rate', 'hit')]:.4g})" if ps else "")
                                          for m, v in means.items()))
    print("\nevals/escape p-values against hybrid:", json.dumps(escape_p))
    print("\nevals/escape per question kind (MRR@10 / Hit@5):")
    for mode in MODES:
        print(f"  {mode:7s} " + "; ".join(f"{k} {v['mrr@10']:.3f}/{v['hit@5']:.3f}"
                                          for k, v in escape[mode].per_kind.items()))
    if args.json:
        print(json.dumps({"rows": rows, "pooled_p": pooled, "escape_p": escape_p}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
