"""A one-picture palette file (an opaque ``pal8`` PNG, BMP or TGA read by the video reader: ``esrgan-video a.tga
b.mkv``) was decoded twice when the reader opened it: once for its first frame, and again from the start by the
scan that looks for a see-through palette entry in a later frame (``planes.stream_see_through``) — which a file of
one picture does not have. Now its first frame decides alone; a palette video (a raw QuickTime clip) is still
scanned, since a later frame's palette may add alpha."""

from __future__ import annotations


import av
import numpy as np
import pytest
import skimage.data
from PIL import Image

from esrgan_video.video import planes
from esrgan_video.video.reader import open_input


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """The files the see-through scan opens (to decode them from the start), as it opens them (the real
    ``open_media``, counted)."""
    opened: list[str] = []
    real = planes.open_media

    def counting(path):
        opened.append(str(path))
        return real(path)

    monkeypatch.setattr(planes, "open_media", counting)
    planes._scan_see_through.cache_clear()
    return opened


@pytest.mark.parametrize("ext", ["png", "bmp", "tga"])
def test_a_one_picture_palette_file_is_decoded_once(tmp_path, decodes, ext):
    photo = skimage.data.astronaut()[::8, ::8][:48, :64]
    q = Image.fromarray(np.ascontiguousarray(photo)).quantize(64)
    src = tmp_path / f"p.{ext}"
    q.save(src)
    with av.open(str(src)) as c:  # the file is what the test is about: one opaque palette picture
        assert c.streams.video[0].codec_context.pix_fmt == "pal8" and planes.one_picture(c.format.name)
    with open_input(src) as inp:
        assert (inp.info.pix_fmt, inp.info.source_pix_fmt) == ("rgb24", "pal8")
        (frame,) = list(inp.frames())
    assert decodes == []  # only the reader's own first-frame decode: no second pass over the file
    assert np.array_equal(frame.planes[0], np.asarray(q.convert("RGB")))


def test_a_palette_video_is_still_scanned(tmp_path, decodes):
    """The counter sees a scan where one is due: an opaque raw pal8 QuickTime clip of 3 frames."""
    src = tmp_path / "pal.mov"
    with av.open(str(src), "w") as c:
        s = c.add_stream("rawvideo", rate=25)
        s.width, s.height, s.pix_fmt = 16, 8, "pal8"
        for k in range(3):
            f = av.VideoFrame(16, 8, "pal8")
            np.frombuffer(f.planes[0], np.uint8)[...] = k
            pal = np.frombuffer(f.planes[1], np.uint8).reshape(256, 4)
            pal[...] = 255
            c.mux(s.encode(f))
        c.mux(s.encode())
    with open_input(src) as inp:
        assert inp.info.pix_fmt == "rgb24"
    assert decodes == [str(src)]
