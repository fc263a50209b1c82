"""The errors sthisto raises for bad input, and the one wrapper for a dependency's errors.

Every error a user sees names the file or argument, what was expected and what to do.
An exception from a dependency (pandas, zlib, gzip, h5py, json, PIL, tifffile, gensim,
pooch, ...) never reaches the user bare: the call that may raise it runs inside
:func:`reading` (a file) or :func:`downloading` (a URL), which re-raises it with that
context and chains the original (``raise ... from err``), so the traceback still shows it.

* :class:`InputError` (a :class:`ValueError`): bad content of a file, an argument or an
  AnnData field. Existing ``except ValueError`` keeps working.
* :class:`FileFormatError` (an :class:`InputError`): a file that exists but cannot be
  parsed, or holds something other than what was expected.
* Problems of access (missing file, no permission, a folder where a file belongs) stay
  the :class:`OSError` subclass Python uses (``FileNotFoundError``, ``PermissionError``,
  ``IsADirectoryError``), with the same kind of message.
* :class:`DownloadError` (an :class:`OSError`): a download failed (network, HTTP status).

Nothing here imports numpy or any other heavy package: ``import sthisto`` uses it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import zlib
from collections.abc import Iterator

# What a parser may raise for a damaged or foreign file (pandas' ParserError/EmptyDataError,
# json's JSONDecodeError, tifffile's TiffFileError and UnicodeDecodeError are ValueErrors;
# gzip's BadGzipFile, PIL's UnidentifiedImageError and h5py's "file signature not found" are
# OSErrors without an errno; a truncated gzip stream is an EOFError or a zlib.error).
DEPENDENCY_ERRORS: tuple[type[BaseException], ...] = (
    OSError, EOFError, ValueError, KeyError, IndexError, TypeError, UnicodeError,
    zlib.error, struct.error, pickle.UnpicklingError,
)

_FIX_FORMAT = "check that the file is complete and in this format (re-download or re-export it)"
_FIX_ACCESS = {
    FileNotFoundError: "check the path",
    PermissionError: "check the file's permissions",
    IsADirectoryError: "pass the file itself, not a folder",
}


class InputError(ValueError):
    """Bad input: a file's content, an argument or an AnnData field is not what sthisto needs."""


class FileFormatError(InputError):
    """A file that exists but cannot be parsed, or does not hold what was expected.

    Attributes
    ----------
    path
        The file.
    what
        What the file was read as (``"counts table"``, ``"scale factors"``...).
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None, what: str | None = None):
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.what = what


class DownloadError(OSError):
    """A download failed (no network, an HTTP error status, an unreachable mirror)."""


def error_detail(err: BaseException, *, text: bool = True) -> str:
    """``"<message> [<module>.<type>]"`` of a dependency's error (only the type with ``text=False``)."""
    kind = type(err)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__.split('.')[0]}.{kind.__name__}"
    if not text:
        return f"the parser raised {name}"
    return f"{str(err).strip() or 'no message'} [{name}]"


def file_format_error(
    path: str | os.PathLike, what: str, problem: str, *, expected: str | None = None, fix: str | None = None
) -> FileFormatError:
    """Build the :class:`FileFormatError` for ``problem`` found in ``path`` (raise it yourself).

    The message reads ``"<what> <path>: <problem>. Expected <expected>. To fix: <fix>."``.
    """
    return FileFormatError(_message(f"{what} {os.fspath(path)}: {problem}", expected, fix), path=path, what=what)


def _message(head: str, expected: str | None, fix: str | None) -> str:
    parts = [f"{head.rstrip('.')}."]
    if expected:
        parts.append(f"Expected {expected.rstrip('.')}.")
    if fix:
        parts.append(f"To fix: {fix.rstrip('.')}.")
    return " ".join(parts)


@contextlib.contextmanager
def reading(
    path: str | os.PathLike,
    what: str,
    *,
    expected: str | None = None,
    fix: str | None = None,
    errors: tuple[type[BaseException], ...] = DEPENDENCY_ERRORS,
    detail: bool = True,
) -> Iterator[None]:
    """Run the block that parses ``path`` and re-raise a dependency's error with context.

    Keep only the dependency call inside the block; check what it returned afterwards
    with your own messages (raise :func:`file_format_error`).

    Parameters
    ----------
    path
        The file being read.
    what
        What it is, for the message (``"counts table"``).
    expected
        The format it should have (``"a tab-separated spots × genes table"``).
    fix
        What the user can do; by default: check the file is complete, re-download/re-export.
    errors
        Exception types to wrap (default :data:`DEPENDENCY_ERRORS`); add ``Exception`` only
        for a dependency known to raise bare ``Exception`` (e.g. scanpy's 10x reader).
    detail
        Quote the dependency's message (default). ``False`` names only its type: for a
        parser whose message gives unsafe advice (torch suggests ``weights_only=False``
        for a file it refused to unpickle); the original stays chained as the cause.

    Raises
    ------
    FileFormatError
        For an error about the content (a parse error, an OSError without errno).
    OSError
        For an access problem (an OSError with an errno): the same OSError subclass,
        with a message naming the file and ``what``.
    """
    try:
        yield
    except InputError:
        raise  # raised by sthisto with its own context
    except MemoryError:
        raise
    except errors as err:
        if isinstance(err, OSError) and err.errno is not None:
            hint = fix or _FIX_ACCESS.get(type(err), "check the path and that the file can be read")
            raise type(err)(err.errno, f"cannot open the {what} {os.fspath(path)}: {err.strerror or err}. "
                                       f"To fix: {hint}.") from err
        message = _message(f"cannot read the {what} {os.fspath(path)}: {error_detail(err, text=detail)}", expected,
                           fix or _FIX_FORMAT)
        raise FileFormatError(message, path=path, what=what) from err


@contextlib.contextmanager
def downloading(url: str, what: str, *, target: str | os.PathLike | None = None) -> Iterator[None]:
    """Run a download and re-raise its errors naming ``url``, ``what`` and what to do.

    A network or HTTP failure becomes a :class:`DownloadError` (an OSError); a file that
    arrived with the wrong hash becomes an :class:`InputError` (a ValueError), as pooch's
    own hash check is a ValueError; a cache folder that cannot be written stays the
    OSError subclass, naming ``sthisto.settings.datasetdir``.
    """
    where = f" into {os.fspath(target)}" if target is not None else ""
    try:
        yield
    except InputError:
        raise
    except ValueError as err:  # pooch: a hash mismatch, or a URL it cannot handle
        if "hash" in str(err).lower():
            raise InputError(
                f"the {what} downloaded from {url} is not the registered file: {error_detail(err)}. "
                "To fix: retry (a truncated download), or check that base_url= / STHISTO_DATA_URL "
                "points at an unmodified mirror."
            ) from err
        raise InputError(f"cannot download the {what} from {url}: {error_detail(err)}. To fix: pass an "
                         "http(s) or ftp URL as base_url= / STHISTO_DATA_URL.") from err
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as err:
        new = type(err)(err.errno, f"cannot write the {what}{where}: {err.strerror or err}. To fix: "
                                   "set sthisto.settings.datasetdir (or STHISTO_DATA_DIR) to a writable folder.")
        raise new from err
    except OSError as err:  # requests' ConnectionError / HTTPError / Timeout are OSErrors
        raise DownloadError(
            f"cannot download the {what} from {url}{where}: {error_detail(err)}. To fix: check the network "
            "connection, or set base_url= / STHISTO_DATA_URL to a reachable mirror, or put the file in "
            "the cache folder yourself."
        ) from err
