"""Errors a user can act on: each carries one sentence naming the file and the problem.

The CLI prints ``esrgan-video: error: <message>`` and exits with ``exit_code``.
"""

from __future__ import annotations


class EsrganVideoError(Exception):
    """Base class; ``exit_code`` is what the CLI returns for it."""

    exit_code = 1


class InputError(EsrganVideoError, ValueError):
    """The input file is missing, unreadable, not media, or has no usable video stream."""

    exit_code = 3


class ModelError(EsrganVideoError, ValueError):
    """A model name or checkpoint cannot be used (unknown, not an RRDB generator, corrupt, unsafe)."""

    exit_code = 4


class DownloadError(EsrganVideoError, OSError):
    """A model or sample could not be fetched (offline, host unreachable, checksum mismatch)."""

    exit_code = 5


class OutputError(EsrganVideoError, OSError):
    """The output cannot be written (exists without --overwrite, equals the input, container refuses a stream)."""

    exit_code = 6


class BackendError(EsrganVideoError, RuntimeError):
    """The requested backend or device is unavailable, or inference failed (e.g. non-finite output)."""

    exit_code = 7
