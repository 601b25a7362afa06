"""The batch journal: an append-only JSON-lines file in the output folder, written only by the driver.

Each line is one state change of one task (a whole file, a segment of a file, or the join of a file's
segments), keyed by ``key``; the last line for a key is its state:

- ``pending``  — planned, not started;
- ``running``  — handed to ``owner`` (``host:pid/driver/worker-N:pidP@device`` or ``host:pid/driver/ray-actor-N``); ``heartbeat`` is
  the last time the driver heard from it (Unix seconds);
- ``done``     — finished: output ``size``, ``mtime_ns``, ``frames``, a cheap container ``probe``, the
  ``options`` hash that produced it and the source fingerprint (``src_size``, ``src_mtime_ns``);
- ``failed``   — ``error`` holds the one-line message; the source fingerprint, so a rerun retries the file once
  its source changed.

Appends are atomic: each record is one ``write()`` on an ``O_APPEND`` descriptor followed by ``fsync``, so
a crash leaves at most a torn last line, which ``load`` ignores and the next open drops (the file is
compacted to one line per key, written beside it and renamed over it). A lock file (``flock``) keeps a
second driver out of the same output folder; the kernel releases it when the driver dies.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

from ..errors import OutputError
from ..files import atomic_write_text

JOURNAL_NAME = ".esrgan-video-batch.jsonl"
LOCK_NAME = ".esrgan-video-batch.lock"
STATES = ("pending", "running", "done", "failed")
FORMAT_VERSION = 1


def fraction_text(v: Fraction | None) -> str | None:
    """An exact time as the journal stores it: ``"n/d"`` (None stays None)."""
    return None if v is None else f"{v.numerator}/{v.denominator}"


def parse_fraction(v: str | None) -> Fraction | None:
    """The inverse of :func:`fraction_text`."""
    return None if v is None else Fraction(v)


def parse_lines(text: str) -> dict[str, dict[str, Any]]:
    """The last record of each key in journal text (pure). Lines that are not a JSON object with a
    known ``state`` and a ``key`` (a torn last line after a crash) are skipped."""
    last: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("key"), str) and rec.get("state") in STATES:
            last[rec["key"]] = rec
    return last


def owner_name(worker: str) -> str:
    """``host:pid/worker`` — who runs a task, as recorded in ``running`` records."""
    return f"{socket.gethostname()}:{os.getpid()}/{worker}"


class Journal:
    """The driver's handle on ``OUTDIR/.esrgan-video-batch.jsonl`` (use as a context manager)."""

    def __init__(self, outdir: str | os.PathLike) -> None:
        self.outdir = Path(outdir)
        self.path = self.outdir / JOURNAL_NAME
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self.records: dict[str, dict[str, Any]] = {}

    # lifecycle ---------------------------------------------------------------------------
    def open(self) -> "Journal":
        """Take the lock, read the records, compact the file and open it for appending."""
        try:
            self.outdir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.outdir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:  # a file in the way, no permission, a read-only disk
            reason = "it is a file, not a folder" if self.outdir.exists() and not self.outdir.is_dir() else e.strerror
            raise OutputError(f"{self.outdir}: cannot be used as the output folder ({reason})") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(fd)
            raise OutputError(f"{self.outdir}: another batch is already running in this output folder") from e
        self._lock_fd = fd
        try:
            text = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        except (OSError, UnicodeDecodeError) as e:
            self.close()
            raise OutputError(f"{self.path}: cannot read the batch journal ({e})") from e
        self.records = parse_lines(text)
        try:
            self._fd = self._rewrite()
        except OutputError:  # a full disk, a read-only one: one line, nothing started (the old journal is intact)
            self.close()
            raise
        return self

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def __enter__(self) -> "Journal":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # records -----------------------------------------------------------------------------
    def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records.values())

    def record(self, key: str, state: str, **fields: Any) -> dict[str, Any]:
        """Append one state change (atomically, fsync'd) and return the record."""
        if state not in STATES:
            raise ValueError(f"journal state: expected one of {STATES}, got {state!r}")
        if self._fd is None:
            raise RuntimeError("journal is not open")
        rec = {"key": key, "state": state, "t": round(time.time(), 3), **fields}
        line = (json.dumps(rec, separators=(",", ":"), sort_keys=True) + "\n").encode()
        try:
            written = os.write(self._fd, line)
            if written == len(line):
                os.fsync(self._fd)
        except OSError as e:  # the disk filled up (or failed) under the run: stop it in one line, resumable
            raise OutputError(f"{self.path}: cannot write the batch journal ({e.strerror or e}); the batch stops "
                              "here: rerun the same command to resume once the folder can be written") from e
        if written != len(line):  # a short write on a full disk: the torn line is ignored on load
            raise OutputError(f"{self.path}: short write to the batch journal (disk full?); the batch stops here: "
                              "rerun the same command to resume once there is room")
        self.records[key] = rec
        return rec

    def forget(self, keys) -> None:
        """Drop the records of ``keys`` (a file whose source is gone: ``driver._vanished``): the file is compacted
        without them (written beside it and renamed over it, so a crash leaves the old or the new one) and reopened
        for appending."""
        if self._fd is None:
            raise RuntimeError("journal is not open")
        for key in keys:
            self.records.pop(key, None)
        fd = self._rewrite()
        os.close(self._fd)
        self._fd = fd

    def _rewrite(self) -> int:
        """Compact the file to :attr:`records` and open it for appending (the new descriptor); OutputError when it
        cannot be written."""
        try:
            self._compact()
            return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as e:
            raise OutputError(f"{self.path}: cannot write the batch journal ({e.strerror or e})") from e

    def _compact(self) -> None:
        atomic_write_text(self.path, "".join(
            json.dumps(r, separators=(",", ":"), sort_keys=True) + "\n" for r in self.records.values()
        ))
