"""One reliability table and plot over several `qa eval --out` folders (their answers.csv files).

    python bench/reliability.py eval-out/after/escape eval-out/after/books-dev ... [--out docs/reliability.png]

Every answered question counts: its confidence against whether its first reply sentence answers (an
answer to an unanswerable question is wrong), in ten equal-width bins, as `qa eval` computes per set.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qa.evals import expected_calibration_error, plot_reliability, reliability_table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="*")
    parser.add_argument("--out", default="docs/reliability.png")
    parser.add_argument("--smoke", action="store_true",
                        help="a two-row made-up answers.csv, plotted to a temporary file: the script still runs")
    args = parser.parse_args(argv)
    if args.smoke:
        import tempfile

        scratch = Path(tempfile.mkdtemp(prefix="qa-reliability-"))
        (scratch / "answers.csv").write_text("answered,confidence,answerable,first_right\n1,0.9,1,1\n1,0.3,1,0\n",
                                             encoding="utf-8")
        args.folders, args.out = [str(scratch)], str(scratch / "reliability.png")
    if not args.folders:
        parser.error("give one or more `qa eval --out` folders")
    pairs = []
    for folder in args.folders:
        path = Path(folder) / "answers.csv"
        if not path.is_file():
            print(f"error: {path} is missing; run `qa eval DATASET --out {folder}` first.", file=sys.stderr)
            return 2
        with open(path, encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row["answered"] == "1":
                    pairs.append((float(row["confidence"]), row["answerable"] == "1" and row["first_right"] == "1"))
    table = reliability_table(pairs)
    print("| confidence | answered questions | mean confidence | share right |")
    print("|---|---|---|---|")
    for r in table:
        print(f"| {r['bin']} | {r['count']} | {r['confidence']:.3f} | {r['accuracy']:.3f} |")
    ece = expected_calibration_error(table)
    print(f"{len(pairs)} answered questions from {len(args.folders)} sets; ECE {ece:.4f}")
    plot_reliability(table, Path(args.out), f"Reliability over {len(args.folders)} eval sets ({len(pairs)} answers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
