"""The few exceptions a user can meet. Each carries one plain sentence; the edges (cli, ui) print it."""


class QAError(Exception):
    """Base class: str(error) is a one-sentence message fit for a user."""


class CorpusError(QAError):
    """The corpus folder is missing, empty, or holds nothing readable."""


class IndexNotBuilt(QAError):
    """No index exists at the given folder."""


class IndexCorrupt(QAError):
    """An index file is missing, truncated or unreadable."""


class IndexMismatch(QAError):
    """The index was built with another model, dimension or chunker than the one configured."""


class ModelLoadError(QAError):
    """The embedding model cannot be loaded (missing path, unknown name, no network)."""


class BadQuestion(QAError):
    """The question is empty or unusable."""


class DatasetError(QAError):
    """An eval dataset file is missing or malformed (the message names the file and line)."""


class AnswerModelError(QAError):
    """The fitted answer-decision model file is missing, unreadable or fitted for other features."""


class ReaderModelError(QAError):
    """The reader's weights are missing, altered (sha256), of another version or of another shape."""
