"""One-line summaries of exceptions for error messages (the CLI prints each error as one line)."""

from __future__ import annotations

from ..errors import brief  # noqa: F401 - the one definition; training modules import it from here


def one_line(text: str) -> str:
    """``text`` with its line breaks and runs of whitespace collapsed to single spaces."""
    return " ".join(str(text).split())
