"""Fit the answer decision (qa/answer_model.json) on labelled data, and draw its reliability plot.

    python train/subjqa.py                  # once: SubjQA eval folders into .cache/subjqa
    python train/fit_answer.py [--subjqa .cache/subjqa] [--out qa/answer_model.json]

Fit (weights):            SubjQA train splits (electronics, grocery, restaurants, tripadvisor; books and
                          movies train are not in the snapshot) and evals/escape-dev.
Tune (Platt + threshold): SubjQA test splits of books, electronics, grocery, restaurants, tripadvisor and
                          evals/escape-dev.
In both, evals/escape-dev (film reviews, three reviews in scope) carries --escape-share of the weight and
the SubjQA sets (product reviews, one review in scope) share the rest equally. Because escape-dev is also
fitted on, its scores for calibration and the threshold are out-of-fold (4 folds of its questions).
Check (printed only):     evals/escape-words (questions in readers' own words over the seed reviews),
                          scored by the fitted model as serving scores it; never fitted or tuned on.
Never read here:          SubjQA dev splits and evals/escape, evals/escape-unanswerable (the reported
                          sets), and SubjQA movies dev/test (held out by the project).
Precision:                everything (the datasets' indexes, the questions, the reader's token vectors)
                          at the precision an index gets on this machine (auto: bf16 where the CPU
                          computes it natively), as serving reads; collected candidates are cached per
                          precision, so a fit on another CPU kind collects its own.

Each candidate sentence is labelled right when it overlaps an annotator's span or contains a gold answer
(qa.evals.span_answers, the same rule `qa eval` scores replies with). Two stages (qa/decide.py):
- sentence stage: LightGBM (200 trees of 4 leaves, binary log loss, monotone in the features whose
  direction is known; `--scorer linear` for a logistic regression) fits candidates;
- reader stage (`--stages 2`, the default since version 4): each question's best candidates by the
  sentence stage's out-of-fold scores (qa.decide.to_read) are read by the reader (qa/reader.py; SubjQA
  train questions by the fold head of train/fit_reader.py that never saw them) and LightGBM (200 trees
  of 4 leaves, monotone in the reader's logit) fits qa.decide.reader_rows.
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
from qa.decide import FEATURES, MODEL_PATH, READER_FEATURES, AnswerModel, Linear, reader_rows, to_read  # noqa: E402
from qa.reader import MAX_TOKENS, READER_DIR, Reader, load_reader  # noqa: E402
from qa.trees import Trees  # noqa: E402
from qa.embed import Embedder, configure_offline  # noqa: E402
from qa.engine import Settings  # noqa: E402
from qa.precision import resolve as resolve_precision  # noqa: E402
from qa.evals import (fold_text, gold_spans, load_dataset, open_dataset_engine,  # noqa: E402
                      span_answers)
from qa.retrieve import Filters  # noqa: E402

FIT = ["electronics-train", "grocery-train", "restaurants-train", "tripadvisor-train"]
TUNE = ["books-test", "electronics-test", "grocery-test", "restaurants-test", "tripadvisor-test"]
ESCAPE_DEV = "evals/escape-dev"
CHECK = ["evals/escape-words"]  # scored by each refit and printed; never fitted or tuned on
CACHE = Path(".cache/answer-features")
# The direction each feature may move the score, whatever the data: more similarity, more of the
# question's words, or a span of the asked-for type never make a sentence less likely to answer.
MONOTONE = {"sentence_cos": 1, "margin": 1, "sentence_terms": 1, "sentence_idf_terms": 1, "type_match": 1,
            "exact_type_match": 1, "unknown_terms": -1, "type_miss": -1,
            "passage_rank": -1}
# What collected candidates depend on (a change re-collects): the candidate code, not the stages that score them.
FEATURE_CODE = "".join(inspect.getsource(m) for m in (answer_types, lexical, engine)) + "".join(
    inspect.getsource(f) for f in (decide.candidates, decide.content_terms, decide.content_words, decide.passage_terms,
                                   decide.share, decide._weighted_share)) + repr(
    (decide.FEATURES, decide.EXACT_TYPES, decide.REQUIRED_TYPES, sorted(decide.QUESTION_WORDS), decide.KNOWN_PREFIX,
     decide.MIN_SENTENCE_WORDS, decide._ASKING_PHRASES.pattern))
READER_MONOTONE = tuple({"reader": 1, "reader_margin": 1, "reader_rank": -1,
                         "type_match": 1, "exact_type_match": 1, "unknown_terms": -1}.get(f, 0) for f in READER_FEATURES)
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
    texts: list[str] | None = None  # each candidate's sentence (what the reader reads)
    asked: list[str] | None = None  # each question as searched (what the reader reads it against)

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
                                     FEATURE_CODE, embedder.precision]).encode()).hexdigest()[:12]
    path = cache / f"{dataset.name}-{key}.npz"
    if path.is_file() and path.with_suffix(".json").is_file():
        data = np.load(path)
        words = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        return Collected(data["x"], data["y"], data["question"], data["review"], data["answerable"], words["texts"],
                         words["asked"])
    # The questions and passages at the embedder's precision, the one serving uses (an index built here is
    # built at it; one cached at another precision would give other cosines than serving, so it is refused).
    engine, maps = open_dataset_engine(dataset, Settings(precision=embedder.precision), Path(".cache/evals"),
                                       embedder=embedder, progress=True, answer_model=NEUTRAL)
    built = engine.store.manifest.get("precision", "fp32")
    if built != embedder.precision:
        raise SystemExit(f"error: the cached index of {dataset.name} holds {built} vectors, not {embedder.precision}; "
                         f"delete {engine.settings.index_dir} to rebuild it.")
    from_dataset = dataset.corpus_path is not None
    retrieval = engine.retrieval_settings(k=k)
    x, y, question, review, answerable, texts, asked = [], [], [], [], [], [], []
    for n, q in enumerate(tqdm(dataset.queries, desc=dataset.name, unit="question", disable=not sys.stderr.isatty())):
        prepared = engine.prepare(q.text, q.history, retrieval, Filters(metadata=q.filter))
        cands = prepared.candidates
        asked.append(prepared.folded.query_used)
        reviews = sorted({c.review_id for c in cands})
        spans = gold_spans(q, dataset.evidence.get(q.id, []), maps, reviews, from_dataset)
        answers = [fold_text(a) for a in q.answers if a.strip()]
        for c in cands:
            x.append(c.features)
            y.append(q.answerable and span_answers(engine.store.reviews[c.review_id].text, c.sentence,
                                                         spans.get(c.review_id, []), answers))
            question.append(n)
            review.append(reviews.index(c.review_id))
            texts.append(engine.store.reviews[c.review_id].text[c.sentence[0]:c.sentence[1]])
        answerable.append(q.answerable)
    out = Collected(np.array(x, float).reshape(-1, len(FEATURES)), np.array(y, bool), np.array(question, int),
                    np.array(review, int), np.array(answerable, bool), texts, asked)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=out.x, y=out.y, question=out.question, review=out.review, answerable=out.answerable)
    path.with_suffix(".json").write_text(json.dumps({"texts": texts, "asked": asked}), encoding="utf-8")
    print(f"{dataset.name}: {len(out.answerable)} questions, {len(out.y)} candidates", file=sys.stderr)
    return out


class ReaderLogits:
    """The reader's logits for training: token vectors looked up in train/fit_reader.py's cache (the
    same texts, encoded by the same model at the same precision) and encoded otherwise; SubjQA train
    questions are read by the fold head that never saw them (train/reader_data.fold_of)."""

    def __init__(self, embedder: Embedder, precision: str, use_cache: bool = True, reader_dir: Path = READER_DIR,
                 cache: Path = Path(".cache/reader")):
        from train.reader_data import fold_of

        self.fold_of = fold_of
        self.shipped = load_reader(reader_dir).with_embedder(embedder)
        self.embedder = embedder
        self.cache = Path(cache)
        self.folds: list[Reader] = []  # loaded when first needed (tests read without them)
        self.table: dict[str, np.ndarray] = {}
        cached = self.cache / f"tokens-{precision}.npz"
        pairs = self.cache / "pairs.jsonl"
        if use_cache and cached.is_file() and pairs.is_file():
            rows = [json.loads(line) for line in open(pairs, encoding="utf-8")]
            texts = list(dict.fromkeys([p["q"] for p in rows] + [p["s"] for p in rows]))
            data = np.load(cached)
            vectors, offsets = data["vectors"], data["offsets"]
            if len(offsets) == len(texts) + 1:
                self.table = {t: vectors[offsets[i]:offsets[i + 1]] for i, t in enumerate(texts)}
        # Texts read here that the reader's pairs lack (tuning sets, escape-dev): kept between runs.
        self.extra_path = self.cache / f"tokens-extra-{precision}.npz"
        self.extra: dict[str, np.ndarray] = {}
        self.encoded = 0  # texts encoded in this run (save writes only when there are some)
        if use_cache and self.extra_path.is_file():
            data = np.load(self.extra_path)
            texts, offsets, vectors = json.loads(str(data["texts"])), data["offsets"], data["vectors"]
            self.extra = {t: vectors[offsets[i]:offsets[i + 1]] for i, t in enumerate(texts)}
            self.table.update(self.extra)

    def save(self) -> None:
        """Write the extra token cache with the texts encoded in this run added (for the next run); nothing
        is written when this run encoded none."""
        if not self.encoded:
            return
        texts = list(self.extra)
        offsets = np.cumsum([0] + [len(self.extra[t]) for t in texts])
        self.extra_path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(self.extra_path, vectors=np.concatenate([self.extra[t] for t in texts]), offsets=offsets,
                 texts=np.array(json.dumps(texts)))

    def tokens(self, texts: list[str]) -> list[np.ndarray]:
        missing = [t for t in dict.fromkeys(texts) if t not in self.table]
        for start in range(0, len(missing), 256):
            part = missing[start:start + 256]
            for t, v in zip(part, self.shipped.tokens(part)):
                self.table[t] = self.extra[t] = v.astype(np.float16)
            self.encoded += len(part)
        return [self.table[t][:MAX_TOKENS].astype(np.float32) for t in texts]

    def __call__(self, question: str, sentences: list[str], cross_fit: bool) -> np.ndarray:
        if cross_fit and not self.folds:
            self.folds = [load_reader(self.cache / f"fold{k}").with_embedder(self.embedder) for k in (0, 1)]
        reader: Reader = self.folds[self.fold_of(question)] if cross_fit else self.shipped
        vectors = self.tokens([question, *sentences])
        return reader.score_tokens(vectors[0], vectors[1:])


def read_rows(data: Collected, raw: np.ndarray, logits: ReaderLogits, cross_fit: bool) -> Collected:
    """The reader stage's rows of a dataset: for each question, the candidates to_read picks from the
    sentence stage's `raw` scores, as qa.decide.reader_rows, with their labels."""
    xs, ys, qs, rs = [np.zeros((0, len(READER_FEATURES)))], [np.zeros(0, bool)], [np.zeros(0, int)], [np.zeros(0, int)]
    for q, rows in data.groups():
        if not len(rows):
            continue
        chosen = to_read(raw[rows], data.review[rows])
        picked = rows[chosen]
        read = logits(data.asked[q], [data.texts[i] for i in picked], cross_fit)
        xs.append(reader_rows(data.x[rows], chosen, read))
        ys.append(data.y[picked])
        qs.append(np.full(len(picked), q))
        rs.append(data.review[picked])
    return Collected(np.concatenate(xs), np.concatenate(ys).astype(bool),
                     np.concatenate(qs).astype(int), np.concatenate(rs).astype(int), data.answerable)


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


def rates(data: Collected, scores: np.ndarray, threshold: float) -> tuple[float, float, float]:
    """(balanced accuracy, answered rate on answerable questions, abstention rate on unanswerable ones),
    a question answered when any of its rows (candidates, or read candidates for the reader stage) reaches
    the threshold; a question without rows is not answered."""
    top = np.full(len(data.answerable), -np.inf)
    np.maximum.at(top, data.question, scores)
    answered = top >= threshold
    a = float(answered[data.answerable].mean()) if data.answerable.any() else 1.0
    u = float(1 - answered[~data.answerable].mean()) if (~data.answerable).any() else 1.0
    return (a + u) / 2, a, u


def fit_weights(sets: dict[str, Collected], shares: dict[str, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stacked (x, y, weight): each question weighs 1/questions of its set times its set's share, split
    evenly over its rows (candidates, or read candidates), so big sets and long reviews do not drown the rest."""
    xs, ys, ws = [], [], []
    for name, data in sets.items():
        per_question = shares[name] / len(data.answerable)
        counts = np.bincount(data.question, minlength=len(data.answerable))
        xs.append(data.x)
        ys.append(data.y)
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


def subset(data: Collected, questions: np.ndarray) -> Collected:
    """The rows of the given questions, renumbered 0..len-1 (every field but `answerable` is per row)."""
    questions = np.sort(questions)
    keep = np.isin(data.question, questions)
    renumber = np.full(len(data.answerable), -1)
    renumber[questions] = np.arange(len(questions))
    rows = {f.name: getattr(data, f.name)[keep] for f in fields(data)
            if f.name not in ("answerable", "texts", "asked")}
    texts = None if data.texts is None else [t for t, k in zip(data.texts, keep) if k]
    asked = None if data.asked is None else [data.asked[q] for q in questions]
    return replace(data, **rows | {"question": renumber[data.question[keep]], "answerable": data.answerable[questions],
                                   "texts": texts, "asked": asked})


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


def reader_out_of_fold(fit: dict[str, Collected], shares: dict[str, float], args, folds: int = 4) -> np.ndarray:
    """Reader-stage raw scores of escape-dev's read candidates, each from a scorer fitted without its fold
    (the folds of out_of_fold, so no question is scored by a model that saw it in either stage)."""
    data = fit["escape-dev"]
    order = fold_order(len(data.answerable))
    scores = np.zeros(len(data.y))
    for k in range(folds):
        rows = np.isin(data.question, order[k::folds])
        train = dict(fit, **{"escape-dev": subset(data, np.setdiff1d(order, order[k::folds]))})
        x, y, w = fit_weights(train, shares)
        scores[rows] = fit_scorer("trees", x, y, w, args, READER_MONOTONE).raw(data.x[rows])
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjqa", default=".cache/subjqa")
    parser.add_argument("--out", default=str(MODEL_PATH))
    parser.add_argument("--scorer", choices=["trees", "linear"], default="trees")
    parser.add_argument("--escape-share", type=float, default=0.3,
                        help="share of the fitting weight given to evals/escape-dev (the rest split over SubjQA)")
    parser.add_argument("--film-facts", type=float, default=0.0,
                        help="share of the fitting weight for .cache/film-facts (train/reader_data.py: made-up "
                             "film reviews with factoid questions in reader phrasings and near misses); 0: not used")
    parser.add_argument("--film-facts-dir", default=".cache/film-facts", help="where train/reader_data.py wrote them")
    parser.add_argument("--reader", default=str(READER_DIR), help="the reader the tuning sets and escape-dev are read with")
    parser.add_argument("--reader-cache", default=".cache/reader",
                        help="train/fit_reader.py's --cache: its token vectors and the fold heads SubjQA train is read with")
    parser.add_argument("--trees", type=int, default=200, help="boosting rounds (trees)")
    parser.add_argument("--leaves", type=int, default=4, help="leaves per tree")
    parser.add_argument("--c", type=float, default=0.1, help="inverse L2 strength of the linear scorer")
    parser.add_argument("--stages", type=int, choices=[1, 2], default=2,
                        help="1: the sentence stage alone decides (version 3); 2: the reader stage (qa/reader.py) "
                             "re-scores each question's best candidates and decides (version 4)")
    parser.add_argument("--escape-dev", default=ESCAPE_DEV, help="the film-review tuning set (an evals folder)")
    parser.add_argument("--check", nargs="*", default=CHECK,
                        help="evals folders scored by the fitted model and printed, never used to fit or tune")
    parser.add_argument("--dry-run", action="store_true", help="print the tuning results, write nothing")
    args = parser.parse_args(argv)
    configure_offline()
    # Everything is read at the precision an index gets here (auto: bf16 where the CPU has it natively), as
    # serving reads: the candidates' cosines, the reader's token vectors (one model for both).
    precision = resolve_precision("auto")[0]
    embedder = Embedder(None, precision=precision)
    root = Path(args.subjqa)
    missing = [n for n in FIT + TUNE if not (root / n / "queries.jsonl").is_file()]
    if missing:
        print(f"error: {', '.join(missing)} missing under {root}; run train/subjqa.py first.", file=sys.stderr)
        return 2
    fit = {n: collect(root / n, embedder) for n in FIT}
    fit["escape-dev"] = collect(Path(args.escape_dev), embedder)
    if args.film_facts > 0:
        fit["film-facts"] = collect(Path(args.film_facts_dir), embedder)
    tune = {n: collect(root / n, embedder) for n in TUNE}
    tune["escape-dev"] = fit["escape-dev"]
    check = {Path(p).name: collect(Path(p), embedder) for p in args.check}
    seen = sorted(set(check) & (set(fit) | set(tune)))
    if seen:
        raise SystemExit(f"error: a --check set ({', '.join(seen)}) is also fitted or tuned on; a check set must be "
                         "one the model never sees.")

    shares = ({n: (1 - args.escape_share - args.film_facts) / len(FIT) for n in FIT} | {"escape-dev": args.escape_share}
              | ({"film-facts": args.film_facts} if args.film_facts > 0 else {}))
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
        decided = dict(tune)  # the rows the probabilities belong to
        for n, d in check.items():
            decided[n] = d
            probs[n] = 1.0 / (1.0 + np.exp(-(a * scorer.raw(d.x) + c)))
    else:
        # The reader stage learns from sentence scores of questions the sentence stage did not see, and
        # reads SubjQA train questions with the fold head that did not see them.
        # The reader reads at that precision too, as serving does and as train/fit_reader.py cached its
        # token vectors.
        logits = ReaderLogits(embedder, precision, reader_dir=Path(args.reader), cache=Path(args.reader_cache))
        oof = out_of_fold(fit, shares, args, held_sets=tuple(fit))
        fit_read = {n: read_rows(fit[n], oof[n], logits, cross_fit=n != "escape-dev") for n in fit}
        xr, yr, wr = fit_weights(fit_read, shares)
        reader_scorer = fit_scorer("trees", xr, yr, wr, args, READER_MONOTONE)
        tune_read = {n: read_rows(tune[n], raw_scores[n], logits, cross_fit=False) for n in TUNE}
        tune_read["escape-dev"] = fit_read["escape-dev"]
        reader_raw = {n: reader_scorer.raw(tune_read[n].x) for n in TUNE}
        reader_raw["escape-dev"] = reader_out_of_fold(fit_read, shares, args)
        for n, d in check.items():  # scored as serving scores them: no fold, no refit
            tune_read[n] = read_rows(d, scorer.raw(d.x), logits, cross_fit=False)
            reader_raw[n] = reader_scorer.raw(tune_read[n].x)
        logits.save()
        a, c = calibrate({n: best_rows(tune_read[n], reader_raw[n]) for n in tune}, tune_shares)
        model = AnswerModel(FEATURES, scorer, a, c, 0.5, reader_scorer=reader_scorer)
        probs = {n: 1.0 / (1.0 + np.exp(-(a * reader_raw[n] + c))) for n in tune_read}
        decided = tune_read
        y = yr

    def set_rates(n: str, t: float) -> tuple[float, float, float]:
        return rates(decided[n], probs[n], t)

    def set_ranking(n: str) -> tuple[float, float]:
        """(AUROC of each question's best probability, answerable against not; share of answerable
        questions whose most probable candidate is right)."""
        data, p = decided[n], probs[n]
        top = np.full(len(data.answerable), -np.inf)
        np.maximum.at(top, data.question, p)
        best_right = []
        for q, rows in data.groups():
            if data.answerable[q]:
                best_right.append(bool(len(rows)) and bool(data.y[rows[np.argmax(p[rows])]]))
        from sklearn.metrics import roc_auc_score

        top[~np.isfinite(top)] = 0.0
        return float(roc_auc_score(data.answerable, top)), float(np.mean(best_right))

    grid = np.round(np.arange(0.05, 0.951, 0.01), 2)
    table = [(t, float(sum(tune_shares[n] * set_rates(n, t)[0] for n in tune))) for t in grid]
    threshold, best = max(table, key=lambda r: (r[1], -abs(r[0] - 0.5)))
    model = replace(model, threshold=float(threshold))

    def set_summary(n: str) -> dict[str, float]:
        return dict(zip(("balanced", "answered", "abstained", "auroc", "best_right"),
                        (round(v, 4) for v in set_rates(n, threshold) + set_ranking(n))))

    per_set = {n: set_summary(n) for n in tune}
    checked = {n: set_summary(n) for n in check}
    summary = {"scorer": args.scorer, "stages": args.stages, "threshold": threshold, "weighted_balanced_accuracy": round(best, 4),
               "per_set": per_set, "check": checked, "platt": [round(a, 4), round(c, 4)]}
    print(json.dumps(summary, indent=1))
    if not args.dry_run:
        data = model.to_json(trained_on={"fit": list(fit), "tune": list(tune), "escape_share": args.escape_share,
                                         "film_facts": args.film_facts,
                                         "scorer": args.scorer, "stages": args.stages, "trees": args.trees, "leaves": args.leaves,
                                         "candidates": int(len(y)), "positives": int(y.sum())},
                             tuning={"threshold_objective": "balanced accuracy, escape-dev weighted by escape_share, "
                                                            "SubjQA test sets equally by the rest",
                                     "balanced_accuracy": round(best, 4), "per_set": per_set})
        Path(args.out).write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
