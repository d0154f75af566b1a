"""Fit the opinion decision (qa/opinion_model.json) on evals/escape-opinion; report it on the check set.

    .venv/bin/python train/fit_opinion.py [--out qa/opinion_model.json] [--subjqa .cache/subjqa]

One row per (question, sentence of a review in scope), labelled 1 when the sentence is in the question's
evidence. A logistic regression (scikit-learn) over qa/opinion.py's FEATURES; C is chosen by grouped
cross-validation over questions (log loss), and the threshold on the cross-validated probabilities: the
one that maximises (review recall + abstention rate) / 2, what the reply is judged by: review recall is
the mean over answerable questions of the share of reviews with evidence whose best sentence is
evidence and reaches the threshold (the reply quotes a right sentence of it); abstention rate the share
of unanswerable questions whose best sentence stays below it. Ties: the lower threshold. The
stance accuracy written to the file is measured on the check set's labelled sentences
(evals/escape-opinion-check); nothing is fitted on that set. Deterministic: the same data gives the same file.

With --subjqa (BEIR folders made by train/subjqa.py from a fetched lewtun/SubjQA; its train splits only),
the opinion-kind questions of each train split (at most SUBJQA_PER_SPLIT, in file order) join every
training fold: real readers' opinion questions about one review each (the annotators' spans mark the
sentences that answer; a question every annotator found unanswered has none). The threshold is still
chosen on the film questions' cross-validated probabilities.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.corpus import read_corpus  # noqa: E402
from qa.engine import Engine, Settings  # noqa: E402
from qa.evals import load_dataset  # noqa: E402
from qa.kinds import question_kind  # noqa: E402
from qa.opinion import FEATURES, OpinionModel, probe_text, sentence_candidates, stance  # noqa: E402


def rows_of(engine, dataset, maps) -> tuple[np.ndarray, np.ndarray, list, list]:
    """Feature rows, labels, each row's (question id, review id), and labelled stances (gold, predicted)."""
    X, y, keys, stances = [], [], [], []
    reviews = sorted(engine.reviews)
    for q in dataset.queries:
        kind = question_kind(q.text)
        qv = engine.embedder.encode_query(q.text)
        pv = engine.embedder.encode_query(probe_text(kind))
        gold = {}
        labelled = dataset.stances.get(q.id, {})
        for doc, start, end in dataset.evidence.get(q.id, []):
            s, _ = maps[doc].span(start, end)
            gold[(doc, s)] = labelled.get((doc, start, end), "")
        where, texts, rows = sentence_candidates(kind, qv, pv, reviews, engine.store)
        for (position, review_id, (s, e)), text, row in zip(where, texts, rows):
            X.append(row)
            y.append(int((review_id, s) in gold))
            keys.append((q.id, review_id))
            if gold.get((review_id, s)):
                stances.append((gold[(review_id, s)], stance(text)))
    return np.asarray(X), np.asarray(y), keys, stances


SUBJQA_SPLITS = ("electronics-train", "grocery-train", "restaurants-train", "tripadvisor-train")
SUBJQA_PER_SPLIT = 300


def subjqa_rows(folder: Path, embedder) -> tuple[np.ndarray, np.ndarray, list]:
    """Rows, labels and (question id, review id) keys of SubjQA's opinion-kind train questions."""
    from qa.evals import doc_id_of, open_dataset_engine
    from qa.retrieve import Filters

    X, y, keys = [], [], []
    for split in SUBJQA_SPLITS:
        dataset = load_dataset(folder / split)
        engine, maps = open_dataset_engine(dataset, Settings(), ROOT / ".cache" / "evals", embedder=embedder,
                                           progress=False)
        taken = 0
        for q in dataset.queries:
            kind = question_kind(q.text)
            if not kind.opinion:
                continue
            reviews = engine.retriever.reviews_in_scope(Filters(metadata=q.filter))
            if isinstance(reviews, int) or not reviews:
                continue
            gold = []
            for review_id in reviews:
                for doc, start, end in dataset.evidence.get(q.id, []):
                    if doc_id_of(review_id, True) == doc:
                        gold.append((review_id, *maps[review_id].span(start, end)))
            qv = engine.embedder.encode_query(q.text)
            pv = engine.embedder.encode_query(probe_text(kind))
            where, _, rows = sentence_candidates(kind, qv, pv, list(reviews), engine.store)
            for (_, review_id, (s, e)), row in zip(where, rows):
                X.append(row)
                y.append(int(any(r == review_id and gs < e and s < ge for r, gs, ge in gold)))
                keys.append((f"{split}/{q.id}", review_id))
            taken += 1
            if taken == SUBJQA_PER_SPLIT:
                break
        print(f"{split}: {taken} opinion questions")
    return np.asarray(X), np.asarray(y), keys


def review_balanced_accuracy(probs: np.ndarray, y: np.ndarray, keys: list, threshold: float) -> float:
    best: dict = {}
    gold: dict = {}
    for p, label, key in zip(probs, y, keys):
        best[key] = max(best.get(key, 0.0), float(p))
        gold[key] = gold.get(key, 0) or int(label)
    pos = [k for k in best if gold[k]]
    neg = [k for k in best if not gold[k]]
    tpr = sum(best[k] >= threshold for k in pos) / len(pos) if pos else 0.0
    tnr = sum(best[k] < threshold for k in neg) / len(neg) if neg else 0.0
    return (tpr + tnr) / 2


def reply_score(probs: np.ndarray, y: np.ndarray, keys: list, threshold: float) -> tuple[float, float]:
    """(review recall, abstention rate) of replies at `threshold` (see the module docstring)."""
    best: dict = {}
    for p, label, key in zip(probs, y, keys):
        if key not in best or p > best[key][0]:
            best[key] = (float(p), int(label))
    gold: dict = {}
    for label, key in zip(y, keys):
        gold[key] = gold.get(key, 0) or int(label)
    questions = {q for q, _ in gold}
    recalls, abstained = [], []
    for q in sorted(questions):
        answering = [k for k in gold if k[0] == q and gold[k]]
        if answering:
            recalls.append(sum(best[k][1] and best[k][0] >= threshold for k in answering) / len(answering))
        else:
            abstained.append(all(best[k][0] < threshold for k in best if k[0] == q))
    return (sum(recalls) / len(recalls) if recalls else 0.0), (sum(abstained) / len(abstained) if abstained else 1.0)


def fit(X: np.ndarray, y: np.ndarray, groups: list, C: float):
    from sklearn.linear_model import LogisticRegression

    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    clf = LogisticRegression(C=C, max_iter=5000)
    clf.fit((X - mean) / scale, y)
    return mean, scale, clf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "qa" / "opinion_model.json")
    parser.add_argument("--subjqa", type=Path, default=None, help="train/subjqa.py's output folder (optional)")
    args = parser.parse_args()
    from sklearn.model_selection import GroupKFold

    unfitted = OpinionModel(np.zeros(len(FEATURES)), np.ones(len(FEATURES)), np.zeros(len(FEATURES)), 0.0, 0.5, 0.0)
    engine = Engine.open(Settings(corpus_dir=ROOT / "corpus", index_dir=ROOT / "index"), progress=False,
                         opinion_model=unfitted)
    maps = read_corpus(ROOT / "corpus").offset_maps
    tune, check = load_dataset(ROOT / "evals" / "escape-opinion"), load_dataset(ROOT / "evals" / "escape-opinion-check")
    X, y, keys, _ = rows_of(engine, tune, maps)
    Xc, yc, keys_c, stances_c = rows_of(engine, check, maps)
    groups = [k[0] for k in keys]
    folds = list(GroupKFold(n_splits=5).split(X, y, groups))
    Xs, ys = np.zeros((0, len(FEATURES))), np.zeros(0, dtype=int)
    if args.subjqa:
        Xs, ys, _ = subjqa_rows(args.subjqa, engine.embedder)
        print(f"SubjQA: {len(ys)} rows, {int(ys.sum())} answering")
    best = None
    for C in (0.03, 0.1, 0.3, 1.0, 3.0):
        cv = np.zeros(len(y))
        for train, test in folds:
            mean, scale, clf = fit(np.vstack([X[train], Xs]), np.concatenate([y[train], ys]), groups, C)
            cv[test] = clf.predict_proba((X[test] - mean) / scale)[:, 1]
        loss = -np.mean(y * np.log(np.clip(cv, 1e-9, 1)) + (1 - y) * np.log(np.clip(1 - cv, 1e-9, 1)))
        print(f"C={C}: cross-validated log loss {loss:.4f}")
        if best is None or loss < best[0]:
            best = (loss, C, cv)
    _, C, cv = best
    grid = np.round(np.arange(0.01, 0.96, 0.01), 2)
    scores = [sum(reply_score(cv, y, keys, t)) / 2 for t in grid]
    threshold = float(grid[int(np.argmax(scores))])
    for t in (0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45):
        r, a = reply_score(cv, y, keys, t)
        print(f"  threshold {t}: cross-validated review recall {r:.3f}, abstention {a:.3f}")
    recall, abstain = reply_score(cv, y, keys, threshold)
    print(f"chosen C={C}, threshold {threshold} (cross-validated review recall {recall:.3f}, abstention {abstain:.3f}; "
          f"review balanced accuracy {review_balanced_accuracy(cv, y, keys, threshold):.3f})")
    mean, scale, clf = fit(np.vstack([X, Xs]), np.concatenate([y, ys]), groups, C)
    stance_accuracy = sum(g == p for g, p in stances_c) / len(stances_c) if stances_c else 0.0
    model = OpinionModel(mean, scale, clf.coef_[0], float(clf.intercept_[0]), threshold, round(stance_accuracy, 4))
    check_ba = review_balanced_accuracy(model.probabilities(Xc), yc, keys_c, threshold)
    check_recall, check_abstain = reply_score(model.probabilities(Xc), yc, keys_c, threshold)
    print(f"check set: review recall {check_recall:.3f}, abstention {check_abstain:.3f}, "
          f"review balanced accuracy {check_ba:.3f}; stance accuracy {stance_accuracy:.3f} "
          f"on {len(stances_c)} labelled sentences (bar 0.85: {'shown' if model.show_stance else 'not shown'})")
    fitted_on = "evals/escape-opinion" + (f" + SubjQA {', '.join(SUBJQA_SPLITS)} (opinion questions, "
                                          f"at most {SUBJQA_PER_SPLIT} each)" if args.subjqa else "")
    args.out.write_text(json.dumps(model.to_json(fitted_on=fitted_on, C=C,
                                                 check_review_balanced_accuracy=round(check_ba, 4)),
                                   indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({len(FEATURES)} features, {len(y)} rows, {int(y.sum())} positive)")


if __name__ == "__main__":
    main()
