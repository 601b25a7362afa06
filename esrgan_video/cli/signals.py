"""SIGTERM and SIGHUP handled like Ctrl-C: the run unwinds, the writer removes its temporary file, and the
command exits with 128 + the signal's number (130 SIGINT, 143 SIGTERM, 129 SIGHUP), as a shell reports a
process killed by that signal.

    with stop_signals():
        run()          # raises Terminated (a KeyboardInterrupt) on SIGTERM / SIGHUP

Python delivers signals to the main thread, between bytecodes; the streaming core runs its encode loop there
and its other stages in threads it stops on any exception, so raising from the handler unwinds the same way
Ctrl-C's ``KeyboardInterrupt`` does.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Iterator

HANDLED = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """The process received ``signum`` (SIGTERM or SIGHUP); handled wherever Ctrl-C is."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_status(interrupt: BaseException) -> int:
    """128 + the signal's number: 143 for SIGTERM, 129 for SIGHUP, 130 for SIGINT (a plain KeyboardInterrupt)."""
    return 128 + (interrupt.signum if isinstance(interrupt, Terminated) else signal.SIGINT)


def signal_name(interrupt: BaseException) -> str:
    return signal.Signals(interrupt.signum).name if isinstance(interrupt, Terminated) else "Ctrl-C"


def _raise(signum: int, frame) -> None:
    raise Terminated(signum)


@contextmanager
def stop_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` in the main thread (the previous handlers
    come back afterwards). A signal whose disposition is "ignore" (``nohup``) stays ignored."""
    previous = {}
    for sig in HANDLED:
        try:
            if signal.getsignal(sig) is signal.SIG_IGN:
                continue
            previous[sig] = signal.signal(sig, _raise)
        except ValueError:  # not the main thread: leave signals to the caller
            pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
