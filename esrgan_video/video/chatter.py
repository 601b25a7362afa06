"""FFmpeg's and the encoders' own log output: silent unless asked for (``--verbose``).

What a user should know goes through the one ``notice`` callback; the libraries' own lines — FFmpeg's
``[h264 @ 0x…] error while decoding MB …``, x265's ``x265 [info]: …`` block, SVT-AV1's ``Svt[info]: …``
block — are chatter, shown only with ``verbose``:

- FFmpeg (``av_log``): PyAV ignores it by default; :func:`show_ffmpeg_log` ``(True)`` restores FFmpeg's own
  callback at INFO level, which writes to stderr from C. (PyAV's Python log callback, ``av.logging.set_level``,
  is never used: it takes the GIL from FFmpeg's codec threads and deadlocks a threaded decode.)
- x265 prints with its own logger: :func:`quiet_encoder_options` adds ``log-level=error`` to ``x265-params``
  unless the user set a log level there.
- SVT-AV1 reads ``SVT_LOG`` once per process, when its first encoder opens: :func:`quiet_encoder_options`
  sets it to 1 (errors only) unless the environment already has it.
"""

from __future__ import annotations

import os

import av

__all__ = ["quiet_encoder_options", "show_ffmpeg_log"]


def show_ffmpeg_log(verbose: bool) -> None:
    """FFmpeg's log lines on stderr (INFO and above) when ``verbose``; none otherwise (PyAV's default)."""
    if verbose:
        av.logging.restore_default_callback()
        av.logging.set_libav_level(av.logging.INFO)
    else:
        av.logging.set_level(None)


def quiet_encoder_options(codec: str, options: dict[str, str], *, verbose: bool) -> dict[str, str]:
    """``options`` for encoder ``codec`` with its own chatter turned down unless ``verbose`` (a new dict)."""
    out = dict(options)
    if verbose:
        return out
    if codec == "libx265":
        params = out.get("x265-params", "")
        if "log-level" not in params:
            out["x265-params"] = ":".join(filter(None, [params, "log-level=error"]))
    elif codec == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")
    return out
