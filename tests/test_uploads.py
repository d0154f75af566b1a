"""Reviews added and deleted from the page (qa/uploads.py): checked first, written atomically, all or nothing."""

import json
import threading
from pathlib import Path

import pytest

from qa.corpus import read_corpus
from qa.uploads import (MAX_FILE_BYTES, MAX_FILES, UploadError, add_files, add_pasted, check_file, delete_file,
                        film_folder)

GOOD = b"---\ntitle: A new take\noutlet: The Daily Reel\n---\nThe film is a tense, well-acted thriller.\n"


@pytest.fixture()
def corpus(tmp_path):
    folder = tmp_path / "corpus" / "escape-2024"
    folder.mkdir(parents=True)
    (folder / "first.md").write_text("The first review says the score is loud.\n", encoding="utf-8")
    return tmp_path / "corpus"


def test_a_good_file_lands_in_the_films_folder_and_the_corpus_reader_takes_it(corpus):
    added = add_files(corpus, [("new.md", GOOD)], "Escape (2024)")
    assert [a.relpath for a in added] == ["Escape (2024)/new.md"] and added[0].reviews == 1
    new = {r.source.path: r for r in read_corpus(corpus).reviews}["Escape (2024)/new.md"]
    assert new.film == "Escape (2024)" and new.source.outlet == "The Daily Reel"  # the film chosen, by its folder
    assert not [p for p in corpus.rglob(".upload-*")]  # no temporary file left behind


@pytest.mark.parametrize("name, data, says", [
    ("notes.pdf", b"%PDF-1.4", "must be one of"),
    ("empty.txt", b"   \n", "empty"),
    ("binary.txt", b"abc\x00\x01\x02", "binary"),
    ("rows.jsonl", b'{"text": "fine"}\nnot json\n', "line 2"),
    ("rows.csv", b"title,body\na,b\n", "'text' column"),
    ("front.md", b"---\ntitle: [unclosed\n---\nbody\n", "front matter"),
    ("blank.jsonl", b'{"title": "no text"}\n', "row 1 has no text"),
])
def test_a_bad_file_is_refused_in_one_sentence_naming_it_and_nothing_is_written(corpus, name, data, says):
    before = sorted(p.as_posix() for p in corpus.rglob("*"))
    with pytest.raises(UploadError) as refused:
        add_files(corpus, [("good.md", GOOD), (name, data)], "Escape (2024)")
    message = str(refused.value)
    assert message.startswith(name) and says in message and message.count(". ") == 0, message
    assert sorted(p.as_posix() for p in corpus.rglob("*")) == before  # the good file was not written either


def test_limits_duplicates_and_names(corpus):
    with pytest.raises(UploadError, match="over the limit of"):
        add_files(corpus, [(f"r{i}.txt", b"text %d" % i) for i in range(MAX_FILES + 1)], "Escape")
    with pytest.raises(UploadError, match="MB limit"):
        check_file("big.txt", b"x" * (MAX_FILE_BYTES + 1), "Escape")
    with pytest.raises(UploadError, match="already in the corpus"):
        add_files(corpus, [("again.md", (corpus / "escape-2024" / "first.md").read_bytes())], "Escape 2024")
    with pytest.raises(UploadError, match="Choose one or more"):
        add_files(corpus, [], "Escape")
    # a name already taken gets a suffix; a path in the name cannot climb out of the film's folder
    first = add_files(corpus, [("../../first.md", b"Another review, another view.")], "escape-2024")
    assert first[0].relpath == "escape-2024/first-2.md"
    assert film_folder("  Escape  (2024)! ") == "Escape (2024)!"
    assert film_folder("../../etc") == "etc" and film_folder("a/b\\c") == "a-b-c"
    with pytest.raises(UploadError, match="Give the film"):
        film_folder(" .. ")


def test_windows_1252_is_accepted_with_a_note(corpus):
    added = add_files(corpus, [("old.txt", "The café scene is the film’s best.".encode("cp1252"))], "Escape")
    assert added[0].note and "Windows-1252" in added[0].note


def test_pasted_review_keeps_its_fields_and_checks_them(corpus):
    added = add_pasted(corpus, "Escape (2024)", "Late but loud", "A slow burn that pays off.", "Reel Talk",
                       "https://example.org/late")
    review = next(r for r in read_corpus(corpus).reviews if r.source.path == added.relpath)
    assert (review.title, review.film, review.source.outlet, review.source.url) == (
        "Late but loud", "Escape (2024)", "Reel Talk", "https://example.org/late")
    with pytest.raises(UploadError, match="URL must start"):
        add_pasted(corpus, "Escape", "T", "text", url="javascript:alert(1)")
    with pytest.raises(UploadError, match="Paste the review"):
        add_pasted(corpus, "Escape", "T", "  ")


def test_delete_only_review_files_inside_the_corpus(corpus, tmp_path):
    outside = tmp_path / "outside.md"
    outside.write_text("keep me", encoding="utf-8")
    for bad in ("../outside.md", "", "escape-2024", "escape-2024/missing.md"):
        with pytest.raises(UploadError):
            delete_file(corpus, bad)
    assert outside.exists()
    delete_file(corpus, "escape-2024/first.md")
    assert not (corpus / "escape-2024" / "first.md").exists()


def test_two_uploads_at_once_both_land(corpus):
    errors = []

    def upload(n):
        try:
            add_files(corpus, [("same-name.md", b"Review number %d of many." % n)], "escape-2024")
        except UploadError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = sorted(p.name for p in (corpus / "escape-2024").glob("same-name*.md"))
    assert not errors and len(names) == 2, (errors, names)
