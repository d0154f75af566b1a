import json
import os

import pytest

from qa.corpus import fingerprint, read_corpus
from qa.errors import CorpusError

from .conftest import SEED_CORPUS


def test_seed_corpus_metadata_is_never_invented():
    corpus = read_corpus(SEED_CORPUS)
    assert len(corpus.reviews) == 3 and corpus.films() == ["Escape (2024)"]
    for review in corpus.reviews:
        assert review.source.outlet is None and review.source.author is None
        assert review.source.url is None and review.source.rating is None and review.source.date is None
        assert review.source.path.startswith("escape-2024/")
    assert corpus.repairs == {"escape-2024/002_03b15f6e9896f6a9": {"β→’": 4, "β→—": 6, "emoji junk": 8}}
    assert corpus.files == fingerprint(SEED_CORPUS)


def test_every_format_and_folder_per_film(tmp_path):
    (tmp_path / "alien").mkdir()
    (tmp_path / "alien" / "a.md").write_text("---\ntitle: In space\noutlet: Sci Weekly\nrating: 4/5\n---\nNo one hears you scream. Great film.\n")
    (tmp_path / "alien" / "b.txt").write_text("A plain review with no front matter at all.\n")
    rows = [{"id": "r1", "film": "Heat", "title": "Heat review", "text": "De Niro &amp; Pacino shine.", "author": "A. Critic"},
            {"id": "r2", "film": "Heat", "text": "Too long by half."}]
    (tmp_path / "heat.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "more.csv").write_text("id,film,title,outlet,text\nc1,Ran,Ran at 40,Film Mag,\"Kurosawa's epic, in colour.\"\n")
    (tmp_path / "page.html").write_text(
        "<html><head><title>Page title</title><meta name='author' content='H. Writer'><script>var x=1;</script></head>"
        "<body><h1>Heading</h1><p>First &amp; best paragraph.</p><p>Second one.</p></body></html>")
    corpus = read_corpus(tmp_path)
    by_id = {r.id: r for r in corpus.reviews}
    assert set(by_id) == {"alien/a", "alien/b", "heat#r1", "heat#r2", "more#c1", "page"}
    assert by_id["alien/a"].film == "alien" and by_id["alien/a"].source.outlet == "Sci Weekly"
    assert by_id["alien/a"].source.rating == "4/5" and by_id["alien/a"].title == "In space"
    assert by_id["alien/b"].title == "b" and by_id["alien/b"].source.outlet is None
    assert by_id["heat#r1"].text == "De Niro & Pacino shine." and by_id["heat#r1"].source.author == "A. Critic"
    assert by_id["more#c1"].film == "Ran" and by_id["more#c1"].source.outlet == "Film Mag"
    assert by_id["page"].title == "Page title" and by_id["page"].source.author == "H. Writer"
    assert by_id["page"].text == "Heading\nFirst & best paragraph.\nSecond one."
    assert corpus.films() == ["Heat", "Ran", "Unknown film", "alien"]


def test_bad_files_are_skipped_with_a_warning_and_the_rest_is_read(tmp_path):
    (tmp_path / "good.txt").write_text("A good review of a good film.")
    (tmp_path / "copy.txt").write_text("A good review of a good film.")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02\xff" * 100)
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 society \x96 a fine film.".encode("latin-1"))
    (tmp_path / "broken.jsonl").write_text('{"text": "ok"}\n{not json\n')
    outside = tmp_path.parent / "outside.txt"
    outside.write_text("secret")
    os.symlink(outside, tmp_path / "link.txt")
    corpus = read_corpus(tmp_path)
    ids = {r.id for r in corpus.reviews}
    assert ids == {"copy", "latin1"} or ids == {"good", "latin1"}
    latin = next(r for r in corpus.reviews if r.id == "latin1")
    assert latin.text == "Café society – a fine film."
    text = "\n".join(corpus.warnings)
    for needle in ["binary.txt: skipped", "empty.txt: skipped", "link.txt: skipped", "same content as",
                   "latin1.txt: not UTF-8", "broken.jsonl line 2"]:
        assert needle in text


def test_an_empty_or_missing_corpus_is_one_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="holds no readable review"):
        read_corpus(tmp_path)
    with pytest.raises(CorpusError, match="does not exist"):
        read_corpus(tmp_path / "nope")
