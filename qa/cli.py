"""`python -m qa index | ask` (also installed as `qa`). The environment is read here and nowhere deeper.

Environment: QA_CORPUS_DIR (default corpus/), QA_INDEX_DIR (default index/), QA_MODEL (a
sentence-transformers name or folder; default the packaged all-MiniLM-L6-v2).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .embed import configure_offline
from .errors import QAError
from .records import source_line
from .retrieve import MODES, Filters, RetrievalSettings

JIT_QUERY_THRESHOLD = 5000


def _settings(args):
    """The environment's settings (qa/config.py), with each option given on the command line on top."""
    from dataclasses import replace

    from .config import settings_from_env
    from .passages import ChunkerSettings

    base = settings_from_env()
    given = {"corpus_dir": args.corpus and Path(args.corpus), "index_dir": args.index and Path(args.index),
             "model": args.model, "precision": args.precision}
    retrieval: dict = {}
    if getattr(args, "retriever", None):
        retrieval["mode"] = args.retriever
    if getattr(args, "k", None) is not None:
        retrieval["k"] = args.k
    if getattr(args, "no_cap", False):
        retrieval["per_review_cap"] = None
    elif getattr(args, "per_review_cap", None) is not None:
        retrieval["per_review_cap"] = args.per_review_cap
    return replace(base, **{k: v for k, v in given.items() if v is not None},
                   chunker=ChunkerSettings(words=args.chunk_words, overlap=args.chunk_overlap),
                   index_factory=args.index_factory, ann_threshold=args.ann_threshold,
                   build_engine=getattr(args, "engine", "local"), build_workers=getattr(args, "workers", 2),
                   retrieval=replace(base.retrieval, **retrieval))


def _open(args, rebuild: bool = False):
    from .engine import Engine

    engine = Engine.open(_settings(args), rebuild=rebuild, progress=sys.stderr.isatty() or args.progress)
    report = engine.report
    if "instead" in engine.precision_note or args.command == "index":  # a fallback, or a build: say which
        print(f"precision: {engine.embedder.precision} ({engine.precision_note})", file=sys.stderr)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if report.action != "loaded" or args.command == "index":
        print(report.summary(), file=sys.stderr)
        for review_id, counts in report.repairs.items():
            fixed = ", ".join(f"{n} {rule}" for rule, n in counts.items())
            print(f"repaired {review_id}: {fixed}", file=sys.stderr)
    return engine


def cmd_index(args) -> int:
    if args.engine == "ray":  # fail before the model loads when Ray is missing
        from .distributed import preflight

        preflight()
    _open(args, rebuild=args.rebuild)
    return 0


def _source_line(hit, reviews) -> str:
    return f"{source_line(reviews[hit.passage.review_id], hit.passage)} · score {hit.score:.4f}"


def _print_answer(answer, reviews, highlight: bool) -> None:
    print(f"Q: {answer.question}")
    if answer.query_used != answer.question:
        print(f"Searched for: {answer.query_used}")
    for notice in answer.notices:
        print(f"Note: {notice}")
    print()
    print(answer.summary)
    if answer.answered:
        print(f"Confidence: {answer.confidence:.0%}")
    print(answer.coverage)
    if not answer.answered and answer.hits:
        print()
        print("Closest passages (none of them answers the question):")
    exact = answer.exact_answers
    for hit in answer.hits:
        p = hit.passage
        s, e = hit.highlight[0] - p.start, hit.highlight[1] - p.start
        on, off = ("\033[1m", "\033[0m") if highlight else ("»", "«")
        inner = p.text[s:e]
        if hit.rank in exact:  # the exact answer inside the quoted sentence
            a, b = exact[hit.rank][0] - p.start - s, exact[hit.rank][1] - p.start - s
            inner = inner[:a] + "[[" + inner[a:b] + "]]" + inner[b:]
        body = p.text[:s] + on + inner + off + p.text[e:]
        print()
        print(f"[{hit.rank}] {_source_line(hit, reviews)}")
        print("    " + "\n    ".join(body.splitlines()))


def _batch_request(line: str, n: int) -> dict:
    """One --batch line as ask's arguments; ValueError with a plain sentence when it is malformed."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"line {n}: not valid JSON ({exc.msg}).") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"line {n}: each line must be a JSON object with a 'text'.")
    text, history, film = obj.get("text"), obj.get("history") or [], obj.get("film")
    if not isinstance(text, str):
        raise ValueError(f"line {n}: 'text' must be a string.")
    if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
        raise ValueError(f"line {n}: 'history' must be a list of strings.")
    if film is not None and not isinstance(film, str):
        raise ValueError(f"line {n}: 'film' must be a string.")
    return {"question": text, "history": history, "film": film}


def cmd_batch(args) -> int:
    """One JSON object out per non-blank line in, in order; a bad line gets {"error", "line"} and the
    rest go on. The model loads once."""
    from .answer import answer_json

    path = Path(args.batch)
    try:
        lines = path.read_text(encoding="utf-8").split("\n") if args.batch != "-" else sys.stdin.read().split("\n")
    except FileNotFoundError as exc:
        raise QAError(f"The batch file {path} does not exist.") from exc
    except UnicodeDecodeError as exc:
        raise QAError(f"The batch file {path} is not UTF-8 text.") from exc
    engine = _open(args)
    failed = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            request = _batch_request(line, n)
            answer = engine.ask(request["question"], request["history"],
                                Filters(film=request["film"] or args.film, outlet=args.outlet))
            out = answer_json(answer, engine.reviews)
        except (QAError, ValueError) as exc:
            failed += 1
            out = {"line": n, "error": str(exc)}
        print(json.dumps(out, ensure_ascii=False), flush=True)
    return 1 if failed else 0


def cmd_ask(args) -> int:
    from .answer import answer_json
    from .chat import clean_question

    if args.batch:
        if args.question is not None:
            raise QAError("Give either a question or --batch FILE, not both.")
        return cmd_batch(args)
    if args.question is None:
        raise QAError("Give a question, or --batch FILE with one JSON question per line.")
    clean_question(args.question)  # an empty question fails before the model loads
    engine = _open(args)
    answer = engine.ask(args.question, args.history or (), Filters(film=args.film, outlet=args.outlet))
    if args.json:
        print(json.dumps(answer_json(answer, engine.reviews), ensure_ascii=False))
    else:
        _print_answer(answer, engine.reviews, highlight=sys.stdout.isatty())
    return 0


def _skip_numba_compile(queries: int) -> None:
    """ranx compiles its metrics with numba on every run (about 15 s here); for eval sets below a few
    thousand queries plain Python is faster than the compile. Must run before ranx is imported."""
    if queries < JIT_QUERY_THRESHOLD:
        os.environ.setdefault("NUMBA_DISABLE_JIT", "1")


def cmd_eval(args) -> int:
    from .config import AppConfig
    from .evals import below_bars, evaluate_dataset, load_dataset, open_dataset_engine, write_outputs

    dataset = load_dataset(args.dataset)  # a malformed file fails before the model loads
    _skip_numba_compile(len(dataset.queries))
    engine, offset_maps = open_dataset_engine(dataset, _settings(args), args.cache or AppConfig.from_env().eval_cache,
                                              progress=sys.stderr.isatty() or args.progress)
    if engine.report.action != "loaded":
        print(engine.report.summary(), file=sys.stderr)
    result = evaluate_dataset(engine, dataset, offset_maps, mode=args.retriever, k=args.k)  # the cap: from _settings
    if args.out:
        write_outputs(result, engine, Path(args.out))
    summary = result.summary()
    width = max(len(m) for m in [*result.metrics, *result.answers])
    print(f"{dataset.name}: {result.retriever}, k={args.k}, {summary['queries']} queries scored, "
          f"{len(summary['excluded'])} left out (no relevant passage in their pool), "
          f"{summary['review_queries']} scored at review level")
    for metric, value in result.metrics.items():
        print(f"  {metric:<{width}}  {value:.4f}")
    for metric, value in result.answers.items():
        print(f"  {metric:<{width}}  {value:.4f}")
    for kind, values in result.per_kind.items():
        print(f"  [{kind}] " + ", ".join(f"{m} {v}" for m, v in values.items()))
    if args.out:
        print(f"Wrote metrics.json, per_query.csv, answers.csv, run.trec, review_run.trec, report.md, recall_at_k.png "
              f"and reliability.png to {args.out}")
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    failed = below_bars({**result.metrics, **result.answers}, args.fail_under)
    if failed:
        print(f"below the bar: {'; '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _bar(text: str):
    from .evals import parse_bar

    try:
        return parse_bar(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_compare(args) -> int:
    from .evals import compare_runs

    _skip_numba_compile(0)
    print(compare_runs(Path(args.out_a), Path(args.out_b)))
    return 0


def _feedback_dir(args) -> Path:
    from .config import AppConfig, default_feedback_dir

    if args.feedback:
        return Path(args.feedback)
    config = AppConfig.from_env()
    settings = config.settings
    if args.index:
        from dataclasses import replace

        settings = replace(settings, index_dir=Path(args.index))
    return config.feedback_dir or default_feedback_dir(settings)


def cmd_feedback(args) -> int:
    """`qa feedback stats` counts the readers' votes; `qa feedback export OUT` writes them as a label set."""
    from .feedback import export_feedback, feedback_stats, read_feedback

    folder = _feedback_dir(args)
    records = read_feedback(folder)
    if args.action == "stats":
        s = feedback_stats(records)
        print(f"{s['votes']} votes on answers in {folder}: {s['liked']} liked, {s['disliked']} disliked")
        print(f"  answered:  {s['answered']} ({s['answered_liked']} liked, {s['answered_disliked']} disliked)")
        print(f"  abstained: {s['abstained']} ({s['abstained_liked']} liked, {s['abstained_disliked']} disliked)")
        if args.json:
            print(json.dumps(s))
        return 0
    if not args.out:
        raise QAError("qa feedback export needs an output folder: qa feedback export OUT.")
    from .config import settings_from_env
    from .corpus import read_corpus

    corpus = Path(args.corpus) if args.corpus else settings_from_env().corpus_dir
    labels = export_feedback(records, Path(args.out), read_corpus(corpus).offset_maps)
    todo = sum(1 for x in labels if x.metadata.get("needs_label"))
    print(f"Wrote {len(labels)} questions to {args.out} ({todo} disliked, to label in the app's Label tab); "
          f"score it with: qa eval {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qa", description="Q&A over film reviews, with sources.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--corpus", help="review folder (default $QA_CORPUS_DIR or corpus/)")
        p.add_argument("--index", help="index folder (default $QA_INDEX_DIR or index/)")
        p.add_argument("--model", default=None,
                       help="sentence-transformers name or folder (default: packaged all-MiniLM-L6-v2)")
        p.add_argument("--chunk-words", type=int, default=100, help="words per passage (default 100)")
        p.add_argument("--chunk-overlap", type=int, default=1, help="sentences shared by neighbouring passages")
        p.add_argument("--progress", action="store_true", help="show the embedding progress bar even when piped")
        p.add_argument("--index-factory", default=None,
                       help="FAISS index_factory string keeping exact vectors: Flat, HNSW32,Flat or IVF<lists>,Flat (default: Flat below --ann-threshold passages, IVF with sqrt(n) lists above)")
        p.add_argument("--ann-threshold", type=int, default=200_000, help="passages at which the IVF index replaces exact Flat search")
        p.add_argument("--precision", default=None,
                       help="model precision: auto (bf16 where the CPU computes it natively, else fp32), fp32 or "
                            "bf16 (runs fp32, saying so, on a CPU without native bf16); default auto or $QA_PRECISION")

    p = sub.add_parser("index", help="build or update the index")
    common(p)
    p.add_argument("--rebuild", action="store_true", help="re-embed everything")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="where passages are embedded: here (default) or on Ray Data (the cluster in $RAY_ADDRESS, "
                        "else a local one); needs pip install 'ray[data]'")
    p.add_argument("--workers", type=int, default=2, help="Ray workers, each loading the model once (default 2)")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("ask", help="ask a question")
    common(p)
    p.add_argument("question", nargs="?")
    p.add_argument("--batch", metavar="FILE", help="JSONL questions {\"text\", \"history\"?, \"film\"?} ('-': stdin); "
                   "prints one --json object per line, in order")
    p.add_argument("--k", type=int, default=5, help="passages to return (default 5)")
    p.add_argument("--film", help="only reviews of this film")
    p.add_argument("--outlet", help="only reviews from this outlet")
    p.add_argument("--history", action="append", help="an earlier question in the conversation (repeatable)")
    p.add_argument("--retriever", choices=MODES, default=None,
                   help=f"dense, bm25, hybrid (convex fusion) or ranked (the hybrid candidates re-ranked by the learned "
                        f"ranker); default {RetrievalSettings.mode}")
    p.add_argument("--per-review-cap", type=int, default=None,
                   help=f"passages per review in the top k (default {RetrievalSettings.per_review_cap})")
    p.add_argument("--no-cap", action="store_true", help="switch the per-review cap off")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="score retrieval on a BEIR-layout dataset")
    common(p)
    p.add_argument("dataset", help="folder with queries.jsonl (+ corpus.jsonl, qrels/test.tsv, evidence.jsonl)")
    p.add_argument("--retriever", choices=MODES, default=None,
                   help=f"dense, bm25, hybrid (convex fusion) or ranked (the hybrid candidates re-ranked by the learned "
                        f"ranker); default {RetrievalSettings.mode}")
    p.add_argument("--k", type=int, default=10, help="passages retrieved per query (default 10)")
    p.add_argument("--per-review-cap", type=int, default=None,
                   help=f"passages per review in the top k (default {RetrievalSettings.per_review_cap})")
    p.add_argument("--no-cap", action="store_true", help="switch the per-review cap off")
    p.add_argument("--out", help="folder for metrics.json, per_query.csv, run.trec, report.md, recall_at_k.png")
    p.add_argument("--cache", type=Path, default=None,
                   help="where dataset corpora are indexed, reused across runs (default $QA_EVAL_CACHE or .cache/evals)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object on the last line")
    p.add_argument("--fail-under", action="append", type=_bar, default=[], metavar="METRIC=VALUE",
                   help="exit 1, naming each metric below its bar, when METRIC < VALUE (repeatable), "
                        "e.g. --fail-under mrr@10=0.70 --fail-under hit@5=0.85")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("feedback", help="readers' thumbs up / down: stats, or export as a label set")
    p.add_argument("action", choices=("stats", "export"))
    p.add_argument("out", nargs="?", help="export: the label set folder to write (e.g. labels/from-readers)")
    p.add_argument("--feedback", help="feedback folder (default $QA_FEEDBACK_DIR or feedback/ beside the index)")
    p.add_argument("--index", help="index folder whose sibling feedback/ to read (default $QA_INDEX_DIR or index/)")
    p.add_argument("--corpus", help="review folder, to map cited spans to raw offsets (default $QA_CORPUS_DIR or corpus/)")
    p.add_argument("--json", action="store_true", help="stats: also print one JSON object")
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser("compare", help="paired significance test between two `eval --out` folders")
    p.add_argument("out_a")
    p.add_argument("out_b")
    p.set_defaults(func=cmd_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_offline()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        return args.func(args)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted; the previous index is unchanged.", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: one sentence, not a traceback
        if args.debug:
            raise
        print(f"error: unexpected {exc.__class__.__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return 1
