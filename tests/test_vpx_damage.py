"""Damage in VP8/VP9 WebM is reported: the frames the decoder refuses are counted lost, at their times, and the frames
read are the others, at theirs (#14.1).

FFmpeg's native VP8 decoder refuses damaged data only on slice threads (``reader.SLICE_CHECKED_DECODERS``): on frame
threads, as the reader decoded it, a packet of noise came out as a frame and the run said nothing. libvpx (a VP9
alpha track) refuses the damaged packet and every frame predicted from it up to the next keyframe: all are lost,
all are counted.
"""

from __future__ import annotations

from fractions import Fraction

import av
import pytest

import media
from esrgan_video.video.reader import open_input


def _packet_times(path) -> list[Fraction]:
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        return sorted(p.pts * st.time_base for p in c.demux(st) if p.size)


def _read(path):
    video = open_input(path)
    run = video.frames()
    times = [f.pts * f.time_base for f in run]
    return times, run.stats


@pytest.mark.parametrize("codec, pix_fmt, decoder", [("libvpx", "yuv420p", "vp8"),
                                                     ("libvpx-vp9", "yuva420p", "libvpx-vp9")])
@pytest.mark.parametrize("packet", [2, 8])
def test_a_corrupt_packet_is_reported_at_its_time(tmp_path, codec, pix_fmt, decoder, packet):
    options = {"g": "12"} | ({"auto-alt-ref": "0"} if codec == "libvpx" else {})
    good = media.make_clip(tmp_path / "good.webm", codec=codec, pix_fmt=pix_fmt, frames=24, size=(128, 96),
                           options=options)
    bad = media.make_corrupt(good, tmp_path / "bad.webm", frames=[packet])
    assert open_input(bad).info.pix_fmt == pix_fmt
    times, stats = _read(bad)
    expected = _packet_times(good)
    assert stats.lost_frames >= 1 and len(times) + stats.lost_frames == len(expected)
    read = set(times)
    missing = [t for t in expected if t not in read]
    assert len(missing) == stats.lost_frames and missing[0] == expected[packet]  # what is said lost is what is missing
    assert stats.report() == (f"{bad.name}: {stats.lost_frames} frame(s) could not be decoded and were skipped, "
                              f"the first at {float(expected[packet]):.3f} s")


@pytest.mark.parametrize("size, gop", [((64, 48), 6), ((128, 96), 12), ((128, 96), 3), ((96, 64), 30)])
def test_clean_vp8_is_not_damage(tmp_path, size, gop):
    good = media.make_clip(tmp_path / "good.webm", codec="libvpx", frames=24, size=size, options={"g": str(gop)})
    times, stats = _read(good)
    assert times == _packet_times(good) and stats.lost_frames == 0 and stats.report() is None


@pytest.mark.parametrize("codec, pix_fmt", [("libvpx", "yuv420p"), ("libvpx-vp9", "yuva420p"),
                                            ("libvpx-vp9", "yuv420p")])
def test_cli_output_holds_the_frames_read_at_their_times(tmp_path, near_identity_file, capfd, codec, pix_fmt):
    """Exit 9, the one line, and the output's frames are the frames the reader read, at the same times."""
    from esrgan_video.testing import run_cli

    options = {"g": "12"} | ({"auto-alt-ref": "0"} if codec == "libvpx" else {})
    good = media.make_clip(tmp_path / "good.webm", codec=codec, pix_fmt=pix_fmt, frames=24, size=(64, 48),
                           options=options)
    bad = media.make_corrupt(good, tmp_path / "bad.webm", frames=[5])
    times, stats = _read(bad)
    dst = tmp_path / "out.webm"
    p = run_cli(capfd, bad, dst, "--model", near_identity_file(2), "--device", "cpu")
    assert p.returncode == 9, p.stderr
    assert [line for line in p.stderr.splitlines() if "could not be decoded" in line] == [
        f"esrgan-video: {stats.report()}"]
    assert _packet_times(dst) == times
