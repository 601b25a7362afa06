"""SIGTERM and SIGHUP handled like Ctrl-C: the run unwinds, the writer removes its temporary file, and the
command exits with 128 + the signal's number (130 SIGINT, 143 SIGTERM, 129 SIGHUP), as a shell reports a
process killed by that signal.

    with stop_signals():
        run()          # raises Terminated (a KeyboardInterrupt) on SIGTERM / SIGHUP

Python delivers signals to the main thread, between bytecodes; the streaming core runs its encode loop there
and its other stages in threads it stops on any exception, so raising from the handler unwinds the same way
Ctrl-C's ``KeyboardInterrupt`` does.

Once a command has its exit status (its output committed or removed), :func:`quiet_shutdown` makes a signal that
arrives while the interpreter shuts down (atexit callbacks, finalizers: ~0.3-0.5 s measured after a tiny upscale or
train run, most of it C-level teardown of torch) leave that status as it is instead of printing
``Exception ignored in atexit callback ... KeyboardInterrupt`` (or, for SIGTERM / SIGHUP, the process dying by
the signal with the work done).
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

HANDLED = (signal.SIGTERM, signal.SIGHUP)
SHUTDOWN = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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
    come back afterwards, unless the block installed its own, e.g. :func:`quiet_shutdown`). A signal whose
    disposition is "ignore" (``nohup``) stays ignored."""
    previous = {}
    hook = sys.unraisablehook
    if hook is not _unraisable:  # an outer block's stays
        _passed_on["hook"] = hook
        sys.unraisablehook = _unraisable
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
        if hook is not _unraisable and sys.unraisablehook is _unraisable:
            sys.unraisablehook = hook
        for sig, handler in previous.items():
            if signal.getsignal(sig) is _raise:
                signal.signal(sig, handler)


def _unraisable(unraisable) -> None:
    """``sys.unraisablehook`` within :func:`stop_signals`: a signal whose handler ran inside a finalizer or a weakref
    callback (importlib's module locks take one on every import: Ctrl-C during the startup imports or the model load
    often landed there) raised its KeyboardInterrupt where Python prints "Exception ignored in ..." with a traceback
    and drops it, and the run went on to the end. The signal is sent again, so that its handler raises in the
    command, which then unwinds and exits 130 / 143 / 129; any other unraisable exception goes to the hook before."""
    exc = unraisable.exc_value
    if isinstance(exc, KeyboardInterrupt):
        sig = exc.signum if isinstance(exc, Terminated) else signal.SIGINT
        if callable(signal.getsignal(sig)):  # still a Python handler
            # from another thread, a moment later, to the main thread (a blocking call there is interrupted, as
            # by the first): sent from in here (raise_signal, interrupt_main), the handler ran in this hook, whose
            # exception Python drops too
            timer = threading.Timer(REDELIVER_DELAY, signal.pthread_kill, args=(threading.main_thread().ident, sig))
            timer.daemon = True
            timer.start()
            return
    _passed_on["hook"](unraisable)


REDELIVER_DELAY = 0.02
"""Seconds after a dropped signal's KeyboardInterrupt that :func:`_unraisable` sends the signal again."""

_passed_on = {"hook": sys.__unraisablehook__}
"""The ``sys.unraisablehook`` :func:`stop_signals` replaced, which :func:`_unraisable` passes other exceptions to."""


def quiet_shutdown(status: int) -> None:
    """The command's result is final with exit ``status``: from now on SIGINT, SIGTERM and SIGHUP no longer
    interrupt. The first one is let pass (the interpreter finishes its cleanup, so finalizers still remove their
    temporaries, and the process exits with ``status``); a second one ends the process at once with ``status``
    (``os._exit`` after flushing stdout / stderr), for a shutdown that hangs. Once the atexit callbacks start, the
    three are ignored: Python's finalization resets a Python handler to the default (a signal during the C-level
    teardown that follows, ~0.5 s after a torch run, would kill the finished process: status 130 / 143 / 129 for
    work that was done) but leaves "ignore" alone. A signal the process ignores (``nohup``) stays ignored. Only
    for the process's own command (:func:`program`): it changes process-wide handlers for good."""
    _shutdown["status"] = status
    _shutdown["final"] = True
    for sig in SHUTDOWN:
        try:
            if signal.getsignal(sig) not in (signal.SIG_IGN, _quiet):
                signal.signal(sig, _quiet)
        except ValueError:  # not the main thread
            pass


def program() -> None:
    """This process runs the command (the console script, ``python -m esrgan_video``; not a caller of
    ``cli.main.main(argv)`` in its own process): :func:`final` then applies :func:`quiet_shutdown`."""
    _shutdown["program"] = True


def final(status: int) -> None:
    """Called by a command once its result is committed (its output in place, the message printed), before the
    work it still does on the way out (freeing a model, a trainer): a signal from then on leaves ``status``
    instead of reporting an interrupted run. Does nothing unless :func:`program` was called."""
    if _shutdown["program"]:
        quiet_shutdown(status)


_shutdown = {"program": False, "final": False, "status": 0, "seen": False}


def _quiet(signum: int, frame) -> None:
    if _shutdown["seen"]:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        os._exit(_shutdown["status"])
    _shutdown["seen"] = True


def _ignore_at_exit() -> None:
    if _shutdown["final"]:
        for sig in SHUTDOWN:
            try:
                if signal.getsignal(sig) is _quiet:
                    signal.signal(sig, signal.SIG_IGN)
            except ValueError:
                pass


# registered when the CLI is imported, before torch & co. register theirs: atexit runs it after them (last in,
# first out), so a signal during their callbacks still gets _quiet (a second one exits at once)
atexit.register(_ignore_at_exit)
