"""The exit statuses of every ``esrgan-video`` command, listed once (the help texts and the README quote this).

Errors carry their status and its meaning (``esrgan_video.errors``: ``OptionError`` 2, ``InputError`` 3,
``ModelError`` 4, ``DownloadError`` 5, ``OutputError`` 6, ``BackendError`` 7), and this list takes them from there;
signals give 128 + the signal's number, as a shell reports a process killed by it (``cli.signals``).
"""

from __future__ import annotations

import signal

from ..errors import BackendError, DownloadError, InputError, ModelError, OptionError, OutputError

ERRORS = (OptionError, InputError, ModelError, DownloadError, OutputError, BackendError)
"""The error classes, in the order of their statuses."""

OK = 0
ERROR = 1
USAGE = OptionError.exit_code
BATCH_FAILED = 8
DAMAGED = 9
SIGHUP = 128 + signal.SIGHUP
INTERRUPTED = 128 + signal.SIGINT
SIGTERM = 128 + signal.SIGTERM

EXIT_CODES: tuple[tuple[int, str], ...] = (
    (OK, "done"),
    (ERROR, "unexpected error (a bug: please report it with the traceback)"),
    *((error.exit_code, error.meaning) for error in ERRORS),
    (BATCH_FAILED, "batch finished, but some files failed"),
    (DAMAGED, "finished, but the input was damaged (truncated, undecodable or missing frames; the output is kept)"),
    (SIGHUP, "hung up (SIGHUP)"),
    (INTERRUPTED, "interrupted (Ctrl-C, SIGINT)"),
    (SIGTERM, "terminated (SIGTERM)"),
)
"""(status, meaning) of every status a command can end with. On 129, 130 and 143 nothing is left behind: the
temporary output is removed (kept with ``--keep-partial``) and a batch resumes where it stopped."""


def exit_codes_text(*, skip: tuple[int, ...] = ()) -> str:
    """``"Exit codes: 0 done; 1 unexpected error; ..."`` for a help epilog."""
    return "Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES if code not in skip) + "."
