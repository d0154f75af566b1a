"""Fit the answer decision (qa/answer_model.json) on labelled data, and draw its reliability plot.

    python bench/subjqa.py                  # once: SubjQA eval folders into .cache/subjqa
    python bench/train_answer.py [--subjqa .cache/subjqa] [--out qa/answer_model.json]

Fit (weights):            SubjQA train splits (electronics, grocery, restaurants, tripadvisor; books and
                          movies train are not in the snapshot) and evals/escape-dev.
Tune (Platt + threshold): SubjQA test splits of books, electronics, grocery, restaurants, tripadvisor and
                          evals/escape-dev.
In both, evals/escape-dev (film reviews, three reviews in scope) carries --escape-share of the weight and
the SubjQA sets (product reviews, one review in scope) share the rest equally. Because escape-dev is also
fitted on, its scores for calibration and the threshold are out-of-fold (4 folds of its questions).
Never read here:          SubjQA dev splits and evals/escape, evals/escape-unanswerable (the reported
                          sets), and SubjQA movies dev/test (held out by the project).

Each candidate sentence is labelled right when it overlaps an annotator's span or contains a gold answer
(qa.evals.span_answers, the same rule `qa eval` scores replies with). Two stages (qa/decide.py):
- sentence stage: LightGBM (200 trees of 4 leaves, binary log loss, monotone in the features whose
  direction is known; `--scorer linear` for a logistic regression) fits candidates;
- review stage, only with `--stages 2` (measured, not shipped: docs/answers.md): LightGBM (200 trees of 4 leaves) fits one row per (question,
  review), labelled whether any of the review's candidates is right, on qa.decide.review_rows of the
  sentence stage's out-of-fold scores (4 folds of questions), so it learns from scores like those of
  questions the sentence stage has not seen.
Both are rewritten as plain arrays (qa.trees.Trees, checked against LightGBM's own scores); a Platt fit
of the last stage's score of each (question, review) against whether its best candidate is right makes
the best candidate's probability calibrated; the threshold maximises the weighted balanced accuracy
(answered rate on answerable questions plus abstention rate on unanswerable ones, halved).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

from qa import answer_types, decide, engine, lexical  # noqa: E402
from qa.decide import FEATURES, MODEL_PATH, REVIEW_FEATURES, AnswerModel, Linear, review_rows  # noqa: E402
from qa.trees import Trees  # noqa: E402
from qa.embed import Embedder, configure_offline  # noqa: E402
from qa.engine import Settings  # noqa: E402
from qa.evals import (fold_text, gold_spans, load_dataset, open_dataset_engine,  # noqa: E402
                      span_answers)
from qa.retrieve import Filters  # noqa: E402

FIT = ["electronics-train", "grocery-train", "restaurants-train", "tripadvisor-train"]
TUNE = ["books-test", "electronics-test", "grocery-test", "restaurants-test", "tripadvisor-test"]
ESCAPE_DEV = "evals/escape-dev"
CACHE = Path(".cache/answer-features")
# The direction each feature may move the score, whatever the data: more similarity, more of the
# question's words, or a span of the asked-for type never make a sentence less likely to answer.
MONOTONE = {"sentence_cos": 1, "margin": 1, "sentence_terms": 1, "sentence_idf_terms": 1, "type_match": 1,
            "exact_type_match": 1, "unknown_terms": -1, "type_miss": -1,
            "passage_rank": -1}
FEATURE_CODE = "".join(inspect.getsource(m) for m in (decide, answer_types, lexical, engine))  # a change re-collects
NEUTRAL = AnswerModel(FEATURES, Linear(np.zeros(len(FEATURES)), np.ones(len(FEATURES)), np.zeros(len(FEATURES)), 0.0),
                      1.0, 0.0, 0.5)


@dataclass
class Collected:
    """One dataset's candidates as arrays: features, labels, question index, review index per candidate,
    and per question whether it is answerable."""

    x: np.ndarray
    y: np.ndarray
    question: np.ndarray
    review: np.ndarray
    answerable: np.ndarray

    def groups(self):
        """(question index, rows of its candidates) for every question, including those with none."""
        order = np.argsort(self.question, kind="stable")
        bounds = np.searchsorted(self.question[order], np.arange(len(self.answerable) + 1))
        for q in range(len(self.answerable)):
            yield q, order[bounds[q]:bounds[q + 1]]


def collect(folder: Path, embedder: Embedder, k: int = 5, cache: Path = CACHE) -> Collected:
    """Run every question of the dataset through the engine's own stages (Engine.prepare) and label
    its candidates; cached per dataset and feature set."""
    dataset = load_dataset(folder)
    key = hashlib.sha256(json.dumps([FEATURES, str(folder), (folder / "queries.jsonl").read_text(encoding="utf-8"),
                                     FEATURE_CODE]).encode()).hexdigest()[:12]
    path = cache / f"{dataset.name}-{key}.npz"
    if path.is_file():
        data = np.load(path)
        return Collected(data["x"], data["y"], data["question"], data["review"], data["answerable"])
    engine, maps = open_dataset_engine(dataset, Settings(), Path(".cache/evals"), embedder=embedder,
                                       progress=True, answer_model=NEUTRAL)
    from_dataset = dataset.corpus_path is not None
    retrieval = engine.retrieval_settings(k=k)
    x, y, question, review, answerable = [], [], [], [], []
    for n, q in enumerate(tqdm(dataset.queries, desc=dataset.name, unit="question", disable=not sys.stderr.isatty())):
        cands = engine.prepare(q.text, q.history, retrieval, Filters(metadata=q.filter)).candidates
        reviews = sorted({c.review_id for c in cands})
        spans = gold_spans(q, dataset.evidence.get(q.id, []), maps, reviews, from_dataset)
        answers = [fold_text(a) for a in q.answers if a.strip()]
        for c in cands:
            x.append(c.features)
            y.append(q.answerable and span_answers(engine.store.reviews[c.review_id].text, c.sentence,
                                                         spans.get(c.review_id, []), answers))
            question.append(n)
            review.append(reviews.index(c.review_id))
        answerable.append(q.answerable)
    out = Collected(np.array(x, float).reshape(-1, len(FEATURES)), np.array(y, bool), np.array(question, int),
                    np.array(review, int), np.array(answerable, bool))
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=out.x, y=out.y, question=out.question, review=out.review, answerable=out.answerable)
    print(f"{dataset.name}: {len(out.answerable)} questions, {len(out.y)} candidates", file=sys.stderr)
    return out


@dataclass
class Reviews:
    """One dataset's (question, review) rows for the review stage: its features (qa.decide.review_rows
    of the sentence stage's scores), whether any candidate of the review is right, whether its best
    candidate is, the question index, and per question whether it is answerable."""

    x: np.ndarray
    any_right: np.ndarray
    best_right: np.ndarray
    question: np.ndarray
    answerable: np.ndarray


def reviews_of(data: Collected, raw: np.ndarray) -> Reviews:
    x, any_right, best_right, question = [], [], [], []
    for q, rows in data.groups():
        if not len(rows):
            continue
        table, best, group = review_rows(data.x[rows], raw[rows], data.review[rows])
        for g in range(len(table)):
            x.append(table[g])
            any_right.append(data.y[rows[group == g]].any())
            best_right.append(data.y[rows[best[g]]])
            question.append(q)
    return Reviews(np.array(x, float).reshape(-1, len(REVIEW_FEATURES)), np.array(any_right, bool),
                   np.array(best_right, bool), np.array(question, int), data.answerable)


def best_rows(data: Collected, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(score, label) of each (question, review)'s best candidate."""
    best_score, best_label = [], []
    for _, rows in data.groups():
        for r in np.unique(data.review[rows]):
            inside = rows[data.review[rows] == r]
            top = inside[np.argmax(scores[inside])]
            best_score.append(scores[top])
            best_label.append(data.y[top])
    return np.array(best_score), np.array(best_label)


def rates(data: Collected | Reviews, scores: np.ndarray, threshold: float) -> tuple[float, float, float]:
    """(balanced accuracy, answered rate on answerable questions, abstention rate on unanswerable ones),
    a question answered when any of its rows (candidates, or reviews for the review stage) reaches the
    threshold; a question without rows is not answered."""
    top = np.full(len(data.answerable), -np.inf)
    np.maximum.at(top, data.question, scores)
    answered = top >= threshold
    a = float(answered[data.answerable].mean()) if data.answerable.any() else 1.0
    u = float(1 - answered[~data.answerable].mean()) if (~data.answerable).any() else 1.0
    return (a + u) / 2, a, u


def fit_weights(sets: dict[str, Collected | Reviews], shares: dict[str, float], label: str = "y"
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stacked (x, the `label` field, weight): each question weighs 1/questions of its set times its set's
    share, split evenly over its rows (candidates, or reviews), so big sets and long reviews do not drown
    the rest."""
    xs, ys, ws = [], [], []
    for name, data in sets.items():
        per_question = shares[name] / len(data.answerable)
        counts = np.bincount(data.question, minlength=len(data.answerable))
        xs.append(data.x)
        ys.append(getattr(data, label))
        ws.append(per_question / counts[data.question])
    w = np.concatenate(ws)
    return np.concatenate(xs), np.concatenate(ys).astype(int), w * len(w) / w.sum()


def calibrate(scores: dict[str, tuple[np.ndarray, np.ndarray]], shares: dict[str, float]) -> tuple[float, float]:
    """Platt (a, c): P = sigmoid(a * z + c), from each set's (score z, label) rows, each set weighted by its share."""
    from sklearn.linear_model import LogisticRegression

    zs, labels, weights = [], [], []
    for name, (z, ok) in scores.items():
        zs.append(z)
        labels.append(ok)
        weights.append(np.full(len(z), shares[name] / len(z)))
    w = np.concatenate(weights)
    platt = LogisticRegression(C=1e4).fit(np.concatenate(zs).reshape(-1, 1), np.concatenate(labels).astype(int),
                                          sample_weight=w * len(w) / w.sum())
    return float(platt.coef_[0][0]), float(platt.intercept_[0])


def fit_scorer(kind: str, x: np.ndarray, y: np.ndarray, w: np.ndarray, args, monotone: tuple[int, ...] | None = None
               ) -> Linear | Trees:
    """The raw scorer: LightGBM trees (binary log loss) rewritten as arrays, or a logistic regression.
    `monotone` defaults to the sentence stage's MONOTONE."""
    if kind == "linear":
        from sklearn.linear_model import LogisticRegression

        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale == 0] = 1.0
        lr = LogisticRegression(C=args.c, max_iter=5000).fit((x - mean) / scale, y, sample_weight=w)
        return Linear(mean, scale, lr.coef_[0], float(lr.intercept_[0]))
    import lightgbm as lgb

    booster = lgb.LGBMClassifier(n_estimators=args.trees, num_leaves=args.leaves, learning_rate=0.05,
                                 min_child_samples=40, subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
                                 reg_lambda=1.0, random_state=0, verbose=-1,
                                 monotone_constraints=list(monotone or [MONOTONE.get(f, 0) for f in FEATURES])
                                 ).fit(x, y, sample_weight=w)
    trees = Trees.from_lightgbm(booster.booster_.dump_model())
    check = x[:: max(1, len(x) // 2000)]
    if not np.allclose(trees.raw(check), booster.predict_proba(check, raw_score=True), atol=1e-6):
        raise SystemExit("the tree arrays do not reproduce LightGBM's scores")
    return trees


def subset(data: Collected | Reviews, questions: np.ndarray) -> Collected | Reviews:
    """The rows of the given questions, renumbered 0..len-1 (every field but `answerable` is per row)."""
    questions = np.sort(questions)
    keep = np.isin(data.question, questions)
    renumber = np.full(len(data.answerable), -1)
    renumber[questions] = np.arange(len(questions))
    rows = {f.name: getattr(data, f.name)[keep] for f in fields(data) if f.name != "answerable"}
    return replace(data, **rows | {"question": renumber[data.question[keep]], "answerable": data.answerable[questions]})


def fold_order(n_questions: int) -> np.ndarray:
    """A fixed shuffle of a set's questions; fold k of F is order[k::F]."""
    return np.random.default_rng(0).permutation(n_questions)


def out_of_fold(fit: dict[str, Collected], shares: dict[str, float], args, folds: int = 4,
                held_sets: tuple[str, ...] = ("escape-dev",)) -> dict[str, np.ndarray]:
    """Sentence-stage raw scores of the candidates of each set in `held_sets`, each from a scorer fitted
    without its fold of questions (fold k holds out fold k of every set in `held_sets` at once)."""
    orders = {n: fold_order(len(fit[n].answerable)) for n in held_sets}
    scores = {n: np.zeros(len(fit[n].y)) for n in held_sets}
    for k in range(folds):
        held = {n: orders[n][k::folds] for n in held_sets}
        train = dict(fit, **{n: subset(fit[n], np.setdiff1d(orders[n], held[n])) for n in held_sets})
        x, y, w = fit_weights(train, shares)
        scorer = fit_scorer(args.scorer, x, y, w, args)
        for n in held_sets:
            rows = np.isin(fit[n].question, held[n])
            scores[n][rows] = scorer.raw(fit[n].x[rows])
    return scores


def review_out_of_fold(fit: dict[str, Reviews], shares: dict[str, float], args, folds: int = 4) -> np.ndarray:
    """Review-stage raw scores of escape-dev's reviews, each from a scorer fitted without its fold (the
    folds of out_of_fold, so no question is scored by a model that saw it in either stage)."""
    data = fit["escape-dev"]
    order = fold_order(len(data.answerable))
    scores = np.zeros(len(data.any_right))
    for k in range(folds):
        rows = np.isin(data.question, order[k::folds])
        train = dict(fit, **{"escape-dev": subset(data, np.setdiff1d(order, order[k::folds]))})
        x, y, w = fit_weights(train, shares, "any_right")
        scores[rows] = fit_scorer("trees", x, y, w, args, (0,) * len(REVIEW_FEATURES)).raw(data.x[rows])
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjqa", default=".cache/subjqa")
    parser.add_argument("--out", default=str(MODEL_PATH))
    parser.add_argument("--scorer", choices=["trees", "linear"], default="trees")
    parser.add_argument("--escape-share", type=float, default=0.3,
                        help="share of the fitting weight given to evals/escape-dev (the rest split over SubjQA)")
    parser.add_argument("--trees", type=int, default=200, help="boosting rounds (trees)")
    parser.add_argument("--leaves", type=int, default=4, help="leaves per tree")
    parser.add_argument("--c", type=float, default=0.1, help="inverse L2 strength of the linear scorer")
    parser.add_argument("--stages", type=int, choices=[1, 2], default=1,
                        help="1: the best sentence's own score decides (shipped); 2: a review stage decides whether each review answers")
    parser.add_argument("--dry-run", action="store_true", help="print the tuning results, write nothing")
    args = parser.parse_args(argv)
    configure_offline()
    embedder = Embedder(None)
    root = Path(args.subjqa)
    missing = [n for n in FIT + TUNE if not (root / n / "queries.jsonl").is_file()]
    if missing:
        print(f"error: {', '.join(missing)} missing under {root}; run bench/subjqa.py first.", file=sys.stderr)
        return 2
    fit = {n: collect(root / n, embedder) for n in FIT}
    fit["escape-dev"] = collect(Path(ESCAPE_DEV), embedder)
    tune = {n: collect(root / n, embedder) for n in TUNE}
    tune["escape-dev"] = fit["escape-dev"]

    shares = {n: (1 - args.escape_share) / len(FIT) for n in FIT} | {"escape-dev": args.escape_share}
    tune_shares = {n: (1 - args.escape_share) / len(TUNE) for n in TUNE} | {"escape-dev": args.escape_share}
    x, y, w = fit_weights(fit, shares)
    scorer = fit_scorer(args.scorer, x, y, w, args)
    raw_scores = {n: scorer.raw(d.x) for n, d in tune.items()}
    # escape-dev is fitted on too, so its in-sample scores would flatter it: calibrate and choose the
    # threshold on out-of-fold scores instead (each fold scored by a model fitted without it).
    if args.stages == 1:
        raw_scores["escape-dev"] = out_of_fold(fit, shares, args)["escape-dev"]
        a, c = calibrate({n: best_rows(tune[n], raw_scores[n]) for n in tune}, tune_shares)
        model = AnswerModel(FEATURES, scorer, a, c, 0.5)
        probs = {n: 1.0 / (1.0 + np.exp(-(a * raw_scores[n] + c))) for n in tune}
        decided = tune  # the rows the probabilities belong to
    else:
        # The review stage learns from sentence scores of questions the sentence stage did not see.
        oof = out_of_fold(fit, shares, args, held_sets=tuple(fit))
        fit_reviews = {n: reviews_of(fit[n], oof[n]) for n in fit}
        xr, yr, wr = fit_weights(fit_reviews, shares, "any_right")
        review_scorer = fit_scorer("trees", xr, yr, wr, args, (0,) * len(REVIEW_FEATURES))
        tune_reviews = {n: reviews_of(tune[n], raw_scores[n]) for n in TUNE} | {"escape-dev": fit_reviews["escape-dev"]}
        review_raw = {n: review_scorer.raw(tune_reviews[n].x) for n in TUNE}
        review_raw["escape-dev"] = review_out_of_fold(fit_reviews, shares, args)
        a, c = calibrate({n: (review_raw[n], tune_reviews[n].best_right) for n in tune}, tune_shares)
        model = AnswerModel(FEATURES, scorer, a, c, 0.5, review_scorer=review_scorer)
        probs = {n: 1.0 / (1.0 + np.exp(-(a * review_raw[n] + c))) for n in tune}
        decided = tune_reviews

    def set_rates(n: str, t: float) -> tuple[float, float, float]:
        return rates(decided[n], probs[n], t)

    grid = np.round(np.arange(0.05, 0.951, 0.01), 2)
    table = [(t, float(sum(tune_shares[n] * set_rates(n, t)[0] for n in tune))) for t in grid]
    threshold, best = max(table, key=lambda r: (r[1], -abs(r[0] - 0.5)))
    model = replace(model, threshold=float(threshold))
    per_set = {n: dict(zip(("balanced", "answered", "abstained"), (round(v, 4) for v in set_rates(n, threshold))))
               for n in tune}
    summary = {"scorer": args.scorer, "stages": args.stages, "threshold": threshold, "weighted_balanced_accuracy": round(best, 4),
               "per_set": per_set, "platt": [round(a, 4), round(c, 4)]}
    print(json.dumps(summary, indent=1))
    if not args.dry_run:
        data = model.to_json(trained_on={"fit": list(fit), "tune": list(tune), "escape_share": args.escape_share,
                                         "scorer": args.scorer, "stages": args.stages, "trees": args.trees, "leaves": args.leaves,
                                         "candidates": int(len(y)), "positives": int(y.sum())},
                             tuning={"threshold_objective": "balanced accuracy, escape-dev weighted by escape_share, "
                                                            "SubjQA test sets equally by the rest",
                                     "balanced_accuracy": round(best, 4), "per_set": per_set})
        Path(args.out).write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
