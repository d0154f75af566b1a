"""Reviews added and deleted from the web page: checked before anything is written, written atomically.

`add_files` takes uploaded files (name and bytes) and a film; `add_pasted` takes one review's text and
its fields. Every file is checked first, all of them before any is written: the count (MAX_FILES a time),
the size (MAX_FILE_BYTES each), the type (the corpus formats, qa/corpus.py REVIEW_SUFFIXES), and the
content, by reading it with the corpus reader itself in a scratch folder, so an upload is accepted
exactly when `qa index` would index it: text (not binary, not empty), valid JSON lines, a CSV with a
`text` column, valid front matter, at least one review with text. A file that is not UTF-8 is accepted
and read as the corpus reader reads it (Windows-1252 or Latin-1), with a note. One bad file refuses the
whole upload with one sentence naming the file, and nothing is written.

Accepted files go to `<corpus>/<film>/` (the folder name is the film of a file that names none; a
row's or front matter's own `film` still wins), each written to a temporary file and renamed into
place, so an index build never reads half a file. A name already taken gets a numbered suffix; a file
whose bytes are already in the corpus is refused as a duplicate. `delete_file` removes one file, only
inside the corpus folder. Indexing is the caller's (serving.EngineLoader.rebuild, which embeds only
changed files).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from .corpus import REVIEW_SUFFIXES, fingerprint, read_corpus
from .errors import CorpusError, QAError

MAX_FILES = 20
MAX_FILE_BYTES = 5_000_000
MAX_FIELD_CHARS = 300


class UploadError(QAError):
    """An upload or a deletion was refused; nothing was written or removed."""


@dataclass(frozen=True)
class Added:
    """One file written into the corpus: its path under the corpus folder, its reviews, and a note
    (for example how a non-UTF-8 file was read), or None."""

    relpath: str
    reviews: int
    note: str | None = None


def film_folder(film: str) -> str:
    """The folder a film's uploads go to: the film's name itself (a review file without a `film` field
    takes its folder's name as its film, so a plain .txt lands on the film chosen), with path separators
    and control characters replaced and leading dots dropped ("Escape (2024)" -> "Escape (2024)");
    raises UploadError when nothing is left."""
    folder = re.sub(r"[/\\\x00-\x1f\x7f]+", "-", " ".join(str(film or "").split())).strip(" .-")
    if not folder:
        raise UploadError("Give the film the reviews are about.")
    return folder[:120]


def _safe_name(name: str) -> str:
    """The file's own name without any folder part, with characters a file system may refuse replaced."""
    base = Path(str(name).replace("\\", "/")).name
    stem, suffix = os.path.splitext(base)
    stem = re.sub(r"[^\w.\- ]+", "_", stem).strip(" .") or "review"
    return stem[:100] + suffix.lower()


def check_file(name: str, data: bytes, film: str) -> tuple[int, str | None]:
    """(reviews in the file, a note or None) when the corpus reader would index it, else UploadError
    naming the file and what is wrong."""
    suffix = Path(name).suffix.lower()
    if suffix not in REVIEW_SUFFIXES:
        raise UploadError(f"{name}: a review file must be one of {', '.join(REVIEW_SUFFIXES)}.")
    if len(data) > MAX_FILE_BYTES:
        raise UploadError(f"{name}: {len(data) / 1e6:.1f} MB is over the {MAX_FILE_BYTES / 1e6:.0f} MB limit "
                          "per file; split it.")
    relpath = f"{film_folder(film)}/review{suffix}"  # where the scratch copy lies; the user's name replaces it
    with tempfile.TemporaryDirectory(prefix="qa-upload-check-") as scratch:
        path = Path(scratch) / relpath
        path.parent.mkdir()
        path.write_bytes(data)
        corpus = read_corpus(scratch, max_file_bytes=MAX_FILE_BYTES, allow_empty=True)
    problems = [w for w in corpus.warnings if "not UTF-8" not in w]
    if problems or not corpus.reviews:
        why = problems[0] if problems else f"{relpath}: it holds no review with text."
        why = why.replace(f"review {Path(relpath).with_suffix('').as_posix()}#", "row ").replace(relpath, "")
        why = why.replace(" The file was skipped.", "").replace("skipped, ", "").replace("; skipped", "")
        raise UploadError(f"{name}{why.rstrip('.')}; nothing was added.")
    notes = [w.split(": ", 1)[-1] for w in corpus.warnings if "not UTF-8" in w]
    return len(corpus.reviews), (notes[0] if notes else None)


def _write_new(folder: Path, name: str, data: bytes) -> Path:
    """Write `data` under a name not yet taken in `folder` ("name.md", else "name-2.md", ...): first to a
    hidden temporary file (the corpus reader skips dot-files), then hard-linked to the free name, which
    fails rather than overwrite when another upload (thread or process) took that name first."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".upload-", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        stem, suffix = os.path.splitext(name)
        for n in range(1, 10_000):
            path = folder / (name if n == 1 else f"{stem}-{n}{suffix}")
            try:
                os.link(tmp, path)
                return path
            except FileExistsError:
                continue
        raise OSError(f"no free name for {name}")
    finally:
        Path(tmp).unlink(missing_ok=True)


def add_files(corpus_dir: str | os.PathLike, files: list[tuple[str, bytes]], film: str) -> list[Added]:
    """Check every file, then write them all under the film's folder; returns what was added.
    Raises UploadError (nothing written) on the first bad file, too many files or none."""
    if not files:
        raise UploadError("Choose one or more review files to upload.")
    if len(files) > MAX_FILES:
        raise UploadError(f"{len(files)} files is over the limit of {MAX_FILES} an upload; upload them in parts.")
    corpus = Path(corpus_dir)
    folder = corpus / film_folder(film)
    present = {digest for digest in _fingerprint(corpus).values()}
    checked = []
    for name, data in files:
        safe = _safe_name(name)
        reviews, note = check_file(safe, data, film)
        digest = hashlib.sha256(data).hexdigest()
        if digest in present:
            raise UploadError(f"{safe}: the same file is already in the corpus; nothing was added.")
        present.add(digest)
        checked.append((safe, data, reviews, note))
    added = []
    try:
        for safe, data, reviews, note in checked:
            path = _write_new(folder, safe, data)
            added.append(Added(path.relative_to(corpus).as_posix(), reviews, note))
    except OSError as exc:
        for done in added:  # all or nothing: take back what this upload wrote
            (corpus / done.relpath).unlink(missing_ok=True)
        raise UploadError(f"The reviews could not be written to {folder} ({exc.strerror or exc}); "
                          "nothing was added.") from exc
    return added


def add_pasted(corpus_dir: str | os.PathLike, film: str, title: str, text: str, outlet: str = "",
               url: str = "") -> Added:
    """Write one pasted review as Markdown with YAML front matter (film, title, outlet, url)."""
    title, outlet, url = (str(v or "").strip() for v in (title, outlet, url))
    if not str(text or "").strip():
        raise UploadError("Paste the review's text.")
    if not title:
        raise UploadError("Give the review a title.")
    for label, value in (("title", title), ("outlet", outlet), ("URL", url)):
        if len(value) > MAX_FIELD_CHARS or "\n" in value:
            raise UploadError(f"The {label} must be one line of at most {MAX_FIELD_CHARS} characters.")
    if url and not re.match(r"https?://", url):
        raise UploadError("The URL must start with http:// or https://.")
    meta = {"film": film.strip(), "title": title, **({"outlet": outlet} if outlet else {}), **({"url": url} if url else {})}
    data = ("---\n" + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False) + "---\n" + text.strip() + "\n"
            ).encode("utf-8")
    return add_files(corpus_dir, [(f"{film_folder(title)}.md", data)], film)[0]


def _fingerprint(corpus: Path) -> dict[str, str]:
    try:
        return fingerprint(corpus)
    except CorpusError:
        return {}


def delete_file(corpus_dir: str | os.PathLike, relpath: str) -> None:
    """Remove one review file of the corpus; UploadError when it is not a review file inside it."""
    corpus = Path(corpus_dir).resolve()
    path = (corpus / str(relpath or "")).resolve()
    if not relpath or not path.is_relative_to(corpus) or path == corpus or path.suffix.lower() not in REVIEW_SUFFIXES:
        raise UploadError(f"{relpath or 'Nothing'} is not a review file of this corpus; nothing was deleted.")
    try:
        path.unlink()
    except FileNotFoundError:
        raise UploadError(f"{relpath} is no longer in the corpus; nothing was deleted.") from None
    except OSError as exc:
        raise UploadError(f"{relpath} could not be deleted ({exc.strerror or exc}).") from exc
