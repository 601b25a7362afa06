"""CUDA graph capture, one at a time in the process, on a stream of the backend's own device.

Why a process-wide lock: ``torch.cuda.graph`` documents that "only one capture may be underway at a
time in the process", and entering a capture synchronises the device (``torch.cuda.synchronize()``
in ``torch.cuda.graph.__enter__``), which is invalid while another stream is capturing. Two
backends (or two pipeline workers) capturing lazily at the same time would break each other's
capture. Every capture in this package goes through :func:`capture_graph`, which holds
:data:`CAPTURE_LOCK` for the whole capture.

Why an explicit stream: without ``stream=``, ``torch.cuda.graph`` uses one process-wide
``default_capture_stream``, created on whichever device was current the first time; a backend on
``cuda:1`` would then capture on a ``cuda:0`` stream. :func:`capture_graph` always passes a stream,
and refuses one on another device than the backend's.

Why the streams are put back after a failed capture: ``torch.cuda.graph`` makes the capture stream current in
``__enter__`` (its ``stream_ctx``) before ``capture_begin``, and makes the previous one current again in ``__exit__``
only after ``capture_end`` succeeds. A capture that fails (``capture_end`` raising because the work did something a
capture does not allow, such as a synchronising copy, or ``capture_begin`` raising) would leave the capture stream current for the rest of the
thread: every later kernel of that thread, the caller's own work too, would go to a backend's private stream. On
failure :func:`capture_graph` leaves ``stream_ctx`` itself, which puts back exactly what it replaced.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import torch

from esrgan_video.errors import BackendError

T = TypeVar("T")

CAPTURE_LOCK = threading.RLock()
"""Held for the whole of every CUDA graph capture in this process (re-entrant: a capture helper may nest)."""


def capture_graph(
    graph: "torch.cuda.CUDAGraph",
    stream: "torch.cuda.Stream",
    device: torch.device,
    work: Callable[[], T],
    *,
    graph_context: Callable[..., object] | None = None,
) -> T:
    """Capture ``work()`` into ``graph`` on ``stream`` (which must live on ``device``); returns what ``work`` returns.

    ``capture_error_mode="thread_local"``: CUDA calls that other threads make meanwhile (uploads, other
    backends' inference) do not invalidate the capture; this thread's own unsafe calls still do.
    ``graph_context`` is ``torch.cuda.graph`` (replaceable where the lock itself is under test).
    """
    if stream is None:
        raise BackendError("CUDA graph capture needs an explicit stream on the backend's device")
    stream_device = getattr(stream, "device", None)
    if stream_device is not None and device.index is not None and torch.device(stream_device) != device:
        raise BackendError(f"CUDA graph capture: the capture stream is on {stream_device}, the backend on {device}")
    ctx = torch.cuda.graph if graph_context is None else graph_context
    with CAPTURE_LOCK:
        capture = ctx(graph, stream=stream, capture_error_mode="thread_local")
        try:
            with capture:
                return work()
        except BaseException:
            _restore_streams(capture)
            raise


def _restore_streams(capture) -> None:
    """Make current again what ``capture`` (a ``torch.cuda.graph``) replaced, after a capture that failed.

    Its ``stream_ctx`` (a ``torch.cuda.StreamContext``) records the streams it replaced when entered
    (``src_prev_stream`` is None until then: nothing to undo when ``__enter__`` failed before it); leaving it sets
    them again, which is harmless when ``torch.cuda.graph.__exit__`` got as far as leaving it itself."""
    stream_ctx = getattr(capture, "stream_ctx", None)
    if stream_ctx is not None and getattr(stream_ctx, "src_prev_stream", None) is not None:
        stream_ctx.__exit__(None, None, None)
