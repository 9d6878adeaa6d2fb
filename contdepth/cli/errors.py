"""What a command's failure says: one line, ``contdepth COMMAND: error: ...``, and the exit code it ends on."""

from __future__ import annotations

import errno
from typing import NamedTuple

from ..data import DataError
from ..runs.folder import RunFolderError
from ..runs.lock import FolderLocked

# The package's own errors about what the user asked for: a usage error, exit code 2.
USER_ERRORS: tuple[type[Exception], ...] = (ValueError, TypeError, DataError, RunFolderError, FolderLocked)

# OS errors that say the machine is out of room, not that the user asked for something wrong: exit code 1.
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


class CommandError(Exception):
    """A failure a command reports as one line (``message``), ending the process with ``code``."""

    def __init__(self, message: object, code: int = 2) -> None:
        super().__init__(str(message))
        self.code = code


class Failure(NamedTuple):
    """A failure as the user sees it: one line and an exit code."""

    message: str
    code: int


def one_line(message: object) -> str:
    """``message``'s non-empty lines, stripped and joined by spaces."""
    return " ".join(line.strip() for line in str(message).splitlines() if line.strip())


def os_error_message(err: OSError, *, filename: bool = True) -> str:
    """An OS error as users read it: ``No space left on device (runs/x/checkpoint.pt)``, or its own message
    when it was raised with one (``FileNotFoundError("no run in ...")``); ``filename=False`` leaves out the
    file, for a message that names it itself."""
    where = f" ({err.filename})" if filename and err.filename else ""
    return f"{err.strerror or err}{where}"


def failure_of(err: BaseException, os_error_hint: str = "") -> Failure | None:
    """What the user is told about ``err``; None for an error that is not the user's or the machine's (a bug),
    which keeps its traceback. ``os_error_hint`` ends an OS error's line (``choose another --out``)."""
    if isinstance(err, CommandError):
        return Failure(one_line(err), err.code)
    if isinstance(err, OSError):
        message = os_error_message(err) + (f"; {os_error_hint}" if os_error_hint else "")
        return Failure(one_line(message), 1 if err.errno in FULL_DISK else 2)
    if isinstance(err, USER_ERRORS):
        return Failure(one_line(err) or type(err).__name__, 2)
    return None
