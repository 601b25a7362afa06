"""Errors a user can act on: each carries one sentence naming the file and the problem.

The CLI prints ``esrgan-video: error: <message>`` and exits with ``exit_code``.
"""

from __future__ import annotations

from collections.abc import Iterator


def first_line(e: BaseException, limit: int | None = None) -> str:
    """The first non-blank line of ``e``'s message, whitespace collapsed (cut to ``limit`` characters with an
    ellipsis); "" for an empty message. For quoting a library's error inside one of ours."""
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    text = " ".join(lines[0].split()) if lines else ""
    if limit is not None and len(text) > limit:
        text = text[:limit - 3].rstrip() + "..."
    return text


def printable(text: str) -> str:
    """``text`` with its control characters (a newline or tab in a file name, an undecodable byte's surrogate)
    written as escapes (``new\\nline.mkv``), so a log line, an error line or a row of a table stays one line (pure)."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def causes(e: BaseException | None) -> Iterator[BaseException]:
    """``e``, then the exception it was raised from or while handling (``__cause__``, else ``__context__``), and so
    on, each once (a cycle ends it)."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def listed(items: list[str]) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"`` (pure): how a message names several things."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def did_you_mean(text: str, names, *, n: int = 2) -> str | None:
    """``"did you mean libx265 or libx264?"`` for the ``n`` names closest to ``text`` (a slip: ``libx26``,
    ``yuv420``), or None when none is close (pure)."""
    import difflib

    close = difflib.get_close_matches(text.strip().lower(), list(names), n=n, cutoff=0.6)
    return f"did you mean {', '.join(close[:-1])} or {close[-1]}?" if len(close) > 1 else (
        f"did you mean {close[0]}?" if close else None)


def brief(e: BaseException, limit: int = 160) -> str:
    """``TypeName: first line of the message`` (:func:`first_line`), or the type name alone."""
    text = first_line(e, limit)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class EsrganVideoError(Exception):
    """Base class; ``exit_code`` is what the CLI returns for it and ``meaning`` how ``-h`` describes that status
    (both given as class keywords by each subclass; ``esrgan_video.cli.exit_codes`` lists them)."""

    exit_code = 1
    meaning = "error"

    def __init_subclass__(cls, *, exit_code: int | None = None, meaning: str | None = None, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if exit_code is not None:
            cls.exit_code = exit_code
        if meaning is not None:
            cls.meaning = meaning


class InputError(EsrganVideoError, ValueError, exit_code=3, meaning="bad input file"):
    """The input file is missing, unreadable, not media, or has no usable video stream."""


class ModelError(EsrganVideoError, ValueError, exit_code=4, meaning="model problem"):
    """A model name or checkpoint cannot be used (unknown, not an RRDB generator, corrupt, unsafe)."""


class DownloadError(EsrganVideoError, OSError, exit_code=5, meaning="download problem"):
    """A model or sample could not be fetched (offline, host unreachable, checksum mismatch)."""


class OutputError(EsrganVideoError, OSError, exit_code=6, meaning="output problem"):
    """The output cannot be written (exists without --overwrite, equals the input, container refuses a stream)."""


class BackendError(EsrganVideoError, RuntimeError, exit_code=7, meaning="backend or device problem"):
    """The requested backend or device is unavailable, or inference failed (e.g. non-finite output)."""


class OptionError(EsrganVideoError, ValueError, exit_code=2, meaning="bad command line or option value"):
    """An option has a value it cannot take (a command-line error: exit status 2).

    The message names the option, what was expected and what was given: ``"tile: expected 0 (whole frame)
    or a positive size in pixels, got -1"``. ``relabel`` renames the option for a face that spells it
    differently (``num_streams`` in VapourSynth, ``--tile-pad`` on the command line).
    """

    def __init__(self, option: str, expected: str, got: object, *, detail: str | None = None) -> None:
        self.option, self.expected, self.got, self.detail = option, expected, got, detail
        shown = "nothing" if got is None else repr(got)  # None: the option was not given at all
        super().__init__(f"{option}: expected {expected}, got {shown}" + (f" ({detail})" if detail else ""))

    def __reduce__(self):  # batch workers send errors across processes
        return (_option_error, (self.option, self.expected, self.got, self.detail))

    def relabel(self, names: "dict[str, str]") -> "OptionError":
        """The same error with the option renamed by ``names`` (unchanged when it is not in it)."""
        new = OptionError(names.get(self.option, self.option), self.expected, self.got, detail=self.detail)
        new.__cause__ = self.__cause__
        return new


def _option_error(option: str, expected: str, got: object, detail: str | None) -> OptionError:
    return OptionError(option, expected, got, detail=detail)
