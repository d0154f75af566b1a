"""Fit the learned re-ranker (qa/ranker_model.json) on labelled reviews, and print what it learned.

    python train/subjqa.py --scope item        # once: SubjQA eval folders into .cache/subjqa/*-item
    python train/fit_ranker.py [--subjqa .cache/subjqa] [--out qa/ranker_model.json]

Fit:    SubjQA train splits searched per item (electronics, grocery, restaurants, tripadvisor; books and
        movies train are not in the snapshot) and evals/escape-dev (its queries repeated --escape-repeat
        times, so the film-review set is not drowned by product reviews).
Tune:   SubjQA test splits per item (books, electronics, grocery, restaurants, tripadvisor): early stopping
        on their nDCG@10.
Never read here: SubjQA dev splits and evals/escape (the reported sets, scored with `qa eval` and
        `qa compare`), and SubjQA movies dev/test (held out by the project).

Each query's candidates are the hybrid retriever's fused list (dense and BM25, 50 each); a candidate is
relevant when it overlaps an annotator's span or contains a gold answer (qa.evals.relevant_passages, the
rule `qa eval` scores with); its features come from qa.rank.features, the function serving calls.
LightGBM's lambdarank fits them; the model is saved in LightGBM's own text format inside a small JSON
manifest (version, feature names, what it was trained on), reloaded here and checked against the fitted
model's scores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

from qa.chat import clean_question  # noqa: E402
from qa.embed import Embedder, configure_offline  # noqa: E402
from qa.engine import Settings  # noqa: E402
from qa.evals import load_dataset, open_dataset_engine, relevant_passages  # noqa: E402
from qa.rank import FEATURES, RANKER_PATH, RANKER_VERSION, features, load_ranker  # noqa: E402
from qa.trees import Trees  # noqa: E402
from qa.retrieve import Filters, RetrievalSettings  # noqa: E402

FIT = [f"{d}-train-item" for d in ("electronics", "grocery", "restaurants", "tripadvisor")]
TUNE = [f"{d}-test-item" for d in ("books", "electronics", "grocery", "restaurants", "tripadvisor")]
ESCAPE_DEV = "evals/escape-dev"


@dataclass
class Groups:
    """Candidate rows of many queries: features, 0/1 labels, and each query's row count."""

    x: np.ndarray
    y: np.ndarray
    sizes: list[int]
    queries: int  # queries read (some have no relevant candidate and give no group)


def collect(folder: Path, embedder, cache: Path) -> Groups:
    dataset = load_dataset(folder)
    engine, maps = open_dataset_engine(dataset, Settings(), cache, embedder=embedder, progress=True)
    from_dataset = dataset.corpus_path is not None
    retrieval = RetrievalSettings(mode="hybrid")
    xs, ys, sizes = [], [], []
    for query in tqdm(dataset.queries, desc=f"features {dataset.name}", unit="query", leave=False):
        if not query.answerable:
            continue
        filters = Filters(metadata=query.filter)
        scope = engine.scope(filters)
        pool = list(range(len(engine.passages))) if scope is None else scope.tolist()
        relevant = relevant_passages(engine, query, pool, maps, from_dataset, dataset.evidence.get(query.id, []))
        found = engine.search(clean_question(query.text)[0], query.history, filters, retrieval)
        q, order, detail = found.query, found.order, found.detail
        labels = np.array([i in relevant for i in order], dtype=float)
        if not labels.any() or labels.all():  # nothing to learn from this query's order
            continue
        rows = features(q.text, q.lexical_text, q.vector, order, detail, engine.store, engine.retriever.terms)
        xs.append(rows)
        ys.append(labels)
        sizes.append(len(order))
    return Groups(np.vstack(xs) if xs else np.zeros((0, len(FEATURES))), np.concatenate(ys) if ys else np.zeros(0),
                  sizes, len(dataset.queries))


def join(groups: list[Groups]) -> Groups:
    return Groups(np.vstack([g.x for g in groups]), np.concatenate([g.y for g in groups]),
                  [s for g in groups for s in g.sizes], sum(g.queries for g in groups))


def mrr_at_10(scores: np.ndarray, data: Groups) -> float:
    """Mean over groups of 1 / rank of the first relevant candidate by `scores` (0 beyond rank 10)."""
    total, at = 0.0, 0
    for size in data.sizes:
        s, y = scores[at:at + size], data.y[at:at + size]
        order = np.argsort(-s, kind="stable")
        hits = np.flatnonzero(y[order])
        total += 1.0 / (hits[0] + 1) if len(hits) and hits[0] < 10 else 0.0
        at += size
    return total / len(data.sizes) if data.sizes else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjqa", default=".cache/subjqa", help="folders written by train/subjqa.py --scope item")
    parser.add_argument("--cache", default=".cache/evals", help="where dataset corpora are indexed")
    parser.add_argument("--out", default=str(RANKER_PATH))
    parser.add_argument("--escape-repeat", type=int, default=5)
    parser.add_argument("--trees", type=int, default=400)
    parser.add_argument("--leaves", type=int, default=7)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--ignore", nargs="*", default=[], choices=FEATURES, help="features the trees may not use")
    args = parser.parse_args(argv)
    configure_offline()
    try:
        import lightgbm
    except ImportError:
        print("error: train/fit_ranker.py needs LightGBM: pip install lightgbm", file=sys.stderr)
        return 2
    subjqa = Path(args.subjqa)
    missing = [n for n in FIT + TUNE if not (subjqa / n / "queries.jsonl").is_file()]
    if missing:
        print(f"error: {subjqa} lacks {', '.join(missing)}; run python train/subjqa.py --scope item first.",
              file=sys.stderr)
        return 2
    started = time.perf_counter()
    embedder = Embedder()
    fit_parts = {name: collect(subjqa / name, embedder, Path(args.cache)) for name in FIT}
    fit_parts["escape-dev"] = collect(Path(ESCAPE_DEV), embedder, Path(args.cache))
    tune_parts = {name: collect(subjqa / name, embedder, Path(args.cache)) for name in TUNE}
    collected = time.perf_counter() - started
    tune = join(list(tune_parts.values()))
    for name, part in [*fit_parts.items(), *tune_parts.items()]:
        print(f"{name:24s} {part.queries:5d} queries read, {len(part.sizes):5d} groups, {len(part.y):6d} candidates, "
              f"{int(part.y.sum()):5d} relevant")
    ignored = [FEATURES.index(name) for name in args.ignore]

    def fit_model(train: Groups):
        x = train.x.copy()
        x[:, ignored] = 0.0  # a constant column is never split on: the feature is left out
        model = lightgbm.LGBMRanker(objective="lambdarank", n_estimators=args.trees, num_leaves=args.leaves,
                                    learning_rate=args.learning_rate, min_child_samples=20, subsample=0.8,
                                    subsample_freq=1, colsample_bytree=0.8, random_state=0, verbose=-1)
        model.fit(x, train.y, group=train.sizes, feature_name=list(FEATURES), eval_X=(tune.x,), eval_y=(tune.y,), eval_group=[tune.sizes],
                  eval_at=[10], callbacks=[lightgbm.early_stopping(50, verbose=False)])
        return model

    # escape-dev out of fold: the film-review check used to choose settings (evals/escape is never read)
    fused = FEATURES.index("fused")
    folds, oof_hybrid, oof_ranked = 4, [], []
    escape = fit_parts["escape-dev"]
    starts = np.cumsum([0, *escape.sizes])
    for k in range(folds):
        held = [g for g in range(len(escape.sizes)) if g % folds == k]
        kept = [g for g in range(len(escape.sizes)) if g % folds != k]

        def part(groups: list[int], repeat: int) -> Groups:
            idx = [np.arange(starts[g], starts[g + 1]) for g in groups for _ in range(repeat)]
            rows = np.concatenate(idx) if idx else np.zeros(0, dtype=int)
            return Groups(escape.x[rows], escape.y[rows], [escape.sizes[g] for g in groups for _ in range(repeat)], 0)

        model_k = fit_model(join([*(fit_parts[n] for n in FIT), part(kept, args.escape_repeat)]))
        test = part(held, 1)
        oof_hybrid.append(mrr_at_10(test.x[:, fused], test) * len(held))
        oof_ranked.append(mrr_at_10(model_k.predict(test.x, num_iteration=model_k.best_iteration_), test) * len(held))
    n_escape = len(escape.sizes)
    print(f"escape-dev out of fold ({n_escape} queries with a relevant candidate): MRR@10 hybrid "
          f"{sum(oof_hybrid) / n_escape:.4f}  ranked {sum(oof_ranked) / n_escape:.4f}")

    fit_parts["escape-dev"] = Groups(escape.x, escape.y, escape.sizes, escape.queries)
    fit = join([*(fit_parts[n] for n in FIT),
                Groups(np.vstack([escape.x] * args.escape_repeat), np.concatenate([escape.y] * args.escape_repeat),
                       escape.sizes * args.escape_repeat, escape.queries)])
    started = time.perf_counter()
    model = fit_model(fit)
    fitted = time.perf_counter() - started
    text_model = model.booster_.model_to_string(num_iteration=model.best_iteration_)
    out = Path(args.out)
    import lightgbm

    trees = Trees.from_lightgbm(lightgbm.Booster(model_str=text_model).dump_model()).to_json()
    out.write_text(json.dumps({"version": RANKER_VERSION, "features": list(FEATURES), "trees": trees,
                               "lightgbm_model": text_model,
                               "trained_on": FIT + ["escape-dev"], "early_stopped_on": TUNE,
                               "ignored_features": list(args.ignore)}) + "\n", encoding="utf-8")
    served = load_ranker(out)
    check = tune.x[:: max(1, len(tune.x) // 2000)]
    if not np.allclose(served.scores(check), model.predict(check, num_iteration=model.best_iteration_), atol=1e-9):
        raise SystemExit("the saved ranker does not reproduce the fitted model's scores")
    print(f"\nfit: {len(fit.sizes)} groups / {len(fit.y)} candidates; tune: {len(tune.sizes)} groups / {len(tune.y)}")
    print(f"time: features {collected:.0f} s (includes indexing new corpora), fit {fitted:.1f} s; "
          f"{model.best_iteration_} trees of {args.leaves} leaves; {out} {out.stat().st_size // 1024} KB")
    for name, part in tune_parts.items():
        print(f"tune {name:22s} MRR@10 over candidates with a relevant one: hybrid {mrr_at_10(part.x[:, fused], part):.4f}"
              f"  ranked {mrr_at_10(served.scores(part.x), part):.4f}")
    gain = model.booster_.feature_importance(importance_type="gain", iteration=model.best_iteration_)
    print("\nfeature importance (share of total gain):")
    for name, g in sorted(zip(FEATURES, gain), key=lambda t: -t[1]):
        print(f"  {name:20s} {g / gain.sum():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
