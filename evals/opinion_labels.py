"""The opinion and chat eval sets over the three Escape (2024) seed reviews, written as readable labels.

    .venv/bin/python evals/opinion_labels.py     # rewrites evals/escape-opinion{,-check}, evals/escape-chats{,-check}

Each gold sentence is named by its review (A = 000_..., B = 001_..., C = 002_...) and the first words of
the sentence in the repaired review text; the script finds it, maps it to the raw file's offsets (what
every eval set's evidence.jsonl holds) and writes BEIR folders. An opinion question's evidence lists, for
every review that judges what it asks, each sentence that does, with its stance (`positive`, `negative`
or `mixed`: the review's judgement in that sentence). Every third question (in the order below) goes to
the `-check` set, which nothing is fitted or tuned on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.corpus import read_corpus  # noqa: E402
from qa.passages import split_review  # noqa: E402

REVIEWS = {"A": "escape-2024/000_c5d586a175a2a666", "B": "escape-2024/001_ab617f7258eed2b4",
           "C": "escape-2024/002_03b15f6e9896f6a9"}
P, N, M = "positive", "negative", "mixed"

# What each review says of an aspect: (review, first words of the sentence, stance). For one aspect, the
# sentences whose subject it is; a sentence that names it in passing among others ("strong cinematography
# and pacing keep the adrenaline high") answers the praise and verdict questions, not the aspect's.
GOLD: dict[str, list[tuple[str, str, str]]] = {
    "acting": [("A", "Lee Je‑hoon anchors the film", P), ("A", "Lee Je‑hoon’s performance injects", P),
               ("B", "In what resembles a physical endurance test", P), ("B", "After striking performances", P),
               ("B", "Portraying a naive soldier", P), ("B", "The trio all play their roles", P),
               ("C", "The film stars Lee Je-hoon and Koo", P), ("C", "Lee delivers a gripping performance", P),
               ("C", "His portrayal of Gyu-nam", P), ("C", "Known for his versatile roles", P),
               ("C", "As the young soldier whose escape", P), ("C", "Critics have praised its tight pacing", P),
               ("C", "With masterful direction", P)],
    "lead": [("A", "Lee Je‑hoon anchors the film", P), ("A", "Lee Je‑hoon’s performance injects", P),
             ("B", "In what resembles a physical endurance test", P), ("C", "Lee delivers a gripping performance", P),
             ("C", "His portrayal of Gyu-nam", P)],
    "verdict": [("A", "Escape nails the essentials", P), ("A", "Directed by Lee Jong‑pil, Escape delivers", P),
                ("B", "Not everyone might have the same reaction", P), ("B", "Although far-fetched", P),
                ("C", "Whether you’re drawn in", P), ("C", "Escape (2024) is a riveting", P),
                ("C", "With masterful direction", P), ("C", "A standout feature of the Korean", P)],
    "criticism": [("A", "Critics note that while this breathless", N), ("A", "However, the screenplay underutilizes", N),
                  ("A", "While some find echoes", M), ("A", "Director Lee Jong‑pil combines", M),
                  ("A", "Beneath his rigid uniform", M), ("B", "Although far-fetched", M)],
    "praise": [("A", "The cinematography by Kim Sung‑an", P), ("A", "Lee Je‑hoon anchors the film", P),
               ("A", "Escape nails the essentials", P), ("A", "Lee Je‑hoon’s performance injects", P),
               ("B", "Although far-fetched", M), ("B", "In what resembles a physical endurance test", P),
               ("B", "The trio all play their roles", P), ("B", "Not everyone might have the same reaction", P),
               ("C", "Critics have praised its tight pacing", P), ("C", "With masterful direction", P),
               ("C", "Director Lee Jong-pil, previously known", P), ("C", "The cinematography by Kim Seung-an", P),
               ("C", "The haunting score by Dalpalan", P), ("C", "Escape (2024) is a riveting", P)],
    "cinematography": [("A", "The cinematography by Kim Sung‑an", P), ("A", "Director Lee Jong‑pil combines", M), ("B", "Director Lee Jong-pil uses a vivid", P),
                       ("C", "The cinematography by Kim Seung-an", P), ("C", "His direction emphasizes claustrophobia", P)],
    "music": [("C", "The haunting score by Dalpalan", P)],
    "direction": [("A", "Director Lee Jong‑pil combines", M), ("B", "Director Lee Jong-pil uses a vivid", P),
                  ("C", "Director Lee Jong-pil, previously known", P), ("C", "His direction emphasizes claustrophobia", P),
                  ("C", "With masterful direction", P)],
    "pacing": [("A", "Clocking in at 94 minutes", P), ("A", "Critics note that while this breathless", M),
               ("B", "The story advances briskly", P),
               ("B", "The theme of destiny is interwoven", P), ("B", "The trio all play their roles", P),
               ("C", "Critics have praised its tight pacing", P)],
    "story": [("A", "However, the screenplay underutilizes", N), ("A", "Critics note that while this breathless", N),
              ("B", "Although far-fetched", M), ("B", "There are a couple of unusual", M),
              ("C", "With masterful direction", P), ("C", "Escape (2024) is a riveting", P)],
    "villain": [("A", "Beneath his rigid uniform", M), ("B", "After striking performances", P),
                ("C", "Known for his versatile roles", P), ("C", "His character is not a simple villain", P)],
    "tension": [("A", "His defection is sudden and suspenseful", P), ("A", "Escape nails the essentials", P),
                ("A", "Critics note that while this breathless", M), ("A", "Directed by Lee Jong‑pil, Escape delivers", P),
                ("A", "Lee Je‑hoon’s performance injects", P),
                ("B", "Although far-fetched", P), ("B", "There were gasps and jumps", P),
                ("C", "Escape (2024), directed by Lee Jong-pil, is a tense", P),
                ("C", "His direction emphasizes claustrophobia", P), ("C", "With masterful direction", P)],
    "themes": [("A", "While some find echoes", M), ("A", "However, the screenplay underutilizes", N),
               ("B", "The theme of destiny is interwoven", P), ("B", "It’s not a critique or study", M),
               ("C", "Escape is not just a thriller", P), ("C", "While rooted in a distinctly Korean", P),
               ("C", "Escape (2024) is a riveting", P)],
    "characters": [("A", "Critics note that while this breathless", N), ("A", "However, the screenplay underutilizes", N),
                   ("C", "His character is not a simple villain", P)],
    "ending": [("B", "The trio all play their roles", P)],
    "action": [("A", "His defection is sudden and suspenseful", P), ("A", "However, the screenplay underutilizes", N),
               ("B", "Although far-fetched", P), ("C", "A standout feature of the Korean", P)],
    "editing": [("A", "Director Lee Jong‑pil combines", M)],
    "agreement": [("A", "Escape nails the essentials", P), ("B", "Not everyone might have the same reaction", P),
                  ("C", "Whether you’re drawn in", P), ("C", "Escape (2024) is a riveting", P),
                  ("A", "Directed by Lee Jong‑pil, Escape delivers", P), ("B", "Although far-fetched", P)],
}
FACTS: dict[str, list[tuple[str, str]]] = {
    "villain_actor": [("A", "His well-laid escape plan"), ("B", "Major Lee Hyung-sang (Koo"), ("C", "Tasked with investigating"),
                      ("B", "After striking performances"), ("C", "Known for his versatile roles")],
    "released": [("C", "As of April 2024"), ("C", "It is expected to be released")],
    "director": [("A", "Directed by Lee Jong‑pil"), ("B", "Director: Lee Jong-pil"), ("C", "Escape (2024), directed by")],
    "setting": [("C", "Set in North Korea"), ("B", "Escape focuses on army sergeant"), ("A", "Directed by Lee Jong‑pil")],
    "composer_work": [("C", "The haunting score by Dalpalan")],
    "young_actor": [("B", "It all goes awry"), ("C", "However, things begin to unravel"), ("C", "As the young soldier whose"),
                    ("B", "Portraying a naive soldier")],
    "director_work": [("C", "Director Lee Jong-pil, previously known")],
    "studied": [("B", "The pair studied in Saint Petersburg")],
    "length": [("A", "Clocking in at 94 minutes"), ("B", "Running time: 1hr 34m"), ("B", "The trio all play their roles")],
}

# (kind, question, gold aspect or None for a question no review answers).
OPINION_QUESTIONS = [
    ("opinion", "Is the acting good?", "acting"),
    ("verdict", "Should I see it?", "verdict"),
    ("criticism", "What do critics dislike about it?", "criticism"),
    ("praise", "What are its strengths?", "praise"),
    ("agreement", "Do the critics agree with each other?", "agreement"),
    ("opinion", "How is the camerawork?", "cinematography"),
    ("opinion", "Are the performances convincing?", "acting"),
    ("verdict", "Is it worth watching?", "verdict"),
    ("criticism", "What are the film's weaknesses?", "criticism"),
    ("opinion", "What do the reviewers think of the cinematography?", "cinematography"),
    ("opinion", "Is the music any good?", "music"),
    ("opinion", "How is the direction?", "direction"),
    ("opinion", "Is it scary?", "tension"),
    ("opinion", "Is the pacing too slow?", "pacing"),
    ("opinion", "Is the plot any good?", "story"),
    ("opinion", "How is the villain?", "villain"),
    ("verdict", "Would I enjoy it?", "verdict"),
    ("praise", "What do critics like about the film?", "praise"),
    ("opinion", "How good is the lead actor?", "lead"),
    ("opinion", "Are the themes handled well?", "themes"),
    ("criticism", "Any complaints about the film?", "criticism"),
    ("opinion", "Is it exciting?", "tension"),
    ("opinion", "Are the characters well developed?", "characters"),
    ("opinion", "How is the ending?", "ending"),
    ("verdict", "Is it any good?", "verdict"),
    ("opinion", "How is the action?", "action"),
    ("opinion", "Is the editing good?", "editing"),
    ("opinion", "Is the story gripping?", "story"),
    ("opinion", "Does the score work?", "music"),
    ("agreement", "Do the reviews disagree about it?", "agreement"),
    ("opinion", "What do critics think of the acting?", "acting"),
    ("verdict", "Should I watch it in the cinema?", "verdict"),
    ("opinion", "How are the visuals?", "cinematography"),
    ("praise", "What is good about it?", "praise"),
    ("criticism", "What are the flaws of the film?", "criticism"),
    ("opinion", "Is it suspenseful?", "tension"),
    ("opinion", "How is the screenplay?", "story"),
    ("verdict", "Do the critics recommend it?", "verdict"),
    ("opinion", "Is the antagonist convincing?", "villain"),
    ("opinion", "Is the film too long?", "pacing"),
    ("opinion", "What do reviewers say about the themes?", "themes"),
    ("opinion", "Is the cast good?", "acting"),
    ("opinion", "Are the special effects good?", None),
    ("opinion", "Is it funny?", None),
    ("opinion", "How is the dialogue?", None),
    ("opinion", "How are the costumes?", None),
    ("opinion", "Is the CGI convincing?", None),
    ("opinion", "Is the humour any good?", None),
    ("opinion", "What do critics think of the makeup?", None),
    ("opinion", "Is the 3D conversion good?", None),
    ("opinion", "Are the songs catchy?", None),
]

# (kind, history, last question, gold aspect of GOLD or FACTS).
CHATS = [
    ("chat-standalone", ["Who composed the score?"], "Is it scary?", "tension"),
    ("chat-standalone", ["Who composed the score?", "Is it scary?"], "Should I see it?", "verdict"),
    ("chat-standalone", ["Who directed it?"], "Is it worth watching?", "verdict"),
    ("chat-standalone", ["How long is the film?"], "Is it any good?", "verdict"),
    ("chat-standalone", ["Where is the film set?"], "Is it exciting?", "tension"),
    ("chat-standalone", ["Who plays the sergeant?"], "Would I enjoy it?", "verdict"),
    ("chat-standalone", ["When was it released?"], "What are its weaknesses?", "criticism"),
    ("chat-standalone", ["Who is the villain?"], "What are its strengths?", "praise"),
    ("chat-standalone", ["Who composed the score?"], "When was it released?", "released"),
    ("chat-standalone", ["What is the running time?"], "Who directed it?", "director"),
    ("chat-standalone", ["Is the acting good?"], "Where does it take place?", "setting"),
    ("chat-standalone", ["Who plays the villain?"], "Is it too long?", "pacing"),
    ("chat-followup", ["Who is the villain?"], "Who plays him?", "villain_actor"),
    ("chat-followup", ["Is the acting good?"], "And the cinematography?", "cinematography"),
    ("chat-followup", ["Is the acting good?"], "What about the music?", "music"),
    ("chat-followup", ["How is the cinematography?"], "And the direction?", "direction"),
    ("chat-followup", ["Is the story good?"], "What about the pacing?", "pacing"),
    ("chat-followup", ["Who plays the sergeant?"], "Is he convincing?", "lead"),
    ("chat-followup", ["Who composed the score?"], "What else has he worked on?", "composer_work"),
    ("chat-followup", ["Who is the young soldier?"], "Who plays him?", "young_actor"),
    ("chat-followup", ["Who directed the film?"], "What else has he made?", "director_work"),
    ("chat-followup", ["Who is Major Lee?"], "Where did he study?", "studied"),
    ("chat-followup", ["What do critics think of the villain?"], "Who plays him?", "villain_actor"),
    ("chat-followup", ["Is the acting good?"], "And the villain?", "villain"),
    ("chat-followup", ["How is the camerawork?"], "And the score?", "music"),
    ("chat-followup", ["What happens to Kim?"], "Who plays him?", "young_actor"),
    ("chat-followup", ["Is the story any good?"], "And the ending?", "ending"),
    ("chat-followup", ["Who directed Escape?"], "Is his direction good?", "direction"),
    ("chat-standalone", ["What is the film about?"], "Does it have a good ending?", "ending"),
    ("chat-standalone", ["Is it scary?"], "How long is it?", "length"),
    ("chat-standalone", ["Should I see it?"], "What do critics dislike about it?", "criticism"),
    ("chat-standalone", ["Is the acting good?"], "Who plays the villain?", "villain_actor"),
    ("chat-followup", ["Is the acting good?", "And the cinematography?"], "And the music?", "music"),
    ("chat-followup", ["Who is the villain?", "Who plays him?"], "Is he good in it?", "villain"),
    ("chat-followup", ["How is the pacing?"], "And the action?", "action"),
    ("chat-standalone", ["Who composed the score?"], "Do the critics agree with each other?", "agreement"),
]


def _locate(corpus, text_of: dict, key: str, prefix: str) -> tuple[str, int, int]:
    """(doc id, raw start, raw end) of the sentence of review `key` that starts with `prefix`."""
    review_id = REVIEWS[key]
    text = next(r.text for r in corpus.reviews if r.id == review_id)
    for start, end in text_of[review_id]:
        if text[start:end].startswith(prefix):
            return (review_id, *corpus.offset_maps[review_id].raw_span(start, end))
    raise SystemExit(f"no sentence of {key} starts with {prefix!r}")


def main() -> None:
    corpus = read_corpus(ROOT / "corpus")
    text_of = {r.id: sorted({s for p in split_review(r) for s in p.sentences}) for r in corpus.reviews}
    film = {"film": "Escape (2024)"}

    def evidence(qid: str, gold: str) -> list[dict]:
        rows = [(k, prefix, stance) for k, prefix, stance in GOLD[gold]] if gold in GOLD else \
            [(k, prefix, None) for k, prefix in FACTS[gold]]
        out = []
        for key, prefix, stance in rows:
            doc, start, end = _locate(corpus, text_of, key, prefix)
            out.append({"query_id": qid, "doc_id": doc, "start": start, "end": end}
                       | ({"stance": stance} if stance else {}))
        return out

    def write(folder: str, queries: list[dict], ev: list[dict], readme: str) -> None:
        path = ROOT / "evals" / folder
        path.mkdir(parents=True, exist_ok=True)
        (path / "queries.jsonl").write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries), "utf-8")
        (path / "evidence.jsonl").write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in ev), "utf-8")
        (path / "README.md").write_text(readme, "utf-8")

    sets: dict[str, tuple[list, list]] = {n: ([], []) for n in ("escape-opinion", "escape-opinion-check",
                                                                 "escape-chats", "escape-chats-check")}
    for n, (kind, text, gold) in enumerate(OPINION_QUESTIONS, 1):
        name = "escape-opinion-check" if n % 3 == 0 else "escape-opinion"
        qid = f"op{n:02d}"
        meta = {"kind": kind, "filter": film} | ({} if gold else {"answerable": False})
        sets[name][0].append({"_id": qid, "text": text, "answers": [], "metadata": meta})
        if gold:
            sets[name][1].extend(evidence(qid, gold))
    for n, (kind, history, text, gold) in enumerate(CHATS, 1):
        name = "escape-chats-check" if n % 3 == 0 else "escape-chats"
        qid = f"ch{n:02d}"
        sets[name][0].append({"_id": qid, "text": text, "history": history, "metadata": {"kind": kind, "filter": film}})
        sets[name][1].extend(evidence(qid, gold))
    about = ("over the three *Escape* (2024) seed reviews, written on 2026-12-06 in readers' words from the "
             "repaired review text; generated by `evals/opinion_labels.py` (the labels are readable there).\n")
    for name, (queries, ev) in sets.items():
        check = name.endswith("-check")
        what = "Opinion, verdict, praise, criticism and agreement questions" if "opinion" in name else \
            "Short chats (the last question scored; `history` holds the earlier turns): stand-alone questions that say 'it' and true follow-ups"
        role = ("**A check set**: nothing is fitted or tuned on it (every third question of the labels)."
                if check else "The tuning split: the opinion decision (train/fit_opinion.py) is fitted on it.")
        write(name, queries, ev, f"# evals/{name}\n\n{what} ({len(queries)}), {about}\n{role}\n\n"
              "Evidence lists every sentence of each review that answers (for an opinion question: that judges "
              "what it asks), with its stance where the question asks for an opinion.\n")
        print(name, len(queries), "queries", len(ev), "evidence rows")


if __name__ == "__main__":
    main()
