"""Read review files into Review records, repairing their text at ingest.

Formats: `.txt` / `.md` (optional YAML front matter between `---` lines), `.jsonl` and `.csv` (one review
per row), `.html` / `.htm` (text extracted with BeautifulSoup). Metadata fields: film, title, outlet,
author, url, rating, date; rows also take `id` and `text`. A review with no `film` takes the name of its
folder under the corpus root. Fields a file does not state stay None.

Bad files never stop a load: each one is skipped with a warning naming the file, and the rest are read.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import CorpusError
from .records import Review, Source
from .repair import OffsetMap, repair

log = logging.getLogger(__name__)

REVIEW_SUFFIXES = (".txt", ".md", ".jsonl", ".csv", ".html", ".htm")
SOURCE_FIELDS = ("outlet", "author", "url", "rating", "date")
MAX_FILE_BYTES = 20_000_000


@dataclass
class Corpus:
    """The reviews read from a folder, the files they came from, and a warning per skipped file."""

    reviews: list[Review] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # relpath -> sha256 of the raw bytes
    warnings: list[str] = field(default_factory=list)
    repairs: dict[str, dict[str, int]] = field(default_factory=dict)  # review id -> counts per rule
    offset_maps: dict[str, OffsetMap] = field(default_factory=dict, repr=False)  # review id -> raw->text

    def films(self) -> list[str]:
        return sorted({r.film for r in self.reviews})


def _clean(value) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _decode(data: bytes, relpath: str, warnings: list[str]) -> str | None:
    if not data.strip():
        warnings.append(f"{relpath}: skipped, the file is empty.")
        return None
    if b"\x00" in data[:8192]:
        warnings.append(f"{relpath}: skipped, it looks like a binary file, not text.")
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
        warnings.append(f"{relpath}: not UTF-8; read as Windows-1252.")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
        warnings.append(f"{relpath}: not UTF-8; read as Latin-1.")
    return text


def _front_matter(text: str, relpath: str) -> tuple[dict, str]:
    if not text.startswith("---"):
        return {}, text
    first_nl = text.find("\n")
    if text[:first_nl].strip() != "---":
        return {}, text
    close = text.find("\n---", first_nl)
    if close < 0:
        return {}, text
    after = text.find("\n", close + 4)
    body = "" if after < 0 else text[after + 1 :]
    try:
        meta = yaml.safe_load(text[first_nl + 1 : close]) or {}
    except yaml.YAMLError as exc:
        raise CorpusError(f"{relpath}: the front matter is not valid YAML ({exc.__class__.__name__}).") from exc
    if not isinstance(meta, dict):
        raise CorpusError(f"{relpath}: the front matter must be a mapping of field: value.")
    return meta, body


def _html_text(markup: str) -> tuple[dict, str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    meta: dict = {}
    if soup.title and soup.title.string:
        meta["title"] = soup.title.string
    for name, key in (("author", "author"), ("og:site_name", "outlet"), ("og:url", "url")):
        tag = soup.find("meta", attrs={"name": name}) or soup.find("meta", attrs={"property": name})
        if tag and tag.get("content"):
            meta[key] = tag["content"]
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    lines = [line.strip() for line in soup.get_text("\n").splitlines()]
    return meta, "\n".join(line for line in lines if line)


def jsonl_objects(text: str, label: str, error: type[Exception]) -> list[tuple[int, dict]]:
    """(line number, object) for each non-blank line; a bad line raises `error` naming label and line."""
    rows = []
    for n, line in enumerate(text.split("\n"), 1):  # only "\n" ends a line, as editors count them
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{label} line {n}: not valid JSON ({exc.msg}).") from exc
        if not isinstance(obj, dict):
            raise error(f"{label} line {n}: each line must be a JSON object.")
        rows.append((n, obj))
    return rows


def _rows(text: str, suffix: str, relpath: str) -> list[tuple[str, dict]]:
    """(row id, fields) for each review row of a .jsonl or .csv file."""
    rows: list[tuple[str, dict]] = []
    if suffix == ".jsonl":
        for n, obj in jsonl_objects(text, relpath, CorpusError):
            if isinstance(obj.get("metadata"), dict):  # BEIR corpus.jsonl keeps fields under "metadata"
                obj = {**obj.pop("metadata"), **obj}
            rows.append((str(obj.get("id") or obj.get("_id") or n), obj))
    else:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "text" not in reader.fieldnames:
            raise CorpusError(f"{relpath}: a review CSV needs a header row with a 'text' column.")
        for n, row in enumerate(reader, 2):
            rows.append((str(row.get("id") or n), row))
    return rows


def _review(review_id: str, meta: dict, body: str, relpath: str, default_film: str, corpus: Corpus) -> None:
    if not body.strip():
        corpus.warnings.append(f"{relpath}: review {review_id} has no text; skipped.")
        return
    fixed = repair(body)
    if fixed.changed:
        counts = dict(fixed.counts)
        corpus.repairs[review_id] = counts
        log.info("%s: repaired %s", relpath, ", ".join(f"{n} {k}" for k, n in counts.items()))
    corpus.offset_maps[review_id] = fixed.offsets
    title = _clean(meta.get("title")) or Path(relpath).stem
    source = Source(**{k: _clean(meta.get(k)) for k in SOURCE_FIELDS}, path=relpath)
    extra = {k: v for k, v in meta.items() if k not in ("text", "title", "film", "id", "_id", *SOURCE_FIELDS)}
    film = _clean(meta.get("film")) or default_film
    corpus.reviews.append(Review(review_id, film, title, fixed.text, source, extra))


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except ValueError:
        return False


def _candidates(root_path: Path):
    """Review files under root, sorted, as (path, relpath); links out of the corpus are yielded too."""
    for path in sorted(root_path.rglob("*")):
        if path.suffix.lower() in REVIEW_SUFFIXES and not path.name.startswith(".") and not path.is_dir():
            yield path, path.relative_to(root_path).as_posix()


def fingerprint(root: str | os.PathLike) -> dict[str, str]:
    """{relpath: sha256 of the bytes} for every review file under root, without parsing any of them.

    Unreadable files are listed as "unreadable", so a later fix to their permissions counts as a change.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise CorpusError(f"The corpus folder {root_path} does not exist; create it and add review files.")
    out = {}
    for path, relpath in _candidates(root_path):
        try:
            out[relpath] = _file_sha256(path)
        except OSError:
            out[relpath] = "unreadable"
    return out


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def read_corpus(root: str | os.PathLike, max_file_bytes: int = MAX_FILE_BYTES, allow_empty: bool = False) -> Corpus:
    """Read every review file under `root` (recursively, sorted by path).

    `Corpus.files` fingerprints every candidate file, skipped ones included, exactly as `fingerprint`
    does. Raises CorpusError when the folder is missing or yields no review (unless `allow_empty`: an
    upload's check wants the warnings); bad files become warnings.
    Files with identical content are read once; the duplicate is reported.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise CorpusError(f"The corpus folder {root_path} does not exist; create it and add review files.")
    root_real = root_path.resolve()
    corpus = Corpus()
    seen: dict[str, str] = {}
    for path, relpath in _candidates(root_path):
        corpus.files[relpath] = "unreadable"
        if path.is_symlink() and not _inside(path, root_real):
            corpus.warnings.append(f"{relpath}: skipped, it is a link to a file outside the corpus folder.")
            continue
        try:
            size = path.stat().st_size
            if size > max_file_bytes:
                corpus.files[relpath] = _file_sha256(path)
                corpus.warnings.append(
                    f"{relpath}: skipped, {size / 1e6:.0f} MB is over the {max_file_bytes / 1e6:.0f} MB limit "
                    "per file; split it into one file per review."
                )
                continue
            data = path.read_bytes()
        except OSError as exc:
            corpus.warnings.append(f"{relpath}: skipped, it cannot be read ({exc.strerror or exc}).")
            continue
        digest = hashlib.sha256(data).hexdigest()
        corpus.files[relpath] = digest
        if digest in seen:
            corpus.warnings.append(f"{relpath}: skipped, same content as {seen[digest]}.")
            continue
        text = _decode(data, relpath, corpus.warnings)
        if text is None:
            continue
        seen[digest] = relpath
        parent = Path(relpath).parent.as_posix()
        default_film = parent if parent != "." else "Unknown film"
        stem = Path(relpath).with_suffix("").as_posix()
        suffix = path.suffix.lower()
        try:
            if suffix in (".jsonl", ".csv"):
                for row_id, row in _rows(text, suffix, relpath):
                    _review(f"{stem}#{row_id}", row, str(row.get("text") or ""), relpath, default_film, corpus)
            elif suffix in (".html", ".htm"):
                meta, body = _html_text(text)
                _review(stem, meta, body, relpath, default_film, corpus)
            else:
                meta, body = _front_matter(text, relpath)
                _review(stem, meta, body, relpath, default_film, corpus)
        except CorpusError as exc:
            corpus.warnings.append(f"{exc} The file was skipped.")
            corpus.reviews = [r for r in corpus.reviews if r.source.path != relpath]
    for warning in corpus.warnings:
        log.warning(warning)
    if not corpus.reviews and not allow_empty:
        raise CorpusError(
            f"The corpus folder {root_path} holds no readable review "
            f"(expected {', '.join(REVIEW_SUFFIXES)} files)."
        )
    return corpus
