"""Retrieval and reply evals over BEIR-layout datasets, one module per concept, in the order data flows:

    datasets    read a folder (queries, corpus, qrels, evidence) and open the engine that serves it
    relevance   which passages are relevant to a query and which reply sentences answer it
    metrics     ask every query, judge it, score with ranx (passage, review and reply metrics)
    reports     what a run writes (`qa eval --out`) and shows (tables, plots, misses first)
    comparison  paired significance between two runs (`qa compare`) and the replies that changed

Each module imports only those above it. The names below are the package's public API (`qa.evals.X`).
"""

from .datasets import STANCES, EvalQuery, Dataset, load_dataset, dataset_corpus_dir, open_dataset_engine, doc_id_of  # noqa: F401
from .relevance import fold_text, ReplyJudgement, relevant_passages, gold_spans, span_answers, judge_reply  # noqa: F401
from .metrics import METRICS, REVIEW_METRICS, REVIEW_DEPTH, PLOT_KS, public_name, QueryResult, EvalResult, RELIABILITY_BINS, answer_metrics, expected_calibration_error, reliability_table, evaluate_dataset, maxp, ANSWER_METRICS, GATED_METRICS, parse_bar, below_bars  # noqa: F401
from .reports import PER_QUERY_FIELDS, per_query_rows, metric_rows, write_outputs, plot_recall, plot_reliability, reply_problems, misses_first, report_markdown, text_table  # noqa: F401
from .comparison import compare_runs, compare_replies  # noqa: F401
