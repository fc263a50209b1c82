"""Read pretrained gene vectors from a word2vec file (text or binary), strictly.

The format is decided once, from the content (never by trying one parser after another):
a file whose bytes after the optional ``"<count> <dim>"`` header line are text is parsed
as word2vec text, anything else as word2vec binary (which always has a header). A
malformed line is an error naming the file and the line; vectors with NaN or infinite
values are left out with a warning and count as missing.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sthisto._errors import file_format_error, reading
from sthisto._logging import logger
from sthisto._validate import existing_file

TEXT_FORMAT = ("word2vec text: an optional header line '<count> <dim>', then one line per gene with the "
               "symbol and <dim> numbers separated by spaces (plain or gzip)")
BINARY_FORMAT = "word2vec binary: a header line '<count> <dim>', then per gene the symbol, a space and <dim> float32"
_HEADER = re.compile(rb"\s*(\d+)\s+(\d+)\s*")
_SNIFF_BYTES = 1 << 16
_WHITESPACE = frozenset(b" \t\r\n")


@dataclass
class GeneVectors:
    """Vectors read from a file: ``names[i]`` has ``vectors[i]``; ``n_nonfinite`` were left out."""

    names: list[str]
    vectors: np.ndarray
    n_nonfinite: int
    binary: bool

    @property
    def dim(self) -> int:
        """Vector size."""
        return int(self.vectors.shape[1])


def _open(path: Path):
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _is_text(chunk: bytes) -> bool:
    """Tell whether ``chunk`` is UTF-8 text (a multi-byte character cut at the end is allowed)."""
    if any(b < 32 and b not in _WHITESPACE for b in chunk):
        return False
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as err:
        return err.start >= len(chunk) - 3
    return True


def _sniff(path: Path) -> tuple[bool, tuple[int, int] | None]:
    """Return ``(binary, (count, dim) or None)`` from the first line and the bytes after it."""
    with reading(path, "gene vector file", expected=TEXT_FORMAT), _open(path) as fh:
        first = fh.readline(_SNIFF_BYTES)
        rest = fh.read(_SNIFF_BYTES)
    header = _HEADER.fullmatch(first)
    if header is None:
        if not _is_text(first):
            raise file_format_error(path, "gene vector file", "is neither word2vec text nor binary (no header "
                                    "line '<count> <dim>', and not text)", expected=TEXT_FORMAT)
        return False, None
    shape = (int(header[1]), int(header[2]))
    if shape[1] < 1:
        raise file_format_error(path, "gene vector file", f"header says vectors of size {shape[1]}",
                                expected=TEXT_FORMAT)
    return not _is_text(rest), shape


def _bad_line(path: Path, number: int, problem: str):
    return file_format_error(path, "gene vector file", f"line {number}: {problem}", expected=TEXT_FORMAT,
                             fix="correct or remove that line")


def _read_text(path: Path, shape: tuple[int, int] | None):
    names, rows, numbers = [], [], []
    dim = None if shape is None else shape[1]
    with reading(path, "gene vector file", expected=TEXT_FORMAT), _open(path) as fh:
        lines = fh.read().decode("utf-8").split("\n")
    for number, line in enumerate(lines[1:] if shape else lines, start=2 if shape else 1):
        parts = line.split()
        if not parts:
            continue
        dim = len(parts) - 1 if dim is None else dim
        if len(parts) != dim + 1:
            raise _bad_line(path, number, f"expected a gene symbol and {dim} numbers, got {len(parts) - 1} "
                            f"numbers (the line starts {line[:40]!r})")
        names.append(parts[0])
        rows.append(parts[1:])
        numbers.append(number)
    if not names or not dim:
        raise file_format_error(path, "gene vector file", "holds no vectors", expected=TEXT_FORMAT)
    if shape is not None and shape[0] != len(names):
        raise file_format_error(path, "gene vector file", f"header announces {shape[0]} vectors but the file "
                                f"holds {len(names)} (truncated or edited?)", expected=TEXT_FORMAT)
    try:
        vectors = np.array(rows, dtype=np.float32)
    except ValueError:  # find the line, then say which value
        for number, row in zip(numbers, rows, strict=True):
            for token in row:
                try:
                    float(token)
                except ValueError:
                    raise _bad_line(path, number, f"{token!r} is not a number") from None
        raise
    return names, vectors, numbers


def _read_binary(path: Path):
    from gensim.models import KeyedVectors

    with reading(path, "gene vector file", expected=BINARY_FORMAT):
        kv = KeyedVectors.load_word2vec_format(str(path), binary=True)
    names = [str(k) for k in kv.index_to_key]
    damaged = [n for n in names if not n or any(c.isspace() or not c.isprintable() for c in n)]
    if damaged:
        raise file_format_error(path, "gene vector file", f"holds {len(damaged)} gene name(s) with spaces or "
                                f"control characters (e.g. {damaged[0]!r}): it is damaged, or text that is "
                                "not in word2vec format", expected=f"{TEXT_FORMAT}, or {BINARY_FORMAT}")
    return names, np.asarray(kv.vectors, dtype=np.float32), None


def read_gene_vectors(path) -> GeneVectors:
    """Read a word2vec text or binary file of gene vectors.

    Duplicated symbols keep their first vector (warning); vectors with NaN or infinite
    values are left out (warning) and their genes count as missing.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When the file is not word2vec, or a line is malformed (naming the line).
    """
    path = existing_file(path, "gene vector file")
    binary, shape = _sniff(path)
    names, vectors, numbers = _read_binary(path) if binary else _read_text(path, shape)
    logger.info("read %d gene vectors of size %d from %s (word2vec %s)", len(names), vectors.shape[1],
                path.name, "binary" if binary else "text")
    where = (lambda i: f"line {numbers[i]}") if numbers else (lambda i: f"entry {i + 1}")
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        logger.warning("gene vector file %s: %d vector(s) hold NaN or infinite values and are left out (e.g. %r "
                       "at %s); their genes count as missing", path, bad.size, names[bad[0]], where(bad[0]))
    _, first = np.unique(np.asarray(names, dtype=object), return_index=True)
    keep = np.zeros(len(names), dtype=bool)
    keep[first] = True
    if not keep.all():
        dup = np.flatnonzero(~keep)
        logger.warning("gene vector file %s: %d duplicated gene symbol(s) (e.g. %r at %s); the first vector of "
                       "each is used", path, dup.size, names[dup[0]], where(dup[0]))
    keep &= finite
    return GeneVectors(names=[n for n, k in zip(names, keep, strict=True) if k], vectors=vectors[keep],
                       n_nonfinite=int((~finite).sum()), binary=binary)
