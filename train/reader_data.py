"""Labelled (question, sentence) pairs for the reader (qa/reader.py), rebuilt from fetched data; never committed.

    python train/reader_data.py [--subjqa-repo /work/.mirror/lewtun+SubjQA/repo]
                                [--squad-repo /work/.mirror/chrischute+squad/repo] [--out .cache/reader/pairs.jsonl]

Three sources, each pair labelled 1 when the sentence answers the question:
- squad:     SQuAD 2.0 `data/dev-v2.0.json` (the official train set is in no snapshot). Each question
             against every sentence of its paragraph; the sentence holding an answer's start is right.
             Its 3,168 unanswerable questions were written against the paragraph to look answerable:
             near misses, every sentence wrong.
- subjqa:    the SubjQA train splits the snapshot holds (electronics, grocery, restaurants, tripadvisor):
             each question against every sentence of its review; a sentence overlapping an annotator's
             span is right. Reviews that do not answer give only wrong pairs.
- templates: film facts (running time, release date, score, budget, country, language, where it was shot)
             and crew or cast roles, each stated in several ways and asked in several ways, with random
             names and numbers; the same question against a sentence stating another fact or role is the
             near miss ("Who is the casting director?" against "Director: ..."). Review opinion sentences
             against factoid questions are wrong too.

Sentences are split as the index splits them (qa.passages.sentences). Every pair carries a `group`
(its question) and a `fold` (0 or 1, from a hash of the question text) so the reader can be cross-fitted.
The SubjQA movies dev/test splits are never read (train/subjqa.py refuses them), nor are the SubjQA
dev/test splits of the other domains (they tune and report the answer decision).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train.subjqa import NOT_FOUND, read_split  # noqa: E402
from qa.passages import sentences  # noqa: E402

SUBJQA_TRAIN = ("electronics", "grocery", "restaurants", "tripadvisor")


def fold_of(question: str) -> int:
    return hashlib.sha256(question.strip().casefold().encode()).digest()[0] % 2


def split(text: str) -> list[tuple[int, int]]:
    return [(s, e) for s, e in sentences(text, 0, len(text)) if len(text[s:e].split()) >= 2]


def squad_pairs(repo: Path) -> list[dict]:
    raw = subprocess.run(["git", "--git-dir", str(repo / ".git") if (repo / ".git").is_dir() else str(repo),
                          "show", "HEAD:data/dev-v2.0.json"], capture_output=True, text=True, check=True).stdout
    out = []
    for article in json.loads(raw)["data"]:
        for para in article["paragraphs"]:
            text = para["context"]
            spans = split(text)
            for qa in para["qas"]:
                starts = {a["answer_start"] for a in qa["answers"]}
                for s, e in spans:
                    out.append({"q": qa["question"], "s": text[s:e], "y": int(any(s <= a < e for a in starts)),
                                "src": "squad", "group": qa["id"]})
    return out


def subjqa_pairs(repo: Path) -> list[dict]:
    out = []
    for domain in SUBJQA_TRAIN:
        rows = read_split(repo, domain, "train") or []
        pairs: dict[tuple[str, str], dict] = {}
        for row in rows:
            text = row["review"]
            if text.endswith(NOT_FOUND):
                text = text[: -len(NOT_FOUND)].rstrip()
            pair = pairs.setdefault((row["q_review_id"], row["review_id"]), {"q": row["question"], "text": text, "spans": []})
            if row["human_ans_spans"] != NOT_FOUND:
                start, end = ast.literal_eval(row["human_ans_indices"])
                pair["spans"].append((start, end))
        for (qid, rid), pair in pairs.items():
            for s, e in split(pair["text"]):
                out.append({"q": pair["q"], "s": pair["text"][s:e], "y": int(any(a < e and s < b for a, b in pair["spans"])),
                            "src": f"subjqa-{domain}", "group": f"{qid}-{rid}"})
    return out


FIRST = ("James Lee Maria Kim Sofia Park Daniel Choi Anna Novak Ravi Patel Hana Sato Lucas Moreau Chloe Dubois Omar Haddad "
         "Elena Rossi Marcus Webb Yuki Tanaka Jin Seo Priya Nair Tomas Silva Ingrid Berg Kwame Mensah Laura Ortiz").split()[::2]
LAST = ("James Lee Maria Kim Sofia Park Daniel Choi Anna Novak Ravi Patel Hana Sato Lucas Moreau Chloe Dubois Omar Haddad "
        "Elena Rossi Marcus Webb Yuki Tanaka Jin Seo Priya Nair Tomas Silva Ingrid Berg Kwame Mensah Laura Ortiz").split()[1::2]
FIRST += ["Jong-pil", "Seung-an", "Min-ji", "Dong-hyuk", "Ji-woo"]
LAST += ["Jung", "Han", "Yoon", "Shin", "Kang"]
CHARACTERS = ["the sergeant", "the major", "the detective", "the mother", "the young soldier", "the villain", "the pilot"]
COUNTRIES = [("South Korea", "South Korean", "Korean"), ("France", "French", "French"), ("Japan", "Japanese", "Japanese"),
             ("Mexico", "Mexican", "Spanish"), ("Germany", "German", "German"), ("India", "Indian", "Hindi"),
             ("Brazil", "Brazilian", "Portuguese"), ("Italy", "Italian", "Italian")]
PLACES = ["Busan", "Lyon", "Hokkaido", "Oaxaca", "Berlin", "Mumbai", "the Scottish Highlands", "Morocco", "Vancouver"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]

# fact -> (ways a review states it, ways a reader asks for it); {n} a name, {c} a character, {t}/{h}/{m}
# a running time, {d} a date, {x} a score, {b} a budget, {k}/{a}/{l} country/adjective/language, {p} a place.
FACTS: dict[str, tuple[list[str], list[str]]] = {
    "director": (["Directed by {n}.", "Director: {n}", "{n} directs with real control.", "Director {n} keeps the tension taut.",
                  "The film is helmed by {n}, whose second feature this is."],
                 ["Who directed the film?", "Who is the director?", "Who made this movie?", "Who was behind the camera?",
                  "Who helmed it?"]),
    "composer": (["Music by {n}.", "The haunting score by {n} lifts every chase.", "Composer: {n}",
                  "{n}'s music swells at just the right moments.", "Original music: {n}"],
                 ["Who composed the score?", "Who wrote the music?", "Who did the soundtrack?", "Who is the composer?",
                  "Whose music is in it?"]),
    "writer": (["Written by {n}.", "Screenplay: {n}", "{n}'s script wastes no scene.", "The screenplay, by {n}, is lean."],
               ["Who wrote the screenplay?", "Who wrote the script?", "Who is the writer?", "Who penned it?"]),
    "cinematographer": (["Cinematography by {n}.", "Director of photography: {n}", "{n}'s camera work is restless and close."],
                        ["Who shot the film?", "Who was the cinematographer?", "Who handled the camera work?",
                         "Who is the director of photography?"]),
    "editor": (["Edited by {n}.", "Editor: {n}", "{n}'s editing keeps the pace brisk."],
               ["Who edited the film?", "Who did the editing?", "Who is the editor?"]),
    "casting": (["Casting by {n}.", "Casting director: {n}"], ["Who is the casting director?", "Who did the casting?"]),
    "producer": (["Produced by {n}.", "Producer: {n}", "{n} produced it for a major studio."],
                 ["Who produced it?", "Who is the producer?", "Who were the producers?"]),
    "lead": (["Starring {n} as {c}.", "{n} plays {c} with quiet intensity.", "{n} stars as {c}.", "Cast: {n} ({c})"],
             ["Who plays {c}?", "Who stars in it?", "Who is the lead actor?", "Which actor plays {c}?", "Who is in the cast?"]),
    "runtime": (["Running time: {h}hr {m}m", "The film runs {t} minutes.", "At {t} minutes, it never drags.", "Runtime: {t} min",
                 "It clocks in at just under {h} hours.", "Length: {t} minutes"],
                ["How long is the film?", "What is the running time?", "How many minutes does it last?",
                 "How long does the movie run?", "What's the runtime?", "Is it a long movie?"]),
    "release": (["Release date: {d}", "It opened in theaters on {d}.", "Released {d}.", "The film premiered on {d}."],
                ["When was it released?", "When did it come out?", "What is the release date?", "When did it premiere?"]),
    "score": (["Rating: {x}/10", "I give it {x} out of 10.", "Verdict: {x}/10", "My score: {x} out of 10"],
              ["What score did the critic give?", "What rating did it get?", "How did the reviewer rate it?",
               "What is the verdict score?"]),
    "budget": (["Budget: ${b} million", "Made for ${b} million, it looks far richer.", "It cost about ${b} million to make."],
               ["What was the budget?", "How much did it cost to make?", "How much money was spent on it?"]),
    "country": (["Country of origin: {k}", "This {a} thriller never lets up.", "A {a} production through and through."],
                ["What country is the film from?", "Where is the movie from?", "Which country made it?"]),
    "language": (["Language: {l}", "It is in {l} with English subtitles.", "Spoken in {l} throughout."],
                 ["What language is it in?", "Is it subtitled?", "What language do they speak?"]),
    "location": (["It was shot in {p}.", "Filmed on location in {p}.", "Shooting took place in {p}."],
                 ["Where was it filmed?", "Where was it shot?", "What was the filming location?"]),
}


def fill(template: str, rng: random.Random) -> str:
    country = rng.choice(COUNTRIES)
    t = rng.randint(85, 165)
    return template.format(n=f"{rng.choice(FIRST)} {rng.choice(LAST)}", c=rng.choice(CHARACTERS), t=t, h=t // 60,
                           m=t % 60, d=f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {rng.randint(1990, 2025)}",
                           x=rng.randint(3, 10), b=rng.randint(2, 180), k=country[0], a=country[1], l=country[2],
                           p=rng.choice(PLACES))


def template_pairs(opinions: list[str], rng: random.Random, questions_per_fact: int = 160) -> list[dict]:
    """For each fact, questions in its reader phrasings against: one sentence stating it (right), two
    stating other facts (near misses) and one opinion sentence from a review (wrong)."""
    out = []
    names = list(FACTS)
    for fact, (statements, asks) in FACTS.items():
        for n in range(questions_per_fact):
            question = fill(rng.choice(asks), rng)
            group = f"template-{fact}-{n}"
            out.append({"q": question, "s": fill(rng.choice(statements), rng), "y": 1, "src": "templates", "group": group})
            for other in rng.sample([f for f in names if f != fact], 2):
                out.append({"q": question, "s": fill(rng.choice(FACTS[other][0]), rng), "y": 0, "src": "templates",
                            "group": group})
            out.append({"q": question, "s": rng.choice(opinions), "y": 0, "src": "templates", "group": group})
    return out


def film_fact_dataset(opinions: list[str], rng: random.Random, films: int = 120, out: Path = Path(".cache/film-facts")
                      ) -> Path:
    """A BEIR folder of made-up film reviews for the answer decision (train/fit_answer.py --film-facts):
    each film has three reviews, each of four opinion sentences from SubjQA train reviews and up to four
    fact lines or sentences (FACTS, random values). Per film, four questions in reader phrasings: two
    about facts one of its reviews states (answers: the stating sentence) and two about facts none
    states (near misses, unanswerable), each filtered to the film."""
    corpus, queries, evidence = [], [], []
    names = list(FACTS)
    opinions = [" ".join(o.split()) for o in opinions]
    for f in range(films):
        film = f"Film {f:03d}"
        stated = rng.sample(names, 6)
        for r in range(3):
            facts = stated[2 * r: 2 * r + 2] + rng.sample(stated, 1)
            lines = [fill(rng.choice(FACTS[fact][0]), rng) for fact in dict.fromkeys(facts)]
            text = "\n".join(lines[:1] + rng.sample(opinions, 2) + lines[1:] + rng.sample(opinions, 2))
            corpus.append({"_id": f"{f:03d}-{r}", "title": f"{film} review {r}", "text": text,
                           "metadata": {"film": film}})
        for n, fact in enumerate(rng.sample(stated, 2) + rng.sample([x for x in names if x not in stated], 2)):
            question = fill(rng.choice(FACTS[fact][1]), rng)
            qid = f"{f:03d}-q{n}"
            answerable = fact in stated
            answers = []
            if answerable:  # every review line that states the fact is an answer
                for doc in corpus[-3:]:
                    for line in doc["text"].split("\n"):
                        if _states(line, fact):
                            start = doc["text"].index(line)
                            evidence.append({"query_id": qid, "doc_id": doc["_id"], "start": start, "end": start + len(line)})
                            answers.append(line)
            queries.append({"_id": qid, "text": question, "answers": sorted(set(answers)),
                            "metadata": {"filter": {"film": film}, "answerable": answerable,
                                         "kind": "answerable" if answerable else "unanswerable"}})
    from train.subjqa import write_folder

    write_folder(out, corpus, queries, evidence)
    return out


def _states(line: str, fact: str) -> bool:
    """Whether a generated line is one of the fact's statement templates (values masked)."""
    import re

    for template in FACTS[fact][0]:
        pattern = re.escape(template)
        pattern = re.sub(r"\\\{[a-z]\\\}", ".+?", pattern)
        if re.fullmatch(pattern, line):
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjqa-repo", default="/work/.mirror/lewtun+SubjQA/repo")
    parser.add_argument("--squad-repo", default="/work/.mirror/chrischute+squad/repo")
    parser.add_argument("--out", default=".cache/reader/pairs.jsonl")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    pairs = squad_pairs(Path(args.squad_repo)) + subjqa_pairs(Path(args.subjqa_repo))
    opinions = [p["s"] for p in pairs if p["src"].startswith("subjqa") and 6 <= len(p["s"].split()) <= 40]
    pairs += template_pairs(sorted(set(opinions)), rng)
    facts = film_fact_dataset(sorted(set(opinions)), random.Random(args.seed + 1))
    print(f"film-fact dataset for the answer decision: {facts}", file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as handle:
        for p in pairs:
            handle.write(json.dumps(p | {"fold": fold_of(p["q"])}, ensure_ascii=False) + "\n")
    counts: dict[str, list[int]] = {}
    for p in pairs:
        c = counts.setdefault(p["src"], [0, 0, set()])
        c[0] += 1
        c[1] += p["y"]
        c[2].add(p["group"])
    for src, (n, pos, groups) in sorted(counts.items()):
        print(f"{src}: {len(groups)} questions, {n} pairs, {pos} right", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
