"""Question kinds: a factoid (one sentence holds the answer) or a question that asks the reviews for an
opinion, which has as many answers as there are reviews that judge what it asks about.

Kinds, by rules (no model; measured on the labelled questions of evals/escape-opinion, see
docs/answers.md "Opinion questions"):

    fact        everything else: typed answers (who / when / how long ...) and plot questions
    opinion     a judgement of one aspect: "Is the acting good?", "How is the camerawork?", "Is it scary?"
    verdict     the overall judgement: "Should I see it?", "Is it worth watching?", "Would I enjoy it?"
    praise      what the reviews like: "What are its strengths?", "What do critics praise?"
    criticism   what they dislike: "What are its weaknesses?", "Any complaints?"
    agreement   whether they agree: "Do the critics agree with each other?"

`aspect` is what an opinion question asks about, in the reader's words ("the acting"), and `aspect_terms`
the words a review uses for it ("acting performance portrayal cast ..."), from a small lexicon of the
aspects film reviews judge; an aspect outside the lexicon keeps its own words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FACT, OPINION, VERDICT, PRAISE, CRITICISM, AGREEMENT = "fact", "opinion", "verdict", "praise", "criticism", "agreement"
OPINION_KINDS = (OPINION, VERDICT, PRAISE, CRITICISM, AGREEMENT)

# Aspect words a reader uses -> the words reviews judge that aspect with. One line per aspect; the first
# word names it in replies ("None of the 3 reviews discusses the music").
ASPECTS: dict[str, tuple[str, ...]] = {
    "acting": ("acting", "act", "acted", "actor", "actors", "actress", "performance", "performances", "portrayal",
               "portrays", "portraying", "plays", "cast", "lead", "leads", "role", "roles", "turn", "star", "stars"),
    "story": ("story", "plot", "narrative", "storyline", "screenplay", "script", "writing", "premise", "tale"),
    "direction": ("direction", "directing", "director", "directed", "filmmaking", "helming"),
    "cinematography": ("cinematography", "camerawork", "camera", "shots", "visuals", "visual", "photography",
                       "look", "looks", "imagery", "lighting", "shot", "palette", "colour", "color"),
    "music": ("music", "score", "soundtrack", "composer", "sound", "songs", "song"),
    "pacing": ("pacing", "pace", "paced", "tempo", "slow", "brisk", "momentum", "drags", "long", "length",
               "running"),
    "editing": ("editing", "edited", "edit", "cuts", "cutting"),
    "villain": ("villain", "antagonist", "bad", "pursuer", "foil", "major"),
    "characters": ("characters", "character", "characterisation", "characterization", "development",
                   "backstory", "depth"),
    "ending": ("ending", "end", "finale", "climax", "conclusion", "final"),
    "action": ("action", "chase", "chases", "set-pieces", "stunts", "fight", "fights", "sequences"),
    "tension": ("tension", "tense", "suspense", "suspenseful", "thrilling", "gripping", "nail-biting",
                "edge", "scary", "frightening", "intense", "intensity", "adrenaline", "heart-pounding"),
    "themes": ("themes", "theme", "message", "meaning", "symbolism", "commentary", "political", "ideas"),
    "effects": ("effects", "cgi", "vfx"),
    "humour": ("humour", "humor", "funny", "comedy", "jokes", "laugh", "laughs", "comic"),
    "dialogue": ("dialogue", "dialog", "lines", "conversations"),
    "romance": ("romance", "romantic", "love"),
    "costumes": ("costumes", "costume", "wardrobe", "makeup"),
    "violence": ("violence", "violent", "gore", "gory", "brutal", "bloody"),
}
# A reader's word -> its aspect (every lexicon word, plus a few words readers use for one).
_READER_WORDS = {"actors": "acting", "performances": "acting", "performance": "acting", "cast": "acting",
                 "scary": "tension", "suspenseful": "tension", "exciting": "tension", "thrilling": "tension",
                 "tense": "tension", "frightening": "tension", "gripping": "tension", "boring": "pacing",
                 "slow": "pacing", "long": "pacing", "visuals": "cinematography", "camerawork": "cinematography",
                 "look": "cinematography", "soundtrack": "music", "score": "music", "plot": "story",
                 "script": "story", "screenplay": "story", "writing": "story", "funny": "humour",
                 "violent": "violence", "gory": "violence", "cgi": "effects", "vfx": "effects"}
_ASPECT_OF = {w: a for a, words in ASPECTS.items() for w in words if w not in ("bad", "major", "end", "turn",
                                                                                 "look", "looks", "lead", "leads",
                                                                                 "star", "stars", "special",
                                                                                 "running", "final", "edge",
                                                                                 "sound", "shot", "lines", "love",
                                                                                 "depth", "act")}
_ASPECT_OF.update(_READER_WORDS)

_FILM_ADJECTIVES = ("too long|too slow|scary|frightening|funny|boring|slow|tense|exciting|thrilling|suspenseful|"
                    "violent|gory|long|gripping|intense|predictable|original|moving|emotional|dark|confusing|fun|"
                    "entertaining|well made|well acted|well shot|beautiful|realistic|believable|political")
_FILM = r"(it|this|this film|this movie|the film|the movie|escape|the picture)"
_CRITICS = r"(the )?(critics?|reviewers?|reviews?|writers?|people|everyone|they|most)"
_VERDICT = [
    rf"\bshould (i|we|you|one) (go )?(see|watch|bother|skip|check out|catch)\b",
    r"\bworth (it|seeing|watching|a watch|the (time|money|ticket|price)|my time|going)\b",
    r"\b(would|will|do you think) (i|we|you) (enjoy|like|love)\b",
    rf"\b(recommend|recommends|recommended) {_FILM}\b|\b(must[- ]see|must[- ]watch)\b|\b(do|did|would) {_CRITICS} recommend\b",
    rf"\b(is|was) {_FILM} (any )?(good|great|bad|worth|enjoyable|a good (film|movie|watch))\b",
    rf"\bhow good is {_FILM}\b",
    rf"\b(did|do) {_CRITICS} (like|love|enjoy|hate|rate|recommend) {_FILM}\b",
    r"\b(verdict|overall|bottom line|in short|final thoughts|worth my)\b",
    rf"\bwhat (did|do) {_CRITICS} think of {_FILM}\s*\??$",
    rf"\bhow (is|was) {_FILM} rated\b|\bwhat (is|was) the (critical )?(reception|consensus)\b",
    r"\bis it for me\b",
]
_AGREEMENT = r"\b(agree|agreement|disagree|disagreement|consensus|same (opinion|view|verdict)|differ|divided|split)\b"
_PRAISE = (r"\b(strengths?|strong points?|positives?|good points?|highlights?|best (thing|part|parts|things)|"
           r"what works|pros|merits?|virtues?|praised?|praising|liked? (most|best|about)|"
           r"loved? about|good about|great about|what('?s| is) good)\b")
_CRITICISM = (r"\b(weak(ness|nesses| points?| spots?)?|negatives?|bad points?|flaws?|flawed|faults?|problems?|"
              r"issues?|complain(ts?|ed|ing)?|criticis(e|ed|ms?)|criticiz(e|ed)|dislike[sd]?|didn'?t like|"
              r"did not like|not like|cons|downsides?|drawbacks?|shortcomings?|worst|what (does ?n'?t|did ?n'?t|"
              r"doesn't|does not|did not|fails?) work|go(es)? wrong|let ?down|fall short|falls short|"
              r"missteps?|wrong with)\b")
_OPINION = [
    r"^(is|are|was|were) (the )?(?P<a>[\w'’ -]+?) (any )?(good|great|bad|strong|weak|convincing|believable|"
    r"effective|memorable|impressive|well done|well[- ]made|worth|enjoyable|engaging|interesting|satisfying|"
    r"too \w+|ok|okay|decent|any good|up to scratch|well \w+|handled well|gripping|catchy|memorable|moving|"
    r"exciting|original|predictable|funny|scary|tense|slow|boring|realistic|credible|compelling|done well|fun)\b",
    rf"^(is|was) {_FILM} (?P<a>{_FILM_ADJECTIVES})\b",
    r"^how (good |strong |convincing )?(is|are|was|were) (the )?(?P<a>[\w'’ -]+?)\s*\??$",
    rf"\bwhat (do|did|does) {_CRITICS} (think|say|feel) (of|about) (the )?(?P<a>[\w'’ -]+?)\s*\??$",
    r"\b(opinions?|thoughts|views?|take) (on|of|about) (the )?(?P<a>[\w'’ -]+?)\s*\??$",
    r"^what (do|did) (you|i|we|people|viewers|audiences) (think|say|feel) (of|about) (the )?(?P<a>[\w'’ -]+?)\s*\??$",
    r"^how (do|did) (you|people|they|critics|reviewers) (like|rate|find) (the )?(?P<a>[\w'’ -]+?)\s*\??$",
    r"^how (do|did|does) (the )?(?P<a>[\w'’ -]+?) (hold up|work|fare|come across|compare)\b",
    r"^(does|did) (the )?(?P<a>[\w'’ -]+?) (work|hold up|deliver|impress|land|convince)\b",
    r"^(is|are|was|were) (the )?(?P<a>[\w'’ -]+?) (praised|criticised|criticized|liked|panned)\b",
    r"^(does|did) (it|the film|the movie) have (a |an )?(good|great|strong|bad|weak|satisfying|memorable|decent) "
    r"(?P<a>[\w'’ -]+?)\s*\??$",
    r"\bhow (scary|funny|tense|violent|long|slow|good|exciting|gripping|suspenseful) is {_FILM}\b",
]
_PARTICIPLES = {"shown", "made", "done", "caught", "told", "seen", "known", "given", "taken", "written", "killed",
                "shot", "set", "played", "found", "born", "run", "kept", "held", "built", "begun"}
_PERSONS = {"he", "she", "they", "him", "her", "them", "his", "hers", "their"}
_STOP = {"the", "a", "an", "its", "it", "this", "film", "film's", "movie", "movie's", "of", "in", "and", "s"}


@dataclass(frozen=True)
class Kind:
    """What a question asks for. `aspect` is empty for verdict, praise, criticism and agreement questions
    about the whole film, and for facts."""

    name: str
    aspect: str = ""
    aspect_terms: tuple[str, ...] = ()

    @property
    def opinion(self) -> bool:
        return self.name in OPINION_KINDS


def _norm(text: str) -> str:
    return " ".join(text.casefold().replace("’", "'").replace("?", " ").split())


def aspect_terms(aspect: str) -> tuple[str, ...]:
    """The words reviews judge an aspect with: its lexicon line for each known word of it, else its own
    content words ("the special effects" -> effects, cgi, vfx, special). Empty for an empty aspect."""
    words = [w for w in re.findall(r"[\w'-]+", aspect.casefold()) if w not in _STOP]
    if words and all(w in _PERSONS for w in words):  # "Is he convincing?": a person is judged by the acting
        return ASPECTS["acting"]
    words = [w for w in words if w not in _PERSONS]
    out: list[str] = []
    for w in words:
        known = _ASPECT_OF.get(w) or _ASPECT_OF.get(w.rstrip("s"))
        out.extend(ASPECTS[known] if known else (w,))
    known_lines = [w for w in words if _ASPECT_OF.get(w) or _ASPECT_OF.get(w.rstrip("s"))]
    if known_lines:  # "special effects": the lexicon line, not "special"
        out = [w for w in out if w not in words or w in known_lines or _ASPECT_OF.get(w)]
    return tuple(dict.fromkeys(out))


def in_context(kind: Kind, earlier: str | None) -> Kind:
    """An opinion about "him" or "them" ("Is he good in it?") read with the turn it leans on: the aspects
    that turn names ("Who is the villain?" -> the villain's lexicon words), else the acting."""
    if not earlier or not kind.opinion or not kind.aspect or \
            not all(w in _PERSONS for w in kind.aspect.casefold().split()):
        return kind
    named = [a for w in re.findall(r"[\w'-]+", earlier.casefold()) if (a := _ASPECT_OF.get(w))]
    if not named:
        return kind
    return Kind(kind.name, kind.aspect, tuple(t for a in dict.fromkeys(named) for t in ASPECTS[a]))


def aspect_name(aspect: str) -> str:
    """The aspect as a reply names it: "the acting" for "acting", "the special effects" as typed, "whether
    it is scary" for "scary" ("Is it scary?")."""
    if re.fullmatch(_FILM_ADJECTIVES, aspect.casefold()):
        return f"whether it is {aspect}"
    words = [w for w in re.findall(r"[\w'’-]+", aspect) if w.casefold() not in ("its", "it's", "the", "film's",
                                                                                "movie's")]
    return ("the " + " ".join(words)) if words else "it"


def question_kind(question: str) -> Kind:
    """The kind of a question (see the module docstring); rules are tried from the most specific:
    agreement, criticism, praise, verdict, then aspect opinion; anything else is a fact."""
    text = _norm(question)
    if re.search(_AGREEMENT, text) and re.search(r"\b(critics?|reviews?|reviewers?|they|everyone|writers?)\b", text):
        return Kind(AGREEMENT)
    if re.search(_CRITICISM, text):
        return Kind(CRITICISM, *_aspect_of_list(text))
    if re.search(_PRAISE, text):
        return Kind(PRAISE, *_aspect_of_list(text))
    about_film = False
    for pattern in _OPINION:
        m = re.search(pattern, text)
        if not m:
            continue
        aspect = m.group("a").strip()
        words = [w for w in aspect.split() if w not in _STOP]
        if re.fullmatch(_FILM, aspect) or not words:
            about_film = True  # "Is the film good?": a verdict, unless a later rule names an aspect ("too long")
            continue
        if len(words) > 4 or (words[-1].endswith("ed") or words[-1] in _PARTICIPLES) and words[-1] not in ASPECTS["editing"]:
            break  # "How is Lim caught?" asks what happens
        return Kind(OPINION, _as_typed(question, aspect), aspect_terms(aspect))
    if about_film:
        return Kind(VERDICT)
    if any(re.search(p, text) for p in _VERDICT):
        return Kind(VERDICT)
    return Kind(FACT)


def _as_typed(question: str, aspect: str) -> str:
    """The aspect as the reader typed it ("Seoul", not "seoul"), found again in the question."""
    flat = " ".join(question.replace("’", "'").replace("?", " ").split())
    at = flat.casefold().find(aspect)
    return flat[at:at + len(aspect)] if at >= 0 and len(flat.casefold()) == len(flat) else aspect


def _aspect_of_list(text: str) -> tuple[str, tuple[str, ...]]:
    """The aspect of a praise or criticism question, when it names one ("What are the weaknesses of the
    script?" -> script); none for the film as a whole."""
    m = re.search(r"\b(of|about|in|with) (the )?(?P<a>[\w' -]+?)$", text)
    if not m:
        return "", ()
    aspect = m.group("a")
    words = [w for w in aspect.split() if w not in _STOP]
    if not words or re.fullmatch(_FILM, aspect) or not any(_ASPECT_OF.get(w) for w in words):
        return "", ()
    return aspect, aspect_terms(aspect)
