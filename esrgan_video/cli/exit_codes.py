"""The exit statuses of every ``esrgan-video`` command, listed once (the help texts and the README quote this).

Errors carry their status (``esrgan_video.errors``: ``OptionError`` 2, ``InputError`` 3, ``ModelError`` 4,
``DownloadError`` 5, ``OutputError`` 6, ``BackendError`` 7); signals give 128 + the signal's number, as a shell
reports a process killed by it (``cli.signals``).
"""

from __future__ import annotations

import signal

OK = 0
ERROR = 1
USAGE = 2
BATCH_FAILED = 8
DAMAGED = 9
SIGHUP = 128 + signal.SIGHUP
INTERRUPTED = 128 + signal.SIGINT
SIGTERM = 128 + signal.SIGTERM

EXIT_CODES: tuple[tuple[int, str], ...] = (
    (OK, "done"),
    (ERROR, "unexpected error (a bug: please report it with the traceback)"),
    (USAGE, "bad command line or option value"),
    (3, "bad input file"),
    (4, "model problem"),
    (5, "download problem"),
    (6, "output problem"),
    (7, "backend or device problem"),
    (BATCH_FAILED, "batch finished, but some files failed"),
    (DAMAGED, "finished, but the input was damaged (truncated or undecodable frames; the output is kept)"),
    (SIGHUP, "hung up (SIGHUP)"),
    (INTERRUPTED, "interrupted (Ctrl-C, SIGINT)"),
    (SIGTERM, "terminated (SIGTERM)"),
)
"""(status, meaning) of every status a command can end with. On 129, 130 and 143 nothing is left behind: the
temporary output is removed (kept with ``--keep-partial``) and a batch resumes where it stopped."""


def exit_codes_text(*, skip: tuple[int, ...] = ()) -> str:
    """``"Exit codes: 0 done; 1 unexpected error; ..."`` for a help epilog."""
    return "Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES if code not in skip) + "."
