"""Shared set-up for the benchmarks: offline environment and the seed question set."""

import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

QUESTIONS = [
    "Who composed the score?", "How long is the film?", "Who directed Escape?", "Did critics like the pacing?",
    "Who plays the villain?", "What is the Rotten Tomatoes score?", "Where did the reviewer see the film?",
    "How is the cinematography?", "What are the film's weaknesses?", "Who is Kim Dong-hyuk?",
    "What does the propaganda sign say?", "Is the film worth watching in a cinema?",
    "What themes does the film explore?", "What awards is it nominated for?", "When was it released?",
    "What happens with the wild boar?", "Who is Seon Woo-min?", "How does the film end?",
    "Is the screenplay strong?", "What other films has Koo Kyo-hwan been in?",
]

# Opinion questions (qa/opinion.py's reply) and chats whose last question has history: two of them are
# read twice (stand-alone and folded), the others once, rewritten or folded.
OPINION_QUESTIONS = ["Is the acting good?", "Should I see it?", "What do critics dislike about it?",
                     "Do the critics agree with each other?", "How is the camerawork?"]
CHATS = [("When was it released?", ["Who composed the score?"]), ("Who directed it?", ["What is the running time?"]),
         ("Is it scary?", ["Who composed the score?"]), ("Who plays him?", ["Who is the villain?"]),
         ("And the editing?", ["Is the acting good?"])]


def p50(samples):
    return statistics.median(samples)


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def subjqa_texts(folder: Path, sets) -> list[str]:
    """The distinct review texts of SubjQA sets converted by train/subjqa.py (folder/<set>/corpus.jsonl),
    in file order; exits naming the first missing file."""
    seen: dict[str, None] = {}
    for name in sets:
        path = folder / name / "corpus.jsonl"
        if not path.exists():
            raise SystemExit(f"{path} is missing: run train/subjqa.py first.")
        for line in path.open(encoding="utf-8"):
            seen.setdefault(json.loads(line)["text"], None)
    return list(seen)
