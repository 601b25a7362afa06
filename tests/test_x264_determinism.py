"""libx264 gives the same bits for the same pictures from one encode to the next inside one process, as the tests
that compare x264 bytes or packet layouts (segment joins, batch reruns) assume. On a CPU with AVX-512, x264's
AVX-512 code with mb-tree did not (4 of 10 encodes of one 320x240 clip differed, in bytes and decoded pixels);
``encoder_settings.deterministic_options`` pins ``asm=avx2`` there (the writer and ``media.make_clip`` use it)."""

import hashlib
from fractions import Fraction

import av

from esrgan_video.video.encoder_settings import deterministic_options
from media import X264_AVX512, make_clip, x264_deterministic


def _digests(path):
    with av.open(str(path)) as c:
        packets = hashlib.md5(b"".join(bytes(p) for p in c.demux(video=0))).hexdigest()
    with av.open(str(path)) as c:
        pixels = hashlib.md5(b"".join(f.to_ndarray().tobytes() for f in c.decode(video=0))).hexdigest()
    return packets, pixels


def test_make_clip_x264_is_the_same_every_time(tmp_path):
    digests = {_digests(make_clip(tmp_path / f"c{i}.mp4", size=(320, 240), frames=10)) for i in range(8)}
    assert len(digests) == 1


def test_x264_deterministic_options():
    assert x264_deterministic({"x264-params": "asm=avx512"}) == {"x264-params": "asm=avx512"}  # the caller's choice
    opts = {"crf": "16", "x264-params": "tff=1"}
    pinned = x264_deterministic(opts)
    assert opts == {"crf": "16", "x264-params": "tff=1"}  # not changed in place
    assert pinned == ({"crf": "16", "x264-params": "tff=1:asm=avx2"} if X264_AVX512 else opts)


def test_the_writer_encodes_x264_the_same_every_time(tmp_path):
    """The product's writer (default crf, preset and threads): 8 of 10 encodes in one process differed on an
    AVX-512 CPU before ``encoder_settings.deterministic_options``."""
    from esrgan_video.frames.color import ColorSpec
    from esrgan_video.video.writer import OutputVideo
    from media import frame_planes

    digests = set()
    for n in range(6):
        dst = tmp_path / f"w{n}.mkv"
        color = ColorSpec(matrix=1, primaries=1, transfer=1, full_range=False)
        with OutputVideo(dst, codec="libx264", pix_fmt="yuv420p", size=(320, 240), time_base=Fraction(1, 25),
                         rate=Fraction(25), color=color) as out:
            for i in range(10):
                out.write(frame_planes("yuv420p", (320, 240), i), i)
        digests.add((dst.read_bytes(), _digests(dst)[1]))
    assert len(digests) == 1


def test_deterministic_options_leave_other_encoders_and_the_users_asm():
    assert deterministic_options("libx265", {"crf": "18"}) == {"crf": "18"}
    assert deterministic_options("libx264", {"x264-params": "asm=avx512"}) == {"x264-params": "asm=avx512"}
