from hypothesis import given, settings, strategies as st

from qa.repair import repair

import hashlib

from .conftest import SEED_CORPUS, SEED_002

# sha256 of the seed files as received (shared/seeds), so the check needs nothing outside the repository.
SEED_SHA256 = {
    "000_c5d586a175a2a666.txt": "7b6d76336120db6c0250ee293a0cc21e1cc4b5f9fcab4b4795e6f18085e2e853",
    "001_ab617f7258eed2b4.txt": "5438f51111a985711539682800415343fb8a270552d6dd5bbecf467f7d816b1d",
    "002_03b15f6e9896f6a9.txt": "3845b4be0b65d09974b25ea02e96f6b71426e5b7af2079c3b9fff23f9c804250",
}


def _body(path):
    text = path.read_text(encoding="utf-8")
    return text.split("\n---\n", 1)[1]


def test_seed_002_mojibake_is_repaired():
    raw = _body(SEED_002)
    assert "β" in raw and "π¬" in raw
    fixed = repair(raw)
    assert "β" not in fixed.text
    assert "Gyu-nam’s childhood friend" in fixed.text
    assert "who’s lost faith" in fixed.text
    assert "Escape is not just a thriller — it’s a searing political drama" in fixed.text
    assert "\nPlot Summary\n" in fixed.text and "π" not in fixed.text
    assert fixed.counts == {"β→’": 4, "β→—": 6, "emoji junk": 8}


def test_text_that_needs_no_repair_is_left_byte_for_byte():
    for name in ("000_c5d586a175a2a666.txt", "001_ab617f7258eed2b4.txt"):
        raw = _body(SEED_CORPUS / "escape-2024" / name)
        fixed = repair(raw)
        assert fixed.text.encode("utf-8") == raw.encode("utf-8")
        assert fixed.changed == 0
    # curly quotes, NFD accents, CRLF and fullwidth letters are not "damage"
    for raw in ["“Quoted” — it’s fine", "Cafe\u0301 society\r\nnext", "ＡＢＣ ﬁne", "Greek: καλή ταινία, π = 3.14"]:
        assert repair(raw).text == raw


def test_seed_files_keep_their_original_text():
    # The corpus files are the seeds plus front matter; repair happens at ingest, not on disk.
    for name, sha in SEED_SHA256.items():
        body = _body(SEED_CORPUS / "escape-2024" / name).encode("utf-8")
        assert hashlib.sha256(body).hexdigest() == sha, name


def test_html_entities_are_unescaped_and_offsets_map_through():
    raw = "He said &quot;brisk&quot; &amp; &quot;thrilling&quot; twice."
    fixed = repair(raw)
    assert fixed.text == 'He said "brisk" & "thrilling" twice.'
    start = raw.index("brisk")
    s, e = fixed.offsets.span(start, start + len("brisk"))
    assert fixed.text[s:e] == "brisk"
    start = raw.index("&quot;thrilling&quot;")
    s, e = fixed.offsets.span(start, start + len("&quot;thrilling&quot;"))
    assert fixed.text[s:e] == '"thrilling"'
    s, e = fixed.offsets.span(raw.index("twice"), len(raw))
    assert fixed.text[s:e] == "twice."


def test_offsets_map_through_mojibake_repair():
    raw = _body(SEED_002)
    fixed = repair(raw)
    for phrase in ["The haunting score by Dalpalan", "Tasked with investigating", "Final Thoughts"]:
        start = raw.index(phrase)
        s, e = fixed.offsets.span(start, start + len(phrase))
        assert fixed.text[s:e] == phrase


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab β π¬₯Ί\n&quot;amp#39x-’—")) | st.characters(), max_size=200))
def test_repair_is_idempotent_and_bounded(raw):
    once = repair(raw).text
    assert repair(once).text == once
    assert len(once) <= len(raw) + 8


def test_a_span_of_the_repaired_text_maps_back_to_the_raw_text():
    """Labels are made on the repaired text readers see and saved as raw offsets, which eval maps forward."""
    import re

    raw = _body(SEED_002)
    fixed = repair(raw)
    words = [m.span() for m in re.finditer(r"\S+", fixed.text)]
    for i in range(0, len(words) - 6, 7):
        s, e = words[i][0], words[i + 5][1]
        raw_s, raw_e = fixed.offsets.raw_span(s, e)
        assert fixed.offsets.span(raw_s, raw_e) == (s, e)
        letters = [re.sub(r"[^A-Za-z0-9]", "", t.split()[-1]) for t in (raw[raw_s:raw_e], fixed.text[s:e])]
        assert letters[0] == letters[1]
    phrase = "who’s lost faith"  # repaired from "whoβs": the raw span holds the mojibake
    s = fixed.text.index(phrase)
    raw_s, raw_e = fixed.offsets.raw_span(s, s + len(phrase))
    assert raw[raw_s:raw_e] == "whoβs lost faith"
    entity = repair("Say &quot;hi&quot; now")
    assert entity.offsets.raw_span(4, 8) == (4, 18)
