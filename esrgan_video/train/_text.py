"""One-line summaries of exceptions for error messages (the CLI prints each error as one line)."""

from __future__ import annotations


def brief(e: BaseException, limit: int = 160) -> str:
    """``TypeName: first line of the message``, whitespace collapsed and cut to ``limit`` characters."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = " ".join((lines[0] if lines else "").split())
    if len(text) > limit:
        text = text[:limit - 3].rstrip() + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def one_line(text: str) -> str:
    """``text`` with its line breaks and runs of whitespace collapsed to single spaces."""
    return " ".join(str(text).split())
